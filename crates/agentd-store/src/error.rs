//! `store::Error`: every way a store operation can fail.
//!
//! The variants a caller must tell apart (02-data.md §7, 01-cli.md §7) are distinct: a corrupt
//! database, a locked one, a full disk, a schema written by a newer agentd. Each message names the
//! state dir, so the CLI can print `agentd: <error>` as it is. None of them means data was lost:
//! SQLite rolls a failed transaction back, and the store never deletes or rewrites a database file
//! it cannot read.

use std::path::PathBuf;

/// The result of a store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation on the state dir failed.
    #[error("state dir {dir}: cannot {action} {path}: {source}", dir = dir.display(), path = path.display())]
    Io {
        /// The state dir.
        dir: PathBuf,
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What was being done (`create`, `read`, `rename`, …).
        action: &'static str,
        /// The operating-system error.
        source: std::io::Error,
    },

    /// `state.db` carries a schema version newer than this build knows (01-cli.md §9.6).
    #[error("state dir {dir} was written by a newer agentd", dir = dir.display())]
    NewerSchema {
        /// The state dir.
        dir: PathBuf,
        /// The version found in `meta.schema_version`.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },

    /// `state.db` is not a SQLite database or its pages are damaged. The file is left untouched.
    #[error(
        "state dir {dir}: state.db is corrupt or not a SQLite database ({detail}); the file was left untouched",
        dir = dir.display()
    )]
    Corrupt {
        /// The state dir.
        dir: PathBuf,
        /// What SQLite (or the decoder) reported.
        detail: String,
    },

    /// Another process held the database lock for longer than the busy timeout.
    #[error(
        "state dir {dir}: state.db is locked by another process (gave up after {waited_ms} ms); nothing was written",
        dir = dir.display()
    )]
    Locked {
        /// The state dir.
        dir: PathBuf,
        /// The busy timeout that expired, in milliseconds.
        waited_ms: u64,
    },

    /// The disk (or the configured size cap) is full; the failed write was rolled back.
    #[error(
        "state dir {dir}: disk full while writing state.db; the write was rolled back and earlier data is intact",
        dir = dir.display()
    )]
    DiskFull {
        /// The state dir.
        dir: PathBuf,
    },

    /// The database file or its directory cannot be written (permissions, read-only mount).
    #[error("state dir {dir}: state.db is read-only ({detail})", dir = dir.display())]
    ReadOnly {
        /// The state dir.
        dir: PathBuf,
        /// What SQLite reported.
        detail: String,
    },

    /// `state.db` cannot be used the way the store needs (for example the file system refuses WAL
    /// mode, as network file systems do).
    #[error("state dir {dir}: state.db cannot be used: {detail}", dir = dir.display())]
    Unsupported {
        /// The state dir.
        dir: PathBuf,
        /// What is missing.
        detail: String,
    },

    /// Any other SQLite failure.
    #[error("state dir {dir}: {source}", dir = dir.display())]
    Sqlite {
        /// The state dir.
        dir: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },

    /// A value could not be encoded as JSON for storage.
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// Which value.
        what: &'static str,
        /// The serde error.
        source: serde_json::Error,
    },

    /// `append_progress` named a run that has no checkpoint yet.
    #[error("no checkpoint for run {run_id}")]
    NoCheckpoint {
        /// The run id.
        run_id: String,
    },

    /// `append_progress` would leave a hole in the stored trace.
    #[error("progress for run {run_id} starts at trace entry {from}, but the store holds only {stored} entries")]
    TraceGap {
        /// The run id.
        run_id: String,
        /// The index of the first entry in the update.
        from: u64,
        /// How many entries the store holds.
        stored: u64,
    },

    /// An argument is outside what the store accepts (an unknown status word, a bad timestamp, a
    /// number beyond SQLite's signed 64-bit range).
    #[error("invalid {what}: {detail}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}
