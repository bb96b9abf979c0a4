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

/// Secrets for serve-mode auth bindings, through the registry (values scrubbed).
struct ServeSecrets(Arc<Registry>);

impl agentd_serve::SecretLookup for ServeSecrets {
    fn resolve(&self, name: &str) -> Option<String> {
        self.0.resolve_blocking(name).ok()
    }
}

/// Serve mode (01 §6): start the HTTP listener and long-lived triggers, print the banner, drain
/// on SIGTERM/SIGINT (a second signal exits 5 at once), reload on SIGHUP or a `--reload-file`
/// change (a bad reload keeps the old configuration live). Returns the exit code.
pub fn serve(
    engine: Engine,
    path: &Path,
    settings: &Settings,
    run_timeout: std::time::Duration,
    audit: Arc<dyn AuditSink>,
) -> i32 {
    let workflow = engine.workflow().clone();
    let explicit_bind = settings.text("bind").and_then(|b| b.parse::<std::net::SocketAddr>().ok());
    if !workflow.has_serve_work() && explicit_bind.is_none() {
        note(
            "serve mode requires at least one [[http_routes]] entry, a long-lived trigger (cron / interval / fs_watch / mcp.resource.updated) or an enabled control plane (--control)",
        );
        return EXIT_USAGE;
    }
    let runtime = match crate::rt::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            note(format_args!("cannot start the async runtime: {e}"));
            return EXIT_SEMANTIC;
        }
    };
    let needs_store = workflow.environment.http_routes.iter().any(|r| r.idempotency_key.is_some());
    let store = if needs_store {
        let opened = crate::state::durability(settings)
            .map_err(|_| "invalid --durability".to_string())
            .and_then(|d| crate::state::open(&crate::state::state_dir(settings), d));
        match opened {
            Ok(store) => Some(store),
            Err(e) => {
                note(format_args!("idempotency store: {e}"));
                return EXIT_SEMANTIC;
            }
        }
    } else {
        None
    };
    let drain = settings.number("drain-timeout-secs", 30).unwrap_or(30).max(1);
    let history = engine.store_handle().cloned().map(agentd_engine::durable::HistoryWriter::start);
    let engine = match &history {
        Some(writer) => engine.with_history_writer(writer.clone()),
        None => engine,
    };
    let mut config = agentd_serve::ServeConfig::new(workflow.clone(), Arc::new(engine));
    let secrets = config.engine.secrets().clone();
    config.store = store;
    if !workflow.environment.http_routes.is_empty() || explicit_bind.is_some() {
        config.bind = Some(explicit_bind.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080))));
    }
    config.drain_timeout = std::time::Duration::from_secs(drain);
    config.run_timeout = run_timeout;
    config.dry_run = settings.switch("dry-run");
    config.base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| std::env::current_dir().unwrap_or_else(|_| "/".into()), Path::to_path_buf);
    config.secrets = Arc::new(ServeSecrets(secrets));
    config.audit = audit.clone();
    let path = path.to_path_buf();
    let settings = settings.clone();
    // The server runs as a task on the worker threads, not on this (blocked) thread.
    let serving = runtime.spawn(async move {
        let server = match agentd_serve::Server::start(config).await {
            Ok(server) => Arc::new(server),
            Err(e) => {
                note(e);
                return EXIT_SEMANTIC;
            }
        };
        // Every signal handler and the reload file exist before the banner announces the server.
        let shutdown = agentd_serve::CancellationToken::new();
        let stop_signals = stop_signals();
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let reload_file = settings.text("reload-file").map(std::path::PathBuf::from);
        if let Some(file) = &reload_file
            && !file.exists()
            && let Err(e) = std::fs::write(file, b"")
        {
            note(format_args!("warning: cannot create --reload-file {}: {e}", file.display()));
        }
        let signals = tokio::spawn(watch_serve_signals(stop_signals, shutdown.clone()));
        let reloads = tokio::spawn(watch_reloads(
            server.clone(),
            path.clone(),
            settings.clone(),
            audit,
            history.clone(),
            hup,
            reload_file,
        ));
        banner(&workflow, &server, drain);
        let exit = server.run(shutdown).await;
        signals.abort();
        reloads.abort();
        if let Some(writer) = &history {
            let writer = writer.clone();
            let _ = tokio::task::spawn_blocking(move || writer.flush(std::time::Duration::from_secs(10))).await;
        }
        match exit {
            agentd_serve::ServeExit::Drained => {
                note("drain complete");
                0
            }
            agentd_serve::ServeExit::DrainTimedOut { .. } => {
                note("drain timed out (forced exit)");
                EXIT_SEMANTIC
            }
        }
    });
    runtime.block_on(serving).unwrap_or_else(|e| {
        note(format_args!("the server task failed: {e}"));
        EXIT_SEMANTIC
    })
}

fn banner(workflow: &agentd_workflow::Workflow, server: &agentd_serve::Server, drain: u64) {
    let routes = &workflow.environment.http_routes;
    match server.local_addr() {
        Some(addr) => {
            let scheme = if server.is_tls() { "https" } else { "http" };
            let mut text = format!(
                "workflow `{}` listening on {scheme}://{addr}/ ({} routes; drain_timeout={drain}s)\n",
                workflow.name,
                routes.len()
            );
            for route in routes {
                text.push_str(&format!(
                    "       {} {} → {}\n",
                    route.method.to_ascii_uppercase(),
                    route.path,
                    route.start_node
                ));
            }
            text.push_str("       GET /healthz is always live");
            note(text);
        }
        None => {
            let n = workflow.environment.triggers.iter().filter(|t| t.is_long_lived()).count();
            note(format_args!("workflow `{}` serving {n} scheduled trigger(s)", workflow.name));
        }
    }
}

type StopSignals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn stop_signals() -> StopSignals {
    use tokio::signal::unix::{SignalKind, signal};
    Some((signal(SignalKind::interrupt()).ok()?, signal(SignalKind::terminate()).ok()?))
}

/// First SIGINT/SIGTERM: drain. Second: exit 5 at once (01 §6.2).
async fn watch_serve_signals(signals: StopSignals, shutdown: agentd_serve::CancellationToken) {
    let Some((mut int, mut term)) = signals else { return };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    note("shutdown signal received; draining…");
    shutdown.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    crate::output::flush();
    std::process::exit(EXIT_SEMANTIC);
}

/// SIGHUP and `--reload-file` mtime changes (polled every 250 ms) reload the workflow: load,
/// validate, build a new engine, then swap it in; any failure keeps the old configuration.
async fn watch_reloads(
    server: Arc<agentd_serve::Server>,
    path: std::path::PathBuf,
    settings: Settings,
    audit: Arc<dyn AuditSink>,
    history: Option<agentd_engine::durable::HistoryWriter>,
    hup: Option<tokio::signal::unix::Signal>,
    reload_file: Option<std::path::PathBuf>,
) {
    let Some(mut hup) = hup else { return };
    let mtime =
        |file: &Option<std::path::PathBuf>| file.as_ref().and_then(|f| std::fs::metadata(f).ok()?.modified().ok());
    let mut seen = mtime(&reload_file);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = hup.recv() => {}
            _ = tick.tick() => {
                let now = mtime(&reload_file);
                if now == seen { continue; }
                seen = now;
            }
        }
        audit.emit(Level::Info, "reload.started", serde_json::json!({"path": path.display().to_string()}));
        let rebuilt = {
            let path = path.clone();
            let settings = settings.clone();
            let audit = audit.clone();
            let history = history.clone();
            // A plain thread, outside the runtime's context: building an engine starts MCP
            // servers and resolves secrets with `block_on` on the process runtime.
            let (done, wait) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new().name("agentd-reload".into()).spawn(move || {
                let build = || {
                    let workflow =
                        crate::app::load_workflow(&path, &settings, false).map_err(|code| format!("exit {code}"))?;
                    let workflow = Arc::new(workflow);
                    let engine = crate::app::build_engine(workflow.clone(), &path, &settings, audit, false)
                        .map_err(|code| format!("engine build failed (exit {code})"))?;
                    let engine = match history {
                        Some(writer) => engine.with_history_writer(writer),
                        None => engine,
                    };
                    Ok::<_, String>((workflow, engine))
                };
                let _ = done.send(build());
            });
            match spawned {
                Ok(_) => wait.await.unwrap_or_else(|_| Err("reload thread failed".to_string())),
                Err(e) => Err(format!("cannot start the reload thread: {e}")),
            }
        };
        let result = match rebuilt {
            Ok((workflow, engine)) => server.reload(workflow, Arc::new(engine)).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                audit.emit(Level::Info, "reload.succeeded", serde_json::json!({"path": path.display().to_string()}));
                note("reload succeeded");
            }
            Err(reason) => {
                audit.emit(
                    Level::Warn,
                    "reload.failed",
                    serde_json::json!({"path": path.display().to_string(), "reason": reason}),
                );
                note(format_args!("reload failed; keeping the running configuration: {reason}"));
            }
        }
    }
}
