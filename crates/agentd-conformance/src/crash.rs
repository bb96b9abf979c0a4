//! `crash_after_node` (10 §2.5): a store wrapper that lets the progress checkpoint following the
//! first execution of a node commit, then behaves like a dead process: every later write fails
//! (nothing more is committed) and the run is cancelled at its next step. The harness discards
//! that segment's outcome and resumes the run from the store, as `--resume-incomplete` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use agentd_engine::Cancel;
use agentd_store::{
    Approval, ApprovalDecision, ApprovalRequest, ApprovalState, Checkpoint, CheckpointSummary, Claim, Decided,
    IdempotencyBegin, IdempotencyScope, ProgressUpdate, Result, RunFilter, RunRow, Store, StoredReply,
};

const ARMED: u8 = 0;
const CRASHED: u8 = 1;
const REVIVED: u8 = 2;

/// The store of a trial with a scheduled crash.
pub struct CrashingStore {
    inner: Arc<dyn Store>,
    node: String,
    phase: AtomicU8,
    cancel: Cancel,
    crashed_once: AtomicBool,
}

impl CrashingStore {
    /// Wraps `inner`; the crash cancels `cancel`.
    pub fn new(inner: Arc<dyn Store>, node: String, cancel: Cancel) -> CrashingStore {
        CrashingStore { inner, node, phase: AtomicU8::new(ARMED), cancel, crashed_once: AtomicBool::new(false) }
    }

    /// Whether the crash happened.
    pub fn crashed(&self) -> bool {
        self.crashed_once.load(Ordering::SeqCst)
    }

    /// The "new process": writes work again and no further crash is scheduled.
    pub fn revive(&self) {
        self.phase.store(REVIVED, Ordering::SeqCst);
    }

    fn dead(&self) -> Result<()> {
        if self.phase.load(Ordering::SeqCst) == CRASHED {
            return Err(agentd_store::Error::Io {
                dir: PathBuf::from("<trial>"),
                path: PathBuf::from("state.db"),
                action: "write",
                source: std::io::Error::other("the process crashed (conformance crash_after_node)"),
            });
        }
        Ok(())
    }

    /// After a committed progress checkpoint of the crash node: die.
    fn after_progress(&self, paused_at: &str, awaiting_approval: bool) {
        let armed = self.phase.load(Ordering::SeqCst) == ARMED;
        if armed && !awaiting_approval && paused_at == self.node {
            self.phase.store(CRASHED, Ordering::SeqCst);
            self.crashed_once.store(true, Ordering::SeqCst);
            self.cancel.cancel("conformance: simulated crash");
        }
    }
}

impl Store for CrashingStore {
    fn journal_put(&self, run_id: &str, key: &str, value: &serde_json::Value) -> Result<()> {
        self.dead()?;
        self.inner.journal_put(run_id, key, value)
    }

    fn journal(&self, run_id: &str, prefix: &str) -> Result<Vec<(String, serde_json::Value)>> {
        self.inner.journal(run_id, prefix)
    }

    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.dead()?;
        self.inner.put_checkpoint(checkpoint)?;
        self.after_progress(&checkpoint.paused_at, checkpoint.awaiting_approval);
        Ok(())
    }

    fn append_progress(&self, progress: &ProgressUpdate) -> Result<()> {
        self.dead()?;
        self.inner.append_progress(progress)?;
        self.after_progress(&progress.paused_at, progress.awaiting_approval);
        Ok(())
    }

    fn checkpoint(&self, run_id: &str) -> Result<Option<Checkpoint>> {
        self.inner.checkpoint(run_id)
    }

    fn list_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.inner.list_checkpoints()
    }

    fn checkpoint_summaries(&self) -> Result<Vec<CheckpointSummary>> {
        self.inner.checkpoint_summaries()
    }

    fn delete_checkpoint(&self, run_id: &str) -> Result<bool> {
        self.dead()?;
        self.inner.delete_checkpoint(run_id)
    }

    fn claim(&self, run_id: &str, owner: &str, stale_after: Duration) -> Result<Claim> {
        self.dead()?;
        self.inner.claim(run_id, owner, stale_after)
    }

    fn release(&self, run_id: &str, owner: &str) -> Result<()> {
        self.dead()?;
        self.inner.release(run_id, owner)
    }

    fn upsert_run(&self, row: &RunRow) -> Result<()> {
        self.dead()?;
        self.inner.upsert_run(row)
    }

    fn prune_runs(&self, keep_finished: usize) -> Result<usize> {
        self.dead()?;
        self.inner.prune_runs(keep_finished)
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        self.inner.runs(filter)
    }

    fn run(&self, execution_id: &str) -> Result<Option<RunRow>> {
        self.inner.run(execution_id)
    }

    fn execution_id_exists(&self, execution_id: &str) -> Result<bool> {
        self.inner.execution_id_exists(execution_id)
    }

    fn request_approval(&self, request: &ApprovalRequest) -> Result<()> {
        self.dead()?;
        self.inner.request_approval(request)
    }

    fn decide_approval(&self, execution_id: &str, decision: &ApprovalDecision) -> Result<Decided> {
        self.dead()?;
        self.inner.decide_approval(execution_id, decision)
    }

    fn approval(&self, execution_id: &str) -> Result<Option<Approval>> {
        self.inner.approval(execution_id)
    }

    fn approvals(&self, state: Option<ApprovalState>) -> Result<Vec<Approval>> {
        self.inner.approvals(state)
    }

    fn idempotency_begin(
        &self,
        scope: &IdempotencyScope,
        owner: &str,
        now: jiff::Timestamp,
        ttl: Duration,
        stale_after: Duration,
    ) -> Result<IdempotencyBegin> {
        self.dead()?;
        self.inner.idempotency_begin(scope, owner, now, ttl, stale_after)
    }

    fn idempotency_complete(
        &self,
        scope: &IdempotencyScope,
        owner: &str,
        reply: &StoredReply,
        now: jiff::Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        self.dead()?;
        self.inner.idempotency_complete(scope, owner, reply, now, ttl)
    }

    fn idempotency_abandon(&self, scope: &IdempotencyScope, owner: &str) -> Result<bool> {
        self.dead()?;
        self.inner.idempotency_abandon(scope, owner)
    }

    fn idempotency_purge_expired(&self, now: jiff::Timestamp, pending_max_age: Duration) -> Result<usize> {
        self.dead()?;
        self.inner.idempotency_purge_expired(now, pending_max_age)
    }
}
