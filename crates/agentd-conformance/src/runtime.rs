//! Builds the complete runtime of one trial exactly as the daemon does (10 §3.1): the engine
//! with the trial's store and a collecting audit sink, the scripted model standing in for every
//! backend, and the MCP hub with scripted servers on real transports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentd_engine::audit::{AuditSink, CollectingAudit, Level};
use agentd_engine::durable::{DurableOptions, StoreHandle};
use agentd_engine::secrets::Registry;
use agentd_engine::{Cancel, Engine, EngineOptions};
use agentd_intel::scripted::{ScriptedModel, SharedSplitMix64, SplitMix64};
use agentd_store::Store;
use agentd_workflow::{NodeKind, Workflow};

use crate::crash::CrashingStore;
use crate::prepare::Placeholders;
use crate::scenario::Scenario;

/// Engine-side pieces of a trial.
pub struct Runtime {
    /// The engine, ready to run.
    pub engine: Arc<Engine>,
    /// Every audit event of the trial.
    pub audit: Arc<CollectingAudit>,
    /// The trial store, when the workflow needs one.
    pub store: Option<Arc<dyn Store>>,
    /// The crash wrapper of `crash_after_node`.
    pub crashing: Option<Arc<CrashingStore>>,
    /// The cancel handle the first segment must run with (the crash fires it).
    pub cancel: Cancel,
    /// The scripted model (prompt mismatches).
    pub model: Arc<ScriptedModel>,
    /// HTTP scripted MCP server processes, killed when dropped.
    pub mcp_children: Vec<tokio::process::Child>,
}

/// Where a trial builds its runtime.
pub struct Setup<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The validated workflow (placeholders applied).
    pub workflow: Arc<Workflow>,
    /// The trial's placeholders.
    pub placeholders: &'a Placeholders,
    /// The trial dir.
    pub trial_dir: &'a Path,
    /// The trial seed.
    pub seed: u64,
    /// This binary (scripted MCP servers re-execute it).
    pub exe: &'a Path,
    /// Whether the run goes through the HTTP server (needs the store and history).
    pub serve: bool,
}

/// Whether a trial needs the state store.
fn needs_store(setup: &Setup<'_>) -> bool {
    setup.serve
        || setup.scenario.file.faults.crash_after_node.is_some()
        || setup.workflow.nodes.iter().any(|n| matches!(n.kind, NodeKind::PauseForApproval(_)))
}

/// Builds the runtime; `Err` is a startup error text (the trial is then errored).
pub async fn build(setup: &Setup<'_>) -> Result<Runtime, String> {
    let audit = Arc::new(CollectingAudit::default());
    let cancel = Cancel::default();
    let (store, crashing) = open_store(setup, &cancel)?;
    let durable = DurableOptions {
        store: store.clone().map(|s| Arc::new(StoreHandle::lazy(move || Ok(s.clone())))),
        checkpoint_each_node: crashing.is_some(),
        history_max_runs: setup.serve.then_some(1000),
        workflow_path: setup.scenario.workflow_path.clone().or_else(|| std::path::absolute(&setup.scenario.path).ok()),
        workflow_sha256: Some(agentd_workflow::sha256_hex(setup.scenario.workflow_text.as_bytes())),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let options = EngineOptions { cwd: cwd.clone(), audit: audit.clone(), durable };
    let engine = Engine::build(setup.workflow.clone(), options).map_err(|e| e.to_string())?;
    engine.secrets().check_all().await.map_err(|e| format!("[[secrets]]: {e}"))?;
    let (engine, model) = attach_intel(engine, setup)?;
    let (engine, mcp_children) = attach_mcp(engine, setup, &cwd).await?;
    let store = match &crashing {
        Some(c) => Some(c.clone() as Arc<dyn Store>),
        None => store,
    };
    Ok(Runtime { engine: Arc::new(engine), audit, store, crashing, cancel, model, mcp_children })
}

/// The trial store, and its crash wrapper when `crash_after_node` is set.
type OpenedStore = (Option<Arc<dyn Store>>, Option<Arc<CrashingStore>>);

fn open_store(setup: &Setup<'_>, cancel: &Cancel) -> Result<OpenedStore, String> {
    if !needs_store(setup) {
        return Ok((None, None));
    }
    let mut options = agentd_store::OpenOptions::default();
    options.durability = agentd_store::Durability::Fast;
    let sqlite = agentd_store::SqliteStore::open(&setup.trial_dir.join("state"), options).map_err(|e| e.to_string())?;
    let sqlite: Arc<dyn Store> = Arc::new(sqlite);
    match &setup.scenario.file.faults.crash_after_node {
        Some(node) => {
            let crashing = Arc::new(CrashingStore::new(sqlite, node.clone(), cancel.clone()));
            Ok((Some(crashing.clone() as Arc<dyn Store>), Some(crashing)))
        }
        None => Ok((Some(sqlite), None)),
    }
}

/// The scripted model answers for `default` and every declared backend (one turn queue). The
/// trial PRNG draws one value per turn, then serves the retry jitter (10 §3.3).
fn attach_intel(engine: Engine, setup: &Setup<'_>) -> Result<(Engine, Arc<ScriptedModel>), String> {
    let file = &setup.scenario.file;
    let mut turns = file.intel.turns.clone();
    for turn in &mut turns {
        turn.content = setup.placeholders.apply(&turn.content);
        for variant in &mut turn.variants {
            variant.content = setup.placeholders.apply(&variant.content);
        }
    }
    let mut generator = SplitMix64::new(setup.seed);
    let model = ScriptedModel::new(&turns, &file.faults.intel_calls(), false, &mut generator)
        .map_err(|e| format!("[intel]: {e}"))?;
    let model = Arc::new(model);
    let configs = setup.workflow.environment.intelligence.as_ref().map(|i| i.backends.as_slice()).unwrap_or_default();
    let mut backends = agentd_intel::Backends::scripted_stand_in(configs, model.clone()).map_err(|e| e.to_string())?;
    backends.set_random(Arc::new(SharedSplitMix64::new(generator)));
    Ok((engine.with_intel(Arc::new(backends)), model))
}

/// Secrets for MCP server environments and headers, through the engine's registry.
struct RegistrySecrets(Arc<Registry>);

impl agentd_mcp::SecretResolver for RegistrySecrets {
    fn resolve<'a>(&'a self, name: &'a str) -> agentd_mcp::SecretFuture<'a> {
        Box::pin(async move { self.0.resolve(name).await.map_err(|e| e.reason) })
    }
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

async fn attach_mcp(
    engine: Engine,
    setup: &Setup<'_>,
    cwd: &Path,
) -> Result<(Engine, Vec<tokio::process::Child>), String> {
    let scripted = &setup.scenario.file.mcp.servers;
    let declared = &setup.workflow.environment.mcp_servers;
    if declared.is_empty() && scripted.is_empty() {
        return Ok((engine, Vec::new()));
    }
    let faults = &setup.scenario.file.faults;
    let mut specs = Vec::new();
    let mut children = Vec::new();
    for config in declared {
        let mut spec = agentd_mcp::ServerSpec::from_config(config).map_err(|e| e.to_string())?;
        if let Some(server) = scripted.get(&spec.name) {
            let script = crate::mcp::script_json(&spec.name, server, faults, true);
            let started =
                crate::mcp::start(setup.exe, setup.trial_dir, &spec.name, &script, server.transport, &spec.transport)
                    .await?;
            spec.transport = started.transport;
            children.extend(started.child);
        }
        specs.push(spec);
    }
    let legacy = agentd_mcp::LEGACY_SERVER_NAME;
    if let Some(server) = scripted.get(legacy)
        && !declared.iter().any(|c| c.name.get_ref() == legacy)
    {
        let policy = agentd_policy::Policy::compile(setup.workflow.environment.policy.as_ref(), cwd)
            .map_err(|e| format!("policy: {e}"))?;
        let mut spec =
            agentd_mcp::ServerSpec::legacy_stdio("agentd-conformance", Arc::new(policy)).map_err(|e| e.to_string())?;
        let script = crate::mcp::script_json(legacy, server, faults, true);
        let started =
            crate::mcp::start(setup.exe, setup.trial_dir, legacy, &script, server.transport, &spec.transport).await?;
        spec.transport = started.transport;
        children.extend(started.child);
        specs.push(spec);
    }
    let options = agentd_mcp::HubOptions {
        secrets: Arc::new(RegistrySecrets(engine.secrets().clone())),
        audit: Arc::new(SinkAudit(engine.audit().clone())),
        respawn_interval: Duration::from_secs(5),
        client_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let hub = agentd_mcp::McpHub::start(specs, options).await.map_err(|e| e.to_string())?;
    Ok((engine.with_mcp(Arc::new(hub)), children))
}
