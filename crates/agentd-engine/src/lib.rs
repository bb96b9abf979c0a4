//! The agentd engine: walks a validated [`Workflow`] one node at a time, choosing edges,
//! retrying, enforcing the run deadline and budgets, and producing the outcome and run record.
//!
//! Architecture invariants:
//! - only a validated `Workflow` reaches the engine (the type makes it so);
//! - the engine, not the node, picks the next edge: handlers return a value and a label;
//! - handlers reach the outside world only through `agentd-tools`, which asks policy first.

pub mod audit;
pub mod documents;
pub mod durable;
pub mod error;
mod graph;
pub mod ids;
mod nodes;
mod run;
pub mod secrets;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentd_policy::Policy;
use agentd_workflow::Workflow;
use serde_json::Value;
pub use tokio_util::sync::CancellationToken;

pub use documents::*;
pub use error::{Category, NodeError};

/// Why an engine could not be built (startup errors, exit 5).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The `[policy]` table failed to compile.
    #[error("policy: {0}")]
    Policy(#[from] agentd_policy::PolicyError),
    /// `[policy.rego]` is configured but this build cannot evaluate Rego. Ignoring an AND layer
    /// would make the policy more permissive than written, so the engine refuses to start.
    #[error(
        "[policy.rego]: the Rego policy layer is not available in this build; remove the table or use a build that has it"
    )]
    RegoUnavailable,
    /// Sub-workflows call each other in a cycle (startup error, exit 5).
    #[error("{0}")]
    Composition(String),
    /// An `output_schema` could not be loaded or compiled (startup error, exit 5).
    #[error("{0}")]
    Schema(String),
    /// `[[secrets]]` is inconsistent (duplicate names).
    #[error("[[secrets]]: {0}")]
    Secrets(#[from] secrets::SecretError),
}

/// Per-run limits from `[budget]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// `max_fs_write_mb` in bytes.
    pub max_fs_write_bytes: Option<u64>,
    /// `max_llm_tokens`.
    pub max_llm_tokens: Option<u64>,
}

/// Everything a run needs besides the workflow.
pub struct EngineOptions {
    /// Process working directory (relative paths and patterns are resolved against it).
    pub cwd: PathBuf,
    /// Audit sink.
    pub audit: Arc<dyn audit::AuditSink>,
    /// State store, checkpoints and history.
    pub durable: durable::DurableOptions,
}

/// A workflow ready to run: compiled policy, limits, and the graph.
pub struct Engine {
    /// The root workflow with its compiled contracts and loaded children.
    root: Arc<graph::Graph>,
    policy: Policy,
    cwd: PathBuf,
    secret_backed_env: BTreeSet<String>,
    limits: RunLimits,
    audit: Arc<dyn audit::AuditSink>,
    durable: durable::DurableOptions,
    /// The secrets registry (values resolved at request time).
    secrets: Arc<secrets::Registry>,
    /// Name resolution for `http_request` (the system resolver unless a test injects one).
    resolver: Arc<dyn agentd_tools::http::Resolver>,
    /// Pinned HTTP clients of `http_request`.
    http: agentd_tools::http::Client,
    /// MCP servers (`None` = none configured).
    mcp: Option<Arc<agentd_mcp::McpHub>>,
    /// Background history writer (serve mode); `None` = history is written inline.
    history_writer: Option<durable::HistoryWriter>,
    /// Intelligence backends (`None` = none configured).
    intel: Option<Arc<agentd_intel::Backends>>,
}

/// One run to execute.
pub struct RunRequest {
    /// Start-node name.
    pub start: String,
    /// Raw trigger input.
    pub input: Value,
    /// Trigger kind (`manual`, `http`, `event`).
    pub trigger_kind: String,
    /// Effective run timeout.
    pub timeout: Duration,
    /// Skip side effects.
    pub dry_run: bool,
    /// Cancels the run (signals); the run then ends errored with the cancel reason.
    pub cancel: Cancel,
    /// Continue a checkpointed run instead of starting one (`start`, `input` and
    /// `trigger_kind` then come from the checkpoint).
    pub resume: Option<durable::Resume>,
}

/// A cancellation handle with the reason the run reports (`interrupted by signal SIGINT`).
#[derive(Clone, Default)]
pub struct Cancel {
    /// Fires when the run must stop.
    pub token: CancellationToken,
    reason: Arc<std::sync::OnceLock<String>>,
}

impl Cancel {
    /// Cancels with a reason (the first reason wins).
    pub fn cancel(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.token.cancel();
    }

    /// The reason given to [`Cancel::cancel`].
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The outcome.
    pub outcome: Outcome,
    /// The run record.
    pub record: RunRecord,
}

impl Engine {
    /// Builds an engine: compiles policy against the working directory and reads the budgets.
    pub fn build(workflow: Arc<Workflow>, options: EngineOptions) -> Result<Engine, BuildError> {
        let policy = Policy::compile(workflow.environment.policy.as_ref(), &options.cwd)?;
        if policy.rego().is_some_and(|r| r.inline.is_some() || r.file.is_some()) {
            return Err(BuildError::RegoUnavailable);
        }
        let budget = workflow.environment.budget.clone().unwrap_or_default();
        let mib = |v: Option<u64>| v.filter(|&v| v > 0).map(|v| v.saturating_mul(1_048_576));
        let limits = RunLimits {
            max_fs_write_bytes: mib(budget.max_fs_write_mb),
            max_llm_tokens: budget.max_llm_tokens.filter(|&v| v > 0),
        };
        if policy.is_allow_all() {
            options.audit.emit(audit::Level::Warn, "policy.allow_all", serde_json::json!({"workflow": workflow.name}));
            if !options.audit.is_operational_log() {
                tracing::warn!(workflow = %workflow.name, "no [policy] table: every side effect is allowed (policy.allow_all)");
            }
        }
        let root = Arc::new(graph::Loader::new(&options.cwd).graph(workflow.clone())?);
        let scrubber = secrets::Scrubber::default();
        let registry = secrets::Registry::new(&workflow.environment.secrets, scrubber.clone())?;
        let audit: Arc<dyn audit::AuditSink> = Arc::new(secrets::ScrubbingAudit { inner: options.audit, scrubber });
        Ok(Engine {
            secrets: Arc::new(registry),
            resolver: Arc::new(agentd_tools::http::SystemResolver),
            http: agentd_tools::http::Client::new(),
            mcp: None,
            intel: None,
            history_writer: None,
            secret_backed_env: secrets::secret_backed_env_names(&workflow),
            root,
            policy,
            cwd: options.cwd,
            limits,
            audit,
            durable: options.durable,
        })
    }

    /// The audit sink runs of this engine report to (the CLI uses it for approval decisions).
    pub fn audit(&self) -> &Arc<dyn audit::AuditSink> {
        &self.audit
    }

    /// Replaces the name resolver of `http_request` (tests give host names fixed answers).
    pub fn with_resolver(mut self, resolver: Arc<dyn agentd_tools::http::Resolver>) -> Engine {
        self.resolver = resolver;
        self
    }

    /// Writes run history through a background writer (batched, off the request path).
    pub fn with_history_writer(mut self, writer: durable::HistoryWriter) -> Engine {
        self.history_writer = Some(writer);
        self
    }

    /// The state store handle, when one is configured.
    pub fn store_handle(&self) -> Option<&Arc<durable::StoreHandle>> {
        self.durable.store.as_ref()
    }

    /// Attaches the intelligence backends.
    pub fn with_intel(mut self, backends: Arc<agentd_intel::Backends>) -> Engine {
        self.intel = Some(backends);
        self
    }

    /// Attaches the started MCP servers.
    pub fn with_mcp(mut self, hub: Arc<agentd_mcp::McpHub>) -> Engine {
        self.mcp = Some(hub);
        self
    }

    /// The MCP servers, if any were started.
    pub fn mcp(&self) -> Option<&Arc<agentd_mcp::McpHub>> {
        self.mcp.as_ref()
    }

    /// The secrets registry (the CLI resolves every declared secret once at startup).
    pub fn secrets(&self) -> &Arc<secrets::Registry> {
        &self.secrets
    }

    /// The workflow this engine runs.
    pub fn workflow(&self) -> &Arc<Workflow> {
        &self.root.workflow
    }

    /// Executes one run to its end. Never panics on workflow or input content.
    pub async fn run(&self, request: RunRequest) -> RunResult {
        run::execute(self, self.root.clone(), request, None).await
    }
}

/// The `trigger` context value for a raw input (03 §6.2).
pub fn trigger_value(kind: &str, input: &Value) -> Value {
    match input {
        Value::Object(fields) => {
            let mut object = serde_json::Map::with_capacity(fields.len() + 1);
            object.insert("kind".to_string(), Value::String(kind.to_string()));
            for (k, v) in fields {
                object.insert(k.clone(), v.clone());
            }
            Value::Object(object)
        }
        other => serde_json::json!({"kind": kind, "input": other}),
    }
}

/// Compiles every `llm_infer` output contract (06 §5.3): `"inline"`/`"json"` = any JSON value;
/// another string = a JSON Schema file (relative to the working directory, then the workflow's
/// directory); a table = an inline schema. A missing or invalid schema stops the startup.
pub(crate) fn output_contracts(
    workflow: &Workflow,
    cwd: &std::path::Path,
) -> Result<std::collections::HashMap<String, agentd_intel::OutputContract>, BuildError> {
    use agentd_intel::{CompiledSchema, OutputContract};
    use agentd_workflow::{NodeKind, OutputSchema};
    let mut contracts = std::collections::HashMap::new();
    for node in &workflow.nodes {
        let NodeKind::LlmInfer(config) = &node.kind else { continue };
        let Some(schema) = &config.output_schema else { continue };
        let compile = |value: &serde_json::Value, shown: &str| {
            CompiledSchema::compile(value)
                .map(|c| OutputContract::Schema(Arc::new(c)))
                .map_err(|e| BuildError::Schema(format!("node `{}`: output_schema {shown}: {e}", node.id)))
        };
        let contract = match schema {
            OutputSchema::Named(name) if name == "inline" || name == "json" => OutputContract::Json,
            OutputSchema::Named(file) => {
                let candidates = std::iter::once(cwd.join(file))
                    .chain(workflow.provenance.path.as_ref().and_then(|p| p.parent()).map(|dir| dir.join(file)));
                let found = candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
                    BuildError::Schema(format!("node `{}`: output_schema file `{file}` not found", node.id))
                })?;
                let text = std::fs::read_to_string(&found).map_err(|e| {
                    BuildError::Schema(format!("node `{}`: output_schema {}: {e}", node.id, found.display()))
                })?;
                let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    BuildError::Schema(format!(
                        "node `{}`: output_schema {}: invalid JSON: {e}",
                        node.id,
                        found.display()
                    ))
                })?;
                compile(&value, &found.display().to_string())?
            }
            OutputSchema::Inline(table) => compile(&serde_json::Value::Object(table.clone()), "(inline)")?,
        };
        contracts.insert(node.id.clone(), contract);
    }
    Ok(contracts)
}
