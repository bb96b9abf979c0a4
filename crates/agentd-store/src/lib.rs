//! agentd's durable state (02-data.md §6–§7, decision D3): checkpoints, run history, the
//! approval queue and idempotency rows, behind the [`Store`] trait, with [`SqliteStore`] as the
//! embedded implementation (`<state-dir>/state.db`).
//!
//! The API is synchronous: each call is one short SQLite transaction. Async callers wrap calls in
//! `tokio::task::spawn_blocking`. Every type here is plain data; nested documents (trace entries,
//! node outputs, cost, records) are `serde_json::Value`s, because the engine, which owns their
//! typed form, depends on this crate and not the other way round.
//!
//! # Decisions
//!
//! **Durability.** The default is what the spec asks for: WAL journal with `synchronous = FULL`,
//! which in WAL mode fsyncs the log at every commit, so a call that returned `Ok` survives a
//! power loss (on macOS `fullfsync` is switched on too, since a plain `fsync` there does not flush
//! the drive's cache). [`Durability::Fast`] (`synchronous = NORMAL`) is an opt-in extension: commits
//! are still atomic and survive a crash of the process, but the last few may be lost if the machine
//! itself loses power; the database is never corrupted either way.
//!
//! **Per-node checkpoints are O(1).** A checkpoint is stored as one `checkpoints` row of scalars,
//! one `checkpoint_documents` row with the write-once trigger input and plan, one row per node
//! output (`checkpoint_outputs`) and one row per trace entry (`checkpoint_trace`).
//! [`Store::put_checkpoint`] writes a whole checkpoint (the first write of a run, a pause);
//! [`Store::append_progress`] writes only what changed since the last write (about four pages of
//! WAL and one fsync per node), which keeps a 10 000-node run with a checkpoint after every node
//! linear. [`Store::checkpoint`] reassembles the logical document of 02-data.md §6.2.
//!
//! **Every write takes the write lock up front** (`BEGIN IMMEDIATE`), so two processes can never
//! both claim a run or both start one idempotent delivery, and a write never fails half-way on a
//! lock upgrade. Readers use WAL snapshots and do not block writers.
//!
//! **Opening.** [`SqliteStore::open`] creates the state dir (0700) and `state.db` (0600; SQLite
//! gives `-wal` and `-shm` the database file's mode), runs forward-only migrations recorded in
//! `meta.schema_version`, and imports agentd 1.3 checkpoint files. [`SqliteStore::open_existing`]
//! is for read-only commands: it never creates the state dir.

mod error;
mod owner;
mod sqlite;
mod types;

use std::time::Duration;

pub use error::{Error, Result};
pub use owner::{host_name, process_owner};
pub use sqlite::{Durability, OpenOptions, SCHEMA_VERSION, SqliteStore};
pub use types::*;

/// Durable state of agentd: checkpoints (02-data.md §6), run history and approvals (§7) and
/// idempotency rows (07-triggers-server.md §8). Every method is one transaction: when it returns
/// `Ok`, its write is committed.
pub trait Store: Send + Sync {
    /// Writes a run's whole checkpoint, replacing any earlier one for the run id (its claim is kept).
    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()>;

    /// Updates a run's existing checkpoint with what changed since its last write (see
    /// [`ProgressUpdate`]). Fails with [`Error::NoCheckpoint`] when the run has none and with
    /// [`Error::TraceGap`] when `trace_from` is past the stored trace.
    fn append_progress(&self, progress: &ProgressUpdate) -> Result<()>;

    /// The checkpoint of a run, reassembled.
    fn checkpoint(&self, run_id: &str) -> Result<Option<Checkpoint>>;

    /// Every checkpoint, in ascending `run_id` byte order.
    fn list_checkpoints(&self) -> Result<Vec<Checkpoint>>;

    /// A summary of every checkpoint, in ascending `run_id` byte order; reads no outputs or traces.
    fn checkpoint_summaries(&self) -> Result<Vec<CheckpointSummary>>;

    /// Deletes a run's checkpoint (and its claim). Returns whether there was one.
    fn delete_checkpoint(&self, run_id: &str) -> Result<bool>;

    /// Records a step-journal entry for a run: the result of a finished part of a node (one
    /// `map` element), replayed instead of re-run when the run resumes. Deleted with the run's
    /// checkpoint.
    fn journal_put(&self, run_id: &str, key: &str, value: &serde_json::Value) -> Result<()>;

    /// The step-journal entries of a run whose key starts with `prefix`.
    fn journal(&self, run_id: &str, prefix: &str) -> Result<Vec<(String, serde_json::Value)>>;

    /// Claims a run's checkpoint for `owner` (`pid@host`) so that only one process resumes it
    /// (01-cli.md §7.1). A claim is exclusive even against the same owner string. A claim whose
    /// owner is a process on this host that no longer exists, or that is at least `stale_after`
    /// old, is taken over.
    fn claim(&self, run_id: &str, owner: &str, stale_after: Duration) -> Result<Claim>;

    /// Releases `owner`'s claim on a run; does nothing when someone else holds it.
    fn release(&self, run_id: &str, owner: &str) -> Result<()>;

    /// Inserts a history row, or replaces the row with the same `execution_id` (a paused run that
    /// continued, a queued run that started).
    fn upsert_run(&self, row: &RunRow) -> Result<()>;

    /// Inserts or replaces several history rows and then prunes to `keep_finished`, in one
    /// transaction (the batched history writer of serve mode); `usize::MAX` skips the pruning.
    fn record_runs(&self, rows: &[RunRow], keep_finished: usize) -> Result<()> {
        for row in rows {
            self.upsert_run(row)?;
        }
        if keep_finished == usize::MAX {
            return Ok(());
        }
        self.prune_runs(keep_finished).map(|_| ())
    }

    /// Keeps the newest `keep_finished` finished rows and deletes older ones with their approvals.
    /// Paused, queued and running rows are never pruned. Returns how many rows were deleted.
    fn prune_runs(&self, keep_finished: usize) -> Result<usize>;

    /// History rows matching `filter`, newest first (`started_at`, then `execution_id`, descending).
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>>;

    /// One history row.
    fn run(&self, execution_id: &str) -> Result<Option<RunRow>>;

    /// Whether an execution id is in use in this store (checkpoints, history or approvals), for
    /// allocating unique ids (02-data.md §6.1).
    fn execution_id_exists(&self, execution_id: &str) -> Result<bool>;

    /// Puts a run's approval in the queue as `pending`, replacing an earlier entry of the same run
    /// (a run that paused again).
    fn request_approval(&self, request: &ApprovalRequest) -> Result<()>;

    /// Records a decision on a pending approval. The first committed decision wins; a later one
    /// gets [`Decided::AlreadyDecided`] with the winner.
    fn decide_approval(&self, execution_id: &str, decision: &ApprovalDecision) -> Result<Decided>;

    /// One approval.
    fn approval(&self, execution_id: &str) -> Result<Option<Approval>>;

    /// Approvals, optionally only those in one state, oldest request first.
    fn approvals(&self, state: Option<ApprovalState>) -> Result<Vec<Approval>>;

    /// Steps 1–4 of 07-triggers-server.md §8 in one transaction: replay a `done` row younger than
    /// `ttl`, report a conflict for a live `pending` row, or make `owner` the holder of a `pending`
    /// row (new, replacing an expired `done` row, or taking over a `pending` row at least
    /// `stale_after` old).
    fn idempotency_begin(
        &self,
        scope: &IdempotencyScope,
        owner: &str,
        now: jiff::Timestamp,
        ttl: Duration,
        stale_after: Duration,
    ) -> Result<IdempotencyBegin>;

    /// Step 5: turns `owner`'s `pending` row into `done` with the reply sent (with a zero `ttl` the
    /// row is deleted instead: nothing is kept for replay). Returns `false` when `owner` no longer
    /// holds the row (it was taken over), in which case nothing is written.
    fn idempotency_complete(
        &self,
        scope: &IdempotencyScope,
        owner: &str,
        reply: &StoredReply,
        now: jiff::Timestamp,
        ttl: Duration,
    ) -> Result<bool>;

    /// Step 6: deletes `owner`'s `pending` row so the delivery stays retryable. Returns whether a
    /// row was deleted.
    fn idempotency_abandon(&self, scope: &IdempotencyScope, owner: &str) -> Result<bool>;

    /// Deletes `done` rows past the TTL they were stored with, and `pending` rows started at least
    /// `pending_max_age` ago (deliveries whose process died long ago). Returns how many were deleted.
    fn idempotency_purge_expired(&self, now: jiff::Timestamp, pending_max_age: Duration) -> Result<usize>;
}
