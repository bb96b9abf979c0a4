//! Integration tests of agentd-store on real SQLite files in temporary state dirs.

mod approvals;
mod checkpoints;
mod claims;
mod history;
mod idempotency;
mod open;

use std::path::{Path, PathBuf};

use agentd_store::{BudgetUsed, Checkpoint, CheckpointKind, OpenOptions, SqliteStore};
use serde_json::json;

/// A fresh temporary directory and the (not yet existing) state dir inside it.
pub fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join(".agentd");
    (temp, dir)
}

/// Opens the store of `dir` with default options.
pub fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, OpenOptions::default()).expect("open store")
}

/// A checkpoint with every field set to something other than its default.
pub fn full_checkpoint(run_id: &str) -> Checkpoint {
    let mut node_outputs = serde_json::Map::new();
    node_outputs.insert("trigger".into(), json!({"body": "hi", "n": 1}));
    node_outputs.insert("classify".into(), json!({"label": "bug", "nested": {"z": 1, "a": [1, 2, 3]}}));
    node_outputs.insert("route".into(), json!("bug"));
    Checkpoint {
        run_id: run_id.to_owned(),
        workflow: "triage".into(),
        start_node: "main".into(),
        trigger_kind: "http".into(),
        trigger_input: json!({"body": "hi", "n": 1, "unicode": "é✓"}),
        node_outputs,
        paused_at: "gate".into(),
        resume_node: Some("apply".into()),
        reason: Some("approve the deploy?".into()),
        awaiting_approval: true,
        kind: CheckpointKind::Plan,
        plan: Some(json!({"plan_hash": "abc", "review": "ok", "source": "[nodes]"})),
        workflow_path: Some("/srv/flows/triage.toml".into()),
        workflow_sha256: Some("0f".repeat(32)),
        loop_counts: [("3".to_owned(), 2u32), ("10".to_owned(), 1u32)].into_iter().collect(),
        steps: 7,
        trace: vec![
            json!({"node_id": "classify", "kind": "llm_infer", "outcome": "continue", "branch": null,
                   "output": {"label": "bug"}, "elapsed_ms": 812}),
            json!({"node_id": "gate", "kind": "pause_for_approval", "outcome": "pause", "branch": null,
                   "output": null, "elapsed_ms": 0}),
        ],
        http_response: Some(json!({"status": 201, "content_type": "text/plain", "body": "made"})),
        budget_used: BudgetUsed { llm_tokens: 48, fs_write_bytes: 1024 },
        cost: json!({"workflow_starts": 1, "node_executions": 2, "llm_tokens": 48}),
        created_at: "2025-05-01T12:00:03.120Z".into(),
        updated_at: "2025-05-01T12:00:04.000Z".into(),
    }
}

#[test]
fn the_store_is_usable_as_a_shared_trait_object() {
    let (_temp, dir) = state_dir();
    let store: std::sync::Arc<dyn agentd_store::Store> = std::sync::Arc::new(open(&dir));
    let clone = std::sync::Arc::clone(&store);
    std::thread::spawn(move || clone.put_checkpoint(&full_checkpoint("exec-1")).expect("put")).join().expect("thread");
    assert!(store.checkpoint("exec-1").expect("get").is_some());
}
