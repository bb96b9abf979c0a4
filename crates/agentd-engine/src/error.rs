//! Node errors and their categories (03 §8.3): the category decides the text prefix and whether
//! `retry` may re-run the node.

use std::fmt;

/// Error categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `configuration error: …`
    Config,
    /// ``workflow `<name>`: …``
    Workflow,
    /// `policy violation: …`
    Policy,
    /// `capability unavailable: …`
    Capability,
    /// ``tool `<tool>` failed: …``
    Tool,
    /// ``tool `<tool>` failed: budget.<cap> exceeded: …``
    Budget,
    /// `intelligence call failed: …`
    Intelligence,
    /// `mcp: …`
    Mcp,
    /// `schema validation failed: …`
    Schema,
    /// `timeout: node <id> exceeded <n>s`
    Timeout,
    /// `io error: …`
    Io,
    /// `json error: …`
    Json,
}

impl Category {
    /// Whether `retry.on = "transient"` retries this category.
    pub fn is_transient(self) -> bool {
        matches!(self, Category::Tool | Category::Intelligence | Category::Mcp | Category::Timeout)
    }

    /// Whether `retry.on = "any"` retries this category.
    pub fn is_retryable(self) -> bool {
        self.is_transient() || matches!(self, Category::Io | Category::Json)
    }
}

/// An error raised by a node (or by the engine on its behalf). `text` is the full error text,
/// category prefix included, already free of secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError {
    /// Category.
    pub category: Category,
    /// Full text.
    pub text: String,
}

impl NodeError {
    /// ``tool `<tool>` failed: <message>``
    pub fn tool(tool: &str, message: impl fmt::Display) -> NodeError {
        NodeError { category: Category::Tool, text: format!("tool `{tool}` failed: {message}") }
    }

    /// ``workflow `<name>`: <message>``
    pub fn workflow(name: &str, message: impl fmt::Display) -> NodeError {
        NodeError { category: Category::Workflow, text: format!("workflow `{name}`: {message}") }
    }

    /// A policy denial; `text` already starts with `policy violation: `.
    pub fn policy(text: String) -> NodeError {
        NodeError { category: Category::Policy, text }
    }

    /// `capability unavailable: <message>`
    pub fn capability(message: impl fmt::Display) -> NodeError {
        NodeError { category: Category::Capability, text: format!("capability unavailable: {message}") }
    }

    /// ``tool `<tool>` failed: budget.<cap> exceeded: <message>``
    pub fn budget(tool: &str, cap: &str, message: impl fmt::Display) -> NodeError {
        NodeError {
            category: Category::Budget,
            text: format!("tool `{tool}` failed: budget.{cap} exceeded: {message}"),
        }
    }

    /// `timeout: node <id> exceeded <n>s`
    pub fn timeout(node: &str, seconds: u64) -> NodeError {
        NodeError { category: Category::Timeout, text: format!("timeout: node {node} exceeded {seconds}s") }
    }

    /// `configuration error: <message>`
    pub fn config(message: impl fmt::Display) -> NodeError {
        NodeError { category: Category::Config, text: format!("configuration error: {message}") }
    }

    /// Whether `retry` with `on` may re-run the node after this error.
    pub fn retryable(&self, on: agentd_workflow::RetryOn) -> bool {
        match on {
            agentd_workflow::RetryOn::Any => self.category.is_retryable(),
            agentd_workflow::RetryOn::Transient => self.category.is_transient(),
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
