//! Opening a state dir: creation and permissions, read-only opens, schema versions, and the
//! failures a caller must tell apart (corrupt, locked, full), none of which loses committed data.

use std::time::Duration;

use agentd_store::{Durability, Error, OpenOptions, SCHEMA_VERSION, SqliteStore, Store};
use rusqlite::Connection;
use serde_json::json;

use crate::{full_checkpoint, open, state_dir};

#[test]
fn a_new_state_dir_is_private_and_in_wal_mode() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    assert_eq!(store.migrated_from(), 0);
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            std::fs::metadata(dir.join(name)).unwrap_or_else(|_| panic!("{name} exists")).permissions().mode() & 0o777
        };
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode("state.db"), 0o600);
        assert_eq!(mode("state.db-wal"), 0o600);
        assert_eq!(mode("state.db-shm"), 0o600);
    }

    let raw = Connection::open(dir.join("state.db")).expect("raw open");
    let journal: String = raw.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("pragma");
    assert_eq!(journal, "wal");
    let version: String =
        raw.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0)).expect("meta");
    assert_eq!(version, SCHEMA_VERSION.to_string());

    drop(store);
    assert_eq!(open(&dir).migrated_from(), SCHEMA_VERSION, "an up-to-date database is not migrated again");
}

#[test]
fn read_only_opens_never_create_anything() {
    let (temp, dir) = state_dir();
    assert!(SqliteStore::open_existing(&dir, OpenOptions::default()).expect("open").is_none());
    assert!(!dir.exists(), "the state dir must not be created");

    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("notes.json"), "{}").expect("write");
    assert!(SqliteStore::open_existing(&dir, OpenOptions::default()).expect("open").is_none());
    assert!(!dir.join("state.db").exists(), "an empty state dir reads as empty without a database");

    let store = open(&dir);
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");
    drop(store);
    let existing = SqliteStore::open_existing(&dir, OpenOptions::default()).expect("open").expect("present");
    assert_eq!(existing.list_checkpoints().expect("list").len(), 1);
    drop(temp);
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let (_temp, dir) = state_dir();
    drop(open(&dir));
    let raw = Connection::open(dir.join("state.db")).expect("raw open");
    raw.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [(SCHEMA_VERSION + 1).to_string()])
        .expect("bump");
    drop(raw);

    let error = SqliteStore::open(&dir, OpenOptions::default()).expect_err("newer schema");
    assert!(
        matches!(error, Error::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION)
    );
    assert_eq!(error.to_string(), format!("state dir {} was written by a newer agentd", dir.display()));
    let error = SqliteStore::open_existing(&dir, OpenOptions::default()).expect_err("newer schema");
    assert!(matches!(error, Error::NewerSchema { .. }));
}

#[test]
fn a_corrupt_database_is_a_clear_error_and_stays_byte_for_byte() {
    let (_temp, dir) = state_dir();
    std::fs::create_dir(&dir).expect("mkdir");
    let garbage: Vec<u8> = (0..16_384u32).map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.join("state.db"), &garbage).expect("write");

    for attempt in [
        SqliteStore::open(&dir, OpenOptions::default()),
        SqliteStore::open_existing(&dir, OpenOptions::default()).map(|store| store.expect("database exists")),
    ] {
        let error = attempt.expect_err("corrupt database");
        assert!(matches!(error, Error::Corrupt { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("corrupt"), "{message}");
    }
    assert_eq!(std::fs::read(dir.join("state.db")).expect("read"), garbage, "the file was not touched");
}

#[test]
fn a_damaged_page_of_an_existing_database_is_reported_as_corrupt() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    for index in 0..200 {
        store.put_checkpoint(&full_checkpoint(&format!("exec-{index}"))).expect("put");
    }
    drop(store);
    // Fold the log into the database, then damage the pages after the first one.
    Connection::open(dir.join("state.db"))
        .expect("raw open")
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let mut bytes = std::fs::read(dir.join("state.db")).expect("read");
    for byte in bytes.iter_mut().skip(4096) {
        *byte = 0xA5;
    }
    std::fs::write(dir.join("state.db"), &bytes).expect("write");

    let result = SqliteStore::open(&dir, OpenOptions::default()).and_then(|store| store.list_checkpoints());
    let error = result.expect_err("damaged pages");
    assert!(matches!(error, Error::Corrupt { .. }), "{error:?}");
    assert_eq!(std::fs::read(dir.join("state.db")).expect("read"), bytes);
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_reported_and_loses_nothing() {
    let (_temp, dir) = state_dir();
    let options = OpenOptions::default().with_busy_timeout(Duration::from_millis(100));
    let store = SqliteStore::open(&dir, options).expect("open");
    store.put_checkpoint(&full_checkpoint("exec-kept")).expect("put");

    let holder = Connection::open(dir.join("state.db")).expect("raw open");
    holder.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    let error = store.put_checkpoint(&full_checkpoint("exec-blocked")).expect_err("locked");
    assert!(matches!(error, Error::Locked { waited_ms: 100, .. }), "{error:?}");
    assert!(error.to_string().contains(&dir.display().to_string()));
    assert!(error.to_string().contains("locked"));
    // Readers are not blocked by a writer in WAL mode.
    assert!(store.checkpoint("exec-kept").expect("read while locked").is_some());
    holder.execute_batch("ROLLBACK").expect("release");

    store.put_checkpoint(&full_checkpoint("exec-after")).expect("put after the lock is gone");
    let ids: Vec<String> = store.list_checkpoints().expect("list").into_iter().map(|c| c.run_id).collect();
    assert_eq!(ids, ["exec-after", "exec-kept"]);
}

#[test]
fn a_full_disk_is_reported_and_rolls_back_only_the_failed_write() {
    let (_temp, dir) = state_dir();
    let options = OpenOptions::default().with_max_size_bytes(256 * 1024);
    let store = SqliteStore::open(&dir, options).expect("open");
    let kept = full_checkpoint("exec-kept");
    store.put_checkpoint(&kept).expect("put");

    let mut huge = full_checkpoint("exec-huge");
    huge.node_outputs.insert("blob".into(), json!("x".repeat(1024 * 1024)));
    let error = store.put_checkpoint(&huge).expect_err("disk full");
    assert!(matches!(error, Error::DiskFull { .. }), "{error:?}");
    assert!(error.to_string().contains(&dir.display().to_string()));
    assert!(error.to_string().contains("disk full"));

    assert_eq!(store.checkpoint("exec-huge").expect("get"), None, "the failed write left nothing behind");
    assert_eq!(store.checkpoint("exec-kept").expect("get"), Some(kept.clone()));
    store.put_checkpoint(&full_checkpoint("exec-small")).expect("small writes still fit");
    drop(store);
    assert_eq!(open(&dir).checkpoint("exec-kept").expect("get"), Some(kept));
}

#[test]
fn fast_durability_stores_the_same_data() {
    let (_temp, dir) = state_dir();
    let options = OpenOptions::default().with_durability(Durability::Fast);
    let store = SqliteStore::open(&dir, options).expect("open");
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");
    let raw = Connection::open(dir.join("state.db")).expect("raw open");
    let journal: String = raw.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("pragma");
    assert_eq!(journal, "wal");
    drop(store);
    assert_eq!(open(&dir).checkpoint("exec-1").expect("get"), Some(full_checkpoint("exec-1")));
}
