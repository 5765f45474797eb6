//! Benchmark of streaming through subscriptions, against the mock provider:
//!
//! - `first_delta`: from the provider sending a reply's first token to a waiting WebSocket
//!   subscriber receiving it, which is the time to first delta minus the provider's own;
//! - `delta`: the same for every token of the reply;
//! - `added_gap`: the gap between two deltas at the subscriber minus the gap between the
//!   same two tokens at the provider;
//! - memory: the growth of the process's resident memory per idle WebSocket connection,
//!   with 1,000 connections held by a separate client process.
//!
//! Run with `RUST_LOG=off cargo bench -p tests --bench realtime`. It needs PostgreSQL and
//! Redis as the integration tests do. `REALTIME_BENCH_REPLIES` (default 300) sets the
//! replies measured, `REALTIME_BENCH_TOKENS` (20) their tokens, `REALTIME_BENCH_GAP_MS` (5)
//! the provider's gap between tokens, and `REALTIME_BENCH_CONNECTIONS` (1000) the idle
//! connections. Without the `--bench` argument that `cargo bench` passes, it runs a short
//! smoke test. The report is Markdown on stdout.
//!
//! The api and its database pool run on the server runtime (one worker thread per CPU),
//! the mock provider and a relay in front of it on their own thread, and the subscriber on
//! the main thread. The relay timestamps each token just before forwarding it to the api.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Write as _},
    net::{Ipv4Addr, SocketAddr},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{
    MockConfig, MockProvider, TestApp, TestOptions,
    bench::{Percentiles, machine_description},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    runtime::Builder,
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// The argument that turns the program into the client process holding idle connections.
const HOLD_ARGUMENT: &str = "--hold-websockets";
/// How long the mock waits before a reply's first token, so that the subscription is
/// waiting on its blocking read when the token arrives.
const FIRST_TOKEN_DELAY: Duration = Duration::from_millis(30);
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
const MESSAGE_STREAM: &str = "subscription($id: ID!) { messageStream(messageId: $id) { kind } }";
/// The text before every content delta of the mock's OpenAI stream.
const CONTENT_MARK: &[u8] = b"\"content\":\"";

fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    if arguments.get(1).map(String::as_str) == Some(HOLD_ARGUMENT) {
        return hold_connections(&arguments[2..]);
    }
    let settings = Settings::from_env()?;
    let (provider_url, mut tokens, stop_provider) = start_provider(&settings)?;
    let server = Builder::new_multi_thread().enable_all().build()?;
    let app = server.block_on(TestApp::spawn_with(TestOptions {
        env: vec![
            ("OPENAI_BASE_URL".into(), provider_url),
            ("ACCESS_TOKEN_TTL_SECONDS".into(), "86400".into()),
        ],
        worker: false,
        ..TestOptions::default()
    }))?;

    let client = Builder::new_current_thread().enable_all().build()?;
    let result = client.block_on(measure(&settings, &app, &mut tokens));
    drop(client);
    server.block_on(app.shutdown());
    let _ = stop_provider.send(());
    let report = result?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

struct Settings {
    replies: usize,
    tokens: usize,
    gap: Duration,
    connections: usize,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let full = std::env::args().any(|argument| argument == "--bench");
        let number = |name: &str, default: usize| -> anyhow::Result<usize> {
            match std::env::var(name) {
                Ok(value) => value
                    .parse()
                    .with_context(|| format!("{name}={value} is not a whole number")),
                Err(_) => Ok(default),
            }
        };
        let settings = Self {
            replies: number("REALTIME_BENCH_REPLIES", if full { 300 } else { 3 })?,
            tokens: number("REALTIME_BENCH_TOKENS", 20)?,
            gap: Duration::from_millis(number("REALTIME_BENCH_GAP_MS", 5)? as u64),
            connections: number("REALTIME_BENCH_CONNECTIONS", if full { 1000 } else { 20 })?,
        };
        if settings.replies == 0 || settings.tokens < 2 || settings.connections == 0 {
            bail!("the benchmark needs at least 1 reply, 2 tokens and 1 connection");
        }
        Ok(settings)
    }
}

/// Starts the mock and the relay on their own thread. Returns the relay's base URL, the
/// instants at which it forwarded each token, and the sender that stops the thread.
fn start_provider(
    settings: &Settings,
) -> anyhow::Result<(
    String,
    mpsc::UnboundedReceiver<Instant>,
    oneshot::Sender<()>,
)> {
    let config = MockConfig {
        time_to_first_token: FIRST_TOKEN_DELAY,
        tokens: settings.tokens,
        gap: settings.gap,
    };
    let (ready_sender, ready) = std::sync::mpsc::channel::<anyhow::Result<String>>();
    let (stop, stopped) = oneshot::channel::<()>();
    let (forwarded, tokens) = mpsc::unbounded_channel();
    std::thread::Builder::new()
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
                let started = async {
                    let mock = MockProvider::start(config).await?;
                    let relay = start_relay(mock.addr(), forwarded).await?;
                    anyhow::Ok((mock, relay))
                };
                match started.await {
                    Ok((mock, relay)) => {
                        let _ = ready_sender.send(Ok(format!("http://{relay}/v1")));
                        let _ = stopped.await;
                        drop(mock);
                    }
                    Err(error) => {
                        let _ = ready_sender.send(Err(error));
                    }
                }
            });
        })?;
    let url = ready
        .recv()
        .context("the provider thread stopped before starting")??;
    Ok((url, tokens, stop))
}

/// A TCP relay to `upstream` that sends, for every token in what it forwards to the api,
/// the instant just before forwarding it.
async fn start_relay(
    upstream: SocketAddr,
    forwarded: mpsc::UnboundedSender<Instant>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let forwarded = forwarded.clone();
            tokio::spawn(async move {
                // A failed connection ends on its own; the measurement then times out.
                let _ = relay_connection(client, upstream, forwarded).await;
            });
        }
    });
    Ok(addr)
}

async fn relay_connection(
    client: TcpStream,
    upstream: SocketAddr,
    forwarded: mpsc::UnboundedSender<Instant>,
) -> std::io::Result<()> {
    let upstream = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let requests = async {
        tokio::io::copy(&mut client_read, &mut upstream_write).await?;
        upstream_write.shutdown().await
    };
    let responses = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = upstream_read.read(&mut buffer).await?;
            if read == 0 {
                return client_write.shutdown().await;
            }
            let piece = &buffer[..read];
            let tokens = count_tokens(piece);
            let now = Instant::now();
            client_write.write_all(piece).await?;
            for _ in 0..tokens {
                let _ = forwarded.send(now);
            }
        }
    };
    tokio::try_join!(requests, responses).map(|_| ())
}

/// Counts the non-empty content deltas in a piece of the mock's stream. With a gap
/// between tokens the mock writes each chunk on its own, so a chunk never spans pieces.
fn count_tokens(piece: &[u8]) -> usize {
    piece
        .windows(CONTENT_MARK.len() + 1)
        .filter(|window| window.starts_with(CONTENT_MARK) && window[CONTENT_MARK.len()] != b'"')
        .count()
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open_socket(url: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = connect_async(request).await?;
    let init = json!({ "type": "connection_init",
                       "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    loop {
        let frame = tokio::time::timeout(STEP_TIMEOUT, socket.next())
            .await
            .context("no connection_ack in time")?
            .context("the server closed the connection")??;
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(text.as_str())?;
            if message["type"] == "connection_ack" {
                return Ok(socket);
            }
        }
    }
}

/// Reads the `next` messages of operation `id` until `complete` and returns when each
/// DELTA arrived.
async fn delta_arrivals(socket: &mut Socket, id: &str) -> anyhow::Result<Vec<Instant>> {
    let mut arrivals = Vec::new();
    loop {
        let frame = tokio::time::timeout(STEP_TIMEOUT, socket.next())
            .await
            .context("no reply event in time")?
            .context("the server closed the connection")??;
        let arrived = Instant::now();
        let Message::Text(text) = frame else { continue };
        let message: Value = serde_json::from_str(text.as_str())?;
        if message["id"] != id {
            continue;
        }
        match message["type"].as_str() {
            Some("next") if message["payload"]["data"]["messageStream"]["kind"] == "DELTA" => {
                arrivals.push(arrived);
            }
            Some("next") => {}
            Some("complete") => return Ok(arrivals),
            _ => bail!("unexpected message: {message}"),
        }
    }
}

async fn measure(
    settings: &Settings,
    app: &TestApp,
    forwarded: &mut mpsc::UnboundedReceiver<Instant>,
) -> anyhow::Result<String> {
    let chat = app
        .start_chat("realtime-bench@example.com", "Be brief.")
        .await;
    let token = chat.owner.access_token.clone();
    // The enterprise plan has no request limit, so that every reply is measured.
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET plan = 'enterprise' WHERE tenant_id = '{}'",
            chat.owner.tenant_id
        ))
        .await?;
    let mut socket = open_socket(&app.ws_url(), &token).await?;

    let mut first_delta = Vec::with_capacity(settings.replies);
    let mut every_delta = Vec::with_capacity(settings.replies * settings.tokens);
    let mut added_gap = Vec::with_capacity(settings.replies * settings.tokens);
    for reply in 0..settings.replies {
        let message_id = app
            .send_message(&token, &chat.conversation_id, "Hello")
            .await;
        let id = reply.to_string();
        let subscribe = json!({ "id": id, "type": "subscribe",
                                "payload": { "query": MESSAGE_STREAM,
                                             "variables": { "id": message_id } } });
        socket.send(Message::text(subscribe.to_string())).await?;
        let arrivals = delta_arrivals(&mut socket, &id).await?;
        let mut sent = Vec::with_capacity(settings.tokens);
        for _ in 0..settings.tokens {
            let instant = tokio::time::timeout(STEP_TIMEOUT, forwarded.recv())
                .await
                .context("the relay saw fewer tokens than the reply has")?
                .context("the relay stopped")?;
            sent.push(instant);
        }
        if arrivals.len() != sent.len() {
            bail!(
                "reply {reply}: {} deltas arrived for {} tokens sent",
                arrivals.len(),
                sent.len()
            );
        }
        first_delta.push(arrivals[0] - sent[0]);
        for (arrived, sent) in arrivals.iter().zip(&sent) {
            every_delta.push(*arrived - *sent);
        }
        for pair in 1..arrivals.len() {
            let at_subscriber = (arrivals[pair] - arrivals[pair - 1]).as_secs_f64();
            let at_provider = (sent[pair] - sent[pair - 1]).as_secs_f64();
            // Negative when the pair arrived closer together than it was sent.
            added_gap.push((at_subscriber - at_provider) * 1000.0);
        }
        wait_until_idle(app).await?;
    }
    drop(socket);

    let memory = idle_connection_memory(app, &token, settings.connections).await?;

    let mut report = String::new();
    writeln!(report, "## Subscriptions: streaming and idle connections\n")?;
    writeln!(report, "Machine: {}\n", machine_description())?;
    writeln!(
        report,
        "{} replies of {} tokens, {} ms apart at the provider.\n",
        settings.replies,
        settings.tokens,
        settings.gap.as_millis()
    )?;
    writeln!(
        report,
        "| measurement | p50 ms | p90 ms | p99 ms | max ms |"
    )?;
    writeln!(report, "|---|---|---|---|---|")?;
    for (name, percentiles) in [
        ("first_delta", Percentiles::of(first_delta)?),
        ("delta", Percentiles::of(every_delta)?),
        ("added_gap", Percentiles::of_millis(added_gap)?),
    ] {
        let [p50, p90, p99, max] = percentiles.values();
        writeln!(
            report,
            "| {name} | {p50:.3} | {p90:.3} | {p99:.3} | {max:.3} |"
        )?;
    }
    writeln!(
        report,
        "\nIdle WebSocket connections: {} held, resident memory {:.1} MiB before and \
         {:.1} MiB with them: {:.1} KiB per connection.",
        settings.connections,
        memory.before as f64 / 1024.0 / 1024.0,
        memory.with_connections as f64 / 1024.0 / 1024.0,
        memory.per_connection() / 1024.0
    )?;
    Ok(report)
}

/// Waits until the last reply's generation has stored its final state.
async fn wait_until_idle(app: &TestApp) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !app.platform.generations.is_empty() {
        if Instant::now() >= deadline {
            bail!("a generation still runs after {STEP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

struct Memory {
    connections: usize,
    before: u64,
    with_connections: u64,
}

impl Memory {
    fn per_connection(&self) -> f64 {
        self.with_connections.saturating_sub(self.before) as f64 / self.connections as f64
    }
}

/// Has a child process open `connections` authenticated, idle WebSockets to the api in
/// this process, and reads this process's resident memory before and while they are open.
async fn idle_connection_memory(
    app: &TestApp,
    token: &str,
    connections: usize,
) -> anyhow::Result<Memory> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_bytes()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            HOLD_ARGUMENT,
            &app.ws_url(),
            token,
            &connections.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the client process")?;
    let stdout = child.stdout.take().context("the client's stdout")?;
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(120), ready)
        .await
        .context("the client did not open its connections within 120 s")???;
    if line.trim() != "ready" {
        let _ = child.kill();
        bail!("the client process failed: {line}");
    }
    // Let the server's per-connection tasks settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_connections = resident_bytes()?;
    // Closing its stdin makes the client close the connections and exit.
    drop(child.stdin.take());
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    Ok(Memory {
        connections,
        before,
        with_connections,
    })
}

/// This process's resident memory, from `/proc/self/status`.
fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
}

/// Runs the client process: opens the connections, prints `ready`, and keeps them open
/// until its stdin closes.
fn hold_connections(arguments: &[String]) -> anyhow::Result<()> {
    let [url, token, count] = arguments else {
        bail!("usage: {HOLD_ARGUMENT} <url> <token> <connections>");
    };
    let count: usize = count.parse()?;
    let runtime = Builder::new_current_thread().enable_all().build()?;
    let opened = runtime.block_on(async {
        let mut sockets = Vec::with_capacity(count);
        for _ in 0..count {
            sockets.push(open_socket(url, token).await?);
        }
        anyhow::Ok(sockets)
    });
    let mut stdout = std::io::stdout().lock();
    match opened {
        Ok(sockets) => {
            writeln!(stdout, "ready")?;
            stdout.flush()?;
            let mut rest = String::new();
            let _ = std::io::stdin().read_line(&mut rest);
            drop(sockets);
            Ok(())
        }
        Err(error) => {
            writeln!(stdout, "{error:#}")?;
            Err(error)
        }
    }
}
