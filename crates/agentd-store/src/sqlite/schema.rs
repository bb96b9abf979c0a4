//! The schema of `state.db` and its forward-only migrations (02-data.md §7 "Versioning").
//!
//! Migration `n` (1-based) is `MIGRATIONS[n - 1]`; `meta.schema_version` holds the number of
//! migrations applied. A database at a higher version than this build knows is refused, never
//! touched. Migrations only add: a later agentd must still read what an earlier one wrote.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{Attempt, Fail};
use crate::error::Error;

/// Version 1: checkpoints split into a row of scalars, its write-once documents, its outputs and
/// its trace; history; approvals; idempotency.
///
/// The split is what keeps a progress write O(1): SQLite rewrites a whole row on update, so the
/// trigger input and plan (possibly large, never changed by progress) live apart from the scalars
/// that change after every node, and outputs and trace entries are rows of their own, clustered on
/// their key (`WITHOUT ROWID`) so that adding one touches one b-tree page rather than two.
const VERSION_1: &str = "
CREATE TABLE checkpoints (
    run_id                TEXT PRIMARY KEY NOT NULL,
    workflow              TEXT NOT NULL,
    start_node            TEXT NOT NULL,
    trigger_kind          TEXT NOT NULL,
    paused_at             TEXT NOT NULL,
    resume_node           TEXT,
    reason                TEXT,
    awaiting_approval     INTEGER NOT NULL,
    kind                  TEXT NOT NULL,
    workflow_path         TEXT,
    workflow_sha256       TEXT,
    loop_counts           TEXT NOT NULL,
    steps                 INTEGER NOT NULL,
    http_response         TEXT,
    budget_llm_tokens     INTEGER NOT NULL,
    budget_fs_write_bytes INTEGER NOT NULL,
    cost                  TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    trace_len             INTEGER NOT NULL,
    claimed_by            TEXT,
    claimed_at            TEXT
);

CREATE TABLE checkpoint_documents (
    run_id        TEXT PRIMARY KEY NOT NULL,
    trigger_input TEXT NOT NULL,
    plan          TEXT
);

CREATE TABLE checkpoint_outputs (
    run_id  TEXT NOT NULL,
    node_id TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_id, node_id)
) WITHOUT ROWID;

CREATE TABLE checkpoint_trace (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    entry  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE runs (
    execution_id TEXT PRIMARY KEY NOT NULL,
    workflow     TEXT NOT NULL,
    start_node   TEXT NOT NULL,
    status       TEXT NOT NULL,
    last_node    TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    wall_ms      INTEGER NOT NULL,
    record       TEXT NOT NULL
);
CREATE INDEX runs_newest_first ON runs (started_at DESC, execution_id DESC);

CREATE TABLE approvals (
    execution_id      TEXT PRIMARY KEY NOT NULL,
    workflow          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    pause_node        TEXT NOT NULL,
    reason            TEXT,
    requested_at      TEXT NOT NULL,
    trigger_principal TEXT,
    state             TEXT NOT NULL,
    decision          TEXT,
    via               TEXT,
    note              TEXT,
    actor             TEXT,
    decided_at        TEXT
);

CREATE TABLE idempotency (
    workflow      TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    key_sha256    TEXT NOT NULL,
    key_preview   TEXT NOT NULL,
    state         TEXT NOT NULL,
    owner         TEXT NOT NULL,
    execution_id  TEXT,
    started_at_ms INTEGER NOT NULL,
    status        INTEGER,
    content_type  TEXT,
    body          BLOB,
    stored_at_ms  INTEGER,
    expires_at_ms INTEGER,
    PRIMARY KEY (workflow, method, path, key_sha256)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at_ms);
";

/// Version 2: the step journal — results of finished parts of a node (one `map` element each),
/// so a resumed run does not redo them.
const VERSION_2: &str = "
CREATE TABLE step_journal (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
";

/// Every migration, oldest first.
const MIGRATIONS: [&str; 2] = [VERSION_1, VERSION_2];

/// The schema version this build writes: the number of migrations it knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

fn stored_version(connection: &Connection) -> Attempt<u32> {
    let has_meta: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |row| row.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    let text: Option<String> =
        connection.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0)).optional()?;
    match text {
        None => Ok(0),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| Fail::Decode(format!("meta.schema_version `{text}` is not a version number"))),
    }
}

fn refuse_newer(found: u32) -> Attempt<()> {
    if found > SCHEMA_VERSION {
        // The state dir is filled in by the caller, which knows it.
        return Err(Fail::Store(Error::NewerSchema { dir: Default::default(), found, supported: SCHEMA_VERSION }));
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`]; returns the version it had before.
pub(super) fn migrate(connection: &Connection) -> Attempt<u32> {
    // Up to date is the common case: check it without taking the write lock.
    let found = stored_version(connection)?;
    refuse_newer(found)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    let transaction = rusqlite::Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
    transaction
        .execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")?;
    // Another process may have migrated while this one waited for the lock.
    let found = stored_version(&transaction)?;
    refuse_newer(found)?;
    let start = usize::try_from(found).unwrap_or(usize::MAX);
    for migration in MIGRATIONS.iter().skip(start) {
        transaction.execute_batch(migration)?;
    }
    transaction.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )?;
    transaction.commit()?;
    Ok(found)
}
