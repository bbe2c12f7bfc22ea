//! Limits on what one client may try: guessing survey links from one network,
//! and posting to one link that records nothing (SPEC 5).

use chrono::{DateTime, Utc};

use crate::model::derive_id;

/// Guessing tokens from one network: this many failures a minute, then 429.
pub const NETWORK_FAILURES_PER_MINUTE: i64 = 30;

/// Posts to one survey link that record nothing (already answered, invalid)
/// allowed a minute before 429.
pub const LINK_REJECTIONS_PER_MINUTE: i64 = 60;

/// Failed credentials (bearer tokens, sessions, sign-ins) from one network
/// this minute before every credential from it is refused (429) until the
/// minute is over: guessing an agent's token costs a minute per twenty tries.
pub const AUTH_FAILURES_PER_MINUTE: i64 = 20;

/// The client's address as the app should count it: the TCP peer, unless
/// the peer is the trusted proxy, whose `X-Forwarded-For` names the client
/// (its last entry: the one the proxy itself added).
pub fn client_address<'a>(
    peer: &'a str,
    forwarded_for: Option<&'a str>,
    trusted_proxy: Option<&str>,
) -> &'a str {
    let peer_ip = peer
        .rsplit_once(':')
        .map(|(ip, _)| ip)
        .unwrap_or(peer)
        .trim_matches(['[', ']']);
    match (trusted_proxy, forwarded_for) {
        (Some(proxy), Some(list)) if proxy.trim() == peer_ip => list
            .rsplit(',')
            .map(str::trim)
            .find(|a| !a.is_empty())
            .unwrap_or(peer),
        _ => peer,
    }
}

/// The minute a rate counter counts in.
pub fn minute(now: DateTime<Utc>) -> String {
    crate::date_text::compact_minute(&now)
}

/// The network of a client address (`ip:port`): an IPv4 /24 or an IPv6 /64,
/// hashed (never kept as such).
pub fn network_of(client_addr: &str) -> String {
    let ip = client_addr
        .rsplit_once(':')
        .map(|(ip, _)| ip)
        .unwrap_or(client_addr)
        .trim_matches(['[', ']']);
    let net = if ip.contains('.') {
        ip.rsplit_once('.').map_or(ip, |(net, _)| net).to_string()
    } else {
        ip.split(':').take(4).collect::<Vec<_>>().join(":")
    };
    derive_id("net", &[&net])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_network_per_v4_24_and_v6_64() {
        assert_eq!(network_of("10.1.2.3:5555"), network_of("10.1.2.200:1"));
        assert_ne!(network_of("10.1.2.3:5555"), network_of("10.1.3.3:5555"));
        assert_eq!(
            network_of("[2001:db8:1:2:aa::1]:443"),
            network_of("[2001:db8:1:2:bb::9]:80")
        );
        assert_ne!(
            network_of("[2001:db8:1:2::1]:443"),
            network_of("[2001:db8:1:3::1]:443")
        );
    }

    #[test]
    fn x_forwarded_for_is_believed_only_from_the_trusted_proxy() {
        let xff = Some("198.51.100.9, 203.0.113.7");
        assert_eq!(
            client_address("10.0.0.5:4444", xff, Some("10.0.0.5")),
            "203.0.113.7"
        );
        assert_eq!(
            client_address("10.0.0.6:4444", xff, Some("10.0.0.5")),
            "10.0.0.6:4444"
        );
        assert_eq!(client_address("10.0.0.5:4444", xff, None), "10.0.0.5:4444");
        assert_eq!(
            client_address("10.0.0.5:4444", None, Some("10.0.0.5")),
            "10.0.0.5:4444"
        );
    }
}
