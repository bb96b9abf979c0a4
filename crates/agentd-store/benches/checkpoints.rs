//! Progress checkpoints of long linear runs: one checkpoint after every node, as
//! `--checkpoint-each-node` writes them, for 1 000 and 10 000 nodes, with each durability.
//!
//! Each measured iteration opens a fresh state dir (not timed), writes the run's first checkpoint,
//! then one [`Store::append_progress`] per node carrying a small rendered output and its trace
//! entry. The time per iteration is the whole chain, so linear cost shows as time(10 000) ≈
//! 10 × time(1 000). `fast_full_rewrite` writes the whole checkpoint after every node instead, the
//! quadratic way the split schema avoids, for comparison.

use std::time::{Duration, Instant};

use agentd_store::{
    BudgetUsed, Checkpoint, CheckpointKind, Durability, OpenOptions, ProgressUpdate, SqliteStore, Store,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

const RUN_ID: &str = "exec-6650c1a2-3f1c-1";

fn first_checkpoint() -> Checkpoint {
    let mut node_outputs = Map::new();
    node_outputs.insert("trigger".into(), json!({"body": "hi"}));
    Checkpoint {
        run_id: RUN_ID.into(),
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
        workflow_path: Some("/tmp/chain.toml".into()),
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

fn cost(executions: u64) -> Value {
    json!({"workflow_starts": 1, "workflow_completions": 0, "workflow_failures": 0, "workflow_timeouts": 0,
           "workflow_errored": 0, "node_executions": executions, "node_failures": 0, "policy_denials": 0,
           "llm_calls": 0, "llm_tokens": 0})
}

/// What the engine sends after node `index` of a `template_render` chain.
fn progress(index: u64) -> ProgressUpdate {
    let node = format!("n{index}");
    let output = json!({"text": format!("step {index}: hello hi")});
    let mut changed_outputs = Map::new();
    changed_outputs.insert(node.clone(), output.clone());
    ProgressUpdate {
        run_id: RUN_ID.into(),
        paused_at: node.clone(),
        resume_node: Some(format!("n{}", index + 1)),
        reason: None,
        awaiting_approval: false,
        loop_counts: Default::default(),
        steps: index + 1,
        http_response: None,
        budget_used: BudgetUsed::default(),
        cost: cost(index + 1),
        updated_at: "2025-05-01T12:00:01.000Z".into(),
        changed_outputs,
        trace_from: index,
        new_trace: vec![json!({"node_id": node, "kind": "template_render", "outcome": "continue",
                               "branch": null, "output": output, "elapsed_ms": 0,
                               "started_at": "2025-05-01T12:00:01.000Z"})],
    }
}

fn fresh_store(durability: Durability) -> (tempfile::TempDir, SqliteStore) {
    let temp = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&temp.path().join(".agentd"), OpenOptions::default().with_durability(durability))
        .expect("open");
    (temp, store)
}

/// Times `chain` over `iterations` fresh state dirs.
fn timed(iterations: u64, durability: Durability, chain: impl Fn(&SqliteStore)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        let (_temp, store) = fresh_store(durability);
        let start = Instant::now();
        chain(&store);
        total += start.elapsed();
    }
    total
}

fn progress_chain(store: &SqliteStore, nodes: u64) {
    store.put_checkpoint(&first_checkpoint()).expect("put");
    for index in 0..nodes {
        store.append_progress(&progress(index)).expect("append");
    }
}

fn full_rewrite_chain(store: &SqliteStore, nodes: u64) {
    let mut checkpoint = first_checkpoint();
    for index in 0..nodes {
        let update = progress(index);
        checkpoint.node_outputs.extend(update.changed_outputs);
        checkpoint.trace.extend(update.new_trace);
        checkpoint.paused_at = update.paused_at;
        checkpoint.resume_node = update.resume_node;
        checkpoint.steps = update.steps;
        checkpoint.cost = update.cost;
        store.put_checkpoint(&checkpoint).expect("put");
    }
}

fn checkpoints(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("progress_checkpoints");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for (label, durability) in [("full", Durability::Full), ("fast", Durability::Fast)] {
        for nodes in [1_000u64, 10_000] {
            group.bench_with_input(BenchmarkId::new(label, nodes), &nodes, |bencher, &nodes| {
                bencher.iter_custom(|iterations| timed(iterations, durability, |store| progress_chain(store, nodes)))
            });
        }
    }
    // Fast durability, so that the comparison with `fast/1000` shows the cost of the writes
    // themselves rather than the disk's flush latency.
    group.bench_with_input(BenchmarkId::new("fast_full_rewrite", 1_000), &1_000u64, |bencher, &nodes| {
        bencher.iter_custom(|iterations| timed(iterations, Durability::Fast, |store| full_rewrite_chain(store, nodes)))
    });
    group.finish();
}

criterion_group!(benches, checkpoints);
criterion_main!(benches);
