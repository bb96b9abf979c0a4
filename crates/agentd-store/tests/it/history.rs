//! Run history (02-data.md §7 `runs`): upserts, order, filters, limit, pruning.

use agentd_store::{ApprovalRequest, CheckpointKind, Error, RunFilter, RunRow, Store};
use serde_json::json;

use crate::{full_checkpoint, open, state_dir};

fn row(execution_id: &str, workflow: &str, status: &str, started_at: &str) -> RunRow {
    RunRow {
        execution_id: execution_id.to_owned(),
        workflow: workflow.to_owned(),
        start_node: "main".into(),
        status: status.to_owned(),
        last_node: Some("done".into()),
        started_at: started_at.to_owned(),
        finished_at: Some(started_at.to_owned()),
        wall_ms: 37,
        record: json!({"workflow": workflow, "execution_id": execution_id, "status": status, "trace": {"entries": []}}),
        record_text: None,
    }
}

fn ids(rows: &[RunRow]) -> Vec<&str> {
    rows.iter().map(|row| row.execution_id.as_str()).collect()
}

fn seeded() -> (tempfile::TempDir, agentd_store::SqliteStore) {
    let (temp, dir) = state_dir();
    let store = open(&dir);
    for row in [
        row("exec-1", "triage", "completed", "2025-05-01T12:00:01.000Z"),
        row("exec-2", "triage", "failed", "2025-05-01T12:00:02.000Z"),
        row("exec-3", "deploy", "paused", "2025-05-01T12:00:03.000Z"),
        row("exec-4a", "deploy", "completed", "2025-05-01T12:00:04.000Z"),
        row("exec-4b", "triage", "errored", "2025-05-01T12:00:04.000Z"),
        row("exec-5", "triage", "timed_out", "2025-05-01T12:00:05.000Z"),
    ] {
        store.upsert_run(&row).expect("upsert");
    }
    (temp, store)
}

#[test]
fn rows_come_newest_first_with_ties_broken_by_id() {
    let (_temp, store) = seeded();
    let all = store.runs(&RunFilter::default()).expect("runs");
    assert_eq!(ids(&all), ["exec-5", "exec-4b", "exec-4a", "exec-3", "exec-2", "exec-1"]);
    assert_eq!(all[0], row("exec-5", "triage", "timed_out", "2025-05-01T12:00:05.000Z"), "every field round-trips");
    assert_eq!(store.run("exec-3").expect("run").map(|row| row.status), Some("paused".to_owned()));
    assert_eq!(store.run("exec-none").expect("run"), None);
}

#[test]
fn filters_and_limit_combine() {
    let (_temp, store) = seeded();
    let by_status = RunFilter { status: Some("completed".into()), ..RunFilter::default() };
    assert_eq!(ids(&store.runs(&by_status).expect("runs")), ["exec-4a", "exec-1"]);
    let by_workflow = RunFilter { workflow: Some("deploy".into()), ..RunFilter::default() };
    assert_eq!(ids(&store.runs(&by_workflow).expect("runs")), ["exec-4a", "exec-3"]);
    // `since` accepts any RFC 3339 form and compares instants.
    let since = RunFilter { since: Some("2025-05-01T14:00:04+02:00".into()), ..RunFilter::default() };
    assert_eq!(ids(&store.runs(&since).expect("runs")), ["exec-5", "exec-4b", "exec-4a"]);
    let limited = RunFilter { workflow: Some("triage".into()), limit: 2, ..RunFilter::default() };
    assert_eq!(ids(&store.runs(&limited).expect("runs")), ["exec-5", "exec-4b"]);
    let nothing = RunFilter { status: Some("queued".into()), ..RunFilter::default() };
    assert!(store.runs(&nothing).expect("runs").is_empty());

    let bad = RunFilter { since: Some("yesterday".into()), ..RunFilter::default() };
    assert!(matches!(store.runs(&bad), Err(Error::InvalidInput { what: "since", .. })));
}

#[test]
fn a_paused_row_is_updated_when_the_run_continues() {
    let (_temp, store) = seeded();
    let mut continued = row("exec-3", "deploy", "completed", "2025-05-01T12:00:03.000Z");
    continued.finished_at = Some("2025-05-02T09:00:00.000Z".into());
    continued.wall_ms = 5;
    store.upsert_run(&continued).expect("upsert");
    assert_eq!(store.run("exec-3").expect("run"), Some(continued));
    assert_eq!(store.runs(&RunFilter::default()).expect("runs").len(), 6);
}

#[test]
fn unknown_statuses_are_refused() {
    let (_temp, store) = seeded();
    let result = store.upsert_run(&row("exec-9", "triage", "exploded", "2025-05-01T12:00:09.000Z"));
    assert!(matches!(result, Err(Error::InvalidInput { what: "run status", .. })), "{result:?}");
}

#[test]
fn pruning_keeps_the_newest_finished_rows_and_every_paused_one() {
    let (_temp, store) = seeded();
    store.upsert_run(&row("exec-0", "deploy", "paused", "2025-05-01T11:00:00.000Z")).expect("upsert");
    store.upsert_run(&row("exec-q", "deploy", "queued", "2025-05-01T11:00:00.500Z")).expect("upsert");
    for execution_id in ["exec-1", "exec-0", "exec-5"] {
        store
            .request_approval(&ApprovalRequest {
                execution_id: execution_id.into(),
                workflow: "deploy".into(),
                kind: CheckpointKind::Node,
                pause_node: "gate".into(),
                reason: None,
                requested_at: "2025-05-01T12:00:00.000Z".into(),
                trigger_principal: None,
            })
            .expect("request");
    }
    // Finished rows, newest first: exec-5, exec-4b, exec-4a, exec-2, exec-1.
    assert_eq!(store.prune_runs(2).expect("prune"), 3);
    assert_eq!(
        ids(&store.runs(&RunFilter::default()).expect("runs")),
        ["exec-5", "exec-4b", "exec-3", "exec-q", "exec-0"]
    );
    assert!(store.approval("exec-1").expect("approval").is_none(), "pruned with its run");
    assert!(store.approval("exec-0").expect("approval").is_some(), "paused run kept");
    assert!(store.approval("exec-5").expect("approval").is_some(), "kept run");
    assert_eq!(store.prune_runs(2).expect("prune again"), 0);
    assert_eq!(store.prune_runs(0).expect("prune all finished"), 2);
    assert_eq!(ids(&store.runs(&RunFilter::default()).expect("runs")), ["exec-3", "exec-q", "exec-0"]);
}

#[test]
fn execution_ids_are_known_from_checkpoints_history_and_approvals() {
    let (_temp, store) = seeded();
    store.put_checkpoint(&full_checkpoint("exec-cp")).expect("put");
    assert!(store.execution_id_exists("exec-cp").expect("exists"));
    assert!(store.execution_id_exists("exec-1").expect("exists"));
    assert!(!store.execution_id_exists("exec-new").expect("exists"));
}

#[test]
fn a_pre_encoded_record_is_stored_as_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = agentd_store::SqliteStore::open(dir.path(), agentd_store::OpenOptions::default()).expect("open");
    let mut row = row("exec-1-1-1", "wf", "completed", "2025-05-01T12:00:00.000Z");
    row.record = serde_json::Value::Null;
    row.record_text = Some(r#"{"execution_id":"exec-1-1-1","trace":{"entries":[{"node_id":"a"}]}}"#.to_owned());
    agentd_store::Store::upsert_run(&store, &row).expect("upsert");
    let stored = agentd_store::Store::run(&store, "exec-1-1-1").expect("read").expect("row");
    assert_eq!(stored.record["trace"]["entries"][0]["node_id"], "a");
    assert_eq!(stored.record_text, None);
}
