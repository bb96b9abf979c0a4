//! Audit events (08 §4): named events with structured fields, emitted through one sink.
//!
//! The default sink forwards them as `tracing` events on target `agentd::audit`; tests install a
//! collecting sink and assert on what was emitted.

use std::sync::Mutex;

use serde_json::Value;

/// Severity of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Informational.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Emits one event; `fields` is a JSON object.
    fn emit(&self, level: Level, event: &str, fields: Value);

    /// Whether events already appear in the operational log (so a warning that must be both a
    /// log line and an audit event is logged only once).
    fn is_operational_log(&self) -> bool {
        false
    }
}

/// Forwards audit events to `tracing` (target `agentd::audit`).
pub struct TracingAudit;

impl AuditSink for TracingAudit {
    fn emit(&self, level: Level, event: &str, fields: Value) {
        match level {
            Level::Info => tracing::info!(target: "agentd::audit", event, fields = %fields),
            Level::Warn => tracing::warn!(target: "agentd::audit", event, fields = %fields),
            Level::Error => tracing::error!(target: "agentd::audit", event, fields = %fields),
        }
    }

    fn is_operational_log(&self) -> bool {
        true
    }
}

/// Collects events in memory (tests, records).
#[derive(Default)]
pub struct CollectingAudit {
    events: Mutex<Vec<(Level, String, Value)>>,
}

impl CollectingAudit {
    /// The events emitted so far.
    pub fn events(&self) -> Vec<(Level, String, Value)> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl AuditSink for CollectingAudit {
    fn emit(&self, level: Level, event: &str, fields: Value) {
        if let Ok(mut events) = self.events.lock() {
            events.push((level, event.to_string(), fields));
        }
    }
}
