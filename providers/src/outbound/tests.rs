//! Address ranges, URL checks, the resolver and the guarded client against a local server.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mock_provider::{MockConfig, MockProvider};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn allowing(networks: &str) -> AddressPolicy {
    AddressPolicy::new(parse_networks(networks).unwrap())
}

/// Returns the description of the range that blocks `address`, or `None` when it is allowed.
fn blocked_as(policy: &AddressPolicy, address: &str) -> Option<&'static str> {
    policy
        .check(ip(address))
        .err()
        .map(|blocked| blocked.range.description)
}

#[test]
fn every_blocked_range_rejects_its_addresses() {
    let policy = AddressPolicy::default();
    let cases = [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.1", "private network"),
        ("10.255.255.255", "private network"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("169.254.0.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("172.16.0.1", "private network"),
        ("172.31.255.255", "private network"),
        ("192.0.0.8", "IETF protocol assignments"),
        ("192.0.2.1", "documentation"),
        ("192.168.1.1", "private network"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::a00:1", "IPv4-compatible (deprecated)"),
        ("100::1", "discard-only"),
        ("2001:2::1", "benchmarking"),
        ("2001:db8::1", "documentation"),
        ("fc00::1", "unique local (private network)"),
        ("fd12:3456::1", "unique local (private network)"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local (deprecated)"),
        ("ff02::1", "multicast"),
    ];
    for (address, expected) in cases {
        assert_eq!(blocked_as(&policy, address), Some(expected), "{address}");
    }
}

#[test]
fn ipv4_in_ipv6_forms_are_checked_as_ipv4() {
    let policy = AddressPolicy::default();
    let cases = [
        ("::ffff:10.0.0.1", "private network"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:100.64.0.1", "carrier-grade NAT"),
        ("::ffff:192.168.0.10", "private network"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("64:ff9b::a00:1", "private network"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("2002:a00:1::", "private network"),
        ("2002:7f00:1::1", "loopback"),
    ];
    for (address, expected) in cases {
        assert_eq!(blocked_as(&policy, address), Some(expected), "{address}");
    }
    assert_eq!(blocked_as(&policy, "::ffff:8.8.8.8"), None);
    assert_eq!(blocked_as(&policy, "64:ff9b::808:808"), None);
}

#[test]
fn public_addresses_pass() {
    let policy = AddressPolicy::default();
    for address in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.169.0.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
    ] {
        assert_eq!(blocked_as(&policy, address), None, "{address}");
    }
}

#[test]
fn allowed_networks_open_private_ranges() {
    let policy = allowing("127.0.0.0/8, ::1, 10.1.0.0/16");
    for address in [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "::ffff:127.0.0.1",
        "10.1.2.3",
    ] {
        assert_eq!(blocked_as(&policy, address), None, "{address}");
    }
    assert_eq!(blocked_as(&policy, "10.2.0.1"), Some("private network"));
    assert_eq!(blocked_as(&policy, "192.168.0.1"), Some("private network"));
}

#[test]
fn metadata_stays_blocked_inside_allowed_networks() {
    let policy = allowing("169.254.0.0/16, fd00::/8");
    assert_eq!(blocked_as(&policy, "169.254.1.1"), None);
    assert_eq!(
        blocked_as(&policy, "169.254.169.254"),
        Some("cloud metadata")
    );
    assert_eq!(
        blocked_as(&policy, "::ffff:169.254.169.254"),
        Some("cloud metadata")
    );
    assert_eq!(blocked_as(&policy, "fd00:ec2::254"), Some("cloud metadata"));
}

#[test]
fn blocked_address_message_names_range() {
    let error = AddressPolicy::default().check(ip("10.0.0.1")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "10.0.0.1 is in a blocked range: private network 10.0.0.0/8"
    );
}

#[test]
fn parse_networks_accepts_cidr_and_addresses() {
    let networks = parse_networks(" 127.0.0.0/8 ,::1/128,, 192.168.1.5 ").unwrap();
    let expected: Vec<IpNet> = vec![
        "127.0.0.0/8".parse().unwrap(),
        "::1/128".parse().unwrap(),
        "192.168.1.5/32".parse().unwrap(),
    ];
    assert_eq!(networks, expected);
    assert_eq!(parse_networks("").unwrap(), Vec::<IpNet>::new());
}

#[test]
fn parse_networks_rejects_malformed_entry() {
    let error = parse_networks("127.0.0.0/8,localhost").unwrap_err();
    assert_eq!(error, InvalidNetwork("localhost".to_owned()));
    assert!(parse_networks("10.0.0.0/33").is_err());
}

#[test]
fn check_url_rejects_blocked_literals_in_every_spelling() {
    let policy = AddressPolicy::default();
    let cases = [
        ("http://10.0.0.1/v1", "private network"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://[::ffff:127.0.0.1]:8080/v1", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://0/", "unspecified"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
    ];
    for (text, expected) in cases {
        match policy.check_url(&url(text)) {
            Err(OutboundError::Blocked(blocked)) => {
                assert_eq!(blocked.range.description, expected, "{text}");
            }
            other => panic!("{text}: expected a blocked address, got {other:?}"),
        }
    }
}

#[test]
fn check_url_passes_names_and_public_literals() {
    let policy = AddressPolicy::default();
    for text in [
        "https://api.openai.com/v1",
        "http://localhost:11434",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
    ] {
        assert_eq!(policy.check_url(&url(text)), Ok(()), "{text}");
    }
}

#[test]
fn check_url_rejects_other_schemes() {
    let error = AddressPolicy::default()
        .check_url(&url("file:///etc/passwd"))
        .unwrap_err();
    assert_eq!(
        error,
        OutboundError::InvalidUrl("scheme file is not http or https".to_owned())
    );
}

#[tokio::test]
async fn resolver_rejects_names_of_blocked_addresses() {
    let error = resolve_allowed(&AddressPolicy::default(), "localhost")
        .await
        .unwrap_err();
    match &error {
        OutboundError::NoAllowedAddress { host, blocked } => {
            assert_eq!(host, "localhost");
            assert!(!blocked.is_empty());
            assert!(
                blocked
                    .iter()
                    .all(|address| address.range.description == "loopback"),
                "{error}"
            );
        }
        other => panic!("expected NoAllowedAddress, got {other:?}"),
    }
}

#[tokio::test]
async fn resolver_keeps_allowed_addresses() {
    let addresses = resolve_allowed(&allowing("127.0.0.0/8,::1"), "localhost")
        .await
        .unwrap();
    assert!(!addresses.is_empty());
    assert!(addresses.iter().all(|address| address.ip().is_loopback()));
}

fn settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
    }
}

/// Sends `GET /v1/models` to the mock through the guarded client, addressed by `host`.
async fn list_models(
    client: &GuardedClient,
    mock: &MockProvider,
    host: &str,
) -> Result<reqwest::StatusCode, String> {
    let url = format!("http://{host}:{}/v1/models", mock.addr().port());
    let http = client.client_for(&url).map_err(|error| error.to_string())?;
    let response = http
        .get(&url)
        .bearer_auth("sk-test")
        .send()
        .await
        .map_err(|error| crate::error::error_chain(&error))?;
    Ok(response.status())
}

#[tokio::test]
async fn guarded_client_blocks_loopback_by_name_and_literal() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let client = GuardedClient::new(&settings(), AddressPolicy::default()).unwrap();

    let by_name = list_models(&client, &mock, "localhost").await.unwrap_err();
    assert!(
        by_name.contains("localhost resolves only to blocked addresses"),
        "{by_name}"
    );
    let by_literal = list_models(&client, &mock, "127.0.0.1").await.unwrap_err();
    assert_eq!(
        by_literal,
        "URL host 127.0.0.1 is in a blocked range: loopback 127.0.0.0/8"
    );
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn guarded_client_reaches_allowed_network() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let client = GuardedClient::new(&settings(), allowing("127.0.0.0/8,::1/128")).unwrap();

    assert_eq!(
        list_models(&client, &mock, "localhost").await,
        Ok(reqwest::StatusCode::OK)
    );
    assert_eq!(
        list_models(&client, &mock, "127.0.0.1").await,
        Ok(reqwest::StatusCode::OK)
    );
}

#[test]
fn outbound_error_becomes_unavailable() {
    let error = ProviderError::from(OutboundError::InvalidUrl("no host".to_owned()));
    assert_eq!(
        error,
        ProviderError::Unavailable("invalid URL: no host".to_owned())
    );
}
