//! What the hub borrows from the rest of the runtime: the secrets registry (`08` §3) and the
//! audit sink (`08` §4). Both are traits so the engine can plug in its own, and tests can use the
//! small implementations here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;

/// A boxed future returned by [`SecretResolver::resolve`].
pub type SecretFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// Resolves secret names (`[[mcp_servers]].env` values and `{{secret:NAME}}` header
/// placeholders). The error is the reason text of ``secret `NAME`: <reason>``.
pub trait SecretResolver: Send + Sync {
    /// The current value of secret `name`.
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a>;
}

/// Resolves every secret from the process environment (the registry's fallback, `08` §3.2).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvironmentSecrets;

impl SecretResolver for EnvironmentSecrets {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(value),
                _ => Err(format!("not declared in [[secrets]] and environment variable `{name}` is not set")),
            }
        })
    }
}

/// Severity of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLevel {
    /// Informational.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

/// Receives the `mcp.*` audit events of `08` §4.4.
pub trait AuditEvents: Send + Sync {
    /// Emits one event; `fields` is a JSON object.
    fn emit(&self, level: AuditLevel, event: &str, fields: Value);
}

/// Forwards audit events to `tracing` on target `agentd::audit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAudit;

impl AuditEvents for TracingAudit {
    fn emit(&self, level: AuditLevel, event: &str, fields: Value) {
        match level {
            AuditLevel::Info => tracing::info!(target: "agentd::audit", event, fields = %fields),
            AuditLevel::Warn => tracing::warn!(target: "agentd::audit", event, fields = %fields),
            AuditLevel::Error => tracing::error!(target: "agentd::audit", event, fields = %fields),
        }
    }
}

/// Keeps audit events in memory (tests).
#[derive(Debug, Default)]
pub struct CollectingAudit {
    events: Mutex<Vec<(AuditLevel, String, Value)>>,
}

impl CollectingAudit {
    /// Every event emitted so far, in order.
    pub fn events(&self) -> Vec<(AuditLevel, String, Value)> {
        self.events.lock().map(|events| events.clone()).unwrap_or_default()
    }

    /// The names of the events emitted so far, in order.
    pub fn names(&self) -> Vec<String> {
        self.events().into_iter().map(|(_, name, _)| name).collect()
    }
}

impl AuditEvents for CollectingAudit {
    fn emit(&self, level: AuditLevel, event: &str, fields: Value) {
        if let Ok(mut events) = self.events.lock() {
            events.push((level, event.to_owned(), fields));
        }
    }
}

/// Replaces every occurrence of a known secret value (at least 4 bytes, `08` §6) with
/// `<redacted>`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrubber {
    values: Vec<String>,
}

impl Scrubber {
    /// Remembers `value` as secret.
    pub(crate) fn add(&mut self, value: &str) {
        if value.len() >= 4 && !self.values.iter().any(|known| known == value) {
            self.values.push(value.to_owned());
            // Longest first, so a secret that contains another is replaced whole.
            self.values.sort_by_key(|known| std::cmp::Reverse(known.len()));
        }
    }

    /// `text` with every known secret value replaced.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut scrubbed = text.to_owned();
        for value in &self.values {
            if scrubbed.contains(value.as_str()) {
                scrubbed = scrubbed.replace(value.as_str(), "<redacted>");
            }
        }
        scrubbed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrubber_replaces_long_values_only() {
        let mut scrubber = Scrubber::default();
        scrubber.add("abc");
        scrubber.add("s3cr3t-token");
        scrubber.add("s3cr3t");
        assert_eq!(scrubber.scrub("abc s3cr3t-token s3cr3t"), "abc <redacted> <redacted>");
    }
}
