//! Import of agentd 1.3 checkpoint files (02-data.md §7 "Legacy import").
//!
//! Every `*.json` file directly inside the state dir that parses as a 1.3 checkpoint is copied
//! into `checkpoints` (extension fields empty) and renamed `<name>.json.imported`. Other files are
//! left alone; the legacy `idempotency/` directory is ignored.
//!
//! Each file is read, imported and renamed inside one write transaction. Holding the write lock
//! while reading the file means that two processes opening the same state dir cannot both import
//! it, and that a file already imported and renamed by another process (whose run may since have
//! finished and lost its checkpoint) is never imported a second time.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use rusqlite::Transaction;

use super::convert::format_timestamp;
use super::{Attempt, Fail, SqliteStore, checkpoints, io_error};
use crate::error::Result;
use crate::types::Checkpoint;

/// Regular files named `*.json` directly inside `dir`, in name order.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|error| io_error(dir, dir, "read", error))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| io_error(dir, dir, "read", error))?;
        let is_file = entry.file_type().map(|kind| kind.is_file()).unwrap_or(false);
        let name = entry.file_name();
        if is_file && name.to_str().is_some_and(|name| name.ends_with(".json")) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The checkpoint in `path`, if the file exists and holds one.
fn parse(path: &Path) -> Option<Checkpoint> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `dir` holds at least one 1.3 checkpoint file still to import.
pub(super) fn has_candidates(dir: &Path) -> Result<bool> {
    Ok(json_files(dir)?.iter().any(|path| parse(path).is_some()))
}

fn imported_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".imported");
    PathBuf::from(name)
}

/// Imports every 1.3 checkpoint file of the store's state dir.
pub(super) fn import(store: &SqliteStore) -> Result<()> {
    for path in json_files(store.state_dir())? {
        let target = imported_name(&path);
        let renamed = Cell::new(false);
        let outcome = store.write(|transaction| import_one(store, transaction, &path, &target, &renamed));
        if let Err(error) = outcome {
            if renamed.get() {
                // The rename happened but the import did not commit: put the file back so the
                // next open tries again.
                let _ = std::fs::rename(&target, &path);
            }
            return Err(error);
        }
    }
    Ok(())
}

fn import_one(
    store: &SqliteStore,
    transaction: &Transaction<'_>,
    path: &Path,
    target: &Path,
    renamed: &Cell<bool>,
) -> Attempt<()> {
    // Another process may have imported and renamed it since the directory was listed.
    let Some(mut checkpoint) = parse(path) else { return Ok(()) };
    let exists: bool = transaction
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM checkpoints WHERE run_id = ?1)")?
        .query_row([&checkpoint.run_id], |row| row.get(0))?;
    // A run id already in the store has a newer checkpoint than the 1.3 file; keep the newer one.
    if !exists {
        let now = format_timestamp(jiff::Timestamp::now());
        if checkpoint.created_at.is_empty() {
            checkpoint.created_at = now.clone();
        }
        if checkpoint.updated_at.is_empty() {
            checkpoint.updated_at = now;
        }
        checkpoints::put(transaction, &checkpoint)?;
    }
    std::fs::rename(path, target).map_err(|error| Fail::Store(io_error(&store.dir, path, "rename", error)))?;
    renamed.set(true);
    Ok(())
}
