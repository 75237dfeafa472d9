//! `allowed_outbound_hosts`: which network destinations a component may reach.
//!
//! Entries look like `https://api.openai.com`, `http://localhost:8080`,
//! `https://*.example.com`, `*://127.0.0.1:*`, `postgres://db:5432`,
//! `http://self` (this application) or `http://*.spin.internal` (service
//! chaining to other components). A port left out means the scheme's default.

use anyhow::{bail, Result};

/// One allowed destination pattern.
#[derive(Debug, Clone, PartialEq)]
struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
enum HostMatch {
    Any,
    Exact(String),
    Suffix(String),
}

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    patterns: Vec<HostPattern>,
}

impl AllowedHosts {
    /// Parses already-templated entries.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let patterns = entries
            .iter()
            .map(|e| HostPattern::parse(e))
            .collect::<Result<_>>()?;
        Ok(Self { patterns })
    }

    /// Whether `scheme://host:port` may be reached. `port` None means the
    /// scheme's default port.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let port = port.or_else(|| default_port(scheme));
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|p| p.matches(scheme, &host, port))
    }
}

impl HostPattern {
    fn parse(entry: &str) -> Result<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("allowed_outbound_hosts entry `{entry}` must look like `scheme://host[:port]`");
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            bail!("allowed_outbound_hosts entry `{entry}` must not contain a path");
        }
        let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, "*")) => (h, None),
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) => (h, Some(p)),
                Err(_) => bail!("allowed_outbound_hosts entry `{entry}` has an invalid port `{p}`"),
            },
            None => {
                let port = scheme.as_deref().and_then(default_port);
                if port.is_none() && scheme.is_some() && rest != "self" {
                    bail!("allowed_outbound_hosts entry `{entry}` needs a port");
                }
                (rest, port)
            }
        };
        if host.is_empty() {
            bail!("allowed_outbound_hosts entry `{entry}` has no host");
        }
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostMatch::Suffix(format!(".{suffix}"))
        } else {
            HostMatch::Exact(host)
        };
        Ok(Self { scheme, host, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host.ends_with(s.as_str()),
        };
        let port_ok = self.port.is_none() || self.port == port;
        scheme_ok && host_ok && port_ok
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_host_uses_default_port() {
        let h = hosts(&["https://api.openai.com"]);
        assert!(h.allows("https", "api.openai.com", None));
        assert!(h.allows("https", "API.openai.com", Some(443)));
        assert!(!h.allows("https", "api.openai.com", Some(8443)));
        assert!(!h.allows("http", "api.openai.com", None));
        assert!(!h.allows("https", "evil.com", None));
    }

    #[test]
    fn wildcards_for_scheme_host_and_port() {
        let h = hosts(&["*://127.0.0.1:*", "https://*.example.com"]);
        assert!(h.allows("http", "127.0.0.1", Some(9999)));
        assert!(h.allows("postgres", "127.0.0.1", Some(5432)));
        assert!(h.allows("https", "a.b.example.com", None));
        assert!(!h.allows("https", "example.com", None));
    }

    #[test]
    fn empty_list_allows_nothing() {
        assert!(!hosts(&[]).allows("http", "localhost", Some(80)));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "localhost",
            "http://",
            "http://h:port",
            "http://h/path",
            "ftp://h",
        ] {
            assert!(
                AllowedHosts::parse(&[bad.to_string()]).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
