//! `http_request`: outbound HTTP under the URL policy (04 §5.1, 05 §3.5).
//!
//! The order is fixed: normalise the URL, match it against policy, resolve the host once, apply
//! the restricted-address rule to every answer, and then connect only to the addresses that were
//! checked. The HTTP client never resolves a name itself (its resolver refuses every lookup and
//! the checked addresses are handed to it as overrides), ignores proxy variables, and never
//! follows redirects, so neither DNS rebinding nor a 3xx can move the request somewhere else.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agentd_policy::{Decision, NormalizedUrl, Policy};

use crate::Error;

/// Request bodies larger than this are refused (04 §5.1 step 4).
pub const MAX_REQUEST_BODY: usize = 1_048_576;
/// Response bodies are kept up to this many bytes (04 §5.1 step 10).
pub const MAX_RESPONSE_BODY: usize = 1_048_576;
/// Connect timeout (04 §5.1 step 9).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-exchange timeout (04 §5.1 step 9).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many pinned clients are kept for connection reuse.
const CLIENT_CACHE_SIZE: usize = 64;

/// A boxed lookup future.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Name resolution, injectable so tests can give host names the answers of 05 §3.5.
pub trait Resolver: Send + Sync {
    /// Every address `host` resolves to.
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a>;
}

/// The system resolver (`getaddrinfo` through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A request that passed policy: the exact URL to send and the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Upper-cased method.
    pub method: String,
    /// The normalised URL (what is sent).
    pub url: NormalizedUrl,
    /// The checked addresses, with the URL's port.
    pub addrs: Vec<SocketAddr>,
}

impl Target {
    /// `METHOD url`, the target text of denials and audit events.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// Checks `METHOD raw_url` against policy and resolves the host (05 §3.5). A URL that cannot be
/// normalised is a denial when `[policy]` is present and a tool error without it (04 §5.1 step 6).
pub async fn check(
    op: &'static str,
    policy: &Policy,
    resolver: &dyn Resolver,
    method: &str,
    raw_url: &str,
) -> Result<Target, Error> {
    let method = method.to_ascii_uppercase();
    let url = match agentd_policy::normalize_url(raw_url) {
        Ok(url) => url,
        Err(rejection) if policy.is_allow_all() => {
            return Err(Error::Failed(format!("invalid URL `{}`: {rejection}", shown_raw(raw_url))));
        }
        Err(rejection) => {
            let decision = Decision::deny(agentd_policy::Family::Http, rejection.to_string());
            return Err(Error::Denied { op, target: format!("{method} {}", shown_raw(raw_url)), decision });
        }
    };
    let decision = policy.check_http(&method, &url);
    if !decision.allowed {
        return Err(Error::Denied { op, target: format!("{method} {url}"), decision });
    }
    let ips = match url.ip_literal() {
        Some(ip) => vec![ip],
        None => resolve(resolver, &url).await?,
    };
    let decision = policy.restricted_address_decision(&url, &ips);
    if !decision.allowed {
        return Err(Error::Denied { op, target: format!("{method} {url}"), decision });
    }
    let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, url.port)).collect();
    Ok(Target { method, url, addrs })
}

async fn resolve(resolver: &dyn Resolver, url: &NormalizedUrl) -> Result<Vec<IpAddr>, Error> {
    let host = url.host_for_resolution();
    let mut ips = resolver.lookup(host, url.port).await.map_err(|e| Error::Failed(format!("resolve {host}: {e}")))?;
    ips.sort_unstable();
    ips.dedup();
    if ips.is_empty() {
        return Err(Error::Failed(format!("resolve {host}: no addresses")));
    }
    Ok(ips)
}

/// A raw URL as shown in messages: control characters escaped, cut to 200 characters.
fn shown_raw(raw: &str) -> String {
    agentd_policy::truncate_target(&raw.escape_debug().to_string())
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The checked target.
    pub target: Target,
    /// Declared headers with placeholders already resolved, in name order. Values are secret
    /// material: they never appear in outputs or messages.
    pub headers: Vec<(String, String)>,
    /// Body bytes, if any.
    pub body: Option<Vec<u8>>,
    /// Whole-exchange timeout (already limited by the run's remaining time).
    pub timeout: Duration,
    /// W3C trace context headers to propagate (`traceparent`, `tracestate`).
    pub trace_headers: Vec<(String, String)>,
}

/// A response, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Lower-cased names; repeated values joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The kept body bytes.
    pub body: Vec<u8>,
    /// Whether the body was cut at [`MAX_RESPONSE_BODY`].
    pub truncated: bool,
}

/// The HTTP client of `http_request`: one pinned client per (host, checked addresses), reused
/// so connections are kept alive, sharing one TLS configuration.
#[derive(Default)]
pub struct Client {
    clients: Mutex<Vec<(String, Vec<SocketAddr>, reqwest::Client)>>,
}

impl Client {
    /// An empty client cache.
    pub fn new() -> Client {
        Client::default()
    }

    /// Sends a checked request. Errors are transport failures (DNS is already done): connect,
    /// TLS, read/write and timeout, as text that never includes header values.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        let client = self.pinned(&request.target)?;
        let target = &request.target;
        let method = reqwest::Method::from_bytes(target.method.as_bytes())
            .map_err(|_| Error::Failed(format!("invalid method `{}`", target.method.escape_debug())))?;
        let url = target.url.as_str();
        let mut builder = client.request(method, &url).timeout(request.timeout);
        let declares_content_type = request.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if request.body.is_some() && !declares_content_type {
            builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in request.trace_headers.iter().chain(&request.headers) {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Failed(format!("header `{}`: invalid header name", name.escape_debug())))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| Error::Failed(format!("header `{name}`: value is not a valid header value")))?;
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| transport_error(&target.method, &url, &e))?;
        read_response(response, &target.method, &url).await
    }

    fn pinned(&self, target: &Target) -> Result<reqwest::Client, Error> {
        let host = target.url.host_for_resolution().to_string();
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, _, client)) = clients.iter().find(|(h, a, _)| *h == host && *a == target.addrs) {
            return Ok(client.clone());
        }
        let client = build_client(&host, &target.addrs)?;
        if clients.len() >= CLIENT_CACHE_SIZE {
            clients.remove(0);
        }
        clients.push((host, target.addrs.clone(), client.clone()));
        Ok(client)
    }
}

fn build_client(host: &str, addrs: &[SocketAddr]) -> Result<reqwest::Client, Error> {
    let tls = tls_config().map_err(|e| Error::Failed(format!("TLS setup: {e}")))?;
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
        .http1_only()
        .dns_resolver(Arc::new(RefuseResolver))
        .tls_backend_preconfigured(tls);
    // An IP literal needs no override: the client connects to it directly.
    if host.parse::<IpAddr>().is_err() {
        builder = builder.resolve_to_addrs(host, addrs);
    }
    builder.build().map_err(|e| Error::Failed(format!("HTTP client setup: {}", error_chain(&e))))
}

/// The shared TLS configuration: the platform's web PKI roots (which honour `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`), certificates always verified.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_platform_verifier()
                .map_err(|e| e.to_string())?
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(config)
        })
        .clone()
}

/// The client's own resolver refuses every name: only the checked addresses (given as overrides)
/// can be reached.
struct RefuseResolver;

impl reqwest::dns::Resolve for RefuseResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            Err(format!("refusing to resolve `{name}`: only policy-checked addresses are reachable").into())
        })
    }
}

async fn read_response(mut response: reqwest::Response, method: &str, url: &str) -> Result<Response, Error> {
    let status = response.status().as_u16();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(method, url, &e))? {
        let room = MAX_RESPONSE_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, headers, body, truncated })
}

fn transport_error(method: &str, url: &str, error: &reqwest::Error) -> Error {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connect failed"
    } else {
        "request failed"
    };
    Error::Failed(format!("{method} {url}: {what}: {}", error_chain(error)))
}

/// The error and its sources on one line, without repeating reqwest's URL prefix.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    if parts.is_empty() { error.to_string() } else { parts.join(": ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_of_plain_error_is_its_text() {
        let e = std::io::Error::other("boom");
        assert_eq!(error_chain(&e), "boom");
    }

    #[test]
    fn shown_raw_escapes_controls() {
        assert_eq!(shown_raw("http://a/\r\nx"), "http://a/\\r\\nx");
    }
}
