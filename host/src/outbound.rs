//! `allowed_outbound_hosts`: which URLs a component may send requests to.
//!
//! Entries have Spin's form `scheme://host[:port]`: scheme `http`, `https` or `*`;
//! host an exact name or address, `*`, or `*.suffix`; port a number, `*`, or a
//! range `a..b` (exclusive end, as in Spin). A missing port means the scheme's
//! default port. Paths are refused, as Spin refuses them.

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Default,
    Exact(u16),
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    pub fn parse(entries: &[String]) -> Result<AllowedHosts> {
        entries
            .iter()
            .map(|e| AllowedHost::parse(e).with_context(|| format!("invalid entry `{e}`")))
            .collect::<Result<Vec<_>>>()
            .map(AllowedHosts)
    }

    /// Whether a request to `scheme://host:port` may go out. `port` is the
    /// effective port (the scheme default filled in by the caller).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.0.iter().any(|h| h.allows(scheme, host, port))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<AllowedHost> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("an allowed host needs a scheme, e.g. `https://example.com`");
        };
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            other => bail!("scheme `{other}` is not supported (use http, https or *)"),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            bail!("an allowed host cannot contain a path; give only scheme://host[:port]");
        }
        let (host, port) = split_host_port(rest)?;
        let host = match host {
            "" => bail!("an allowed host needs a host name"),
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => bail!("`*` may only stand for a whole host or a leading label"),
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(a.parse()?, b.parse()?),
                None => PortPattern::Exact(p.parse().with_context(|| format!("bad port `{p}`"))?),
            },
        };
        if scheme.is_none() && port == PortPattern::Default {
            bail!("with scheme `*` give a port (e.g. `*://example.com:*`)");
        }
        Ok(AllowedHost { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if let Some(s) = &self.scheme {
            if s != scheme {
                return false;
            }
        }
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => default_port(scheme) == Some(port),
            PortPattern::Exact(p) => p == port,
            PortPattern::Range(a, b) => (a..b).contains(&port),
        };
        host_ok && port_ok
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        // IPv6 literal
        let Some((host, after)) = rest.split_once(']') else {
            bail!("unclosed `[`")
        };
        return Ok((host, after.strip_prefix(':')));
    }
    Ok(match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(e: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_like_spin() {
        let h = hosts(&[
            "https://api.example.com",
            "http://127.0.0.1:8080",
            "http://*.spin.internal",
        ]);
        assert!(h.allows("https", "api.example.com", 443));
        assert!(!h.allows("https", "api.example.com", 8443));
        assert!(!h.allows("http", "api.example.com", 80));
        assert!(h.allows("http", "127.0.0.1", 8080));
        assert!(!h.allows("http", "127.0.0.1", 8081));
        assert!(h.allows("http", "low-score-escalator.spin.internal", 80));
        assert!(!h.allows("http", "evil.com", 80));
        let any = hosts(&["*://*:*"]);
        assert!(any.allows("http", "x", 1));
        let range = hosts(&["http://localhost:3000..3002"]);
        assert!(range.allows("http", "localhost", 3001));
        assert!(!range.allows("http", "localhost", 3002));
    }

    #[test]
    fn refuses_paths_and_missing_scheme() {
        assert!(AllowedHosts::parse(&["https://a.com/path".into()]).is_err());
        assert!(AllowedHosts::parse(&["a.com".into()]).is_err());
        assert!(AllowedHosts::parse(&["https://a.com/".into()]).is_ok());
    }

    #[test]
    fn nothing_allowed_by_default() {
        assert!(!AllowedHosts::default().allows("https", "example.com", 443));
    }
}
