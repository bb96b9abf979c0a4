//! The HTTP client shared by the providers and the JSON-RPC HTTP transport: no redirects, a
//! connect timeout, bounded bodies, and transport errors described without URLs or secrets.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::config::Settings;
use crate::retry::{self, Failure, Retry};
use crate::secrets::Scrubber;

/// Body cap for provider answers (06 §3).
pub(crate) const PROVIDER_BODY_CAP: usize = 16 * 1024 * 1024;
/// Body cap for JSON-RPC HTTP answers (06 §4.3).
pub(crate) const RPC_BODY_CAP: usize = 4 * 1024 * 1024;
/// How much of an error body is read to build an excerpt.
const ERROR_BODY_READ: usize = 64 * 1024;
/// Characters of an error body kept in error texts.
const EXCERPT_CHARS: usize = 400;

/// Builds the client of one backend.
pub(crate) fn client(settings: &Settings) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", describe(&e)))
}

/// A non-2xx answer.
pub(crate) struct StatusReply {
    pub status: u16,
    /// First 400 characters of the body, single line, secrets scrubbed.
    pub excerpt: String,
    /// Requested delay, when the status is retryable.
    pub retry: Retry,
}

/// A POST to make.
pub(crate) struct Post<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub cap: usize,
    /// Prefix for transport error texts (`anthropic`, `http`).
    pub label: &'a str,
    pub scrubber: &'a Scrubber,
}

impl Post<'_> {
    /// Sends the request. `Ok(Ok(body))` for 2xx, `Ok(Err(reply))` for other statuses.
    pub(crate) async fn send(self) -> Result<Result<Bytes, StatusReply>, Failure> {
        let mut headers = self.headers;
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
        let request = self.client.post(self.url.clone()).headers(headers).body(self.body);
        // Nothing has been answered yet, so every failure here is a connection failure (06 §6).
        let mut response = request
            .send()
            .await
            .map_err(|e| Failure::transient(self.scrubber.scrub(&format!("{}: {}", self.label, describe(&e)))))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            let body = read_capped(&mut response, self.cap, self.label, self.scrubber).await?;
            return Ok(Ok(body));
        }
        let retry = if retry::is_retryable_status(status) {
            Retry::After(retry::retry_after(response.headers(), SystemTime::now()))
        } else {
            Retry::Never
        };
        let prefix = read_prefix(&mut response, ERROR_BODY_READ).await;
        let excerpt = excerpt(&self.scrubber.scrub(&String::from_utf8_lossy(&prefix)));
        Ok(Err(StatusReply { status, excerpt, retry }))
    }
}

/// Reads the whole body, refusing more than `cap` bytes without buffering them.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
    label: &str,
    scrubber: &Scrubber,
) -> Result<Bytes, Failure> {
    let too_large = || Failure::fatal(format!("{label}: response body exceeds {cap} bytes"));
    if response.content_length().is_some_and(|len| len > cap as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            Failure::fatal(scrubber.scrub(&format!("{label}: reading the response body failed: {}", describe(&e))))
        })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads at most `limit` bytes of an error body; read errors just end the excerpt.
async fn read_prefix(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// First 400 characters, control characters (newlines included) turned into spaces.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A reqwest error and its causes, without the URL (which is in the backend definition anyway).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() && error.is_connect() {
        "connect timed out".to_string()
    } else if error.is_connect() {
        "connection failed".to_string()
    } else if error.is_body() || error.is_decode() {
        "body error".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(error);
    let mut last = String::new();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their inner error verbatim; keep each text once.
        if !cause_text.is_empty() && !last.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        last = cause_text;
        source = cause.source();
    }
    excerpt(&text)
}

/// Inserts a header, refusing values that are not valid header text.
pub(crate) fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), Failure> {
    let name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| Failure::fatal(format!("invalid header name `{name}`")))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| Failure::fatal(format!("header `{name}` has a value that is not valid header text")))?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_line_and_short() {
        let long = "a\nb\r\tc".to_string() + &"x".repeat(1000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), 400);
        assert!(e.starts_with("a b  c"));
    }
}
