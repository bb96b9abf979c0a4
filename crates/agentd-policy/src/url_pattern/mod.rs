//! URL patterns, candidate URL normalisation and restricted addresses (`05-policy-budgets.md` §3.5).
//!
//! Pattern grammar:
//!
//! ```text
//! pattern   = "*" | scheme "://" host [ ":" port ] [ path ]
//! scheme    = "http" | "https"                       ; case-insensitive
//! host      = "*" | label *( "." label ) | IPv4 | "[" IPv6 "]"
//! label     = 1*( ALPHA / DIGIT / "-" / "*" )        ; "*" = zero or more chars within ONE label
//! port      = 1*5DIGIT | "*"                         ; omitted = the scheme's default port only
//! path      = path pattern of §3.1, starting with "/"; omitted = exactly "/"
//! ```
//!
//! Pattern hosts go through the same WHATWG host parser as candidate hosts (lower-casing, IDNA,
//! legacy IPv4 forms), so that a pattern and a request naming the same host always compare equal.

mod candidate;
mod restricted;

use std::fmt;
use std::net::Ipv6Addr;

pub(crate) use candidate::uppercase_percent_hex;
pub use candidate::{NormalizedUrl, UrlRejection, normalize_url};
pub use restricted::is_restricted;

use crate::glob::wildcard_match;
use crate::path_pattern::PathPattern;

/// One compiled URL pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    /// The pattern as written in the configuration.
    source: String,
    /// What it matches.
    kind: UrlKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlKind {
    /// `*`: any http/https URL.
    Any,
    /// `scheme://host[:port][path]`.
    Specific(Box<SpecificUrl>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecificUrl {
    /// `http` or `https`.
    scheme: String,
    host: HostPattern,
    port: PortPattern,
    path: PathPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: any host.
    Any,
    /// A host name or IP literal in normalised form (`[..]` for IPv6).
    Exact(String),
    /// Dot-separated labels, at least one containing `*`.
    Labels(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    /// `*`: any port.
    Any,
    /// One port (explicit, or the scheme default when omitted).
    Exact(u16),
}

impl UrlPattern {
    /// Parses one `[policy.http].urls` entry. The error string is the reason of a
    /// `policy_bad_pattern` finding.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("pattern is empty".to_owned());
        }
        if pattern.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("pattern contains a control or whitespace character".to_owned());
        }
        if pattern == "*" {
            return Ok(Self { source: pattern.to_owned(), kind: UrlKind::Any });
        }
        let Some((scheme, rest)) = pattern.split_once("://") else {
            return Err("expected `*` or `scheme://host[:port][/path]`".to_owned());
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme `{scheme}` is not allowed (only http and https)"));
        }
        if rest.contains('?') || rest.contains('#') {
            return Err("`?` and `#` are not allowed (the query never takes part in matching)".to_owned());
        }
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], Some(&rest[index..])),
            None => (rest, None),
        };
        if authority.contains('@') {
            return Err("userinfo (`user@`) is not allowed in a URL pattern".to_owned());
        }
        if authority.contains('\\') {
            return Err("`\\` is not allowed".to_owned());
        }
        let (host_text, port_text) = split_authority(authority)?;
        if host_text.is_empty() {
            return Err("host is empty".to_owned());
        }
        if path.is_none() && port_text.is_none() && host_text != "*" && host_text.ends_with('*') {
            return Err(format!(
                "`*` directly after the host is not a path prefix; write `{}/**`",
                pattern.trim_end_matches('*')
            ));
        }
        let host = parse_host_pattern(host_text)?;
        let port = match port_text {
            None => PortPattern::Exact(default_port(&scheme)),
            Some("*") => PortPattern::Any,
            Some(text) => PortPattern::Exact(parse_port(text)?),
        };
        let path = match path {
            None => PathPattern::url_root(),
            Some(path) => PathPattern::parse_url_path(path).map_err(|reason| format!("path: {reason}"))?,
        };
        Ok(Self {
            source: pattern.to_owned(),
            kind: UrlKind::Specific(Box::new(SpecificUrl { scheme, host, port, path })),
        })
    }

    /// Whether the normalised candidate matches: scheme equal, host equal (or label-glob match),
    /// port equal (or `*`), path by §3.1. The query never takes part.
    pub fn matches(&self, url: &NormalizedUrl) -> bool {
        match &self.kind {
            UrlKind::Any => url.scheme == "http" || url.scheme == "https",
            UrlKind::Specific(specific) => {
                specific.scheme == url.scheme
                    && specific.host.matches(&url.host)
                    && match specific.port {
                        PortPattern::Any => true,
                        PortPattern::Exact(port) => port == url.port,
                    }
                    && specific.path.matches_bytes(url.path.as_bytes())
            }
        }
    }

    /// Whether this pattern names `host` (normalised form, as in [`NormalizedUrl::host`])
    /// exactly: no `*` in its host part and not the pattern `*`. Only such patterns may reach a
    /// restricted address.
    pub fn names_host_exactly(&self, host: &str) -> bool {
        match &self.kind {
            UrlKind::Specific(specific) => {
                matches!(&specific.host, HostPattern::Exact(exact) if exact == host)
            }
            UrlKind::Any => false,
        }
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.source)
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => exact == host,
            Self::Labels(labels) => {
                let candidate: Vec<&str> = host.split('.').collect();
                candidate.len() == labels.len()
                    && labels
                        .iter()
                        .zip(candidate)
                        .all(|(label, part)| wildcard_match(label.as_bytes(), part.as_bytes()))
            }
        }
    }
}

/// The default port of `http` / `https`.
pub(crate) fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Splits `host[:port]` (with `[..]` IPv6 hosts) into its parts.
fn split_authority(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let Some(end) = authority.find(']') else {
            return Err("unterminated `[` in IPv6 host".to_owned());
        };
        let (host, after) = authority.split_at(end + 1);
        if after.is_empty() {
            return Ok((host, None));
        }
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None => Err(format!("unexpected `{after}` after the IPv6 host")),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// `1*5DIGIT`, at most 65535.
fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("invalid port `{text}` (digits or `*`)"));
    }
    text.parse::<u16>().map_err(|_| format!("port `{text}` is out of range"))
}

/// Normalises a pattern host: IPv6 literal, label glob, or a plain host parsed like a candidate.
fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(inner) = text.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err("unterminated `[` in IPv6 host".to_owned());
        };
        if inner.contains('*') {
            return Err("`*` is not allowed in an IPv6 literal".to_owned());
        }
        let address: Ipv6Addr = inner.parse().map_err(|_| format!("invalid IPv6 address `{inner}`"))?;
        return Ok(HostPattern::Exact(format!("[{address}]")));
    }
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.contains('*') {
        let mut labels = Vec::new();
        for label in text.split('.') {
            labels.push(glob_host_label(label)?);
        }
        return Ok(HostPattern::Labels(labels));
    }
    match url::Host::parse(text) {
        Ok(url::Host::Domain(domain)) => {
            let domain = domain.strip_suffix('.').unwrap_or(&domain).to_owned();
            for label in domain.split('.') {
                check_label(label)?;
            }
            Ok(HostPattern::Exact(domain))
        }
        Ok(url::Host::Ipv4(address)) => Ok(HostPattern::Exact(address.to_string())),
        Ok(url::Host::Ipv6(address)) => Ok(HostPattern::Exact(format!("[{address}]"))),
        Err(error) => Err(format!("invalid host `{text}`: {error}")),
    }
}

/// One label of a wildcard host: labels with `*` must be ASCII; the others are IDNA-converted.
fn glob_host_label(label: &str) -> Result<String, String> {
    if label.contains('*') {
        if !label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'*') {
            return Err(format!(
                "invalid host label `{label}` (a label with `*` may only hold ASCII letters, digits and `-`)"
            ));
        }
        return Ok(label.to_ascii_lowercase());
    }
    let ascii = if label.is_ascii() {
        label.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(label).map_err(|_| format!("invalid host label `{label}`"))?
    };
    if ascii.contains('.') {
        return Err(format!("invalid host label `{label}`"));
    }
    check_label(&ascii)?;
    Ok(ascii)
}

/// `1*( ALPHA / DIGIT / "-" )` (the `*` of glob labels is removed before this check).
fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("host has an empty label".to_owned());
    }
    if !label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-') {
        return Err(format!("invalid host label `{label}` (letters, digits, `-` and `*` only)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> NormalizedUrl {
        normalize_url(raw).unwrap()
    }

    #[test]
    fn host_globs_stay_within_one_label() {
        let pattern = UrlPattern::parse("https://*.example.com/**").unwrap();
        assert!(pattern.matches(&url("https://api.example.com/x")));
        assert!(!pattern.matches(&url("https://example.com/x")));
        assert!(!pattern.matches(&url("https://a.b.example.com/x")));
        let partial = UrlPattern::parse("https://api-*.example.com/**").unwrap();
        assert!(partial.matches(&url("https://api-eu.example.com/")));
        assert!(!partial.matches(&url("https://web.example.com/")));
    }

    #[test]
    fn pattern_hosts_are_normalised_like_candidates() {
        let pattern = UrlPattern::parse("http://127.1/**").unwrap();
        assert!(pattern.names_host_exactly("127.0.0.1"));
        let pattern = UrlPattern::parse("https://API.Example.COM./v1/**").unwrap();
        assert!(pattern.names_host_exactly("api.example.com"));
        let pattern = UrlPattern::parse("https://bücher.de/**").unwrap();
        assert!(pattern.names_host_exactly("xn--bcher-kva.de"));
        let pattern = UrlPattern::parse("https://*.bücher.de/**").unwrap();
        assert!(pattern.matches(&url("https://www.bücher.de/x")));
        let pattern = UrlPattern::parse("http://[::FFFF:127.0.0.1]:8080/").unwrap();
        assert!(pattern.matches(&url("http://[::ffff:7f00:1]:8080/")));
    }

    #[test]
    fn ports() {
        let default = UrlPattern::parse("https://h.example/**").unwrap();
        assert!(default.matches(&url("https://h.example:443/a")));
        assert!(!default.matches(&url("https://h.example:444/a")));
        let any = UrlPattern::parse("https://h.example:*/**").unwrap();
        assert!(any.matches(&url("https://h.example:444/a")));
        assert!(UrlPattern::parse("https://h.example:65536/").is_err());
        assert!(UrlPattern::parse("https://h.example:/").is_err());
    }

    #[test]
    fn omitted_path_is_exactly_root() {
        let pattern = UrlPattern::parse("https://h.example").unwrap();
        assert!(pattern.matches(&url("https://h.example")));
        assert!(pattern.matches(&url("https://h.example/?q=1")));
        assert!(!pattern.matches(&url("https://h.example/a")));
    }
}
