//! Installing operational logging and the audit sink (08 §4), precedence CLI > env >
//! `[logging]` > defaults.

use std::io::Write;
use std::sync::{Arc, Mutex};

use agentd_engine::audit::{AuditSink, Level, TracingAudit};
use agentd_workflow::{AuditConfig, LoggingConfig};
use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;

use crate::flags::Settings;

/// Installs the subscriber; returns the audit sink runs should use.
pub fn install(settings: &Settings, config: Option<&LoggingConfig>) -> Result<Arc<dyn AuditSink>, String> {
    let config = config.cloned().unwrap_or_default();
    let level = settings.text("log-level").or(config.level.clone()).unwrap_or_else(|| "warn".to_string());
    let format = settings.text("log-format").or(config.format.clone()).unwrap_or_else(|| "text".to_string());
    let target = settings.text("log-target").or(config.target.clone()).unwrap_or_else(|| "stderr".to_string());
    let enabled = !settings.switch("quiet") && config.enabled.unwrap_or(true);
    if !matches!(format.as_str(), "text" | "pretty" | "json") {
        return Err(format!("[logging].format `{format}` must be text, pretty or json"));
    }
    if let Some(rotation) = config.rotation.as_deref().filter(|r| *r != "never") {
        if !matches!(rotation, "daily" | "hourly" | "minutely") {
            return Err(format!("[logging].rotation `{rotation}` must be never, daily, hourly or minutely"));
        }
        crate::output::note(format_args!(
            "warning: [logging].rotation = \"{rotation}\" is not available in this build; logging to one file"
        ));
    }
    let filter = match EnvFilter::try_new(&level) {
        Ok(f) => f,
        Err(_) => {
            crate::output::note(format_args!("warning: log level `{level}` does not parse; using `info`"));
            EnvFilter::new("info")
        }
    };
    let audit: Arc<dyn AuditSink> = match &config.audit {
        Some(audit) => Arc::new(JsonlAudit::open(audit)?),
        None => Arc::new(TracingAudit),
    };
    if config.otel.is_some() {
        crate::output::note("warning: [logging.otel] export is not available in this build; spans are not exported");
    }
    if !enabled {
        return Ok(audit);
    }
    let writer = Writer::open(&target)?;
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(move || writer.clone());
    let installed = if format == "json" { builder.json().try_init() } else { builder.try_init() };
    installed.map_err(|e| format!("logging install failed: {e}"))?;
    Ok(audit)
}

/// Where log lines go.
#[derive(Clone)]
enum Writer {
    Stderr,
    Stdout,
    File(Arc<Mutex<std::fs::File>>),
}

impl Writer {
    fn open(target: &str) -> Result<Writer, String> {
        Ok(match target {
            "stderr" => Writer::Stderr,
            "stdout" => Writer::Stdout,
            other => {
                let path = other
                    .strip_prefix("file:")
                    .ok_or_else(|| format!("log target `{other}` must be stderr, stdout or file:PATH"))?;
                Writer::File(Arc::new(Mutex::new(open_append(path)?)))
            }
        })
    }
}

fn open_append(path: &str) -> Result<std::fs::File, String> {
    let path = std::path::Path::new(path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Writer::Stderr => std::io::stderr().write(buf),
            Writer::Stdout => std::io::stdout().write(buf),
            Writer::File(f) => f.lock().map_err(|_| std::io::Error::other("log file lock poisoned"))?.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Writer::Stderr => std::io::stderr().flush(),
            Writer::Stdout => std::io::stdout().flush(),
            Writer::File(f) => f.lock().map_err(|_| std::io::Error::other("log file lock poisoned"))?.flush(),
        }
    }
}

/// Field names whose values are always redacted (08 §4.3).
const REDACTED_FIELDS: [&str; 9] =
    ["token", "secret", "password", "authorization", "api_key", "bearer", "jwt", "cookie", "session"];

/// The `[logging.audit]` sink: one JSON line per event, written and flushed synchronously,
/// whatever the log level and even with `--quiet`.
struct JsonlAudit {
    writer: Mutex<Writer>,
    redact: Vec<String>,
    include_reason: bool,
}

impl JsonlAudit {
    fn open(config: &AuditConfig) -> Result<JsonlAudit, String> {
        let target = config.target.clone().unwrap_or_else(|| "file:/var/log/agent/audit.jsonl".to_string());
        let writer = Writer::open(&target).map_err(|e| format!("[logging.audit]: {e}"))?;
        let mut redact: Vec<String> = REDACTED_FIELDS.iter().map(|s| s.to_string()).collect();
        redact.extend(config.redact_fields.iter().map(|f| f.to_ascii_lowercase()));
        Ok(JsonlAudit { writer: Mutex::new(writer), redact, include_reason: config.include_reason.unwrap_or(false) })
    }
}

impl AuditSink for JsonlAudit {
    fn emit(&self, level: Level, event: &str, fields: Value) {
        let mut sorted = Map::new();
        sorted.insert("event".to_string(), Value::String(event.to_string()));
        if let Value::Object(fields) = fields {
            for (key, value) in fields {
                let lower = key.to_ascii_lowercase();
                let hidden = self.redact.contains(&lower) || (lower == "reason" && !self.include_reason);
                sorted.insert(key, if hidden { Value::String("<redacted>".to_string()) } else { value });
            }
        }
        let level = match level {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        };
        let line = serde_json::json!({
            "timestamp": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "level": level,
            "target": "agentd::audit",
            "fields": sorted,
        });
        if let Ok(mut writer) = self.writer.lock() {
            let _ = writeln!(writer, "{line}");
            let _ = writer.flush();
        }
    }
}
