//! The client's IP address: the TCP peer, or the address a trusted proxy reports in
//! `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::ConnectInfo,
    http::{HeaderMap, HeaderName, request::Parts},
};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Returns the client's address, or `None` when the server was started without connection
/// info (see [`crate::serve`]).
///
/// `X-Forwarded-For` counts only when the peer is inside `trusted_proxies`. Its entries
/// are then read from the right, past every trusted proxy, and the first other address is
/// the client. An entry that is not an IP address ends the walk at the last address read,
/// because a client can write anything to the left of what the proxies appended.
pub fn client_ip(parts: &Parts, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(resolve(peer.ip(), &parts.headers, trusted_proxies))
}

fn resolve(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |address: &IpAddr| trusted_proxies.iter().any(|net| net.contains(address));
    let mut client = peer.to_canonical();
    if !trusted(&client) {
        return client;
    }
    let entries: Vec<String> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().to_owned())
        .collect();
    for entry in entries.iter().rev() {
        let Ok(address) = entry.parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !trusted(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn proxies() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn untrusted_peer_header_ignored() {
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            resolve(ip("198.51.100.1"), &headers, &proxies()),
            ip("198.51.100.1")
        );
        assert_eq!(resolve(ip("10.0.0.1"), &headers, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_chain_walked_from_right() {
        let headers = forwarded(&["192.0.2.66, 203.0.113.9, 10.0.0.7"]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &headers, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn header_lines_joined_in_order() {
        let headers = forwarded(&["192.0.2.66", "203.0.113.9"]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &headers, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn malformed_entry_stops_walk() {
        let headers = forwarded(&["203.0.113.9, not-an-ip, 10.0.0.7"]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &headers, &proxies()),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn missing_header_gives_peer() {
        assert_eq!(
            resolve(ip("10.0.0.1"), &HeaderMap::new(), &proxies()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_peer_matches_ipv4_networks() {
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &headers, &proxies()),
            ip("203.0.113.9")
        );
    }
}
