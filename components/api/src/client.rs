//! What the network says about the caller: their address and whether they
//! reached us over HTTPS. Forwarding headers (`X-Forwarded-For`,
//! `X-Forwarded-Proto`) are believed only when the connection comes from a
//! proxy listed in the `trusted_proxies` variable; from anyone else they
//! are ignored, since any client can write them.

use spin_sdk::http::Request;
use spin_sdk::variables;

use crate::http::header;

/// The caller as far as this request tells.
pub struct Client {
    /// The client's IP address (the proxy's, unless it is trusted).
    pub address: String,
    /// Whether the client's connection is HTTPS.
    pub https: bool,
}

impl Client {
    /// The caller of `req`.
    pub fn of(req: &Request) -> Self {
        let peer = header(req, "spin-client-addr")
            .map(strip_port)
            .unwrap_or_default();
        let listener_https =
            header(req, "spin-full-url").is_some_and(|u| u.starts_with("https://"));
        let trusted = variables::get("trusted_proxies").unwrap_or_default();
        let trusted: Vec<&str> = trusted
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if !trusted.contains(&peer.as_str()) {
            return Self {
                address: peer,
                https: listener_https,
            };
        }
        // The nearest untrusted hop of the chain is the client; each proxy
        // appends the address it was called from.
        let forwarded = header(req, "x-forwarded-for").unwrap_or_default();
        let address = forwarded
            .rsplit(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .find(|a| !trusted.contains(a))
            .unwrap_or(&peer)
            .to_string();
        let proto = header(req, "x-forwarded-proto")
            .and_then(|p| p.rsplit(',').next())
            .map(str::trim);
        Self {
            address,
            https: listener_https || proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
        }
    }

    /// Whether the session cookie gets `Secure`: the `secure_cookies`
    /// variable, `always`, `never`, or `auto` (default) for when the client
    /// reached us over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        match variables::get("secure_cookies").as_deref() {
            Ok("always") => true,
            Ok("never") => false,
            _ => self.https,
        }
    }
}

/// `ip` of `ip:port` or `[ip]:port`.
fn strip_port(address: &str) -> String {
    let ip = match address.rsplit_once(':') {
        Some((ip, port)) if port.chars().all(|c| c.is_ascii_digit()) => ip,
        _ => address,
    };
    ip.trim_start_matches('[').trim_end_matches(']').to_string()
}
