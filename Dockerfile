# syntax=docker/dockerfile:1
#
# Builds every binary of the platform into one runtime image:
#   api            GraphQL server (the default command), listening on 0.0.0.0:8000
#   worker         background job consumer
#   migrate        applies database migrations, then exits
#   seed           creates the demo tenant, user and agent (demo only, fails under APP_ENV=production)
#   mock-provider  local server speaking OpenAI's Chat Completions format, for demos
#   reencrypt      re-encrypts stored provider keys with the first ENCRYPTION_KEY
#   healthcheck    exits 0 when a URL answers 2xx, for container health checks
#
# Build: docker build -t task-assistant .

# The builder uses the same Debian release as the runtime image, so that the binaries
# find the glibc version they were linked against.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds. The
# target directory is a cache mount, so the binaries are copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/api target/release/worker target/release/migrate \
       target/release/seed target/release/mock-provider target/release/reencrypt \
       target/release/healthcheck /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /out/ /usr/local/bin/
USER app:app
ENV APP_ENV=production \
    API_ADDR=0.0.0.0:8000 \
    AUTO_MIGRATE=false
EXPOSE 8000 9101
CMD ["api"]
