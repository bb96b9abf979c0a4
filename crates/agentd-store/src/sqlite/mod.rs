//! The embedded store: one SQLite database, `<state-dir>/state.db`, in WAL mode (02-data.md §7).
//!
//! One connection per [`SqliteStore`], behind a mutex; callers share the store through an `Arc`.
//! Several processes may open the same state dir at once: SQLite's file locks order their writes,
//! and every write transaction takes the write lock when it begins (`BEGIN IMMEDIATE`).

mod checkpoints;
mod convert;
mod history;
mod idempotency;
mod legacy;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use crate::Store;
use crate::error::{Error, Result};
use crate::types::*;

pub use schema::SCHEMA_VERSION;

/// File name of the database inside the state dir.
const DATABASE_FILE: &str = "state.db";

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = FULL` (the spec's setting): every commit is fsynced before the call returns,
    /// so it survives a power loss.
    #[default]
    Full,
    /// `synchronous = NORMAL` (extension, opt-in): commits are atomic and survive a crash of the
    /// process, but the most recent ones may be lost if the machine loses power. Never corrupts.
    Fast,
}

/// Settings for [`SqliteStore::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Commit durability; default [`Durability::Full`].
    pub durability: Durability,
    /// How long to wait for another process's lock before failing with [`Error::Locked`]; default
    /// 5 s, the spec's minimum. Shorter values are for tests.
    pub busy_timeout: Duration,
    /// An optional cap on the database size; a write that would grow it further fails with
    /// [`Error::DiskFull`], exactly as a full disk does.
    pub max_size_bytes: Option<u64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { durability: Durability::Full, busy_timeout: Duration::from_secs(5), max_size_bytes: None }
    }
}

impl OpenOptions {
    /// These options with another durability.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// These options with another busy timeout.
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// These options with a size cap.
    pub fn with_max_size_bytes(mut self, max_size_bytes: u64) -> Self {
        self.max_size_bytes = Some(max_size_bytes);
        self
    }
}

/// The SQLite [`Store`] of one state dir.
#[derive(Debug)]
pub struct SqliteStore {
    dir: PathBuf,
    connection: Mutex<Connection>,
    busy_timeout: Duration,
    migrated_from: u32,
}

/// A failure inside an operation, before it is tied to the state dir.
#[derive(Debug)]
pub(crate) enum Fail {
    /// SQLite said no.
    Sql(rusqlite::Error),
    /// A stored value does not decode: the database content is damaged.
    Decode(String),
    /// The database cannot be set up as the store needs.
    Unsupported(String),
    /// A finished store error.
    Store(Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(error: rusqlite::Error) -> Self {
        Fail::Sql(error)
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail::Store(error)
    }
}

/// A result inside an operation.
pub(crate) type Attempt<T> = std::result::Result<T, Fail>;

impl SqliteStore {
    /// Opens (creating when needed) the store of `state_dir`: the directory with mode 0700, `state.db`
    /// with mode 0600, WAL journal, migrations, then the import of agentd 1.3 checkpoint files.
    pub fn open(state_dir: &Path, options: OpenOptions) -> Result<SqliteStore> {
        create_state_dir(state_dir)?;
        let database = state_dir.join(DATABASE_FILE);
        create_database_file(state_dir, &database)?;
        let store = Self::connect(state_dir, &database, &options)?;
        legacy::import(&store)?;
        Ok(store)
    }

    /// Opens the store of `state_dir` for a command that only reads: `None`, and nothing created, when
    /// the state dir does not exist, or when it holds neither `state.db` nor a 1.3 checkpoint file
    /// to import.
    pub fn open_existing(state_dir: &Path, options: OpenOptions) -> Result<Option<SqliteStore>> {
        if !state_dir.is_dir() {
            return Ok(None);
        }
        let database = state_dir.join(DATABASE_FILE);
        if !database.exists() && !legacy::has_candidates(state_dir)? {
            return Ok(None);
        }
        Self::open(state_dir, options).map(Some)
    }

    /// The state dir this store lives in.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The schema version `state.db` had before this open migrated it (`0` for a new database); with
    /// [`SCHEMA_VERSION`] it gives `agentd store migrate` its `migrated v<a> → v<b>` line.
    pub fn migrated_from(&self) -> u32 {
        self.migrated_from
    }

    fn connect(dir: &Path, database: &Path, options: &OpenOptions) -> Result<SqliteStore> {
        let busy_timeout = options.busy_timeout;
        let fail = |error: Fail| finish(dir, busy_timeout, error);
        let connection = Connection::open(database).map_err(|error| fail(error.into()))?;
        configure(&connection, options).map_err(fail)?;
        let migrated_from = schema::migrate(&connection).map_err(|error| match error {
            Fail::Store(Error::NewerSchema { found, supported, .. }) => {
                Error::NewerSchema { dir: dir.to_owned(), found, supported }
            }
            other => fail(other),
        })?;
        restrict_database_files(database);
        Ok(SqliteStore { dir: dir.to_owned(), connection: Mutex::new(connection), busy_timeout, migrated_from })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a transaction open (the transaction guard
        // rolls back when dropped), so a poisoned connection is still a good one.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`) and commits it.
    pub(crate) fn write<T>(&self, body: impl FnOnce(&Transaction<'_>) -> Attempt<T>) -> Result<T> {
        let mut connection = self.lock();
        let attempt = (|| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = body(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })();
        attempt.map_err(|error| self.finish(error))
    }

    /// Runs `body` in one read transaction, so that its queries see one snapshot.
    pub(crate) fn read<T>(&self, body: impl FnOnce(&Transaction<'_>) -> Attempt<T>) -> Result<T> {
        let mut connection = self.lock();
        let attempt = (|| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = body(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })();
        attempt.map_err(|error| self.finish(error))
    }

    fn finish(&self, error: Fail) -> Error {
        finish(&self.dir, self.busy_timeout, error)
    }
}

/// Ties an operation's failure to the state dir, sorting SQLite's codes into the variants callers
/// must tell apart.
fn finish(dir: &Path, busy_timeout: Duration, error: Fail) -> Error {
    let dir = dir.to_owned();
    match error {
        Fail::Store(error) => error,
        Fail::Decode(detail) => Error::Corrupt { dir, detail },
        Fail::Unsupported(detail) => Error::Unsupported { dir, detail },
        Fail::Sql(error) => {
            let code = error.sqlite_error_code();
            match code {
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                    Error::Corrupt { dir, detail: error.to_string() }
                }
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                    Error::Locked { dir, waited_ms: u64::try_from(busy_timeout.as_millis()).unwrap_or(u64::MAX) }
                }
                Some(ErrorCode::DiskFull) => Error::DiskFull { dir },
                Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
                    Error::ReadOnly { dir, detail: error.to_string() }
                }
                _ => Error::Sqlite { dir, source: error },
            }
        }
    }
}

/// Per-connection settings: lock wait, journal, durability, size cap.
fn configure(connection: &Connection, options: &OpenOptions) -> Attempt<()> {
    connection.busy_timeout(options.busy_timeout)?;
    connection.set_prepared_statement_cache_capacity(64);
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Fail::Unsupported(format!("the WAL journal mode is not available here (got `{mode}`)")));
    }
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Fast => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    if cfg!(target_os = "macos") && options.durability == Durability::Full {
        connection.pragma_update(None, "fullfsync", true)?;
        connection.pragma_update(None, "checkpoint_fullfsync", true)?;
    }
    if let Some(bytes) = options.max_size_bytes {
        let page_size: i64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page_size.max(512);
        let _: i64 = connection.pragma_update_and_check(None, "max_page_count", pages.max(1), |row| row.get(0))?;
    }
    Ok(())
}

fn io_error(dir: &Path, path: &Path, action: &'static str, source: std::io::Error) -> Error {
    Error::Io { dir: dir.to_owned(), path: path.to_owned(), action, source }
}

/// Creates the state dir (and missing parents) with mode 0700. An existing directory keeps its mode:
/// it is the operator's.
fn create_state_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|error| io_error(dir, dir, "create", error))
}

/// Creates an empty `state.db` with mode 0600 before SQLite opens it, so it never exists with a wider
/// mode, and syncs the directory so the new entry survives a power loss.
fn create_database_file(dir: &Path, database: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(database) {
        Ok(_) => {
            #[cfg(unix)]
            if let Ok(handle) = std::fs::File::open(dir) {
                // Best effort: the file is empty, so losing its entry loses nothing committed.
                let _ = handle.sync_all();
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(io_error(dir, database, "create", error)),
    }
}

/// Narrows `state.db`, `-wal` and `-shm` to 0600 when an older tool left them wider. Best effort:
/// files of another user cannot be changed, and that is not a reason to refuse to open.
fn restrict_database_files(database: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut paths = vec![database.to_owned()];
        for suffix in ["-wal", "-shm"] {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            paths.push(PathBuf::from(name));
        }
        for path in paths {
            if let Ok(metadata) = std::fs::metadata(&path)
                && metadata.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = database;
}

impl Store for SqliteStore {
    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.write(|transaction| checkpoints::put(transaction, checkpoint))
    }

    fn append_progress(&self, progress: &ProgressUpdate) -> Result<()> {
        self.write(|transaction| checkpoints::append_progress(transaction, progress))
    }

    fn checkpoint(&self, run_id: &str) -> Result<Option<Checkpoint>> {
        self.read(|transaction| checkpoints::get(transaction, run_id))
    }

    fn list_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.read(checkpoints::list)
    }

    fn checkpoint_summaries(&self) -> Result<Vec<CheckpointSummary>> {
        self.read(checkpoints::summaries)
    }

    fn delete_checkpoint(&self, run_id: &str) -> Result<bool> {
        self.write(|transaction| checkpoints::delete(transaction, run_id))
    }

    fn journal_put(&self, run_id: &str, key: &str, value: &serde_json::Value) -> Result<()> {
        let text = value.to_string();
        self.write(|transaction| checkpoints::journal_put(transaction, run_id, key, &text))
    }

    fn journal(&self, run_id: &str, prefix: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let rows = self.read(|transaction| checkpoints::journal(transaction, run_id, prefix))?;
        Ok(rows.into_iter().filter_map(|(key, text)| serde_json::from_str(&text).ok().map(|v| (key, v))).collect())
    }

    fn claim(&self, run_id: &str, owner: &str, stale_after: Duration) -> Result<Claim> {
        let now = jiff::Timestamp::now();
        self.write(|transaction| checkpoints::claim(transaction, run_id, owner, stale_after, now))
    }

    fn release(&self, run_id: &str, owner: &str) -> Result<()> {
        self.write(|transaction| checkpoints::release(transaction, run_id, owner))
    }

    fn upsert_run(&self, row: &RunRow) -> Result<()> {
        self.write(|transaction| history::upsert_run(transaction, row))
    }

    fn prune_runs(&self, keep_finished: usize) -> Result<usize> {
        self.write(|transaction| history::prune_runs(transaction, keep_finished))
    }

    fn record_runs(&self, rows: &[RunRow], keep_finished: usize) -> Result<()> {
        self.write(|transaction| {
            for row in rows {
                history::upsert_run(transaction, row)?;
            }
            if keep_finished == usize::MAX {
                return Ok(());
            }
            history::prune_runs(transaction, keep_finished).map(|_| ())
        })
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        self.read(|transaction| history::runs(transaction, filter))
    }

    fn run(&self, execution_id: &str) -> Result<Option<RunRow>> {
        self.read(|transaction| history::run(transaction, execution_id))
    }

    fn execution_id_exists(&self, execution_id: &str) -> Result<bool> {
        self.read(|transaction| history::execution_id_exists(transaction, execution_id))
    }

    fn request_approval(&self, request: &ApprovalRequest) -> Result<()> {
        self.write(|transaction| history::request_approval(transaction, request))
    }

    fn decide_approval(&self, execution_id: &str, decision: &ApprovalDecision) -> Result<Decided> {
        self.write(|transaction| history::decide_approval(transaction, execution_id, decision))
    }

    fn approval(&self, execution_id: &str) -> Result<Option<Approval>> {
        self.read(|transaction| history::approval(transaction, execution_id))
    }

    fn approvals(&self, state: Option<ApprovalState>) -> Result<Vec<Approval>> {
        self.read(|transaction| history::approvals(transaction, state))
    }

    fn idempotency_begin(
        &self,
        scope: &IdempotencyScope,
        owner: &str,
        now: jiff::Timestamp,
        ttl: Duration,
        stale_after: Duration,
    ) -> Result<IdempotencyBegin> {
        self.write(|transaction| idempotency::begin(transaction, scope, owner, now, ttl, stale_after))
    }

    fn idempotency_complete(
        &self,
        scope: &IdempotencyScope,
        owner: &str,
        reply: &StoredReply,
        now: jiff::Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        self.write(|transaction| idempotency::complete(transaction, scope, owner, reply, now, ttl))
    }

    fn idempotency_abandon(&self, scope: &IdempotencyScope, owner: &str) -> Result<bool> {
        self.write(|transaction| idempotency::abandon(transaction, scope, owner))
    }

    fn idempotency_purge_expired(&self, now: jiff::Timestamp, pending_max_age: Duration) -> Result<usize> {
        self.write(|transaction| idempotency::purge_expired(transaction, now, pending_max_age))
    }
}
