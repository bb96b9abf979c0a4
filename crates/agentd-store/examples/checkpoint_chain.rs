//! Writes one run's progress checkpoints the way `--checkpoint-each-node` does, for measuring
//! whole-process cost with `/usr/bin/time`:
//!
//! ```text
//! cargo run --release -p agentd-store --example checkpoint_chain -- 1000 full /tmp/state
//! ```
//!
//! Arguments: node count (default 1000), `full` or `fast` durability (default `full`), state dir
//! (default a fresh directory under the system temp dir, removed afterwards).

use agentd_store::{
    BudgetUsed, Checkpoint, CheckpointKind, Durability, OpenOptions, ProgressUpdate, SqliteStore, Store,
};
use serde_json::{Map, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let nodes: u64 = arguments.next().map(|text| text.parse()).transpose()?.unwrap_or(1000);
    let durability = match arguments.next().as_deref() {
        None | Some("full") => Durability::Full,
        Some("fast") => Durability::Fast,
        Some(other) => return Err(format!("unknown durability `{other}`").into()),
    };
    let temp = tempfile::tempdir()?;
    let dir = arguments.next().map(std::path::PathBuf::from).unwrap_or_else(|| temp.path().join(".agentd"));
    let store = SqliteStore::open(&dir, OpenOptions::default().with_durability(durability))?;

    let run_id = "exec-6650c1a2-3f1c-1";
    let mut node_outputs = Map::new();
    node_outputs.insert("trigger".into(), json!({"body": "hi"}));
    store.put_checkpoint(&Checkpoint {
        run_id: run_id.into(),
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
        workflow_sha256: None,
        loop_counts: Default::default(),
        steps: 0,
        trace: Vec::new(),
        http_response: None,
        budget_used: BudgetUsed::default(),
        cost: json!({}),
        created_at: "2025-05-01T12:00:00.000Z".into(),
        updated_at: "2025-05-01T12:00:00.000Z".into(),
    })?;
    for index in 0..nodes {
        let node = format!("n{index}");
        let output = json!({"text": format!("step {index}: hello hi")});
        let mut changed_outputs = Map::new();
        changed_outputs.insert(node.clone(), output.clone());
        store.append_progress(&ProgressUpdate {
            run_id: run_id.into(),
            paused_at: node.clone(),
            resume_node: Some(format!("n{}", index + 1)),
            reason: None,
            awaiting_approval: false,
            loop_counts: Default::default(),
            steps: index + 1,
            http_response: None,
            budget_used: BudgetUsed::default(),
            cost: json!({"workflow_starts": 1, "node_executions": index + 1}),
            updated_at: "2025-05-01T12:00:01.000Z".into(),
            changed_outputs,
            trace_from: index,
            new_trace: vec![json!({"node_id": node, "kind": "template_render", "outcome": "continue",
                                   "branch": null, "output": output, "elapsed_ms": 0})],
        })?;
    }
    Ok(())
}
