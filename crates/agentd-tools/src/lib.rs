//! Side effects of agentd nodes and `agent_loop` tools.
//!
//! Architecture invariant: every function here asks [`agentd_policy::Policy`] before touching
//! the outside world, and acts on exactly what was checked (the checked path, never the string
//! the workflow supplied). There is no other path from a node to the disk or the environment.

pub mod env;
pub mod fs;
pub mod http;
pub mod shell;

use agentd_policy::Decision;

/// Why an effect did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Policy refused it; `target` is what was checked.
    #[error("{}", decision.violation_text(op, target))]
    Denied {
        /// The node kind or loop tool that asked.
        op: &'static str,
        /// The checked target (path, key, URL, command).
        target: String,
        /// The decision with its rule reason.
        decision: Decision,
    },
    /// The effect was allowed but failed; the message names the path or key involved.
    #[error("{0}")]
    Failed(String),
}
