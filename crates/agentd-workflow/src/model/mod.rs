//! The workflow document as written (03 §2–§5), before validation.
//!
//! [`RawWorkflow`] is what the loader produces from well-formed TOML; only the validator turns it
//! into a [`crate::Workflow`], so the engine can never see an unvalidated graph.

pub mod nodes;
pub mod tables;

use std::ops::Range;

use serde::Deserialize;

pub use nodes::*;
pub use tables::*;

/// `retry` of a node (03 §5.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Total attempts including the first; `0` acts as `1`.
    pub max_attempts: u32,
    /// Base delay in ms (default 100).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Which error categories are retried (default `any`).
    #[serde(default)]
    pub on: RetryOn,
    /// Relative jitter, clamped to 0.0..=0.5 at run time (default 0.0).
    #[serde(default)]
    pub jitter: f64,
}

fn default_backoff_ms() -> u64 {
    100
}

/// `retry.on`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryOn {
    /// Retry every retryable category.
    #[default]
    Any,
    /// Retry only transient categories (tool, intelligence, mcp, timeout).
    Transient,
}

/// Fields every node has (03 §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonFields {
    /// Unique node id.
    pub id: toml::Spanned<String>,
    /// Retry policy.
    pub retry: Option<RetryConfig>,
    /// Bounds one attempt (extension; ≥ 1).
    pub timeout_secs: Option<u64>,
    /// Informational (extension).
    pub description: Option<String>,
}

/// One `[[nodes]]` entry.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Common fields.
    pub common: CommonFields,
    /// Kind and kind-specific fields.
    pub kind: NodeKind,
    /// Span of the `type` value.
    pub type_span: Range<usize>,
    /// Span of the whole entry.
    pub span: Range<usize>,
}

impl NodeConfig {
    /// The node id.
    pub fn id(&self) -> &str {
        self.common.id.get_ref()
    }
}

/// One `[[start_nodes]]` entry (03 §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartNodeConfig {
    /// Unique start name.
    pub name: toml::Spanned<String>,
    /// `manual`, `http` or `event`.
    pub source: StartSource,
    /// First node of the walk (absent → the unique node without incoming edges).
    pub entry_node: Option<toml::Spanned<String>>,
}

/// One `[[edges]]` entry (03 §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Source node id.
    pub from: toml::Spanned<String>,
    /// Target node id.
    pub to: toml::Spanned<String>,
    /// Branch label; absent = unlabelled results only; `*` = default edge.
    pub when: Option<toml::Spanned<String>>,
    /// Loop edge: followed at most this many times per run.
    pub max_iterations: Option<u32>,
}

/// A parsed (well-formed, not yet validated) workflow document.
#[derive(Debug, Clone, Default)]
pub struct RawWorkflow {
    /// Workflow identity.
    pub name: String,
    /// Span of the name value (or of the document when missing).
    pub name_span: Option<Range<usize>>,
    /// Informational.
    pub description: Option<String>,
    /// Entry points.
    pub start_nodes: Vec<StartNodeConfig>,
    /// Graph nodes.
    pub nodes: Vec<NodeConfig>,
    /// Graph edges.
    pub edges: Vec<EdgeConfig>,
    /// Long-lived triggers, with the span of each entry.
    pub triggers: Vec<(TriggerConfig, Range<usize>)>,
    /// HTTP routes, with the span of each entry.
    pub http_routes: Vec<(HttpRouteConfig, Range<usize>)>,
    /// `[policy]` (absent ⇒ allow all).
    pub policy: Option<agentd_policy::PolicyConfig>,
    /// Span of the `[policy]` table.
    pub policy_span: Option<Range<usize>>,
    /// `[auth]`.
    pub auth: Option<AuthConfig>,
    /// Span of the `[auth]` table.
    pub auth_span: Option<Range<usize>>,
    /// `[logging]`.
    pub logging: Option<LoggingConfig>,
    /// `[server]`.
    pub server: Option<ServerConfig>,
    /// `[signing]`.
    pub signing: Option<SigningConfig>,
    /// `[budget]`.
    pub budget: Option<BudgetConfig>,
    /// `[[mcp_servers]]`.
    pub mcp_servers: Vec<McpServerConfig>,
    /// `[intelligence]`.
    pub intelligence: Option<IntelligenceConfig>,
    /// `[[secrets]]`, with the span of each entry.
    pub secrets: Vec<(SecretConfig, Range<usize>)>,
    /// `[control]`.
    pub control: Option<ControlConfig>,
    /// `[store]`.
    pub store: Option<StoreConfig>,
}
