//! The documents a run produces (02-data.md): outcome, trace entries, run record, cost.
//!
//! Field order is the order of the structs (serde keeps it); node values inside them are
//! `serde_json::Value`s, whose object keys serialise in sorted order.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The reply declared by a `respond` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpReply {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Rendered body.
    pub body: String,
}

/// How a run ended (02 §2), tagged by `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Reached `terminate`, a dead end, or resumed with no successor.
    Completed {
        /// Output of the node where the walk stopped (`null` for `terminate`).
        final_value: Value,
        /// That node.
        last_node: String,
        /// The last `respond` reply, when one ran.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        http_response: Option<HttpReply>,
    },
    /// Reached `fail`, or was rejected.
    Failed {
        /// Failure reason.
        reason: String,
        /// The failing node.
        last_node: String,
    },
    /// The run deadline expired.
    TimedOut {
        /// Milliseconds from walk start to the deadline detection.
        elapsed_ms: u64,
        /// The node cut short or the last node that ran.
        last_node: Option<String>,
    },
    /// Reached `pause_for_approval`.
    Paused {
        /// Execution id to resume.
        run_id: String,
        /// The pause node.
        last_node: Option<String>,
        /// The pause prompt.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
    },
    /// An error the graph did not route.
    Errored {
        /// Error text (category prefix + message).
        reason: String,
        /// The node whose error ended the run.
        last_node: Option<String>,
    },
}

impl Outcome {
    /// The status word.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::TimedOut { .. } => "timed_out",
            Outcome::Paused { .. } => "paused",
            Outcome::Errored { .. } => "errored",
        }
    }

    /// The `last_node` of any outcome.
    pub fn last_node(&self) -> Option<&str> {
        match self {
            Outcome::Completed { last_node, .. } | Outcome::Failed { last_node, .. } => Some(last_node),
            Outcome::TimedOut { last_node, .. }
            | Outcome::Paused { last_node, .. }
            | Outcome::Errored { last_node, .. } => last_node.as_deref(),
        }
    }

    /// The one-shot exit code (01 §5.3).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Completed { .. } => 0,
            Outcome::Paused { .. } => 7,
            Outcome::Failed { .. } | Outcome::TimedOut { .. } | Outcome::Errored { .. } => 5,
        }
    }

    /// The record `detail` of this outcome (02 §5).
    pub fn detail(&self) -> Value {
        match self {
            Outcome::Completed { final_value, http_response: None, .. } => final_value.clone(),
            Outcome::Completed { final_value, http_response: Some(reply), .. } => {
                serde_json::json!({"final_value": final_value, "http_response": reply})
            }
            Outcome::Failed { reason, .. } => serde_json::json!({"reason": reason}),
            Outcome::TimedOut { elapsed_ms, .. } => serde_json::json!({"elapsed_ms": elapsed_ms}),
            Outcome::Paused { run_id, reason, .. } => {
                serde_json::json!({"run_id": run_id, "reason": reason})
            }
            Outcome::Errored { reason, .. } => serde_json::json!({"error": reason}),
        }
    }
}

/// One node execution in the trace (02 §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// The node executed.
    pub node_id: String,
    /// Its `type`.
    pub kind: String,
    /// `continue`, `terminate`, `fail`, `pause` or `error`.
    pub outcome: String,
    /// Label emitted (only with `continue`).
    pub branch: Option<String>,
    /// Output value (`null` for terminate, fail, pause, error).
    pub output: Value,
    /// Wall time including retries and back-off.
    pub elapsed_ms: u64,
    /// Attempts, when more than one (extension).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attempts: Option<u32>,
    /// The error text, when `outcome` is `error` (extension).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Child runs of composition nodes (extension).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub children: Option<Vec<ChildTrace>>,
    /// When the node started (extension).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_at: Option<String>,
}

/// A child run attached to a composition node's trace entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildTrace {
    /// Child execution id.
    pub execution_id: String,
    /// Child workflow name.
    pub workflow: String,
    /// Child start name.
    pub start_node: String,
    /// Child status.
    pub status: String,
    /// Child last node.
    pub last_node: Option<String>,
    /// Child trace entries.
    pub entries: Vec<TraceEntry>,
}

/// The trace of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The run's execution id.
    pub execution_id: String,
    /// Entries in execution order.
    pub entries: Vec<TraceEntry>,
}

/// Per-run counters (02 §5), covering child runs too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// This run plus child runs started.
    pub workflow_starts: u64,
    /// Runs ended completed.
    pub workflow_completions: u64,
    /// Runs ended failed.
    pub workflow_failures: u64,
    /// Runs ended timed_out.
    pub workflow_timeouts: u64,
    /// Runs ended errored.
    pub workflow_errored: u64,
    /// Node executions (a retried node counts once).
    pub node_executions: u64,
    /// Executions ending in `error`.
    pub node_failures: u64,
    /// Policy denials.
    pub policy_denials: u64,
    /// Successful model calls.
    pub llm_calls: u64,
    /// Prompt + completion tokens.
    pub llm_tokens: u64,
}

impl Cost {
    /// Adds a child run's counters (04 §8: child counters add to the parent run's cost).
    pub fn add(&mut self, other: &Cost) {
        self.workflow_starts += other.workflow_starts;
        self.workflow_completions += other.workflow_completions;
        self.workflow_failures += other.workflow_failures;
        self.workflow_timeouts += other.workflow_timeouts;
        self.workflow_errored += other.workflow_errored;
        self.node_executions += other.node_executions;
        self.node_failures += other.node_failures;
        self.policy_denials += other.policy_denials;
        self.llm_calls += other.llm_calls;
        self.llm_tokens += other.llm_tokens;
    }

    /// Counts the end of one run with this outcome.
    pub fn count_end(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Completed { .. } => self.workflow_completions += 1,
            Outcome::Failed { .. } => self.workflow_failures += 1,
            Outcome::TimedOut { .. } => self.workflow_timeouts += 1,
            Outcome::Errored { .. } => self.workflow_errored += 1,
            Outcome::Paused { .. } => {}
        }
    }
}

/// The run record (02 §5): `--record`, history, `inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Workflow name.
    pub workflow: String,
    /// Start-node name.
    pub start_node: String,
    /// Execution id.
    pub execution_id: String,
    /// Status word.
    pub status: String,
    /// As in the outcome.
    pub last_node: Option<String>,
    /// Outcome detail.
    pub detail: Value,
    /// Wall time of this invocation.
    pub wall_ms: u64,
    /// Counters.
    pub cost: Cost,
    /// Trace.
    pub trace: Trace,
    /// First start of the run (extension).
    pub started_at: String,
    /// End of this invocation (extension).
    pub finished_at: String,
    /// Effective `trigger.kind` (extension).
    pub trigger_kind: String,
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcome_shapes_follow_the_spec_field_order() {
        let completed =
            Outcome::Completed { final_value: json!({"b": 1, "a": 2}), last_node: "x".into(), http_response: None };
        assert_eq!(
            serde_json::to_string(&completed).expect("json"),
            r#"{"status":"completed","final_value":{"a":2,"b":1},"last_node":"x"}"#
        );
        let errored = Outcome::Errored { reason: "boom".into(), last_node: None };
        assert_eq!(
            serde_json::to_string(&errored).expect("json"),
            r#"{"status":"errored","reason":"boom","last_node":null}"#
        );
        let paused = Outcome::Paused { run_id: "exec-1".into(), last_node: Some("p".into()), reason: None };
        assert_eq!(
            serde_json::to_string(&paused).expect("json"),
            r#"{"status":"paused","run_id":"exec-1","last_node":"p"}"#
        );
    }

    #[test]
    fn json_objects_serialise_sorted() {
        // Guards against a dependency switching on serde_json's `preserve_order`.
        let mut map = serde_json::Map::new();
        map.insert("zeta".into(), json!(1));
        map.insert("alpha".into(), json!(2));
        assert_eq!(serde_json::to_string(&map).expect("json"), r#"{"alpha":2,"zeta":1}"#);
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = jiff::Timestamp::from_millisecond(1_714_564_803_120).expect("ts");
        assert_eq!(timestamp(t), "2024-05-01T12:00:03.120Z");
    }
}
