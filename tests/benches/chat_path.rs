//! Benchmark of the chat hot path. It measures the time the platform adds in front of the
//! provider on `sendMessage`, and the time from the provider sending the first token to a
//! WebSocket subscriber receiving it. The steps in between are measured one by one.
//!
//! Run with `RUST_LOG=off cargo bench -p tests --bench chat_path`. It needs PostgreSQL and
//! Redis as the integration tests do, and creates and drops its own databases and Redis keys.
//! `CHAT_BENCH_ROUNDS`, `CHAT_BENCH_ITERATIONS` and `CHAT_BENCH_WARMUP` set the sample size,
//! `CHAT_BENCH_ONLY` (comma-separated measurement names) limits what runs, and
//! `CHAT_BENCH_WORKER=off` starts the apps without the worker that otherwise runs in-process.
//! Without the `--bench` argument that `cargo bench` passes (as under `cargo test
//! --all-targets`), it runs one short round as a smoke test.
//! The report is a Markdown table on stdout.
//!
//! Three Tokio runtimes stand in for three processes on one machine: the server runtime
//! (multi-threaded, one worker per CPU, as in the api binary) runs the api and the worker;
//! the provider runtime (one thread) runs the mock provider and a relay; the client runtime
//! (the main thread) sends the requests and takes the times.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait};
use serde_json::{Value, json};
use service::Platform;
use tests::{
    MockConfig, MockProvider, TestApp, TestOptions,
    bench::{Percentiles, machine_description},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use uuid::Uuid;

/// How long the relay holds a first token after the subscription was sent. The time lets
/// the subscription reach its blocking Redis read, so that the token finds it waiting.
const FIRST_TOKEN_HOLD: Duration = Duration::from_millis(20);
/// The model that agents and baseline requests name. The mock accepts any model name.
const MODEL: &str = "gpt-4o-mini";
const USER_MESSAGE: &str = "Hello there";
/// Maximum wait for any single response, subscription event or idle platform.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

const SEND_MESSAGE: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
    userMessage { id } assistantMessage { id status } } }";
const MESSAGE_STREAM: &str =
    "subscription($id: ID!) { messageStream(messageId: $id) { cursor kind delta } }";

fn main() -> anyhow::Result<()> {
    let settings = BenchSettings::from_env()?;
    let mut provider = ProviderSide::start()?;
    let server = Builder::new_multi_thread().enable_all().build()?;

    let result = run_all(&server, &mut provider, settings);
    provider.stop();
    let report = result?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Starts the two apps, measures, and shuts the apps down also when measuring failed.
fn run_all(
    server: &Runtime,
    provider: &mut ProviderSide,
    settings: BenchSettings,
) -> anyhow::Result<String> {
    let direct_app = server.block_on(TestApp::spawn_with(app_options(
        &provider.direct_url,
        settings.worker,
    )))?;
    let relayed_app = match server.block_on(TestApp::spawn_with(app_options(
        &provider.relay_url,
        settings.worker,
    ))) {
        Ok(app) => app,
        Err(error) => {
            server.block_on(direct_app.shutdown());
            return Err(error);
        }
    };

    let client = Builder::new_current_thread().enable_all().build()?;
    let result = client.block_on(async {
        let mut bench = Bench::prepare(
            settings,
            server.handle().clone(),
            &direct_app,
            &relayed_app,
            provider,
        )
        .await?;
        bench.run().await
    });
    drop(client);

    server.block_on(direct_app.shutdown());
    server.block_on(relayed_app.shutdown());
    result
}

/// Options of an app whose OpenAI adapter calls `provider_url` (the app's own mock stays
/// idle). Access tokens outlive the whole run.
fn app_options(provider_url: &str, worker: bool) -> TestOptions {
    TestOptions {
        env: vec![
            ("OPENAI_BASE_URL".into(), provider_url.into()),
            ("ACCESS_TOKEN_TTL_SECONDS".into(), "86400".into()),
        ],
        worker,
        ..TestOptions::default()
    }
}

/// What to measure, and how often.
#[derive(Debug, Clone)]
struct BenchSettings {
    rounds: usize,
    /// Iterations per round whose samples are dropped.
    warmup: usize,
    /// Iterations per round whose samples are kept.
    iterations: usize,
    /// Names of the measurements to run, all when empty.
    only: Vec<String>,
    /// Whether each app runs the worker in its process.
    worker: bool,
}

impl BenchSettings {
    /// Reads the environment, with defaults for a full run or, without `--bench`, a smoke test.
    fn from_env() -> anyhow::Result<Self> {
        let full = std::env::args().any(|argument| argument == "--bench");
        let (rounds, warmup, iterations) = if full { (3, 200, 2000) } else { (1, 0, 3) };
        Ok(Self {
            rounds: env_count("CHAT_BENCH_ROUNDS", rounds)?,
            warmup: env_count("CHAT_BENCH_WARMUP", warmup)?,
            iterations: env_count("CHAT_BENCH_ITERATIONS", iterations)?,
            only: parse_only(std::env::var("CHAT_BENCH_ONLY").ok().as_deref())?,
            worker: parse_worker(std::env::var("CHAT_BENCH_WORKER").ok().as_deref())?,
        })
    }

    fn includes(&self, measurement: Measurement) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == measurement.name())
    }

    fn total(&self) -> usize {
        self.warmup + self.iterations
    }

    /// Drops the warm-up samples from the front.
    fn measured(&self, mut samples: Vec<Duration>) -> Vec<Duration> {
        samples.drain(..self.warmup.min(samples.len()));
        samples
    }
}

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => {
            let count: usize = value
                .parse()
                .with_context(|| format!("{name}={value} is not a whole number"))?;
            if count == 0 && name != "CHAT_BENCH_WARMUP" {
                bail!("{name} must be greater than 0");
            }
            Ok(count)
        }
        Err(_) => Ok(default),
    }
}

/// Parses `CHAT_BENCH_WORKER`: `on` (the default) or `off`.
fn parse_worker(value: Option<&str>) -> anyhow::Result<bool> {
    match value.map(str::trim) {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => bail!("CHAT_BENCH_WORKER={other} is invalid, expected on or off"),
    }
}

/// Parses `CHAT_BENCH_ONLY`, rejecting names that match no measurement.
fn parse_only(value: Option<&str>) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    for name in &names {
        if !Measurement::ALL.iter().any(|known| known.name() == name) {
            let known: Vec<&str> = Measurement::ALL.iter().map(|known| known.name()).collect();
            bail!(
                "CHAT_BENCH_ONLY names unknown measurement {name:?}. Known measurements: {}",
                known.join(", ")
            );
        }
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------
// Statistics and the report
// ---------------------------------------------------------------------------------------

/// The rows of the summary table: each measurement's percentiles, one entry per round.
struct Report {
    settings: BenchSettings,
    rows: Vec<(&'static str, Vec<Percentiles>)>,
    /// Shortest time between sending a subscription and the relay forwarding the first token.
    min_subscription_lead: Option<Duration>,
}

impl Report {
    fn record(&mut self, name: &'static str, round: Percentiles) {
        match self.rows.iter_mut().find(|(row, _)| *row == name) {
            Some((_, rounds)) => rounds.push(round),
            None => self.rows.push((name, vec![round])),
        }
    }

    fn rounds_of(&self, name: &str) -> Option<&[Percentiles]> {
        self.rows
            .iter()
            .find(|(row, _)| *row == name)
            .map(|(_, rounds)| rounds.as_slice())
    }

    /// Adds a row that subtracts `base` from `total` round by round.
    fn record_difference(&mut self, name: &'static str, total: &str, base: &str) {
        let (Some(totals), Some(bases)) = (self.rounds_of(total), self.rounds_of(base)) else {
            return;
        };
        let differences: Vec<Percentiles> = totals
            .iter()
            .zip(bases)
            .map(|(total, base)| total.minus(base))
            .collect();
        self.rows.push((name, differences));
    }

    fn render(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "\n## chat_path: {} rounds of {} iterations after {} warm-up\n",
            self.settings.rounds, self.settings.iterations, self.settings.warmup
        );
        let _ = writeln!(text, "Machine: {}\n", machine_description());
        let worker = if self.settings.worker {
            "in the api process"
        } else {
            "not running"
        };
        let _ = writeln!(text, "Worker: {worker}\n");
        let _ = writeln!(
            text,
            "Milliseconds: median of the rounds, then [lowest, highest round].\n"
        );
        let _ = writeln!(text, "| measurement | p50 | p90 | p99 | max |");
        let _ = writeln!(text, "|---|---|---|---|---|");
        for (name, rounds) in &self.rows {
            let cells: Vec<String> = (0..4)
                .map(|column| {
                    let mut values: Vec<f64> =
                        rounds.iter().map(|round| round.values()[column]).collect();
                    values.sort_by(f64::total_cmp);
                    format!(
                        "{:.3} [{:.3}, {:.3}]",
                        values[values.len() / 2],
                        values[0],
                        values[values.len() - 1]
                    )
                })
                .collect();
            let _ = writeln!(text, "| {name} | {} |", cells.join(" | "));
        }

        let _ = writeln!(text, "\nPer round:\n");
        let _ = writeln!(text, "| measurement | round | p50 | p90 | p99 | max |");
        let _ = writeln!(text, "|---|---|---|---|---|---|");
        for (name, rounds) in &self.rows {
            for (index, round) in rounds.iter().enumerate() {
                let [p50, p90, p99, max] = round.values();
                let _ = writeln!(
                    text,
                    "| {name} | {} | {p50:.3} | {p90:.3} | {p99:.3} | {max:.3} |",
                    index + 1
                );
            }
        }
        if let Some(lead) = self.min_subscription_lead {
            let _ = writeln!(
                text,
                "\napi.first_token: the subscription was sent at least {:.1} ms before the \
                 relay forwarded the first token.",
                lead.as_secs_f64() * 1000.0
            );
        }
        text
    }
}

// ---------------------------------------------------------------------------------------
// The provider side: a mock provider and a relay that holds and timestamps the first token
// ---------------------------------------------------------------------------------------

/// The mock provider and the relay, running on their own thread and runtime.
struct ProviderSide {
    /// Base URL of the mock, which sends its one-token reply at once.
    direct_url: String,
    /// Base URL of the relay in front of the mock.
    relay_url: String,
    /// Forwarded first tokens: the relay holds each until a permit is added here.
    release: Arc<Semaphore>,
    /// When the relay forwarded each reply's first token, in order.
    first_tokens: mpsc::UnboundedReceiver<Instant>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProviderSide {
    fn start() -> anyhow::Result<Self> {
        let (ready_sender, ready) = std::sync::mpsc::channel::<anyhow::Result<(String, String)>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let (first_token_sender, first_tokens) = mpsc::unbounded_channel();
        let release = Arc::new(Semaphore::new(0));
        let relay_release = Arc::clone(&release);
        let thread = std::thread::Builder::new()
            .name("provider".into())
            .spawn(move || {
                let runtime = match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_sender.send(Err(error.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match start_providers(relay_release, first_token_sender).await {
                        Ok((mock, relay)) => {
                            let urls = (mock.base_url(), format!("http://{relay}/v1"));
                            let _ = ready_sender.send(Ok(urls));
                            let _ = stopped.await;
                            drop(mock);
                        }
                        Err(error) => {
                            let _ = ready_sender.send(Err(error));
                        }
                    }
                });
            })?;
        let (direct_url, relay_url) = ready
            .recv()
            .context("the provider thread stopped before starting")??;
        Ok(Self {
            direct_url,
            relay_url,
            release,
            first_tokens,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn start_providers(
    release: Arc<Semaphore>,
    first_tokens: mpsc::UnboundedSender<Instant>,
) -> anyhow::Result<(MockProvider, SocketAddr)> {
    let mock = MockProvider::start(MockConfig {
        time_to_first_token: Duration::ZERO,
        tokens: 1,
        gap: Duration::ZERO,
    })
    .await?;
    let relay = start_relay(mock.addr(), release, first_tokens).await?;
    Ok((mock, relay))
}

/// Returns the JSON text that marks the first content chunk of every mock reply.
fn first_token_pattern() -> Vec<u8> {
    let first = mock_provider::reply_tokens(1).concat();
    format!("\"content\":\"{first}\"").into_bytes()
}

/// Finds a byte pattern in a stream read in pieces, also where the pattern spans two pieces.
struct PatternScanner {
    pattern: Vec<u8>,
    /// The last `pattern.len() - 1` bytes seen, which may start a match.
    tail: Vec<u8>,
}

impl PatternScanner {
    fn new(pattern: Vec<u8>) -> Self {
        Self {
            pattern,
            tail: Vec::new(),
        }
    }

    /// Returns how many matches end inside `piece`.
    fn count(&mut self, piece: &[u8]) -> usize {
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(piece);
        let found = window
            .windows(self.pattern.len())
            .filter(|candidate| *candidate == self.pattern.as_slice())
            .count();
        let keep = (self.pattern.len() - 1).min(window.len());
        self.tail = window[window.len() - keep..].to_vec();
        found
    }
}

/// Starts a TCP relay to `upstream` on a free port of 127.0.0.1 and returns its address.
/// The relay holds each piece of a reply that contains a first token until it takes a permit
/// from `release`, then sends the instant just before it forwards the piece on
/// `first_tokens`. Everything else passes through at once.
async fn start_relay(
    upstream: SocketAddr,
    release: Arc<Semaphore>,
    first_tokens: mpsc::UnboundedSender<Instant>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let release = Arc::clone(&release);
            let first_tokens = first_tokens.clone();
            tokio::spawn(async move {
                // A connection that fails ends on its own; the measurement then times out.
                let _ = relay_connection(client, upstream, release, first_tokens).await;
            });
        }
    });
    Ok(addr)
}

async fn relay_connection(
    client: TcpStream,
    upstream: SocketAddr,
    release: Arc<Semaphore>,
    first_tokens: mpsc::UnboundedSender<Instant>,
) -> std::io::Result<()> {
    let upstream = TcpStream::connect(upstream).await?;
    // Small writes go out at once, so the relay delays no chunk.
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();

    let requests = async {
        tokio::io::copy(&mut client_read, &mut upstream_write).await?;
        upstream_write.shutdown().await
    };
    let responses = async {
        let mut scanner = PatternScanner::new(first_token_pattern());
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = upstream_read.read(&mut buffer).await?;
            if read == 0 {
                return client_write.shutdown().await;
            }
            let piece = &buffer[..read];
            let first_token_count = scanner.count(piece);
            if first_token_count > 0 {
                let count = u32::try_from(first_token_count).unwrap_or(u32::MAX);
                release
                    .acquire_many(count)
                    .await
                    .map_err(std::io::Error::other)?
                    .forget();
            }
            let forwarded = Instant::now();
            client_write.write_all(piece).await?;
            for _ in 0..first_token_count {
                let _ = first_tokens.send(forwarded);
            }
        }
    };
    tokio::try_join!(requests, responses).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Clients: GraphQL over HTTP and a graphql-transport-ws subscriber
// ---------------------------------------------------------------------------------------

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket connection that runs one subscription at a time.
struct Subscriber {
    socket: Socket,
    next_operation: u64,
}

impl Subscriber {
    /// Connects and authenticates in `connection_init`.
    async fn connect(url: &str, token: &str) -> anyhow::Result<Self> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (socket, _) = connect_async_with_config(request, None, true)
            .await
            .context("connecting the WebSocket failed")?;
        let mut subscriber = Self {
            socket,
            next_operation: 0,
        };
        let init = json!({ "type": "connection_init",
                           "payload": { "Authorization": format!("Bearer {token}") } });
        subscriber.send(&init).await?;
        loop {
            let (message, _) = subscriber.receive().await?;
            if message["type"] == "connection_ack" {
                return Ok(subscriber);
            }
        }
    }

    /// Subscribes to the reply stream of `message_id` and returns the operation id.
    async fn subscribe(&mut self, message_id: &str) -> anyhow::Result<String> {
        self.next_operation += 1;
        let operation = self.next_operation.to_string();
        let subscribe = json!({ "id": operation, "type": "subscribe",
                                "payload": { "query": MESSAGE_STREAM,
                                             "variables": { "id": message_id } } });
        self.send(&subscribe).await?;
        Ok(operation)
    }

    /// Reads until the first DELTA of `operation` and returns when its frame arrived.
    async fn first_delta(&mut self, operation: &str) -> anyhow::Result<Instant> {
        loop {
            let (message, arrived) = self.receive().await?;
            if message["id"] != operation {
                continue;
            }
            match message["type"].as_str() {
                Some("next") if message["payload"]["data"]["messageStream"]["kind"] == "DELTA" => {
                    return Ok(arrived);
                }
                Some("complete") => bail!("reply stream ended without a DELTA"),
                _ => {}
            }
        }
    }

    /// Reads until the server completes `operation`.
    async fn until_complete(&mut self, operation: &str) -> anyhow::Result<()> {
        loop {
            let (message, _) = self.receive().await?;
            if message["id"] == operation && message["type"] == "complete" {
                return Ok(());
            }
        }
    }

    /// Returns the next protocol message and the instant its frame arrived. Replies to
    /// pings, and fails on `error` messages and on a closed connection.
    async fn receive(&mut self) -> anyhow::Result<(Value, Instant)> {
        loop {
            let frame = tokio::time::timeout(STEP_TIMEOUT, self.socket.next())
                .await
                .with_context(|| format!("no WebSocket message within {STEP_TIMEOUT:?}"))?
                .context("the server closed the WebSocket")??;
            let arrived = Instant::now();
            let Message::Text(text) = frame else {
                continue;
            };
            let message: Value = serde_json::from_str(text.as_str())?;
            match message["type"].as_str() {
                Some("ping") => self.send(&json!({ "type": "pong" })).await?,
                Some("error") => bail!("subscription error: {}", message["payload"]),
                _ => return Ok((message, arrived)),
            }
        }
    }

    async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        self.socket.send(Message::text(message.to_string())).await?;
        Ok(())
    }
}

/// Posts `body` and returns the time until the whole response body arrived, with the body.
/// The request is built before the clock starts.
async fn timed_post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .timeout(STEP_TIMEOUT);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let elapsed = started.elapsed();
    if !status.is_success() {
        bail!(
            "POST {url} returned {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok((elapsed, bytes.to_vec()))
}

/// Returns `data` of a GraphQL response body, or an error naming the GraphQL errors.
fn graphql_data(body: &[u8]) -> anyhow::Result<Value> {
    let body: Value = serde_json::from_slice(body)?;
    if let Some(errors) = body.get("errors") {
        bail!("GraphQL errors: {errors}");
    }
    Ok(body["data"].clone())
}

fn graphql_body(query: &str, variables: Value) -> Vec<u8> {
    json!({ "query": query, "variables": variables })
        .to_string()
        .into_bytes()
}

/// Waits until no generation runs in the app, so that the next message may be sent.
async fn wait_until_idle(platform: &Platform) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !platform.generations.is_empty() {
        if Instant::now() >= deadline {
            bail!("a generation still runs after {STEP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------

/// Everything measured, in report order. Some measurements yield two series.
#[derive(Debug, Clone, Copy)]
enum Measurement {
    /// `provider.completion`: a non-streamed completion straight from the mock, the
    /// baseline of `sendMessage`.
    ProviderCompletion,
    /// `provider.first_chunk` and `provider.streamed_reply`: a streamed request straight to
    /// the mock, until its first content chunk and until the end of the body.
    ProviderStream,
    /// `{ __typename }` without credentials: HTTP, middleware and GraphQL execution.
    TypenameAnonymous,
    /// `{ __typename }` with a bearer token: adds token verification and the revocation check.
    TypenameBearer,
    /// `{ me { role } }`: adds reads of the user and the tenant.
    Me,
    /// `sendMessage` over HTTP with a bearer token, until the whole response arrived.
    SendMessage,
    /// `sendMessage` sent until the first DELTA reaches a subscriber that subscribes after
    /// the response, with no provider delay: the time a client waits for the first token.
    SendToFirstDelta,
    /// A subscription to a finished reply, until its first DELTA: the setup of a subscription.
    SubscribeToFinishedReply,
    /// From the relay forwarding the first token to the waiting subscriber receiving it.
    FirstToken,
    /// `authenticate` called inside the api process: token verification and Redis check.
    ServiceAuthenticate,
    /// `authenticate` and `chat::send_message` called inside the api process.
    ServiceSendMessage,
    /// `SELECT 1` on the api's pool, which takes a connection from the pool for each query.
    PostgresSelect,
    /// `SELECT 1` on a connection held in an open transaction: one network round trip.
    PostgresRoundTrip,
    /// A transaction as service calls open it: checkout, `BEGIN`, the tenant's
    /// `set_config`, `SELECT 1` and `COMMIT`.
    PostgresTenantTransaction,
    /// One `INSERT` of two rows on the pool, committed on its own, as `sendMessage` stores a
    /// user message and its reply: the durable-write floor of `sendMessage`.
    PostgresInsert,
    /// `XADD` on the shared connection until a waiting `XREAD BLOCK` on another returns.
    RedisStreamHop,
    /// Opening a Redis connection as each subscription does for its blocking reads.
    RedisConnect,
}

/// A named list of samples.
type Series = (&'static str, Vec<Duration>);

impl Measurement {
    const ALL: [Measurement; 17] = [
        Measurement::ProviderCompletion,
        Measurement::ProviderStream,
        Measurement::TypenameAnonymous,
        Measurement::TypenameBearer,
        Measurement::Me,
        Measurement::SendMessage,
        Measurement::SendToFirstDelta,
        Measurement::SubscribeToFinishedReply,
        Measurement::FirstToken,
        Measurement::ServiceAuthenticate,
        Measurement::ServiceSendMessage,
        Measurement::PostgresSelect,
        Measurement::PostgresRoundTrip,
        Measurement::PostgresTenantTransaction,
        Measurement::PostgresInsert,
        Measurement::RedisStreamHop,
        Measurement::RedisConnect,
    ];

    /// Returns the name that `CHAT_BENCH_ONLY` selects the measurement by.
    fn name(self) -> &'static str {
        match self {
            Measurement::ProviderCompletion => "provider.completion",
            Measurement::ProviderStream => "provider.stream",
            Measurement::TypenameAnonymous => "api.typename_anonymous",
            Measurement::TypenameBearer => "api.typename_bearer",
            Measurement::Me => "api.me",
            Measurement::SendMessage => "api.send_message",
            Measurement::SendToFirstDelta => "api.send_to_first_delta",
            Measurement::SubscribeToFinishedReply => "api.subscribe_to_finished_reply",
            Measurement::FirstToken => "api.first_token",
            Measurement::ServiceAuthenticate => "service.authenticate",
            Measurement::ServiceSendMessage => "service.send_message",
            Measurement::PostgresSelect => "postgres.select_1",
            Measurement::PostgresRoundTrip => "postgres.round_trip",
            Measurement::PostgresTenantTransaction => "postgres.tenant_transaction",
            Measurement::PostgresInsert => "postgres.insert",
            Measurement::RedisStreamHop => "redis.stream_hop",
            Measurement::RedisConnect => "redis.connect",
        }
    }
}

/// A signed-in tenant owner with a conversation on one app.
struct Chat {
    graphql_url: String,
    ws_url: String,
    platform: Platform,
    /// The app's database as the superuser, for schema changes and ANALYZE, which the
    /// application's role may not run.
    superuser_db: DatabaseConnection,
    token: String,
    conversation_id: Uuid,
}

impl Chat {
    async fn prepare(app: &TestApp, email: &str) -> anyhow::Result<Self> {
        let owner = app.register(email, "Benchmark Tenant").await;
        // The enterprise plan has no request or token limits, so that thousands of messages
        // a minute are measured rather than rejected; the budget scripts still run.
        app.db
            .execute_unprepared(&format!(
                "UPDATE subscriptions SET plan = 'enterprise' WHERE tenant_id = '{}'",
                owner.tenant_id
            ))
            .await?;
        let agent_id = app
            .create_agent(&owner.access_token, "You are terse.")
            .await;
        let conversation_id = app
            .create_conversation(&owner.access_token, &agent_id)
            .await;
        Ok(Self {
            graphql_url: format!("{}/graphql", app.base_url),
            ws_url: app.ws_url(),
            platform: app.platform.clone(),
            superuser_db: app.db.clone(),
            token: owner.access_token,
            conversation_id: conversation_id.parse()?,
        })
    }

    fn send_message_body(&self) -> Vec<u8> {
        graphql_body(
            SEND_MESSAGE,
            json!({ "input": { "conversationId": self.conversation_id,
                               "content": USER_MESSAGE } }),
        )
    }
}

/// The prepared state of a benchmark run.
struct Bench<'provider> {
    settings: BenchSettings,
    server: Handle,
    http: reqwest::Client,
    /// The app whose provider sends its reply at once.
    direct: Chat,
    /// The app whose provider is behind the relay, which holds each first token.
    relayed: Chat,
    direct_subscriber: Subscriber,
    relayed_subscriber: Subscriber,
    /// A reply of the direct app that has finished.
    finished_message_id: String,
    provider_url: String,
    release: Arc<Semaphore>,
    first_tokens: &'provider mut mpsc::UnboundedReceiver<Instant>,
    min_subscription_lead: Option<Duration>,
}

impl<'provider> Bench<'provider> {
    async fn prepare(
        settings: BenchSettings,
        server: Handle,
        direct_app: &TestApp,
        relayed_app: &TestApp,
        provider: &'provider mut ProviderSide,
    ) -> anyhow::Result<Self> {
        let direct = Chat::prepare(direct_app, "direct@example.com").await?;
        let relayed = Chat::prepare(relayed_app, "relayed@example.com").await?;
        let direct_subscriber = Subscriber::connect(&direct.ws_url, &direct.token).await?;
        let relayed_subscriber = Subscriber::connect(&relayed.ws_url, &relayed.token).await?;
        let finished_message_id = direct_app
            .send_message(
                &direct.token,
                &direct.conversation_id.to_string(),
                USER_MESSAGE,
            )
            .await;
        direct_app
            .wait_for_reply(&direct.token, &finished_message_id)
            .await;
        // The migrations' default privileges let the application's role write to it.
        direct
            .superuser_db
            .execute_unprepared(
                "CREATE TABLE bench_insert (id uuid PRIMARY KEY, content text NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
        Ok(Self {
            settings,
            server,
            http: reqwest::Client::new(),
            direct,
            relayed,
            direct_subscriber,
            relayed_subscriber,
            finished_message_id,
            provider_url: format!("{}/chat/completions", provider.direct_url),
            release: Arc::clone(&provider.release),
            first_tokens: &mut provider.first_tokens,
            min_subscription_lead: None,
        })
    }

    /// Runs every measurement once per round, round after round, and renders the report.
    async fn run(&mut self) -> anyhow::Result<String> {
        let mut report = Report {
            settings: self.settings.clone(),
            rows: Vec::new(),
            min_subscription_lead: None,
        };
        for round in 1..=self.settings.rounds {
            for measurement in Measurement::ALL {
                if !self.settings.includes(measurement) {
                    continue;
                }
                self.refresh_statistics().await?;
                let all_series = self
                    .measure(measurement)
                    .await
                    .with_context(|| format!("measuring {} failed", measurement.name()))?;
                for (name, samples) in all_series {
                    let percentiles = Percentiles::of(self.settings.measured(samples))?;
                    let _ = writeln!(
                        std::io::stderr(),
                        "round {round}: {name} p50 {:.3} ms, p99 {:.3} ms",
                        percentiles.p50,
                        percentiles.p99
                    );
                    report.record(name, percentiles);
                }
            }
        }
        report.record_difference(
            "overhead.send_message (api.send_message - provider.completion)",
            "api.send_message",
            "provider.completion",
        );
        report.record_difference(
            "overhead.send_message_vs_stream (api.send_message - provider.streamed_reply)",
            "api.send_message",
            "provider.streamed_reply",
        );
        report.record_difference(
            "overhead.first_token_by_subtraction (api.send_to_first_delta - provider.first_chunk)",
            "api.send_to_first_delta",
            "provider.first_chunk",
        );
        report.min_subscription_lead = self.min_subscription_lead;
        Ok(report.render())
    }

    /// Refreshes the planner statistics of both databases, as autovacuum does on a server
    /// that runs it. The conversations grow by thousands of messages per round, and with
    /// statistics from when they were empty the history query reads every message.
    async fn refresh_statistics(&self) -> anyhow::Result<()> {
        for chat in [&self.direct, &self.relayed] {
            chat.superuser_db.execute_unprepared("ANALYZE").await?;
        }
        Ok(())
    }

    async fn measure(&mut self, measurement: Measurement) -> anyhow::Result<Vec<Series>> {
        let total = self.settings.total();
        let platform = self.direct.platform.clone();
        let token = self.direct.token.clone();
        let samples = match measurement {
            Measurement::ProviderCompletion => self.provider_completion().await?,
            Measurement::ProviderStream => return self.provider_stream().await,
            Measurement::TypenameAnonymous => self.repeat_query("{ __typename }", false).await?,
            Measurement::TypenameBearer => self.repeat_query("{ __typename }", true).await?,
            Measurement::Me => self.repeat_query("{ me { role } }", true).await?,
            Measurement::SendMessage => self.send_message().await?,
            Measurement::SendToFirstDelta => self.send_to_first_delta().await?,
            Measurement::SubscribeToFinishedReply => self.subscribe_to_finished_reply().await?,
            Measurement::FirstToken => self.first_token().await?,
            Measurement::ServiceAuthenticate => {
                let measuring = service_authenticate(platform, token, total);
                self.server.spawn(measuring).await??
            }
            Measurement::ServiceSendMessage => {
                let conversation_id = self.direct.conversation_id;
                let measuring = service_send_message(platform, token, conversation_id, total);
                self.server.spawn(measuring).await??
            }
            Measurement::PostgresSelect => {
                let measuring = postgres_select(platform, total);
                self.server.spawn(measuring).await??
            }
            Measurement::PostgresRoundTrip => {
                let measuring = postgres_round_trip(platform, total);
                self.server.spawn(measuring).await??
            }
            Measurement::PostgresTenantTransaction => {
                let measuring = postgres_tenant_transaction(platform, token, total);
                self.server.spawn(measuring).await??
            }
            Measurement::PostgresInsert => {
                let measuring = postgres_insert(platform, total);
                self.server.spawn(measuring).await??
            }
            Measurement::RedisStreamHop => {
                let measuring = redis_stream_hop(platform, total);
                self.server.spawn(measuring).await??
            }
            Measurement::RedisConnect => {
                let measuring = redis_connect(platform, total);
                self.server.spawn(measuring).await??
            }
        };
        Ok(vec![(measurement.name(), samples)])
    }

    async fn provider_completion(&self) -> anyhow::Result<Vec<Duration>> {
        let body = json!({ "model": MODEL,
                           "messages": [{ "role": "user", "content": USER_MESSAGE }] })
        .to_string()
        .into_bytes();
        let mut samples = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            let (elapsed, _) =
                timed_post(&self.http, &self.provider_url, Some("sk-test"), &body).await?;
            samples.push(elapsed);
        }
        Ok(samples)
    }

    async fn provider_stream(&self) -> anyhow::Result<Vec<Series>> {
        let body = json!({ "model": MODEL, "stream": true,
                           "messages": [{ "role": "user", "content": USER_MESSAGE }] })
        .to_string();
        let mut first_chunks = Vec::with_capacity(self.settings.total());
        let mut replies = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            let request = self
                .http
                .post(&self.provider_url)
                .bearer_auth("sk-test")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .timeout(STEP_TIMEOUT);
            let mut scanner = PatternScanner::new(first_token_pattern());
            let started = Instant::now();
            let mut response = request.send().await?.error_for_status()?;
            let mut first_chunk = None;
            while let Some(piece) = response.chunk().await? {
                if first_chunk.is_none() && scanner.count(&piece) > 0 {
                    first_chunk = Some(started.elapsed());
                }
            }
            replies.push(started.elapsed());
            first_chunks.push(first_chunk.context("the mock's stream had no content chunk")?);
        }
        Ok(vec![
            ("provider.first_chunk", first_chunks),
            ("provider.streamed_reply", replies),
        ])
    }

    async fn repeat_query(&self, query: &str, bearer: bool) -> anyhow::Result<Vec<Duration>> {
        let body = graphql_body(query, json!({}));
        let token = bearer.then_some(self.direct.token.as_str());
        let mut samples = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            let (elapsed, response) =
                timed_post(&self.http, &self.direct.graphql_url, token, &body).await?;
            graphql_data(&response)?;
            samples.push(elapsed);
        }
        Ok(samples)
    }

    async fn send_message(&self) -> anyhow::Result<Vec<Duration>> {
        let body = self.direct.send_message_body();
        let mut samples = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            let (elapsed, response) = timed_post(
                &self.http,
                &self.direct.graphql_url,
                Some(&self.direct.token),
                &body,
            )
            .await?;
            assistant_message_id(&response)?;
            samples.push(elapsed);
            wait_until_idle(&self.direct.platform).await?;
        }
        Ok(samples)
    }

    async fn send_to_first_delta(&mut self) -> anyhow::Result<Vec<Duration>> {
        let body = self.direct.send_message_body();
        let mut samples = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            let started = Instant::now();
            let (_, response) = timed_post(
                &self.http,
                &self.direct.graphql_url,
                Some(&self.direct.token),
                &body,
            )
            .await?;
            let message_id = assistant_message_id(&response)?;
            let operation = self.direct_subscriber.subscribe(&message_id).await?;
            let received = self.direct_subscriber.first_delta(&operation).await?;
            samples.push(received.duration_since(started));
            self.direct_subscriber.until_complete(&operation).await?;
            wait_until_idle(&self.direct.platform).await?;
        }
        Ok(samples)
    }

    async fn subscribe_to_finished_reply(&mut self) -> anyhow::Result<Vec<Duration>> {
        let mut samples = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            let started = Instant::now();
            let operation = self
                .direct_subscriber
                .subscribe(&self.finished_message_id)
                .await?;
            let received = self.direct_subscriber.first_delta(&operation).await?;
            samples.push(received.duration_since(started));
            self.direct_subscriber.until_complete(&operation).await?;
        }
        Ok(samples)
    }

    async fn first_token(&mut self) -> anyhow::Result<Vec<Duration>> {
        let body = self.relayed.send_message_body();
        let mut samples = Vec::with_capacity(self.settings.total());
        for _ in 0..self.settings.total() {
            while self.first_tokens.try_recv().is_ok() {}
            let (_, response) = timed_post(
                &self.http,
                &self.relayed.graphql_url,
                Some(&self.relayed.token),
                &body,
            )
            .await?;
            let message_id = assistant_message_id(&response)?;
            let subscribed = Instant::now();
            let operation = self.relayed_subscriber.subscribe(&message_id).await?;
            tokio::time::sleep(FIRST_TOKEN_HOLD).await;
            self.release.add_permits(1);

            let received = self.relayed_subscriber.first_delta(&operation).await?;
            let forwarded = tokio::time::timeout(STEP_TIMEOUT, self.first_tokens.recv())
                .await
                .context("the relay reported no first token")?
                .context("the relay stopped")?;
            if received < forwarded {
                bail!("the subscriber received a DELTA before the relay forwarded a token");
            }
            let lead = forwarded.duration_since(subscribed);
            self.min_subscription_lead = Some(match self.min_subscription_lead {
                Some(shortest) => shortest.min(lead),
                None => lead,
            });
            samples.push(received.duration_since(forwarded));
            self.relayed_subscriber.until_complete(&operation).await?;
            wait_until_idle(&self.relayed.platform).await?;
        }
        Ok(samples)
    }
}

fn assistant_message_id(response: &[u8]) -> anyhow::Result<String> {
    let data = graphql_data(response)?;
    data["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .map(str::to_owned)
        .context("sendMessage returned no assistant message id")
}

// The measurements below run on the server runtime, inside the api process.

async fn service_authenticate(
    platform: Platform,
    token: String,
    total: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        service::auth::authenticate(&platform, &token, String::new()).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

async fn service_send_message(
    platform: Platform,
    token: String,
    conversation_id: Uuid,
    total: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        let ctx = service::auth::authenticate(&platform, &token, String::new()).await?;
        service::chat::send_message(&platform, &ctx, conversation_id, USER_MESSAGE, None).await?;
        samples.push(started.elapsed());
        wait_until_idle(&platform).await?;
    }
    Ok(samples)
}

async fn postgres_select(platform: Platform, total: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        platform.db.execute_unprepared("SELECT 1").await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

async fn postgres_round_trip(platform: Platform, total: usize) -> anyhow::Result<Vec<Duration>> {
    let txn = platform.db.begin().await?;
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        txn.execute_unprepared("SELECT 1").await?;
        samples.push(started.elapsed());
    }
    txn.rollback().await?;
    Ok(samples)
}

async fn postgres_tenant_transaction(
    platform: Platform,
    token: String,
    total: usize,
) -> anyhow::Result<Vec<Duration>> {
    let ctx = service::auth::authenticate(&platform, &token, String::new()).await?;
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        let txn = platform.tenant_tx(ctx.tenant_id).await?;
        txn.execute_unprepared("SELECT 1").await?;
        txn.commit().await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

async fn postgres_insert(platform: Platform, total: usize) -> anyhow::Result<Vec<Duration>> {
    let insert = "INSERT INTO bench_insert (id, content) VALUES ($1, $2), ($3, $4)";
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let values = [
            Uuid::now_v7().into(),
            USER_MESSAGE.into(),
            Uuid::now_v7().into(),
            String::new().into(),
        ];
        let started = Instant::now();
        platform
            .db
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                insert,
                values,
            ))
            .await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

async fn redis_stream_hop(platform: Platform, total: usize) -> anyhow::Result<Vec<Duration>> {
    let key = platform.redis.key(&["bench", "stream-hop"]);
    let mut writer = platform.redis.shared().await?;
    let reader = platform.redis.blocking_connection().await?;
    let mut last_id = "0-0".to_owned();
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let read = tokio::spawn({
            let key = key.clone();
            let last_id = last_id.clone();
            let mut reader = reader.clone();
            async move {
                let options = StreamReadOptions::default().block(1000).count(1);
                let reply: Option<StreamReadReply> = reader
                    .xread_options(&[key.as_str()], &[last_id.as_str()], &options)
                    .await?;
                anyhow::Ok((Instant::now(), reply.is_some()))
            }
        });
        // Gives the read time to reach Redis and block before the entry is added.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let sent = Instant::now();
        let id: String = writer
            .xadd(&key, "*", &[("kind", "delta"), ("text", USER_MESSAGE)])
            .await?;
        let (received, got_entry) = read.await??;
        if !got_entry {
            bail!("the blocked read returned no entry");
        }
        samples.push(received.saturating_duration_since(sent));
        last_id = id;
    }
    let () = writer.del(&key).await?;
    Ok(samples)
}

async fn redis_connect(platform: Platform, total: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        let connection = platform.redis.blocking_connection().await?;
        samples.push(started.elapsed());
        drop(connection);
    }
    Ok(samples)
}
