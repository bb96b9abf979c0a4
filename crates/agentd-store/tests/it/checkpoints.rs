//! Checkpoints: whole writes, incremental progress, reassembly, listing, legacy import.

use agentd_store::{BudgetUsed, Checkpoint, CheckpointKind, Error, OpenOptions, ProgressUpdate, SqliteStore, Store};
use serde_json::{Map, Value, json};

use crate::{full_checkpoint, open, state_dir};

#[test]
fn every_field_round_trips() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    let checkpoint = full_checkpoint("exec-1-2-1");
    store.put_checkpoint(&checkpoint).expect("put");
    assert_eq!(store.checkpoint("exec-1-2-1").expect("get"), Some(checkpoint.clone()));
    assert_eq!(store.checkpoint("exec-missing").expect("get"), None);

    // And through a second handle: the write is committed, not cached.
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.checkpoint("exec-1-2-1").expect("get"), Some(checkpoint));
}

#[test]
fn the_json_shape_follows_the_spec_field_order() {
    let value = serde_json::to_value(full_checkpoint("exec-1")).expect("json");
    let text = serde_json::to_string(&full_checkpoint("exec-1")).expect("json");
    let order = [
        "run_id",
        "workflow",
        "start_node",
        "trigger_kind",
        "trigger_input",
        "node_outputs",
        "paused_at",
        "resume_node",
        "reason",
        "awaiting_approval",
        "kind",
        "plan",
        "workflow_path",
        "workflow_sha256",
        "loop_counts",
        "steps",
        "trace",
        "http_response",
        "budget_used",
        "cost",
        "created_at",
        "updated_at",
    ];
    let positions: Vec<usize> =
        order.iter().map(|key| text.find(&format!("\"{key}\":")).expect("key present")).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
    assert_eq!(value["kind"], json!("plan"));
    assert_eq!(value["budget_used"], json!({"llm_tokens": 48, "fs_write_bytes": 1024}));
}

#[test]
fn a_second_put_replaces_the_whole_checkpoint() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");
    let mut smaller = full_checkpoint("exec-1");
    smaller.node_outputs.remove("classify");
    smaller.trace.truncate(1);
    smaller.kind = CheckpointKind::Node;
    smaller.plan = None;
    smaller.http_response = None;
    smaller.resume_node = None;
    store.put_checkpoint(&smaller).expect("put");
    assert_eq!(store.checkpoint("exec-1").expect("get"), Some(smaller));
}

fn progress(run_id: &str, trace_from: u64, node: &str, value: Value) -> ProgressUpdate {
    let mut changed_outputs = Map::new();
    changed_outputs.insert(node.to_owned(), value.clone());
    ProgressUpdate {
        run_id: run_id.to_owned(),
        paused_at: node.to_owned(),
        resume_node: Some(format!("after-{node}")),
        reason: None,
        awaiting_approval: false,
        loop_counts: [("0".to_owned(), u32::try_from(trace_from).expect("small"))].into_iter().collect(),
        steps: trace_from + 1,
        http_response: None,
        budget_used: BudgetUsed { llm_tokens: trace_from, fs_write_bytes: 0 },
        cost: json!({"node_executions": trace_from + 1}),
        updated_at: format!("2025-05-01T12:00:{:02}.000Z", trace_from % 60),
        changed_outputs,
        trace_from,
        new_trace: vec![json!({"node_id": node, "kind": "template_render", "outcome": "continue",
                               "branch": null, "output": value, "elapsed_ms": 0})],
    }
}

fn first_checkpoint(run_id: &str) -> Checkpoint {
    let mut node_outputs = Map::new();
    node_outputs.insert("trigger".into(), json!({"body": "hi"}));
    Checkpoint {
        run_id: run_id.to_owned(),
        workflow: "chain".into(),
        start_node: "main".into(),
        trigger_kind: "manual".into(),
        trigger_input: json!({"body": "hi"}),
        node_outputs,
        paused_at: String::new(),
        resume_node: Some("n0".into()),
        reason: None,
        awaiting_approval: false,
        kind: CheckpointKind::Node,
        plan: None,
        workflow_path: None,
        workflow_sha256: Some("ab".repeat(32)),
        loop_counts: Default::default(),
        steps: 0,
        trace: Vec::new(),
        http_response: None,
        budget_used: BudgetUsed::default(),
        cost: json!({}),
        created_at: "2025-05-01T12:00:00.000Z".into(),
        updated_at: "2025-05-01T12:00:00.000Z".into(),
    }
}

#[test]
fn progress_updates_reassemble_into_the_full_checkpoint() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    let mut expected = first_checkpoint("exec-p");
    store.put_checkpoint(&expected).expect("put");
    for index in 0..50u64 {
        let node = format!("n{}", index % 20); // nodes revisited through a loop replace their output
        let value = json!({"text": format!("rendered {index}")});
        let update = progress("exec-p", index, &node, value.clone());
        store.append_progress(&update).expect("append");
        expected.node_outputs.insert(node.clone(), value);
        expected.trace.extend(update.new_trace.iter().cloned());
        expected.paused_at = update.paused_at.clone();
        expected.resume_node = update.resume_node.clone();
        expected.loop_counts = update.loop_counts.clone();
        expected.steps = update.steps;
        expected.budget_used = update.budget_used;
        expected.cost = update.cost.clone();
        expected.updated_at = update.updated_at.clone();
    }
    let stored = store.checkpoint("exec-p").expect("get").expect("present");
    assert_eq!(stored, expected);
    assert_eq!(stored.trace.len(), 50);
    assert_eq!(stored.node_outputs.len(), 21);
}

#[test]
fn progress_can_resend_from_an_earlier_index_but_not_skip_ahead() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.put_checkpoint(&first_checkpoint("exec-r")).expect("put");
    store.append_progress(&progress("exec-r", 0, "a", json!(1))).expect("append");
    store.append_progress(&progress("exec-r", 1, "b", json!(2))).expect("append");

    match store.append_progress(&progress("exec-r", 5, "c", json!(3))) {
        Err(Error::TraceGap { run_id, from: 5, stored: 2 }) => assert_eq!(run_id, "exec-r"),
        other => panic!("expected a trace gap, got {other:?}"),
    }
    // A writer whose last update failed resends from its last durable index; the entry is replaced.
    store.append_progress(&progress("exec-r", 1, "b2", json!(4))).expect("resend");
    let stored = store.checkpoint("exec-r").expect("get").expect("present");
    let nodes: Vec<&str> = stored.trace.iter().map(|entry| entry["node_id"].as_str().expect("id")).collect();
    assert_eq!(nodes, ["a", "b2"]);

    match store.append_progress(&progress("exec-none", 0, "a", json!(1))) {
        Err(Error::NoCheckpoint { run_id }) => assert_eq!(run_id, "exec-none"),
        other => panic!("expected no checkpoint, got {other:?}"),
    }
}

#[test]
fn list_is_in_ascending_byte_order_and_summaries_match() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    for run_id in ["exec-b", "exec-a", "exec-B", "exec-10", "exec-9", "exec-é"] {
        let mut checkpoint = full_checkpoint(run_id);
        checkpoint.awaiting_approval = run_id != "exec-10";
        store.put_checkpoint(&checkpoint).expect("put");
    }
    let ids: Vec<String> = store.list_checkpoints().expect("list").into_iter().map(|c| c.run_id).collect();
    assert_eq!(ids, ["exec-10", "exec-9", "exec-B", "exec-a", "exec-b", "exec-é"]);
    let summaries = store.checkpoint_summaries().expect("summaries");
    let summary_ids: Vec<&str> = summaries.iter().map(|s| s.run_id.as_str()).collect();
    assert_eq!(summary_ids, ids);
    let recoverable: Vec<&str> = summaries.iter().filter(|s| !s.awaiting_approval).map(|s| s.run_id.as_str()).collect();
    assert_eq!(recoverable, ["exec-10"]);
    assert_eq!(summaries[0].resume_node.as_deref(), Some("apply"));
    assert_eq!(summaries[0].kind, CheckpointKind::Plan);
}

#[test]
fn delete_removes_the_checkpoint_and_its_rows() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.put_checkpoint(&full_checkpoint("exec-d")).expect("put");
    assert!(store.delete_checkpoint("exec-d").expect("delete"));
    assert!(!store.delete_checkpoint("exec-d").expect("delete again"));
    assert_eq!(store.checkpoint("exec-d").expect("get"), None);
    // A new checkpoint under the same id starts empty, not with the old outputs.
    let mut fresh = first_checkpoint("exec-d");
    fresh.node_outputs.clear();
    store.put_checkpoint(&fresh).expect("put");
    assert_eq!(store.checkpoint("exec-d").expect("get"), Some(fresh));
}

const LEGACY_CHECKPOINT: &str = r#"{
  "run_id": "exec-6650c1a2-3f1c-1",
  "workflow": "deploy_with_approval",
  "start_node": "main",
  "trigger_kind": "manual",
  "trigger_input": {"env": "prod"},
  "node_outputs": {"trigger": {"env": "prod"}, "plan": {"steps": 3}},
  "paused_at": "gate",
  "resume_node": "apply",
  "reason": "ship it?"
}"#;

#[test]
fn legacy_checkpoint_files_are_imported_and_renamed() {
    let (_temp, dir) = state_dir();
    std::fs::create_dir_all(dir.join("idempotency")).expect("mkdir");
    std::fs::write(dir.join("exec-6650c1a2-3f1c-1.json"), LEGACY_CHECKPOINT).expect("write");
    let progress_file = LEGACY_CHECKPOINT
        .replace("exec-6650c1a2-3f1c-1", "exec-6650c1a2-3f1c-2")
        .replace("\"reason\": \"ship it?\"", "\"reason\": null, \"awaiting_approval\": false");
    std::fs::write(dir.join("exec-6650c1a2-3f1c-2.json"), progress_file).expect("write");
    std::fs::write(dir.join("notes.json"), r#"{"hello": "world"}"#).expect("write");
    std::fs::write(dir.join("broken.json"), "{not json").expect("write");
    std::fs::write(dir.join("idempotency").join("x.json"), LEGACY_CHECKPOINT).expect("write");

    // A read-only open of a 1.3 state dir (no state.db yet) still sees its checkpoints.
    let store = SqliteStore::open_existing(&dir, OpenOptions::default()).expect("open").expect("present");
    let imported = store.checkpoint("exec-6650c1a2-3f1c-1").expect("get").expect("imported");
    assert_eq!(imported.workflow, "deploy_with_approval");
    assert_eq!(imported.trigger_input, json!({"env": "prod"}));
    assert_eq!(imported.node_outputs["plan"], json!({"steps": 3}));
    assert_eq!(imported.resume_node.as_deref(), Some("apply"));
    assert_eq!(imported.reason.as_deref(), Some("ship it?"));
    assert!(imported.awaiting_approval, "a missing awaiting_approval means a pause checkpoint");
    assert_eq!(imported.kind, CheckpointKind::Node);
    assert!(imported.trace.is_empty() && imported.loop_counts.is_empty() && imported.steps == 0);
    assert_eq!(imported.cost, Value::Null);
    assert!(!imported.created_at.is_empty());
    let recoverable = store.checkpoint("exec-6650c1a2-3f1c-2").expect("get").expect("imported");
    assert!(!recoverable.awaiting_approval);

    assert!(!dir.join("exec-6650c1a2-3f1c-1.json").exists());
    assert!(dir.join("exec-6650c1a2-3f1c-1.json.imported").exists());
    assert!(dir.join("exec-6650c1a2-3f1c-2.json.imported").exists());
    assert!(dir.join("notes.json").exists(), "not a checkpoint: left alone");
    assert!(dir.join("broken.json").exists(), "not a checkpoint: left alone");
    assert!(dir.join("idempotency").join("x.json").exists(), "the legacy idempotency dir is ignored");
    assert_eq!(store.list_checkpoints().expect("list").len(), 2);

    // Once the run finishes and its checkpoint is deleted, reopening does not bring it back.
    store.delete_checkpoint("exec-6650c1a2-3f1c-1").expect("delete");
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.checkpoint("exec-6650c1a2-3f1c-1").expect("get"), None);
}

#[test]
fn a_legacy_file_never_overwrites_a_newer_checkpoint() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    let newer = full_checkpoint("exec-6650c1a2-3f1c-1");
    store.put_checkpoint(&newer).expect("put");
    drop(store);
    std::fs::write(dir.join("exec-6650c1a2-3f1c-1.json"), LEGACY_CHECKPOINT).expect("write");
    let store = open(&dir);
    assert_eq!(store.checkpoint("exec-6650c1a2-3f1c-1").expect("get"), Some(newer));
    assert!(dir.join("exec-6650c1a2-3f1c-1.json.imported").exists());
}
