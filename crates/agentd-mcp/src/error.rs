//! Errors of the MCP client: startup failures (`08` §1.1, exit 2) and per-call failures (`04` §6,
//! `08` §2.5).
//!
//! Every text here may reach an outcome, a log line or a record, so texts are built only from
//! configuration names, protocol fields and scrubbed server answers: never from a resolved secret.

use agentd_policy::Decision;

/// The longest server-supplied text (error message, transport detail) an error carries, in
/// characters. A hostile server cannot blow up a record through an error text.
pub const MAX_DETAIL_CHARS: usize = 500;

/// A server that could not be configured or started. `Display` is the `<reason>` part of the
/// CLI line ``agentd: mcp server `<name>`: <reason>`` without the `agentd: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mcp server `{server}`: {reason}")]
pub struct StartupError {
    /// The server name as configured (`default` for `--mcp-stdio`).
    pub server: String,
    /// What went wrong, already scrubbed of secret values.
    pub reason: String,
}

impl StartupError {
    /// A startup error of `server`.
    pub fn new(server: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { server: server.into(), reason: reason.into() }
    }
}

/// The error category a call failure belongs to (`03-workflow.md` §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A policy denial: never retried, the run is errored.
    Policy,
    /// No MCP server is configured at all.
    Capability,
    /// A workflow error (unknown or ambiguous server).
    Workflow,
    /// A tool error (bad arguments).
    Tool,
    /// MCP transport or protocol failure (transient).
    Mcp,
    /// The request did not complete in time.
    Timeout,
}

/// Why one `tools/call` or `resources/read` failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum McpError {
    /// The server's allowlist (or a pin mismatch) denied the call before anything was sent.
    #[error("{}", .decision.violation_text(.op, .target))]
    Denied {
        /// `call_mcp_tool` or `read_mcp_resource`.
        op: &'static str,
        /// `server:tool` or `server:uri`.
        target: String,
        /// The denial, with its rule reason.
        decision: Decision,
    },
    /// No `[[mcp_servers]]` entry and no `--mcp-stdio`.
    #[error("capability unavailable: no MCP server is configured ([[mcp_servers]] or --mcp-stdio)")]
    NoServers,
    /// The node named a server that is not configured.
    #[error("unknown mcp server `{name}`; configured: [{}]", .configured.join(", "))]
    UnknownServer {
        /// The requested name.
        name: String,
        /// Every configured name, sorted.
        configured: Vec<String>,
    },
    /// The node named no server while several are configured.
    #[error(
        "call_mcp_tool / read_mcp_resource: `server` field required when multiple mcp_servers are configured; got [{}]",
        .configured.join(", ")
    )]
    AmbiguousServer {
        /// Every configured name, sorted.
        configured: Vec<String>,
    },
    /// The tool arguments were neither an object nor null (`04` §6.1).
    #[error("tool `call_mcp_tool` failed: arguments must be an object; got {got}")]
    InvalidArguments {
        /// `bool`, `number`, `string` or `array`.
        got: &'static str,
    },
    /// The stdio child exited (before or during the call), or cannot be respawned yet.
    #[error("mcp: {server} exited ({status})")]
    Exited {
        /// The server name.
        server: String,
        /// The exit status as text (`exit status: 3`, `signal: 9 (SIGKILL)`, `unknown status`).
        status: String,
    },
    /// The request was not answered in time; a cancellation was sent.
    #[error("mcp: {server} did not answer {method} within {seconds}s")]
    Timeout {
        /// The server name.
        server: String,
        /// The JSON-RPC method, e.g. `tools/call`.
        method: &'static str,
        /// The limit that expired, in whole seconds (at least 1 in the text when non-zero).
        seconds: u64,
        /// Whether the caller's limit (the remaining run time) was the smaller one: the run then
        /// ends `timed_out` (`03-workflow.md` §8.4).
        run_deadline: bool,
    },
    /// The server answered with a JSON-RPC error.
    #[error("mcp: {server} error {code}: {message}")]
    Rpc {
        /// The server name.
        server: String,
        /// The JSON-RPC error code.
        code: i32,
        /// The error message, scrubbed and cut to [`MAX_DETAIL_CHARS`].
        message: String,
    },
    /// The transport failed (connection refused, closed, unexpected answer, bad HTTP status).
    #[error("mcp: {server} {detail}")]
    Transport {
        /// The server name.
        server: String,
        /// What happened, scrubbed and cut to [`MAX_DETAIL_CHARS`].
        detail: String,
    },
    /// The hub was shut down.
    #[error("mcp: {server} is shut down")]
    ShutDown {
        /// The server name.
        server: String,
    },
}

impl McpError {
    /// The error category (`03-workflow.md` §8.3) the engine files this failure under.
    pub fn category(&self) -> Category {
        match self {
            Self::Denied { .. } => Category::Policy,
            Self::NoServers => Category::Capability,
            Self::UnknownServer { .. } | Self::AmbiguousServer { .. } => Category::Workflow,
            Self::InvalidArguments { .. } => Category::Tool,
            Self::Timeout { .. } => Category::Timeout,
            Self::Exited { .. } | Self::Rpc { .. } | Self::Transport { .. } | Self::ShutDown { .. } => Category::Mcp,
        }
    }

    /// Whether a retry policy with `on = "transient"` may retry this failure.
    pub fn is_transient(&self) -> bool {
        matches!(self.category(), Category::Mcp | Category::Timeout)
    }
}

/// `text` cut to [`MAX_DETAIL_CHARS`] characters, on one line.
pub(crate) fn bounded(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match one_line.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_the_spec() {
        let exited = McpError::Exited { server: "docs".into(), status: "exit status: 3".into() };
        assert_eq!(exited.to_string(), "mcp: docs exited (exit status: 3)");
        let timeout =
            McpError::Timeout { server: "docs".into(), method: "tools/call", seconds: 2, run_deadline: false };
        assert_eq!(timeout.to_string(), "mcp: docs did not answer tools/call within 2s");
        let rpc = McpError::Rpc { server: "docs".into(), code: -32000, message: "boom".into() };
        assert_eq!(rpc.to_string(), "mcp: docs error -32000: boom");
        let unknown = McpError::UnknownServer { name: "x".into(), configured: vec!["a".into(), "b".into()] };
        assert_eq!(unknown.to_string(), "unknown mcp server `x`; configured: [a, b]");
        assert_eq!(StartupError::new("docs", "boom").to_string(), "mcp server `docs`: boom");
    }

    #[test]
    fn details_are_bounded_and_single_line() {
        let long = format!("a\nb{}", "x".repeat(2000));
        let cut = bounded(&long);
        assert!(!cut.contains('\n'));
        assert_eq!(cut.chars().count(), MAX_DETAIL_CHARS + 1);
    }
}
