//! The guarded HTTP client for URLs that tenants choose, which connects only to public
//! addresses unless the operator allows a private network.
//!
//! Two checks cover the two ways a URL names its server. A host name goes through
//! [`GuardedResolver`], which resolves it and drops blocked addresses, so the client connects
//! only to addresses that passed the check and a second DNS answer cannot swap in another.
//! reqwest skips the resolver for an IP-literal host, so [`GuardedClient::client_for`] checks
//! the URL's host before it hands out the client.
//!
//! IPv4 addresses written in IPv6 form (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`
//! and 6to4 `2002::/16`) are checked as the IPv4 address they carry.

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tracing::warn;

use crate::http::{build_client, client_builder};
use crate::{HttpSettings, ProviderError};

/// A named address range that tenant URLs may not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedRange {
    pub network: IpNet,
    /// Purpose of the range, such as "private network".
    pub description: &'static str,
}

/// Cloud metadata services, which hand out the credentials of the machine. They stay blocked
/// even inside an allowed network, because no provider, tool or webhook URL needs them.
const METADATA_RANGES: [BlockedRange; 2] = [
    v4([169, 254, 169, 254], 32, "cloud metadata"),
    v6(
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254],
        128,
        "cloud metadata",
    ),
];

/// Ranges that are blocked unless an allowed network contains the address. The first match
/// names the range in the error, so a narrower range comes before a wider one.
const BLOCKED_RANGES: [BlockedRange; 24] = [
    v4([0, 0, 0, 0], 8, "unspecified"),
    v4([10, 0, 0, 0], 8, "private network"),
    v4([100, 64, 0, 0], 10, "carrier-grade NAT"),
    v4([127, 0, 0, 0], 8, "loopback"),
    v4([169, 254, 0, 0], 16, "link-local"),
    v4([172, 16, 0, 0], 12, "private network"),
    v4([192, 0, 0, 0], 24, "IETF protocol assignments"),
    v4([192, 0, 2, 0], 24, "documentation"),
    v4([192, 168, 0, 0], 16, "private network"),
    v4([198, 18, 0, 0], 15, "benchmarking"),
    v4([198, 51, 100, 0], 24, "documentation"),
    v4([203, 0, 113, 0], 24, "documentation"),
    v4([224, 0, 0, 0], 4, "multicast"),
    v4([240, 0, 0, 0], 4, "reserved"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible (deprecated)"),
    v6([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
    v6([0x2001, 0x0002, 0, 0, 0, 0, 0, 0], 48, "benchmarking"),
    v6([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "unique local (private network)",
    ),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

const fn v4(octets: [u8; 4], prefix: u8, description: &'static str) -> BlockedRange {
    let [a, b, c, d] = octets;
    BlockedRange {
        network: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)),
        description,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, description: &'static str) -> BlockedRange {
    let [a, b, c, d, e, f, g, h] = segments;
    BlockedRange {
        network: IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            prefix,
        )),
        description,
    }
}

/// An address that a guarded request may not connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{address} is in a blocked range: {} {}",
    range.description,
    range.network
)]
pub struct BlockedAddress {
    pub address: IpAddr,
    pub range: BlockedRange,
}

/// A URL or host that the guarded client rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The URL's host is an IP literal in a blocked range. The address is not a `source`,
    /// because the message already contains it.
    #[error("URL host {0}")]
    Blocked(BlockedAddress),
    #[error("resolving {host} failed: {message}")]
    Resolve { host: String, message: String },
    #[error("{host} resolves only to blocked addresses: {}", list(blocked))]
    NoAllowedAddress {
        host: String,
        blocked: Vec<BlockedAddress>,
    },
}

fn list(blocked: &[BlockedAddress]) -> String {
    let messages: Vec<String> = blocked.iter().map(ToString::to_string).collect();
    messages.join("; ")
}

impl From<OutboundError> for ProviderError {
    fn from(error: OutboundError) -> Self {
        ProviderError::Unavailable(error.to_string())
    }
}

/// An allow-list entry that is neither a network in CIDR notation nor a single address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network like 10.0.0.0/8 or an address like ::1")]
pub struct InvalidNetwork(pub String);

/// Parses a comma-separated list of networks in CIDR notation (`10.0.0.0/8`) or single
/// addresses (`::1`). Blank entries are skipped.
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, InvalidNetwork> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| InvalidNetwork(entry.to_owned()))
        })
        .collect()
}

/// Address rule of guarded requests. Every address outside the blocked ranges is allowed,
/// and so is every address inside an allowed network except the cloud metadata addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Creates a policy that opens the `allowed` networks, such as a local model server's.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Checks one address, after reducing an IPv6 form of an IPv4 address to that address.
    pub fn check(&self, address: IpAddr) -> Result<(), BlockedAddress> {
        let effective = embedded_ipv4(address).map_or(address, IpAddr::V4);
        let blocked = |range: &BlockedRange| BlockedAddress {
            address,
            range: *range,
        };

        if let Some(range) = find_range(&METADATA_RANGES, effective) {
            return Err(blocked(range));
        }
        if self
            .allowed
            .iter()
            .any(|network| network.contains(&effective) || network.contains(&address))
        {
            return Ok(());
        }
        match find_range(&BLOCKED_RANGES, effective) {
            Some(range) => Err(blocked(range)),
            None => Ok(()),
        }
    }

    /// Checks that `url` is http or https with a host, and that an IP-literal host is
    /// allowed. A host name passes here and is checked when the client resolves it.
    pub fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl(format!(
                "scheme {} is not http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| OutboundError::InvalidUrl("the URL has no host".to_owned()))?;
        // The URL parser normalises IPv4 hosts (`2130706433`, `0x7f.1`) to dotted decimal and
        // keeps IPv6 hosts in brackets, so a literal is recognised in every spelling.
        let literal = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(address) = literal.parse::<IpAddr>() {
            self.check(address).map_err(OutboundError::Blocked)?;
        }
        Ok(())
    }
}

fn find_range(ranges: &[BlockedRange], address: IpAddr) -> Option<&BlockedRange> {
    ranges.iter().find(|range| range.network.contains(&address))
}

/// Returns the IPv4 address that an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address
/// carries.
fn embedded_ipv4(address: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = address else {
        return None;
    };
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    let [a, b, c, d, e, f, g, h] = v6.segments();
    let to_ipv4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match (a, b, c, d, e, f) {
        (0x0064, 0xff9b, 0, 0, 0, 0) => Some(to_ipv4(g, h)),
        (0x2002, ..) => Some(to_ipv4(b, c)),
        _ => None,
    }
}

/// The reqwest resolver of the guarded client: resolves with the system resolver and keeps
/// only the addresses that the policy allows.
#[derive(Debug, Clone)]
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let addresses = resolve_allowed(&policy, name.as_str()).await?;
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Resolves `host` and returns its allowed addresses, or an error when none is allowed.
async fn resolve_allowed(
    policy: &AddressPolicy,
    host: &str,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let resolved =
        tokio::net::lookup_host((host, 0))
            .await
            .map_err(|error| OutboundError::Resolve {
                host: host.to_owned(),
                message: error.to_string(),
            })?;

    let mut allowed = Vec::new();
    let mut blocked = Vec::new();
    for address in resolved {
        match policy.check(address.ip()) {
            Ok(()) => allowed.push(address),
            Err(refusal) => blocked.push(refusal),
        }
    }

    if allowed.is_empty() {
        if blocked.is_empty() {
            return Err(OutboundError::Resolve {
                host: host.to_owned(),
                message: "no addresses found".to_owned(),
            });
        }
        warn!(
            server.address = host,
            blocked.count = blocked.len(),
            "rejected a host that resolves only to blocked addresses"
        );
        return Err(OutboundError::NoAllowedAddress {
            host: host.to_owned(),
            blocked,
        });
    }
    Ok(allowed)
}

/// The HTTP client for URLs that tenants choose. It shares the timeouts, redirect and proxy
/// policy of [`crate::http_client`] and adds the address checks. Cheap to clone.
#[derive(Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl fmt::Debug for GuardedClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("GuardedClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl GuardedClient {
    /// Builds the client. Build it once at start-up and clone it, because a clone shares the
    /// connection pool.
    pub fn new(settings: &HttpSettings, policy: AddressPolicy) -> Result<Self, ProviderError> {
        let policy = Arc::new(policy);
        let resolver = GuardedResolver {
            policy: Arc::clone(&policy),
        };
        let client = build_client(client_builder(settings).dns_resolver(resolver))?;
        Ok(Self { client, policy })
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Checks `url` with [`AddressPolicy::check_url`] and returns the client for requests to
    /// it. Requests to any other URL must come through here as well, because only this
    /// check covers IP-literal hosts.
    pub fn client_for(&self, url: &str) -> Result<reqwest::Client, OutboundError> {
        let parsed =
            Url::parse(url).map_err(|error| OutboundError::InvalidUrl(error.to_string()))?;
        self.policy.check_url(&parsed)?;
        Ok(self.client.clone())
    }
}
