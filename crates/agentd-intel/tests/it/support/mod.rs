//! Shared test helpers: fake providers, a raw TCP responder, the Python JSON-RPC server, and
//! registry builders.

pub mod fake;
pub mod python;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_intel::{Backends, CallObserver, CliIntel, RetryEvent, StartupError, StaticSecrets};
use agentd_workflow::model::IntelligenceConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use fake::{FakeProvider, Kind};

/// The key every fake accepts.
pub const GOOD_KEY: &str = "sk-good-key-0123456789";

/// Parses `[[backends]]` tables.
pub fn configs(toml_text: &str) -> IntelligenceConfig {
    toml::from_str(toml_text).expect("backend TOML")
}

/// Builds a registry from `[[backends]]` TOML and secrets.
pub fn build(toml_text: &str, secrets: &[(&str, &str)]) -> Result<Backends, StartupError> {
    let secrets = StaticSecrets::new(secrets.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Backends::build(&configs(toml_text).backends, &CliIntel::default(), Arc::new(secrets))
}

/// The TOML of a backend `b` pointing at `fake`, plus `extra` lines.
pub fn backend_toml(kind: Kind, base_url: &str, extra: &str) -> String {
    let model = if kind == Kind::Gemini { "gemini-test" } else { "test-model" };
    let provider = kind.provider();
    format!(
        "[[backends]]\nname = \"b\"\nprovider = \"{provider}\"\nmodel = \"{model}\"\napi_key_env = \"TEST_KEY\"\nbase_url = \"{base_url}\"\n{extra}\n"
    )
}

/// A registry with backend `b` → `fake`, sending `key`.
pub fn provider_backends(kind: Kind, fake: &FakeProvider, key: &str, extra: &str) -> Backends {
    build(&backend_toml(kind, &fake.base_url(), extra), &[("TEST_KEY", key)]).expect("backends")
}

/// A deadline `secs` from now.
pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Records retry events.
#[derive(Default)]
pub struct Retries(pub Mutex<Vec<RetryEvent>>);

impl CallObserver for Retries {
    fn on_retry(&self, event: &RetryEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Retries {
    pub fn events(&self) -> Vec<RetryEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// A TCP server that answers every connection with `response` verbatim, then closes. For
/// answers no well-behaved HTTP server would send (truncated bodies, garbage).
pub async fn raw_server(response: &'static [u8]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Read the request head and its body (Content-Length) before answering.
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buffer[..n]);
                    if request_complete(&seen) {
                        break;
                    }
                }
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

fn request_complete(seen: &[u8]) -> bool {
    let text = String::from_utf8_lossy(seen);
    let Some(head_end) = text.find("\r\n\r\n") else { return false };
    let length = text[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    seen.len() >= head_end + 4 + length
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}
