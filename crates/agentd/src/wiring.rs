//! Startup wiring of the optional subsystems onto the engine (01 §3 step 13): the MCP servers
//! (08 §1–2), with adapters from the engine's secrets registry and audit sink to the MCP crate's
//! hooks.

use std::path::Path;
use std::sync::Arc;

use agentd_engine::Engine;
use agentd_engine::audit::{AuditSink, Level};
use agentd_engine::secrets::Registry;
use agentd_workflow::NodeKind;

use crate::app::{EXIT_SEMANTIC, EXIT_USAGE};
use crate::flags::Settings;
use crate::output::note;

/// Secrets for MCP server environments and headers, through the registry (values scrubbed).
struct RegistrySecrets(Arc<Registry>);

impl agentd_mcp::SecretResolver for RegistrySecrets {
    fn resolve<'a>(&'a self, name: &'a str) -> agentd_mcp::SecretFuture<'a> {
        Box::pin(async move { self.0.resolve(name).await.map_err(|e| e.reason) })
    }
}

/// API keys and bearer tokens for intelligence backends, by name at request time.
struct IntelSecrets(Arc<Registry>);

impl agentd_intel::SecretSource for IntelSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.resolve_blocking(name).ok()
    }
}

/// Builds the intelligence backends (`[[intelligence.backends]]` and the `default` backend of
/// `--intel-unix` / `--intel-http`) and attaches them; a bad backend is a startup error (exit 2).
pub fn start_intel(engine: Engine, settings: &Settings) -> Result<Engine, i32> {
    let workflow = engine.workflow().clone();
    let configs = workflow.environment.intelligence.as_ref().map(|i| i.backends.as_slice()).unwrap_or_default();
    let cli = agentd_intel::CliIntel {
        unix: settings.text("intel-unix").map(Into::into),
        http: settings.text("intel-http"),
        http_bearer_file: settings.text("intel-http-bearer-file").map(Into::into),
        http_bearer_env: std::env::var("AGENTD_INTEL_HTTP_BEARER").ok().filter(|v| !v.is_empty()),
    };
    if configs.is_empty() && cli.unix.is_none() && cli.http.is_none() {
        return Ok(engine);
    }
    if let Some(token) = &cli.http_bearer_env {
        engine.secrets().scrubber().add(token);
    }
    let secrets = Arc::new(IntelSecrets(engine.secrets().clone()));
    let backends = agentd_intel::Backends::build(configs, &cli, secrets).map_err(|e| {
        note(e);
        EXIT_USAGE
    })?;
    for name in backends.insecure_transports() {
        engine.audit().emit(Level::Warn, "intel.insecure_transport", serde_json::json!({"backend": name}));
    }
    Ok(engine.with_intel(Arc::new(backends)))
}

/// `mcp.*` audit events into the engine's audit sink.
struct SinkAudit(Arc<dyn AuditSink>);

impl agentd_mcp::AuditEvents for SinkAudit {
    fn emit(&self, level: agentd_mcp::AuditLevel, event: &str, fields: serde_json::Value) {
        let level = match level {
            agentd_mcp::AuditLevel::Info => Level::Info,
            agentd_mcp::AuditLevel::Warn => Level::Warn,
            agentd_mcp::AuditLevel::Error => Level::Error,
        };
        self.0.emit(level, event, fields);
    }
}

/// Starts every `[[mcp_servers]]` entry and the legacy `--mcp-stdio` server, checks the tool
/// references of `call_mcp_tool` nodes, and attaches the hub. A server that cannot start is a
/// startup error (exit 2); reference findings are warnings (08 §2.4).
pub fn start_mcp(engine: Engine, settings: &Settings, cwd: &Path, quiet: bool) -> Result<Engine, i32> {
    let workflow = engine.workflow().clone();
    let legacy = settings.text("mcp-stdio");
    if workflow.environment.mcp_servers.is_empty() && legacy.is_none() {
        return Ok(engine);
    }
    let mut specs = Vec::new();
    for config in &workflow.environment.mcp_servers {
        if legacy.is_some() && config.name.get_ref() == agentd_mcp::LEGACY_SERVER_NAME {
            note(format_args!(
                "mcp server `{}`: the name is taken by --mcp-stdio; rename the [[mcp_servers]] entry",
                agentd_mcp::LEGACY_SERVER_NAME
            ));
            return Err(EXIT_USAGE);
        }
        specs.push(agentd_mcp::ServerSpec::from_config(config).map_err(|e| {
            note(e);
            EXIT_USAGE
        })?);
    }
    if let Some(command) = legacy {
        let policy = agentd_policy::Policy::compile(workflow.environment.policy.as_ref(), cwd).map_err(|e| {
            note(format_args!("policy: {e}"));
            EXIT_SEMANTIC
        })?;
        specs.push(agentd_mcp::ServerSpec::legacy_stdio(&command, Arc::new(policy)).map_err(|e| {
            note(e);
            EXIT_USAGE
        })?);
    }
    let runtime = crate::rt::runtime().map_err(|e| {
        note(format_args!("cannot start the async runtime: {e}"));
        EXIT_SEMANTIC
    })?;
    let options = agentd_mcp::HubOptions {
        secrets: Arc::new(RegistrySecrets(engine.secrets().clone())),
        audit: Arc::new(SinkAudit(engine.audit().clone())),
        client_version: env!("CARGO_PKG_VERSION").to_string(),
        ..agentd_mcp::HubOptions::default()
    };
    let hub = runtime.block_on(agentd_mcp::McpHub::start(specs, options)).map_err(|e| {
        note(e);
        EXIT_USAGE
    })?;
    let references: Vec<agentd_mcp::ToolReference> = workflow
        .nodes
        .iter()
        .filter_map(|node| match &node.kind {
            NodeKind::CallMcpTool(c) => Some(agentd_mcp::ToolReference {
                node_id: node.id.clone(),
                server: c.server.clone(),
                tool: c.tool.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut warnings = hub.allowlist_warnings();
    warnings.extend(hub.check_references(&references));
    if !quiet {
        for warning in &warnings {
            note(format_args!("warning: {}", warning.message));
        }
    }
    Ok(engine.with_mcp(Arc::new(hub)))
}
