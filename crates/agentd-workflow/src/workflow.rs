//! The validated, compiled workflow: the only form the engine accepts.
//!
//! Node references are resolved to indices and out-edges are grouped per node, so a run walks
//! the graph in constant time per step.

use rustc_hash::FxHashMap as HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::model::*;

/// A node of a validated workflow.
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique id (the node's key in the context).
    pub id: String,
    /// Kind and its configuration.
    pub kind: NodeKind,
    /// Retry policy.
    pub retry: Option<RetryConfig>,
    /// Per-attempt timeout (extension; not for `shell_run`, whose field is its own).
    pub timeout_secs: Option<u64>,
    /// Informational.
    pub description: Option<String>,
}

/// What an edge matches (03 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// No `when`: matches only results without a label.
    Unlabelled,
    /// `when = "L"`: matches exactly label `L`.
    Label(String),
    /// `when = "*"`: taken when no other edge matches.
    Default,
}

/// An edge of a validated workflow.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Index of the source node.
    pub from: usize,
    /// Index of the target node.
    pub to: usize,
    /// Matching rule.
    pub when: When,
    /// Loop edge bound.
    pub max_iterations: Option<u32>,
}

/// A named entry point.
#[derive(Debug, Clone)]
pub struct StartNode {
    /// Start name.
    pub name: String,
    /// Informational source.
    pub source: StartSource,
    /// Index of the entry node; `None` when it cannot be determined (a run from it errors).
    pub entry: Option<usize>,
}

/// Where the workflow came from.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// Name shown in diagnostics.
    pub display_name: String,
    /// Absolute path, when loaded from a file.
    pub path: Option<PathBuf>,
    /// Hex SHA-256 of the file bytes; computed by the caller only when needed (checkpoints),
    /// because hashing a large file is a measurable part of validating it.
    pub sha256: Option<String>,
}

/// A validated workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Workflow identity.
    pub name: String,
    /// Informational.
    pub description: Option<String>,
    /// Source file details.
    pub provenance: Provenance,
    /// Nodes in declaration order.
    pub nodes: Vec<Node>,
    /// Edges in declaration order.
    pub edges: Vec<Edge>,
    /// Start nodes in declaration order.
    pub start_nodes: Vec<StartNode>,
    /// Node id → index.
    pub node_index: HashMap<String, usize>,
    /// Per node, indices of its out-edges in declaration order.
    pub out_edges: Vec<Vec<usize>>,
    /// Warnings found by the validator.
    pub warnings: Vec<Diagnostic>,
    /// The environment tables, as written.
    pub environment: Environment,
}

/// The non-graph tables of a workflow.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Long-lived triggers.
    pub triggers: Vec<TriggerConfig>,
    /// HTTP routes.
    pub http_routes: Vec<HttpRouteConfig>,
    /// `[policy]`.
    pub policy: Option<agentd_policy::PolicyConfig>,
    /// `[auth]`.
    pub auth: Option<AuthConfig>,
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
    /// `[[secrets]]`.
    pub secrets: Vec<SecretConfig>,
    /// `[control]`.
    pub control: Option<ControlConfig>,
    /// `[store]`.
    pub store: Option<StoreConfig>,
}

impl Workflow {
    /// Index of a node id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.node_index.get(id).copied()
    }

    /// The start node with this name.
    pub fn start(&self, name: &str) -> Option<&StartNode> {
        self.start_nodes.iter().find(|s| s.name == name)
    }

    /// True when the workflow has anything for serve mode to run (routes or long-lived triggers).
    pub fn has_serve_work(&self) -> bool {
        !self.environment.http_routes.is_empty() || self.environment.triggers.iter().any(TriggerConfig::is_long_lived)
    }
}

/// The switch label of a value (04 §1.2).
pub fn switch_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(_) => "array".to_string(),
        Value::Object(_) => "object".to_string(),
    }
}

/// Truthiness of a value (04 §1.1): falsy are null, false, "", zero, [] and {}.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Hex SHA-256 of a workflow file's bytes (checkpoint `workflow_sha256`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn switch_labels() {
        assert_eq!(switch_label(&json!("")), "");
        assert_eq!(switch_label(&json!(42)), "42");
        assert_eq!(switch_label(&json!(-7)), "-7");
        assert_eq!(switch_label(&json!(1.5)), "1.5");
        assert_eq!(switch_label(&json!(2.0)), "2.0");
        assert_eq!(switch_label(&json!(true)), "true");
        assert_eq!(switch_label(&json!(null)), "null");
        assert_eq!(switch_label(&json!([1])), "array");
        assert_eq!(switch_label(&json!({})), "object");
    }

    #[test]
    fn truthiness() {
        for v in [json!(null), json!(false), json!(""), json!(0), json!(0.0), json!(-0.0), json!([]), json!({})] {
            assert!(!is_truthy(&v), "{v}");
        }
        for v in [json!(true), json!("0"), json!(1), json!(-0.5), json!([0]), json!({"a": null})] {
            assert!(is_truthy(&v), "{v}");
        }
    }
}
