//! Command-line entry point that runs the mock provider until Ctrl-C.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mock_provider::{MockConfig, MockProvider, WireFormat};
use tracing_subscriber::EnvFilter;

/// Serves the chat wire formats of OpenAI, Anthropic, Gemini, Groq and Ollama with a fixed
/// reply, or with scripted replies queued over HTTP, for local tests and demos.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Base URLs to configure, with ADDR the --addr value:
  OpenAI     http://ADDR/v1           (OPENAI_BASE_URL)
  Anthropic  http://ADDR              (ANTHROPIC_BASE_URL)
  Gemini     http://ADDR/v1beta       (GEMINI_BASE_URL)
  Groq       http://ADDR/openai/v1    (GROQ_BASE_URL)
  Ollama     http://ADDR              (OLLAMA_BASE_URL)
Any non-empty API key is accepted. Ollama's routes also accept requests without a key.

Scripted replies, served one per chat request in the order queued (no key needed, so
keep ADDR on a loopback address):
  POST   http://ADDR/mock/replies   queue {\"toolCalls\": [{\"name\": ..., \"arguments\": {...}}]}
                                    or {\"text\": \"exact reply\"}
  GET    http://ADDR/mock/replies   number still queued, as {\"queued\": N}
  DELETE http://ADDR/mock/replies   clear the queue
Example with the default --addr: curl -d '{\"text\": \"Hello.\"}' http://127.0.0.1:4010/mock/replies"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4010")]
    addr: SocketAddr,
    /// Delay before the first content chunk, in milliseconds.
    #[arg(long, default_value_t = 0)]
    ttft_ms: u64,
    /// Number of content chunks in each reply.
    #[arg(long, default_value_t = 12)]
    tokens: usize,
    /// Delay between two content chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    gap_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::stdout().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();

    let config = MockConfig {
        time_to_first_token: Duration::from_millis(args.ttft_ms),
        tokens: args.tokens,
        gap: Duration::from_millis(args.gap_ms),
    };
    let mock = MockProvider::start_on(args.addr, config).await?;
    tracing::info!(
        server.address = %mock.addr(),
        openai.base_url = %mock.base_url_for(WireFormat::OpenAi),
        anthropic.base_url = %mock.base_url_for(WireFormat::Anthropic),
        gemini.base_url = %mock.base_url_for(WireFormat::Gemini),
        groq.base_url = %mock.base_url_for(WireFormat::Groq),
        ollama.base_url = %mock.base_url_for(WireFormat::Ollama),
        tokens = config.tokens,
        "mock provider listening"
    );

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C failed")?;
    tracing::info!("mock provider stopping");
    Ok(())
}
