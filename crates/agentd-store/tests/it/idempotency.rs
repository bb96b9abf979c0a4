//! Idempotency rows (07-triggers-server.md §8), one test per row of the algorithm table.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use agentd_store::{IdempotencyBegin, IdempotencyScope, SqliteStore, Store, StoredReply};
use jiff::{SignedDuration, Timestamp};

use crate::{open, state_dir};

const TTL: Duration = Duration::from_secs(86_400);
const STALE: Duration = Duration::from_secs(60);

fn scope() -> IdempotencyScope {
    IdempotencyScope::new("hooks", "post", "/hook", "delivery-42")
}

fn t0() -> Timestamp {
    "2025-05-01T12:00:00Z".parse().expect("timestamp")
}

fn at(seconds: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(seconds)
}

fn reply() -> StoredReply {
    StoredReply {
        status: 200,
        content_type: "application/json".into(),
        body: b"{\"ok\": true}\n\x00\xff".to_vec(),
        execution_id: "exec-1".into(),
    }
}

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let (temp, dir) = state_dir();
    let store = open(&dir);
    (temp, store)
}

fn proceed(took_over: bool) -> IdempotencyBegin {
    IdempotencyBegin::Proceed { took_over }
}

#[test]
fn the_scope_hashes_the_key_and_upper_cases_the_method() {
    let scope = IdempotencyScope::new("hooks", "post", "/hook", &"k".repeat(100));
    assert_eq!(scope.method, "POST");
    assert_eq!(scope.key_sha256.len(), 64);
    assert_eq!(scope.key_preview, "k".repeat(48));
    assert_eq!(scope.scope_text(), "hooks POST /hook");
    assert_eq!(
        IdempotencyScope::new("w", "GET", "/", "abc").key_sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn row_4_no_row_inserts_pending_and_proceeds() {
    let (_temp, store) = fresh();
    assert_eq!(store.idempotency_begin(&scope(), "1@a", t0(), TTL, STALE).expect("begin"), proceed(false));
    // Another route, method or key is another scope.
    let other_path = IdempotencyScope::new("hooks", "POST", "/other", "delivery-42");
    let other_method = IdempotencyScope::new("hooks", "PUT", "/hook", "delivery-42");
    let other_key = IdempotencyScope::new("hooks", "POST", "/hook", "delivery-43");
    for other in [other_path, other_method, other_key] {
        assert_eq!(store.idempotency_begin(&other, "1@a", t0(), TTL, STALE).expect("begin"), proceed(false));
    }
}

#[test]
fn row_3_a_live_pending_row_is_a_conflict() {
    let (_temp, store) = fresh();
    store.idempotency_begin(&scope(), "1@a", t0(), TTL, STALE).expect("begin");
    assert_eq!(
        store.idempotency_begin(&scope(), "2@b", at(59), TTL, STALE).expect("begin"),
        IdempotencyBegin::Conflict
    );
}

#[test]
fn rows_5_and_1_a_finished_delivery_is_replayed_byte_for_byte_within_the_ttl() {
    let (_temp, store) = fresh();
    store.idempotency_begin(&scope(), "1@a", t0(), TTL, STALE).expect("begin");
    assert!(store.idempotency_complete(&scope(), "1@a", &reply(), at(1), TTL).expect("complete"));
    assert_eq!(
        store.idempotency_begin(&scope(), "2@b", at(1 + 86_400), TTL, STALE).expect("begin"),
        IdempotencyBegin::Replay(reply())
    );
}

#[test]
fn row_2_an_expired_row_is_replaced() {
    let (_temp, store) = fresh();
    store.idempotency_begin(&scope(), "1@a", t0(), TTL, STALE).expect("begin");
    store.idempotency_complete(&scope(), "1@a", &reply(), at(1), TTL).expect("complete");
    assert_eq!(store.idempotency_begin(&scope(), "2@b", at(2 + 86_400), TTL, STALE).expect("begin"), proceed(false));
    // The new pending row is live.
    assert_eq!(
        store.idempotency_begin(&scope(), "3@c", at(3 + 86_400), TTL, STALE).expect("begin"),
        IdempotencyBegin::Conflict
    );
}

#[test]
fn row_6_a_failed_delivery_stays_retryable() {
    let (_temp, store) = fresh();
    store.idempotency_begin(&scope(), "1@a", t0(), TTL, STALE).expect("begin");
    assert!(!store.idempotency_abandon(&scope(), "2@b").expect("abandon by a non-owner does nothing"));
    assert!(store.idempotency_abandon(&scope(), "1@a").expect("abandon"));
    assert_eq!(store.idempotency_begin(&scope(), "2@b", at(1), TTL, STALE).expect("begin"), proceed(false));
}

#[test]
fn row_7_a_stale_pending_row_is_taken_over() {
    let (_temp, store) = fresh();
    store.idempotency_begin(&scope(), "1@a", t0(), TTL, STALE).expect("begin");
    assert_eq!(store.idempotency_begin(&scope(), "2@b", at(60), TTL, STALE).expect("begin"), proceed(true));
    // The dead owner's late completion writes nothing; the new owner's does.
    assert!(!store.idempotency_complete(&scope(), "1@a", &reply(), at(61), TTL).expect("complete"));
    assert_eq!(
        store.idempotency_begin(&scope(), "3@c", at(62), TTL, STALE).expect("begin"),
        IdempotencyBegin::Conflict
    );
    let mut second = reply();
    second.execution_id = "exec-2".into();
    assert!(store.idempotency_complete(&scope(), "2@b", &second, at(63), TTL).expect("complete"));
    assert_eq!(
        store.idempotency_begin(&scope(), "3@c", at(64), TTL, STALE).expect("begin"),
        IdempotencyBegin::Replay(second)
    );
}

#[test]
fn a_zero_ttl_stores_nothing_for_replay() {
    let (_temp, store) = fresh();
    store.idempotency_begin(&scope(), "1@a", t0(), Duration::ZERO, STALE).expect("begin");
    assert_eq!(
        store.idempotency_begin(&scope(), "2@b", t0(), Duration::ZERO, STALE).expect("begin"),
        IdempotencyBegin::Conflict
    );
    assert!(store.idempotency_complete(&scope(), "1@a", &reply(), t0(), Duration::ZERO).expect("complete"));
    assert_eq!(store.idempotency_begin(&scope(), "2@b", t0(), Duration::ZERO, STALE).expect("begin"), proceed(false));
}

#[test]
fn purging_removes_expired_and_long_dead_rows_only() {
    let (_temp, store) = fresh();
    let done_short = IdempotencyScope::new("hooks", "POST", "/hook", "short");
    let done_long = IdempotencyScope::new("hooks", "POST", "/hook", "long");
    let pending_old = IdempotencyScope::new("hooks", "POST", "/hook", "old");
    let pending_new = IdempotencyScope::new("hooks", "POST", "/hook", "new");
    for (scope, ttl) in [(&done_short, Duration::from_secs(10)), (&done_long, TTL)] {
        store.idempotency_begin(scope, "1@a", t0(), ttl, STALE).expect("begin");
        store.idempotency_complete(scope, "1@a", &reply(), t0(), ttl).expect("complete");
    }
    store.idempotency_begin(&pending_old, "1@a", t0(), TTL, STALE).expect("begin");
    store.idempotency_begin(&pending_new, "1@a", at(3000), TTL, STALE).expect("begin");

    assert_eq!(store.idempotency_purge_expired(at(3600), Duration::from_secs(3600)).expect("purge"), 2);
    assert_eq!(store.idempotency_purge_expired(at(3600), Duration::from_secs(3600)).expect("purge"), 0);
    let hour = Duration::from_secs(3600);
    let begin = |scope: &IdempotencyScope| store.idempotency_begin(scope, "2@b", at(3601), TTL, hour).expect("begin");
    assert_eq!(begin(&done_short), proceed(false));
    assert_eq!(begin(&done_long), IdempotencyBegin::Replay(reply()));
    assert_eq!(begin(&pending_old), proceed(false));
    assert_eq!(begin(&pending_new), IdempotencyBegin::Conflict);
}

#[test]
fn concurrent_deliveries_on_two_handles_start_exactly_one_run() {
    let (_temp, dir) = state_dir();
    let first = Arc::new(open(&dir));
    let second = Arc::new(open(&dir));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|index| {
            let store = if index % 2 == 0 { Arc::clone(&first) } else { Arc::clone(&second) };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                store.idempotency_begin(&scope(), &format!("{index}@host"), t0(), TTL, STALE)
            })
        })
        .collect();
    let results: Vec<IdempotencyBegin> =
        handles.into_iter().map(|handle| handle.join().expect("thread").expect("begin")).collect();
    assert_eq!(results.iter().filter(|result| **result == proceed(false)).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|result| **result == IdempotencyBegin::Conflict).count(), 7);
}
