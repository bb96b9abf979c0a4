//! The engine's use of the state store (02 §6–§7): pause and progress checkpoints, resume,
//! and the run history. Only the engine's driver writes to the store; handlers never do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use agentd_store::{Checkpoint, CheckpointKind, Store};
use serde_json::{Map, Value};

/// A store opened on first need (the state dir is opened lazily, 01 §7).
pub struct StoreHandle {
    open: Box<dyn Fn() -> Result<Arc<dyn Store>, String> + Send + Sync>,
    cell: OnceLock<Result<Arc<dyn Store>, String>>,
}

impl StoreHandle {
    /// A handle that runs `open` the first time the store is needed.
    pub fn lazy(open: impl Fn() -> Result<Arc<dyn Store>, String> + Send + Sync + 'static) -> StoreHandle {
        StoreHandle { open: Box::new(open), cell: OnceLock::new() }
    }

    /// The store, opening it now if needed; the error text is reported by the caller.
    pub fn get(&self) -> Result<Arc<dyn Store>, String> {
        self.cell.get_or_init(|| (self.open)()).clone()
    }
}

/// Durable-execution settings of an engine.
#[derive(Default)]
pub struct DurableOptions {
    /// The state store (absent: pauses error, nothing is recorded).
    pub store: Option<Arc<StoreHandle>>,
    /// Write a progress checkpoint after every node.
    pub checkpoint_each_node: bool,
    /// Keep at most this many finished runs in the history; `None` = `--no-history`.
    pub history_max_runs: Option<u64>,
    /// Absolute path of the workflow file (stored in checkpoints).
    pub workflow_path: Option<PathBuf>,
    /// Hex SHA-256 of the workflow file (stored in checkpoints, compared on resume).
    pub workflow_sha256: Option<String>,
}

/// A run to continue from its checkpoint.
pub struct Resume {
    /// The checkpoint as stored.
    pub checkpoint: Checkpoint,
    /// The approval note, for a pause checkpoint (`<pause id>.note`).
    pub note: Option<String>,
}

/// The parts of a checkpoint that do not change during a segment.
pub(crate) struct CheckpointBase {
    pub run_id: String,
    pub workflow: String,
    pub start_node: String,
    pub trigger_kind: String,
    pub trigger_input: Value,
    pub workflow_path: Option<String>,
    pub workflow_sha256: Option<String>,
    pub created_at: String,
}

impl CheckpointBase {
    /// A full checkpoint document.
    #[allow(clippy::too_many_arguments, reason = "one argument per checkpoint field that changes")]
    pub fn checkpoint(
        &self,
        node_outputs: Map<String, Value>,
        paused_at: String,
        resume_node: Option<String>,
        reason: Option<String>,
        awaiting_approval: bool,
        loop_counts: BTreeMap<String, u32>,
        steps: u64,
        trace: Vec<Value>,
        http_response: Option<Value>,
        fs_write_bytes: u64,
        cost: Value,
        now: String,
    ) -> Checkpoint {
        Checkpoint {
            run_id: self.run_id.clone(),
            workflow: self.workflow.clone(),
            start_node: self.start_node.clone(),
            trigger_kind: self.trigger_kind.clone(),
            trigger_input: self.trigger_input.clone(),
            node_outputs,
            paused_at,
            resume_node,
            reason,
            awaiting_approval,
            kind: CheckpointKind::Node,
            plan: None,
            workflow_path: self.workflow_path.clone(),
            workflow_sha256: self.workflow_sha256.clone(),
            loop_counts,
            steps,
            trace,
            http_response,
            budget_used: agentd_store::BudgetUsed { llm_tokens: 0, fs_write_bytes },
            cost,
            created_at: self.created_at.clone(),
            updated_at: now,
        }
    }
}

/// Writes run history on a background thread, batching rows into one transaction, so a busy
/// server does not pay a database write per request on its request path. Cloning shares the
/// writer; [`HistoryWriter::flush`] waits until everything queued is written.
#[derive(Clone)]
pub struct HistoryWriter {
    sender: std::sync::mpsc::SyncSender<HistoryJob>,
}

enum HistoryJob {
    Row(Box<agentd_store::RunRow>, usize),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Rows written per transaction at most.
const HISTORY_BATCH: usize = 512;
/// Rows queued at most; beyond that the caller writes inline (backpressure, bounded memory).
const HISTORY_QUEUE: usize = 65_536;
/// Rows written between two prunes of the history.
const PRUNE_EVERY: usize = 256;

impl HistoryWriter {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<StoreHandle>) -> HistoryWriter {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<HistoryJob>(HISTORY_QUEUE);
        let spawned = std::thread::Builder::new().name("agentd-history".into()).spawn(move || {
            let mut rows = Vec::new();
            let mut waiting = Vec::new();
            // Pruning scans the history; do it once per PRUNE_EVERY rows, not per batch (the
            // table may exceed the retention by at most that many rows in between).
            let mut since_prune = 0usize;
            while let Ok(first) = receiver.recv() {
                let mut keep = usize::MAX;
                let mut take = |job: HistoryJob, rows: &mut Vec<agentd_store::RunRow>| match job {
                    HistoryJob::Row(row, k) => {
                        keep = keep.min(k);
                        rows.push(*row);
                    }
                    HistoryJob::Flush(done) => waiting.push(done),
                };
                take(first, &mut rows);
                while rows.len() < HISTORY_BATCH {
                    match receiver.try_recv() {
                        Ok(job) => take(job, &mut rows),
                        Err(_) => break,
                    }
                }
                if !rows.is_empty() {
                    since_prune += rows.len();
                    let flushing = !waiting.is_empty();
                    let keep = if since_prune >= PRUNE_EVERY || flushing { keep } else { usize::MAX };
                    if keep != usize::MAX {
                        since_prune = 0;
                    }
                    let written = store.get().and_then(|s| s.record_runs(&rows, keep).map_err(|e| e.to_string()));
                    if let Err(reason) = written {
                        tracing::warn!(rows = rows.len(), %reason, "run history not written");
                    }
                    rows.clear();
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the history writer thread");
        }
        HistoryWriter { sender }
    }

    /// Queues a row; `keep` is the retention (`--history-max-runs`). When the queue is full or
    /// the writer stopped, the row comes back so the caller can write it itself.
    pub fn write(&self, row: agentd_store::RunRow, keep: usize) -> Result<(), Box<agentd_store::RunRow>> {
        match self.sender.try_send(HistoryJob::Row(Box::new(row), keep)) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(HistoryJob::Row(row, _)))
            | Err(std::sync::mpsc::TrySendError::Disconnected(HistoryJob::Row(row, _))) => Err(row),
            Err(_) => Ok(()),
        }
    }

    /// Waits (up to `limit`) until every row queued before this call is written.
    pub fn flush(&self, limit: std::time::Duration) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.sender.send(HistoryJob::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(limit);
        }
    }
}
