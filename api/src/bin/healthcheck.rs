//! Container health check: `healthcheck URL` exits with 0 when a GET of URL returns a 2xx
//! status within five seconds, and with 1 otherwise. The runtime image has no curl.

use std::{process::ExitCode, time::Duration};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut arguments = std::env::args().skip(1);
    let (Some(url), None) = (arguments.next(), arguments.next()) else {
        eprintln!("usage: healthcheck URL");
        return ExitCode::from(2);
    };
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("building the HTTP client failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("{url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("GET {url} failed: {error}");
            ExitCode::FAILURE
        }
    }
}
