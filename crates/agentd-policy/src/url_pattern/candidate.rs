//! Candidate URL normalisation (§3.5 steps 1–7).
//!
//! The runtime sends exactly the URL produced here ([`NormalizedUrl::as_str`]), so the URL that
//! was checked is the URL that is requested. Parsing is the WHATWG algorithm (the `url` crate);
//! the extra rules on top of it close the gaps between what WHATWG accepts and what an allowlist
//! can safely reason about: raw control characters (which WHATWG silently strips), userinfo, and
//! path segments that only turn into separators or dot segments after (repeated) decoding.

use std::fmt;
use std::net::IpAddr;

use super::default_port;

/// How many rounds of percent-decoding a path segment is inspected through. A segment that still
/// changes after that many rounds is treated as hostile.
const MAX_DECODE_ROUNDS: usize = 8;

/// A candidate URL after §3.5 normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case ASCII host without a trailing dot: an IDNA-converted name, an IPv4 address in
    /// dotted-quad form, or an IPv6 address in `[..]` form.
    pub host: String,
    /// The explicit port, else 80 / 443.
    pub port: u16,
    /// The path: dot segments removed, percent-encoding hex digits upper-cased; starts with `/`.
    pub path: String,
    /// The query (without `?`), kept but never matched. `Some("")` for a bare `?`.
    pub query: Option<String>,
}

impl NormalizedUrl {
    /// The exact URL to send: `scheme://host[:port]path[?query]`, the port only when it is not
    /// the scheme's default, never a fragment.
    pub fn as_str(&self) -> String {
        let mut url = format!("{}://{}", self.scheme, self.host);
        if self.port != default_port(&self.scheme) {
            url.push(':');
            url.push_str(&self.port.to_string());
        }
        url.push_str(&self.path);
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The host as an IP address when it is an IP literal (it then "resolves to itself").
    pub fn ip_literal(&self) -> Option<IpAddr> {
        let bare = self.host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(&self.host);
        bare.parse().ok()
    }

    /// The host as it goes on the wire for name resolution (IPv6 without brackets).
    pub fn host_for_resolution(&self) -> &str {
        self.host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(&self.host)
    }
}

impl fmt::Display for NormalizedUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.as_str())
    }
}

/// Why a candidate URL was denied before matching. `Display` is the exact rule reason of §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum UrlRejection {
    /// Step 1: ASCII control characters, space or non-ASCII whitespace in the raw string.
    #[error("URL contains control or whitespace characters")]
    ControlOrWhitespace,
    /// Step 2/3: not a parseable http(s) URL (includes IPv6 zone ids and empty hosts).
    #[error("URL is not a valid http(s) URL")]
    NotHttp,
    /// Step 3: `user:pass@` (even empty) before the host.
    #[error("URL has userinfo")]
    Userinfo,
    /// Step 6: an encoded `/`, `\` or NUL, or a segment that decodes to `.` / `..`.
    #[error("URL path has an encoded separator or dot segment")]
    EncodedSeparatorOrDotSegment,
}

/// Normalises a candidate URL (§3.5 steps 1–7) or says why it is denied.
pub fn normalize_url(raw: &str) -> Result<NormalizedUrl, UrlRejection> {
    // Step 1. `is_control` also covers C1 controls, which are never legitimate in a URL.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(UrlRejection::ControlOrWhitespace);
    }
    // Step 2.
    let parsed = url::Url::parse(raw).map_err(|_| UrlRejection::NotHttp)?;
    let scheme = parsed.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(UrlRejection::NotHttp);
    }
    // Step 3. WHATWG drops an empty userinfo (`https://@host/`) silently; look at the raw text.
    if !parsed.username().is_empty() || parsed.password().is_some() || raw_authority_has_at(raw) {
        return Err(UrlRejection::Userinfo);
    }
    // Step 4. Zone ids are unparseable for WHATWG, so they were rejected in step 2.
    let host = match parsed.host() {
        Some(url::Host::Domain(domain)) => {
            let domain = domain.to_ascii_lowercase();
            let domain = domain.strip_suffix('.').unwrap_or(&domain).to_owned();
            if domain.is_empty() || domain.ends_with('.') {
                return Err(UrlRejection::NotHttp);
            }
            domain
        }
        Some(url::Host::Ipv4(address)) => address.to_string(),
        Some(url::Host::Ipv6(address)) => format!("[{address}]"),
        None => return Err(UrlRejection::NotHttp),
    };
    // Step 5.
    let port = parsed.port_or_known_default().unwrap_or_else(|| default_port(scheme));
    // Step 6. WHATWG already removed dot segments, including their `%2e` spellings.
    let path = uppercase_percent_hex(parsed.path());
    if path.split('/').any(segment_is_hostile) {
        return Err(UrlRejection::EncodedSeparatorOrDotSegment);
    }
    // Step 7: the fragment is dropped by not copying it.
    Ok(NormalizedUrl { scheme: scheme.to_owned(), host, port, path, query: parsed.query().map(str::to_owned) })
}

/// Whether the authority of the raw URL contains `@` (WHATWG: the authority starts after the
/// scheme's `:` and any run of `/` or `\`, and ends at the first `/`, `\`, `?` or `#`).
fn raw_authority_has_at(raw: &str) -> bool {
    let Some((_, after_scheme)) = raw.split_once(':') else {
        return false;
    };
    let authority_and_rest = after_scheme.trim_start_matches(['/', '\\']);
    let authority = authority_and_rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// Whether a path segment, at any depth of percent-decoding, holds `/`, `\` or NUL, or is `.` or
/// `..`. Decoding repeatedly also catches double encodings such as `%252F`, which a server that
/// decodes twice would turn into a separator.
fn segment_is_hostile(segment: &str) -> bool {
    let mut current = segment.as_bytes().to_vec();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded = percent_decode(&current);
        if decoded.iter().any(|&byte| matches!(byte, b'/' | b'\\' | 0)) || decoded == b"." || decoded == b".." {
            return true;
        }
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    true
}

/// One round of percent-decoding; malformed escapes are kept as they are.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len());
    let mut index = 0;
    while let Some(&byte) = input.get(index) {
        if byte == b'%'
            && let (Some(high), Some(low)) =
                (input.get(index + 1).and_then(|&c| hex_value(c)), input.get(index + 2).and_then(|&c| hex_value(c)))
        {
            output.push(high * 16 + low);
            index += 3;
            continue;
        }
        output.push(byte);
        index += 1;
    }
    output
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Upper-cases the two hex digits of every well-formed `%XX` escape.
pub(crate) fn uppercase_percent_hex(input: &str) -> String {
    let mut bytes = input.as_bytes().to_vec();
    let mut index = 0;
    while index < bytes.len() {
        let is_escape = bytes.get(index) == Some(&b'%')
            && bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit);
        if is_escape {
            if let Some(escape) = bytes.get_mut(index + 1..index + 3) {
                escape.make_ascii_uppercase();
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    // Only ASCII hex digits changed, so the bytes are still valid UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| input.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercases_escapes_only() {
        assert_eq!(uppercase_percent_hex("/a%2fb%zz%e9x%"), "/a%2Fb%zz%E9x%");
        assert_eq!(uppercase_percent_hex("/é%c3%a9"), "/é%C3%A9");
    }

    #[test]
    fn hostile_segments() {
        assert!(segment_is_hostile("%2e"));
        assert!(segment_is_hostile("..%2Fadmin"));
        assert!(segment_is_hostile("a%5Cb"));
        assert!(segment_is_hostile("%00"));
        assert!(segment_is_hostile("%252F"));
        assert!(segment_is_hostile("%252e%252e"));
        assert!(!segment_is_hostile("%2e%2ex"));
        assert!(!segment_is_hostile("100%25"));
        assert!(!segment_is_hostile("plain"));
    }

    #[test]
    fn as_str_omits_default_ports_and_fragments() {
        let url = normalize_url("HTTPS://Example.COM.:443/a/./b/../c?x=1#frag").unwrap();
        assert_eq!(url.as_str(), "https://example.com/a/c?x=1");
        let url = normalize_url("http://example.com:8080").unwrap();
        assert_eq!(url.as_str(), "http://example.com:8080/");
    }
}
