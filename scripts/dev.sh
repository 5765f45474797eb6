#!/usr/bin/env bash
# Starts the whole platform on this machine: PostgreSQL and Redis when they do not
# respond, a mock OpenAI provider, the demo data, then the api and the worker.
# Ctrl-C (or SIGTERM) stops every process the script started.
#
# Usage: scripts/dev.sh
#
# Reads .env from the repository root when it exists, and every variable of .env.example.
# Two more variables belong to this script:
#   MOCK_PROVIDER_ADDR  address of the mock provider (default 127.0.0.1:4010). The mock
#                       is not started when every provider has its own URL or key.
#   DEV_LOG_DIR         directory of the log files (default target/dev-logs)
# Each process's output is shown with a [name] prefix and also written to
# DEV_LOG_DIR/<name>.log. The demo ids and access token go to DEV_LOG_DIR/demo.env.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Loads .env the way the binaries do: a variable already in the environment keeps its
# value, because the saved exports are applied again after the file.
if [[ -f .env ]]; then
  environment="$(export -p)"
  set -a
  # shellcheck source=/dev/null
  source .env
  set +a
  eval "$environment"
fi

API_ADDR="${API_ADDR:-127.0.0.1:8000}"
MOCK_PROVIDER_ADDR="${MOCK_PROVIDER_ADDR:-127.0.0.1:4010}"
log_dir="${DEV_LOG_DIR:-$repo_root/target/dev-logs}"
export API_ADDR
# PostgreSQL reports every run's "relation already exists, skipping" notice at info level.
export RUST_LOG="${RUST_LOG:-info,sqlx::postgres::notice=warn}"
# The processes write to pipes, so tracing cannot tell whether ANSI colors would reach a
# terminal. Colors stay on only when this script's output is a terminal.
if [[ ! -t 1 ]]; then
  export NO_COLOR=1
fi

# Process ids of the long-running processes, stopped in reverse order on exit.
pids=()
names=()

log() {
  printf 'dev.sh: %s\n' "$*" >&2
}

start_postgres() {
  if pg_isready -q -h 127.0.0.1; then
    return
  fi
  log "PostgreSQL does not respond on 127.0.0.1, starting it"
  local version
  version="$(ls /etc/postgresql)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_redis() {
  if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    return
  fi
  log "Redis does not respond on 127.0.0.1, starting it"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# Runs a binary in the background. Its output goes to the terminal with a [name] prefix
# and to DEV_LOG_DIR/<name>.log. The prefixing processes ignore SIGINT, so that the
# shutdown messages printed after Ctrl-C still reach the log.
start() {
  local name="$1"
  shift
  local log_file="$log_dir/$name.log"
  : >"$log_file"
  "$@" > >(
    trap '' INT
    tee -a "$log_file" | sed -u "s/^/[$name] /"
  ) 2>&1 &
  pids+=("$!")
  names+=("$name")
  log "started $name (pid $!), log in $log_file"
}

# Waits up to `seconds` for `url` to return a success status.
wait_for_url() {
  local url="$1" seconds="$2" name="$3"
  local attempt
  for ((attempt = 0; attempt < seconds * 5; attempt++)); do
    if curl -fsS -o /dev/null -H 'Authorization: Bearer dev' "$url" 2>/dev/null; then
      # Another copy on the same address also responds while this process fails to bind
      # and exits, so a short wait lets that exit show.
      sleep 0.2
      if kill -0 "${pids[-1]}" 2>/dev/null; then
        return 0
      fi
      log "$name exited during start-up although $url responds: is another copy using the address? See $log_dir/$name.log"
      return 1
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      log "$name exited during start-up, see $log_dir/$name.log"
      return 1
    fi
    sleep 0.2
  done
  log "$name did not respond at $url within $seconds s, see $log_dir/$name.log"
  return 1
}

# Sends SIGINT to every started process, newest first, and waits up to 10 s for each
# before killing it.
# shellcheck disable=SC2317 # called through trap
stop_all() {
  trap - INT TERM EXIT
  local index pid attempt
  for ((index = ${#pids[@]} - 1; index >= 0; index--)); do
    pid="${pids[index]}"
    kill -INT "$pid" 2>/dev/null || continue
    for ((attempt = 0; attempt < 50; attempt++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "${names[index]} did not stop within 10 s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  log "stopped"
}

# shellcheck disable=SC2317 # called through trap
on_signal() {
  log "stopping"
  stop_all
  exit 0
}

trap stop_all EXIT
trap on_signal INT TERM

mkdir -p "$log_dir"

log "building the binaries"
cargo build --bins
target_dir="$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin_dir="$target_dir/debug"

start_postgres
start_redis

# The mock speaks every provider's wire format. Each provider without its own URL or key
# is pointed at it, so that no real key is ever sent to the mock.
mock="http://$MOCK_PROVIDER_ADDR"
mocked=()
if [[ -z "${OPENAI_BASE_URL:-}${OPENAI_API_KEY:-}" ]]; then
  export OPENAI_BASE_URL="$mock/v1" OPENAI_API_KEY=mock-provider-key
  mocked+=(openai)
fi
if [[ -z "${ANTHROPIC_BASE_URL:-}${ANTHROPIC_API_KEY:-}" ]]; then
  export ANTHROPIC_BASE_URL="$mock" ANTHROPIC_API_KEY=mock-provider-key
  mocked+=(anthropic)
fi
if [[ -z "${GEMINI_BASE_URL:-}${GOOGLE_API_KEY:-}" ]]; then
  export GEMINI_BASE_URL="$mock/v1beta" GOOGLE_API_KEY=mock-provider-key
  mocked+=(gemini)
fi
if [[ -z "${GROQ_BASE_URL:-}${GROQ_API_KEY:-}" ]]; then
  export GROQ_BASE_URL="$mock/openai/v1" GROQ_API_KEY=mock-provider-key
  mocked+=(groq)
fi
if [[ -z "${OLLAMA_BASE_URL:-}" ]]; then
  export OLLAMA_BASE_URL="$mock"
  mocked+=(ollama)
fi
if ((${#mocked[@]} > 0)); then
  log "pointing ${mocked[*]} at the mock provider on $MOCK_PROVIDER_ADDR"
  start mock-provider "$bin_dir/mock-provider" --addr "$MOCK_PROVIDER_ADDR" --gap-ms 50
  wait_for_url "$mock/v1/models" 30 mock-provider
else
  log "every provider has its own URL or key, so the mock provider is not started"
fi

log "seeding the demo data"
"$bin_dir/seed" >"$log_dir/demo.env"

start api "$bin_dir/api"
wait_for_url "http://$API_ADDR/health" 60 api
start worker "$bin_dir/worker"

cat >&2 <<EOF

Task Assistant is running. Press Ctrl-C to stop it.
  GraphiQL:   http://$API_ADDR/graphql
  Health:     http://$API_ADDR/health
  Provider:   $OPENAI_BASE_URL
  Demo login: demo@example.com / demo-password (demo only)
  Demo ids and an access token, also in $log_dir/demo.env:
$(sed 's/^/    /' "$log_dir/demo.env")

EOF

# Returns when any process exits; a trapped signal interrupts the wait at once.
status=0
exited_pid=""
wait -n -p exited_pid "${pids[@]}" || status=$?
exited="a process"
for index in "${!pids[@]}"; do
  if [[ "${pids[$index]}" == "$exited_pid" ]]; then
    exited="${names[$index]}"
  fi
done
log "$exited exited with status $status, see $log_dir/$exited.log; stopping the others"
exit 1
