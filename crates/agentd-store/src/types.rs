//! The shapes the store keeps: checkpoints (02-data.md §6.2), history rows (§7), approvals and
//! idempotency rows (07-triggers-server.md §8).
//!
//! Nested documents (trace entries, node outputs, cost, replies) are `serde_json::Value`s: the
//! engine owns their typed form, and this crate must not depend on the engine (the engine depends
//! on the store).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What a checkpoint parks: a node walk or a compiled plan (02-data.md §6.2 `kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// A node walk paused or progressing (the 1.3 kind).
    #[default]
    Node,
    /// A compiled plan parked with `--queue-approval` (09-agent.md §3.8).
    Plan,
}

impl CheckpointKind {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Node => "node",
            CheckpointKind::Plan => "plan",
        }
    }

    /// Parses a stored word.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "node" => Some(CheckpointKind::Node),
            "plan" => Some(CheckpointKind::Plan),
            _ => None,
        }
    }
}

impl fmt::Display for CheckpointKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Budget consumed by a run so far (02-data.md §6.2 `budget_used`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetUsed {
    /// Model tokens (prompt + completion).
    #[serde(default)]
    pub llm_tokens: u64,
    /// Bytes written through `write_file`.
    #[serde(default)]
    pub fs_write_bytes: u64,
}

fn default_true() -> bool {
    true
}

/// One run's checkpoint: the logical JSON document of 02-data.md §6.2, field for field and in
/// that order.
///
/// The base fields are the checkpoint file format of agentd 1.3; every extension field has a
/// default, so a 1.3 file deserialises into this type as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Execution id.
    pub run_id: String,
    /// Workflow `name`; resume refuses a mismatch.
    pub workflow: String,
    /// Original start-node name (`""` for a plan checkpoint).
    pub start_node: String,
    /// Kind of the original trigger (`manual`, `http`, `event`, …).
    pub trigger_kind: String,
    /// The original, raw trigger input.
    pub trigger_input: Value,
    /// Node id → output so far, including the reserved `trigger` entry.
    pub node_outputs: Map<String, Value>,
    /// The pause node, or the node completed just before a progress checkpoint.
    pub paused_at: String,
    /// Node to execute on resume; `None` = resuming completes at once.
    #[serde(default)]
    pub resume_node: Option<String>,
    /// Pause prompt (pause checkpoints).
    #[serde(default)]
    pub reason: Option<String>,
    /// `true` = pause checkpoint ("paused"); `false` = progress checkpoint ("recoverable").
    #[serde(default = "default_true")]
    pub awaiting_approval: bool,
    /// Node walk or parked plan (extension).
    #[serde(default)]
    pub kind: CheckpointKind,
    /// For kind `plan`: `{"plan_hash", "review", "source"}` (extension).
    #[serde(default)]
    pub plan: Option<Value>,
    /// Absolute path of the loaded workflow file; `None` when embedded (extension).
    #[serde(default)]
    pub workflow_path: Option<String>,
    /// Hex SHA-256 of the workflow file bytes (extension).
    #[serde(default)]
    pub workflow_sha256: Option<String>,
    /// Edge index (decimal string) → times followed (extension).
    #[serde(default)]
    pub loop_counts: BTreeMap<String, u32>,
    /// Nodes walked so far (extension).
    #[serde(default)]
    pub steps: u64,
    /// Trace entries so far, each a 02-data.md §3 entry (extension).
    #[serde(default)]
    pub trace: Vec<Value>,
    /// The `respond` reply declared so far (extension).
    #[serde(default)]
    pub http_response: Option<Value>,
    /// Budget consumed so far (extension).
    #[serde(default)]
    pub budget_used: BudgetUsed,
    /// Per-run counters so far (02-data.md §5 `cost`); `null` when none were recorded, as for an
    /// imported 1.3 checkpoint (extension).
    #[serde(default)]
    pub cost: Value,
    /// When the checkpoint was first written (RFC 3339 UTC, milliseconds; extension).
    #[serde(default)]
    pub created_at: String,
    /// When it was last written (extension).
    #[serde(default)]
    pub updated_at: String,
}

/// The cheap view of a checkpoint: what `--list-checkpoints` and `--resume-incomplete` select on,
/// without node outputs or the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    /// Execution id.
    pub run_id: String,
    /// Workflow `name`.
    pub workflow: String,
    /// Node walk or parked plan.
    pub kind: CheckpointKind,
    /// The pause node or last completed node.
    pub paused_at: String,
    /// Node to execute on resume.
    pub resume_node: Option<String>,
    /// Pause checkpoint (`true`) or progress checkpoint (`false`).
    pub awaiting_approval: bool,
    /// Last write.
    pub updated_at: String,
    /// Current claim holder (`pid@host`), if any.
    pub claimed_by: Option<String>,
}

/// An incremental write of a run's existing checkpoint: the scalars that change as the walk goes
/// on, plus only the node outputs and trace entries that are new since the last write.
///
/// This is the per-node path for progress checkpoints (`--checkpoint-each-node`): its cost does not
/// grow with the length of the run, where rewriting the whole [`Checkpoint`] after every node
/// would be quadratic. The fields a run never changes (workflow, start node, trigger, kind, plan,
/// workflow path and hash, `created_at`) are written once by [`Store::put_checkpoint`].
///
/// [`Store::put_checkpoint`]: crate::Store::put_checkpoint
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    /// The run whose checkpoint is updated; it must exist.
    pub run_id: String,
    /// New `paused_at`.
    pub paused_at: String,
    /// New `resume_node`.
    pub resume_node: Option<String>,
    /// New `reason`.
    pub reason: Option<String>,
    /// New `awaiting_approval` (`false` for a progress checkpoint).
    pub awaiting_approval: bool,
    /// New loop counters (the whole map; it holds one entry per loop edge taken, so it stays small).
    pub loop_counts: BTreeMap<String, u32>,
    /// New step count.
    pub steps: u64,
    /// New declared reply.
    pub http_response: Option<Value>,
    /// New budget usage.
    pub budget_used: BudgetUsed,
    /// New counters.
    pub cost: Value,
    /// New `updated_at`.
    pub updated_at: String,
    /// Node outputs that were added or replaced since the last write; other outputs are kept.
    pub changed_outputs: Map<String, Value>,
    /// Index in the run's trace of `new_trace[0]`. It must not exceed the number of entries the store
    /// holds; stored entries at or after it are replaced, so a writer whose previous update failed
    /// simply resends from its last durable index.
    pub trace_from: u64,
    /// Trace entries from `trace_from` on.
    pub new_trace: Vec<Value>,
}

/// Result of [`Store::claim`](crate::Store::claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller now holds the claim (fresh, or taken over from a stale holder).
    Claimed,
    /// A live holder has it.
    AlreadyClaimed {
        /// The holder (`pid@host`).
        by: String,
    },
    /// There is no checkpoint for that run id.
    NotFound,
}

/// The run statuses a history row may carry (02-data.md §1).
pub const RUN_STATUSES: [&str; 7] = ["completed", "failed", "timed_out", "paused", "errored", "queued", "running"];

/// The statuses of a finished run, the only rows [`Store::prune_runs`](crate::Store::prune_runs)
/// removes.
pub const FINISHED_STATUSES: [&str; 4] = ["completed", "failed", "timed_out", "errored"];

/// One row of the run history (02-data.md §7 `runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// The run id (key).
    pub execution_id: String,
    /// Workflow name.
    pub workflow: String,
    /// Start-node name.
    pub start_node: String,
    /// One of [`RUN_STATUSES`].
    pub status: String,
    /// As in the outcome.
    pub last_node: Option<String>,
    /// First start of the run (RFC 3339 UTC, milliseconds); the history's sort key.
    pub started_at: String,
    /// End of the latest invocation; `None` while queued or running.
    pub finished_at: Option<String>,
    /// Wall time of the latest invocation.
    pub wall_ms: u64,
    /// The run record (02-data.md §5 JSON).
    pub record: Value,
    /// The record's JSON text, when the writer already has it: written instead of encoding
    /// `record`, which saves building and encoding a value tree for a large trace. Never read back
    /// (rows read from the store carry `record`).
    #[serde(skip)]
    pub record_text: Option<String>,
}

/// Which history rows [`Store::runs`](crate::Store::runs) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only rows with this status.
    pub status: Option<String>,
    /// Only rows of this workflow.
    pub workflow: Option<String>,
    /// Only rows started at or after this instant (RFC 3339).
    pub since: Option<String>,
    /// At most this many rows; `0` = all.
    pub limit: usize,
}

/// Whether an approval still waits for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting.
    Pending,
    /// Approved or rejected.
    Decided,
}

impl ApprovalState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Decided => "decided",
        }
    }

    /// Parses a stored word.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "pending" => Some(ApprovalState::Pending),
            "decided" => Some(ApprovalState::Decided),
            _ => None,
        }
    }
}

/// The decision taken on an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approved: the run resumes.
    Approved,
    /// Rejected: the run ends failed.
    Rejected,
}

impl Verdict {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
        }
    }

    /// Parses a stored word.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "approved" => Some(Verdict::Approved),
            "rejected" => Some(Verdict::Rejected),
            _ => None,
        }
    }
}

/// How a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionVia {
    /// `agentd approve`.
    Approve,
    /// `agentd --resume` of a paused run.
    Resume,
    /// `agentd reject`.
    Reject,
    /// The control-plane API.
    Api,
}

impl DecisionVia {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionVia::Approve => "approve",
            DecisionVia::Resume => "resume",
            DecisionVia::Reject => "reject",
            DecisionVia::Api => "api",
        }
    }

    /// Parses a stored word.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "approve" => Some(DecisionVia::Approve),
            "resume" => Some(DecisionVia::Resume),
            "reject" => Some(DecisionVia::Reject),
            "api" => Some(DecisionVia::Api),
            _ => None,
        }
    }
}

/// A run that paused and waits for a decision, for
/// [`Store::request_approval`](crate::Store::request_approval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The paused run.
    pub execution_id: String,
    /// Its workflow name.
    pub workflow: String,
    /// A paused node or a parked plan.
    pub kind: CheckpointKind,
    /// The pause node (`""` for a plan).
    pub pause_node: String,
    /// The pause prompt.
    pub reason: Option<String>,
    /// When the run paused (RFC 3339 UTC, milliseconds).
    pub requested_at: String,
    /// The principal that triggered the run (07-triggers-server.md §4.3 object), if any.
    pub trigger_principal: Option<Value>,
}

/// One entry of the approval queue (02-data.md §7 `approvals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The paused run (key).
    pub execution_id: String,
    /// Workflow name of the paused run, so the queue reads well after the checkpoint is gone.
    pub workflow: String,
    /// A paused node or a parked plan.
    pub kind: CheckpointKind,
    /// The pause node (`""` for a plan).
    pub pause_node: String,
    /// The pause prompt.
    pub reason: Option<String>,
    /// When the run paused.
    pub requested_at: String,
    /// The principal that triggered the run (07-triggers-server.md §4.3 object), if any.
    pub trigger_principal: Option<Value>,
    /// Pending or decided.
    pub state: ApprovalState,
    /// The decision, once decided.
    pub decision: Option<Verdict>,
    /// How it was decided.
    pub via: Option<DecisionVia>,
    /// The operator's note (`approve --note`, `reject --reason`).
    pub note: Option<String>,
    /// Who decided: a `<kind>:<name>` principal or the OS user.
    pub actor: Option<String>,
    /// When it was decided.
    pub decided_at: Option<String>,
}

/// A decision to record with [`Store::decide_approval`](crate::Store::decide_approval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// Approved or rejected.
    pub decision: Verdict,
    /// How it was taken.
    pub via: DecisionVia,
    /// The operator's note.
    pub note: Option<String>,
    /// Who took it.
    pub actor: String,
    /// When (RFC 3339 UTC, milliseconds).
    pub decided_at: String,
}

/// Result of [`Store::decide_approval`](crate::Store::decide_approval).
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// This decision was the first one committed.
    Recorded,
    /// An earlier decision won; here it is.
    AlreadyDecided(Box<Approval>),
    /// The run has no approval entry.
    NoApproval,
}

/// The scope of one idempotency row: (workflow, upper-cased method, route path, SHA-256 of the
/// key). The key itself is never stored, only its digest and a 48-character preview.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyScope {
    /// Workflow name.
    pub workflow: String,
    /// Route method, upper-cased.
    pub method: String,
    /// Route path as declared.
    pub path: String,
    /// Lower-case hex SHA-256 of the key.
    pub key_sha256: String,
    /// The first 48 characters of the key, for operators.
    pub key_preview: String,
}

impl IdempotencyScope {
    /// Builds the scope of `key` on a route, hashing the key and upper-casing the method.
    pub fn new(workflow: &str, method: &str, path: &str, key: &str) -> Self {
        IdempotencyScope {
            workflow: workflow.to_owned(),
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            key_sha256: hex::encode(Sha256::digest(key.as_bytes())),
            key_preview: key.chars().take(48).collect(),
        }
    }

    /// The scope text of 12-fleet.md §3.1: `<workflow> <METHOD> <path>`.
    pub fn scope_text(&self) -> String {
        format!("{} {} {}", self.workflow, self.method, self.path)
    }
}

/// The reply stored for replay once a delivery finished (07-triggers-server.md §8 step 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    /// HTTP status sent.
    pub status: u16,
    /// Content type sent.
    pub content_type: String,
    /// Body bytes sent, exactly.
    pub body: Vec<u8>,
    /// The run that produced it (`x-agentd-execution-id` of the replay).
    pub execution_id: String,
}

/// Result of [`Store::idempotency_begin`](crate::Store::idempotency_begin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// A finished delivery within the TTL: send this reply, do not run (step 1).
    Replay(StoredReply),
    /// Another delivery with this key is in flight: answer 409 (step 3).
    Conflict,
    /// The caller owns the `pending` row now and runs the workflow (steps 2–4).
    Proceed {
        /// `true` when a stale `pending` row of a dead delivery was taken over (step 3/7).
        took_over: bool,
    },
}
