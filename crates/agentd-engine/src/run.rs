//! The walk (03 §8): one node at a time, edges chosen by the engine, retries, the run deadline,
//! the step cap, and the outcome, trace and record at the end.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use agentd_workflow::{Node, NodeKind, When, Workflow};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::audit::Level;
use crate::documents::*;
use crate::durable::{CheckpointBase, Resume};
use crate::error::{Category, NodeError};
use crate::graph::Graph;
use crate::nodes::{self, Step};
use crate::{Engine, RunRequest, RunResult, trigger_value};

/// The engine's safety cap on nodes walked per run.
pub const STEP_CAP: u64 = 10_000;

/// Mutable state of one run.
pub(crate) struct RunState<'a> {
    pub workflow: &'a Workflow,
    pub execution_id: String,
    /// Node outputs by node index.
    pub outputs: Vec<Option<Value>>,
    /// The `trigger` context value.
    pub trigger: Value,
    /// The raw trigger input.
    pub input: Value,
    pub dry_run: bool,
    pub deadline: Instant,
    /// fs-write bytes used by the run (shared with child runs).
    pub fs_written: Arc<AtomicU64>,
    /// Prompt + completion tokens of this run's own model calls.
    pub llm_tokens: Arc<AtomicU64>,
    /// Tokens used by the whole run tree (the root's budget, shared with child runs).
    pub budget_tokens: Arc<AtomicU64>,
    /// The graph being walked (contracts, loop edges, children).
    pub graph: &'a Graph,
    /// Composition depth: the root run is 0.
    pub depth: u32,
    /// The walk's step number of the node being executed (stable across a resume).
    pub step: u64,
    /// Whether finished parts of a node (map elements) are journaled for a resume.
    pub journal: bool,
    /// The run's cancellation (children share it).
    pub cancel: crate::Cancel,
    /// Child traces produced by the node being executed, attached to its trace entry.
    pub children: std::sync::Mutex<Vec<crate::ChildTrace>>,
    /// Counters of every child run, added to this run's cost at the end.
    pub child_cost: std::sync::Mutex<Cost>,
    /// Successful model calls of the run.
    pub llm_calls: Arc<AtomicU64>,
}

impl RunState<'_> {
    /// Context lookup of a head key (`trigger` or a node id).
    pub fn lookup(&self, key: &str) -> Option<&Value> {
        if key == "trigger" {
            return Some(&self.trigger);
        }
        self.workflow.index_of(key).and_then(|i| self.outputs[i].as_ref())
    }
}

/// How a node attempt ended, as the walk sees it.
enum Attempted {
    Done(Step),
    Error(NodeError),
    /// The run deadline expired during the node (or its retry back-off).
    DeadlineExpired,
    /// The run was cancelled (signal).
    Cancelled,
}

/// What a child run shares with the run that started it (04 §8, 05 §7).
pub(crate) struct ParentLink {
    /// Depth of the child (the root is 0).
    pub depth: u32,
    /// The root run's fs-write bytes.
    pub fs_written: Arc<AtomicU64>,
    /// The root run's token tally (the budget).
    pub budget_tokens: Arc<AtomicU64>,
}

/// Executes one run of `graph`: the root run (`parent` = `None`), or a child run that shares the
/// root's budgets and keeps no checkpoints or history of its own.
pub(crate) fn execute<'e>(
    engine: &'e Engine,
    graph: Arc<Graph>,
    request: RunRequest,
    parent: Option<ParentLink>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = RunResult> + Send + 'e>> {
    Box::pin(execute_graph(engine, graph, request, parent))
}

async fn execute_graph(
    engine: &Engine,
    graph: Arc<Graph>,
    request: RunRequest,
    parent: Option<ParentLink>,
) -> RunResult {
    let is_child = parent.is_some();
    let workflow = &*graph.workflow;
    let started_wall = jiff::Timestamp::now();
    let started = Instant::now();
    let resume = request.resume;
    let execution_id = match &resume {
        Some(r) => r.checkpoint.run_id.clone(),
        None => fresh_execution_id(engine),
    };
    let mut cost = Cost { workflow_starts: 1, ..Cost::default() };
    let mut trace: Vec<TraceEntry> = Vec::new();
    let mut reply: Option<HttpReply> = None;
    let mut dead_end = false;
    let audit = &engine.audit;
    let run_fields = |extra: Value| {
        let mut fields = json!({"execution_id": execution_id, "workflow": workflow.name});
        if let (Value::Object(f), Value::Object(e)) = (&mut fields, extra) {
            f.extend(e);
        }
        fields
    };
    let (start_name, trigger_kind, input) = match &resume {
        Some(r) => {
            (r.checkpoint.start_node.clone(), r.checkpoint.trigger_kind.clone(), r.checkpoint.trigger_input.clone())
        }
        None => (request.start.clone(), request.trigger_kind.clone(), request.input),
    };
    if let Some(r) = &resume {
        audit.emit(Level::Info, "workflow.resumed", run_fields(json!({"paused_at": r.checkpoint.paused_at})));
    } else {
        audit.emit(
            Level::Info,
            "workflow.started",
            run_fields(json!({"start_node": start_name, "trigger_kind": trigger_kind})),
        );
    }
    let base = CheckpointBase {
        run_id: execution_id.clone(),
        workflow: workflow.name.clone(),
        start_node: start_name.clone(),
        trigger_kind: trigger_kind.clone(),
        trigger_input: input.clone(),
        workflow_path: engine.durable.workflow_path.as_ref().map(|p| p.display().to_string()),
        workflow_sha256: engine.durable.workflow_sha256.clone(),
        created_at: resume
            .as_ref()
            .map(|r| r.checkpoint.created_at.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| timestamp(started_wall)),
    };
    let (depth, fs_written, budget_tokens) = match parent {
        Some(link) => (link.depth, link.fs_written, link.budget_tokens),
        None => (0, Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))),
    };
    let mut state = RunState {
        workflow,
        graph: &graph,
        depth,
        step: 0,
        // A resumed run reads (and keeps writing) the journal even without --checkpoint-each-node.
        journal: !is_child
            && engine.durable.store.is_some()
            && (engine.durable.checkpoint_each_node || resume.is_some()),
        cancel: request.cancel.clone(),
        budget_tokens,
        children: std::sync::Mutex::new(Vec::new()),
        child_cost: std::sync::Mutex::new(Cost::default()),
        execution_id: execution_id.clone(),
        outputs: vec![None; workflow.nodes.len()],
        trigger: trigger_value(&trigger_kind, &input),
        input,
        dry_run: request.dry_run,
        deadline: started + request.timeout,
        fs_written,
        llm_tokens: Arc::new(AtomicU64::new(0)),
        llm_calls: Arc::new(AtomicU64::new(0)),
    };
    let mut loop_counts = vec![0u32; workflow.edges.len()];
    let mut steps: u64 = 0;
    // What checkpoint the run has in the store: the one it resumed from, then what it wrote.
    let mut stored = match &resume {
        Some(r) if r.checkpoint.awaiting_approval => Stored::Pause,
        Some(_) => Stored::Progress,
        None => Stored::None,
    };
    let mut progress = ProgressCursor::default();

    let outcome = 'walk: {
        let mut current = match &resume {
            Some(r) => {
                let restored =
                    restore(engine, &mut state, r, &mut loop_counts, &mut steps, &mut trace, &mut reply, &mut cost);
                match restored {
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        break 'walk Outcome::Completed {
                            final_value: Value::Null,
                            last_node: r.checkpoint.paused_at.clone(),
                            http_response: reply.take(),
                        };
                    }
                    Err(reason) => break 'walk Outcome::Errored { reason, last_node: None },
                }
            }
            None => {
                let Some(start) = workflow.start(&start_name) else {
                    break 'walk Outcome::Errored {
                        reason: NodeError::workflow(&workflow.name, format_args!("unknown start node `{start_name}`"))
                            .text,
                        last_node: None,
                    };
                };
                let Some(entry) = start.entry else {
                    break 'walk Outcome::Errored {
                        reason: NodeError::workflow(
                            &workflow.name,
                            format_args!(
                                "start node `{}` has no unambiguous entry node (declare `entry_node`)",
                                start.name
                            ),
                        )
                        .text,
                        last_node: None,
                    };
                };
                entry
            }
        };
        progress.trace_written = trace.len();
        let mut last_ran: Option<usize> = None;
        loop {
            if steps >= STEP_CAP {
                break 'walk Outcome::Errored {
                    reason: NodeError::workflow(
                        &workflow.name,
                        format_args!(
                            "safety cap hit: engine walked {STEP_CAP} nodes without reaching a terminal outcome"
                        ),
                    )
                    .text,
                    last_node: last_ran.map(|i| workflow.nodes[i].id.clone()),
                };
            }
            if request.cancel.token.is_cancelled() {
                break 'walk cancelled(&request.cancel, last_ran.map(|i| workflow.nodes[i].id.clone()));
            }
            let now = Instant::now();
            if now >= state.deadline {
                break 'walk Outcome::TimedOut {
                    elapsed_ms: millis(now - started),
                    last_node: last_ran.map(|i| workflow.nodes[i].id.clone()),
                };
            }
            steps += 1;
            state.step = steps;
            let node = &workflow.nodes[current];
            let node_started = Instant::now();
            let started_at = timestamp(jiff::Timestamp::now());

            if let NodeKind::PauseForApproval(pause) = &node.kind {
                let fail = |why: String| {
                    NodeError::workflow(
                        &workflow.name,
                        format_args!(
                            "node `{}` is pause_for_approval but the run state could not be saved: {why}",
                            node.id
                        ),
                    )
                };
                if is_child {
                    trace.push(entry(node, "pause", None, Value::Null, 0, None, None, started_at.clone()));
                    break 'walk Outcome::Paused {
                        run_id: execution_id.clone(),
                        last_node: Some(node.id.clone()),
                        reason: pause.reason.clone(),
                    };
                }
                let successor = match pause_successor(workflow, current) {
                    Ok(s) => s,
                    Err(error) => {
                        break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
                    }
                };
                let opened = match engine.durable.store.as_ref() {
                    Some(handle) => handle.get(),
                    None => Err("no state store is configured".to_string()),
                };
                let store = match opened {
                    Ok(store) => store,
                    Err(why) => {
                        let error = fail(why);
                        let text = Some(error.text.clone());
                        trace.push(entry(node, "error", None, Value::Null, 0, None, text, started_at));
                        break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
                    }
                };
                trace.push(entry(node, "pause", None, Value::Null, 0, None, None, started_at.clone()));
                let checkpoint = base.checkpoint(
                    context_map(&state),
                    node.id.clone(),
                    successor.map(|i| workflow.nodes[i].id.clone()),
                    pause.reason.clone(),
                    true,
                    loop_map(&graph.loop_edges, &loop_counts),
                    steps,
                    trace_values(&trace),
                    reply.as_ref().and_then(|r| serde_json::to_value(r).ok()),
                    state.fs_written.load(std::sync::atomic::Ordering::SeqCst),
                    serde_json::to_value(&cost).unwrap_or(Value::Null),
                    timestamp(jiff::Timestamp::now()),
                );
                let checkpoint = scrubbed_checkpoint(engine, checkpoint, &state.budget_tokens);
                let saved = store.put_checkpoint(&checkpoint).and_then(|()| {
                    store.request_approval(&agentd_store::ApprovalRequest {
                        execution_id: execution_id.clone(),
                        workflow: workflow.name.clone(),
                        kind: agentd_store::CheckpointKind::Node,
                        pause_node: node.id.clone(),
                        reason: pause.reason.clone(),
                        requested_at: timestamp(jiff::Timestamp::now()),
                        trigger_principal: state.trigger.get("principal").cloned(),
                    })
                });
                if let Err(e) = saved {
                    trace.pop();
                    let error = fail(e.to_string());
                    trace.push(entry(node, "error", None, Value::Null, 0, None, Some(error.text.clone()), started_at));
                    break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
                }
                stored = Stored::Pause;
                audit.emit(
                    Level::Info,
                    "workflow.paused",
                    run_fields(json!({"node": node.id, "run_id": execution_id, "checkpoint": "state.db"})),
                );
                break 'walk Outcome::Paused {
                    run_id: execution_id.clone(),
                    last_node: Some(node.id.clone()),
                    reason: pause.reason.clone(),
                };
            }

            let (attempted, attempts) = attempt_with_retry(engine, &mut state, node, &request.cancel.token).await;
            let children =
                std::mem::take(&mut *state.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            let attach = |mut e: TraceEntry| {
                if !children.is_empty() {
                    e.children = Some(children.clone());
                }
                e
            };
            let elapsed_ms = millis(node_started.elapsed());
            let attempts_field = (attempts > 1).then_some(attempts);
            last_ran = Some(current);
            let step = match attempted {
                Attempted::Done(step) => step,
                Attempted::Error(error) => {
                    cost.node_executions += 1;
                    cost.node_failures += 1;
                    if error.category == Category::Policy {
                        cost.policy_denials += 1;
                    }
                    trace.push(attach(entry(
                        node,
                        "error",
                        None,
                        Value::Null,
                        elapsed_ms,
                        attempts_field,
                        Some(error.text.clone()),
                        started_at,
                    )));
                    break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
                }
                Attempted::DeadlineExpired => {
                    break 'walk Outcome::TimedOut {
                        elapsed_ms: millis(started.elapsed()),
                        last_node: Some(node.id.clone()),
                    };
                }
                Attempted::Cancelled => break 'walk cancelled(&request.cancel, Some(node.id.clone())),
            };
            cost.node_executions += 1;
            let (output, label) = match step {
                Step::Continue { output, label } => (output, label),
                Step::Reply { output, reply: declared } => {
                    reply = Some(declared);
                    (output, None)
                }
                Step::Terminate => {
                    trace.push(entry(
                        node,
                        "terminate",
                        None,
                        Value::Null,
                        elapsed_ms,
                        attempts_field,
                        None,
                        started_at,
                    ));
                    state.outputs[current] = Some(Value::Null);
                    break 'walk Outcome::Completed {
                        final_value: Value::Null,
                        last_node: node.id.clone(),
                        http_response: reply.take(),
                    };
                }
                Step::Fail { reason } => {
                    trace.push(entry(node, "fail", None, Value::Null, elapsed_ms, attempts_field, None, started_at));
                    break 'walk Outcome::Failed { reason, last_node: node.id.clone() };
                }
            };
            trace.push(attach(entry(
                node,
                "continue",
                label.clone(),
                output.clone(),
                elapsed_ms,
                attempts_field,
                None,
                started_at,
            )));
            match choose_edge(workflow, current, label.as_deref(), &mut loop_counts) {
                Ok(Some(next)) => {
                    if engine.durable.checkpoint_each_node && !is_child {
                        let written = write_progress(
                            engine,
                            &base,
                            &state,
                            &mut progress,
                            current,
                            &output,
                            next,
                            &loop_counts,
                            steps,
                            &trace,
                            &reply,
                            &cost,
                        );
                        match written {
                            Ok(()) => stored = Stored::Progress,
                            Err(reason) => audit.emit(
                                Level::Warn,
                                "checkpoint.write_failed",
                                run_fields(json!({"node_id": node.id, "reason": reason})),
                            ),
                        }
                    }
                    state.outputs[current] = Some(output);
                    current = next;
                }
                Ok(None) => {
                    dead_end = true;
                    break 'walk Outcome::Completed {
                        final_value: output,
                        last_node: node.id.clone(),
                        http_response: reply.take(),
                    };
                }
                Err(error) => break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) },
            }
        }
    };

    let outcome = match outcome {
        // `respond` replies ride only on completed outcomes.
        Outcome::Completed { final_value, last_node, http_response } => {
            Outcome::Completed { final_value, last_node, http_response: http_response.or(reply) }
        }
        other => other,
    };
    cost.count_end(&outcome);
    cost.add(&state.child_cost.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let elapsed_ms = millis(started.elapsed());
    match &outcome {
        Outcome::Completed { last_node, .. } => {
            let mut fields = json!({"last_node": last_node, "elapsed_ms": elapsed_ms});
            if dead_end {
                fields["reason"] = json!("dead_end");
            }
            audit.emit(Level::Info, "workflow.completed", run_fields(fields));
        }
        Outcome::Failed { last_node, reason } => {
            audit.emit(
                Level::Warn,
                "workflow.failed",
                run_fields(json!({"last_node": last_node, "reason": reason, "elapsed_ms": elapsed_ms})),
            );
        }
        Outcome::TimedOut { last_node, .. } => {
            audit.emit(
                Level::Warn,
                "workflow.timed_out",
                run_fields(json!({"last_node": last_node, "elapsed_ms": elapsed_ms})),
            );
        }
        Outcome::Errored { last_node, reason } => {
            audit.emit(Level::Error, "workflow.errored", run_fields(json!({"last_node": last_node, "reason": reason})));
        }
        Outcome::Paused { .. } => {}
    }
    // 02 §6.3: a pause checkpoint goes on completed, failed or timed_out; a progress checkpoint
    // on completed or failed; errored runs keep theirs so the resume can be retried.
    let delete = match (&outcome, stored) {
        (_, Stored::None) | (Outcome::Paused { .. } | Outcome::Errored { .. }, _) => false,
        (Outcome::Completed { .. } | Outcome::Failed { .. }, _) => true,
        (Outcome::TimedOut { .. }, kind) => kind == Stored::Pause,
    };
    if delete
        && let Some(Ok(store)) = engine.durable.store.as_ref().map(|s| s.get())
        && let Err(e) = store.delete_checkpoint(&execution_id)
    {
        audit.emit(Level::Warn, "checkpoint.delete_failed", run_fields(json!({"reason": e.to_string()})));
    }
    cost.llm_tokens = cost.llm_tokens.saturating_add(state.llm_tokens.load(std::sync::atomic::Ordering::SeqCst));
    cost.llm_calls = cost.llm_calls.saturating_add(state.llm_calls.load(std::sync::atomic::Ordering::SeqCst));
    let finished_wall = jiff::Timestamp::now();
    let record = RunRecord {
        workflow: workflow.name.clone(),
        start_node: start_name,
        execution_id: execution_id.clone(),
        status: outcome.status().to_string(),
        last_node: outcome.last_node().map(str::to_string),
        detail: outcome.detail(),
        wall_ms: elapsed_ms,
        cost,
        trace: Trace { execution_id, entries: trace },
        started_at: resume.as_ref().map_or_else(|| timestamp(started_wall), |_| base.created_at.clone()),
        finished_at: timestamp(finished_wall),
        trigger_kind: state.trigger.get("kind").and_then(Value::as_str).unwrap_or(&trigger_kind).to_string(),
    };
    let (mut outcome, mut record) = (outcome, record);
    let scrubber = engine.secrets.scrubber();
    crate::secrets::scrub_doc(scrubber, &mut outcome);
    crate::secrets::scrub_doc(scrubber, &mut record);
    if !is_child {
        store_history(engine, &record);
    }
    RunResult { outcome, record }
}

/// Which checkpoint of this run the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    None,
    Pause,
    Progress,
}

/// How much of this run's progress checkpoint is already durable.
#[derive(Default)]
struct ProgressCursor {
    /// A full checkpoint row exists for this segment.
    started: bool,
    /// Trace entries already written.
    trace_written: usize,
}

/// A new execution id, unique within the state store when there is one (02 §6.1).
fn fresh_execution_id(engine: &Engine) -> String {
    let mut id = crate::ids::next_execution_id();
    if !crate::ids::may_collide() {
        return id;
    }
    if let Some(Ok(store)) =
        engine.durable.store.as_ref().filter(|_| engine.durable.history_max_runs.is_some()).map(|s| s.get())
    {
        for _ in 0..1000 {
            match store.execution_id_exists(&id) {
                Ok(true) => id = crate::ids::next_execution_id(),
                _ => break,
            }
        }
    }
    id
}

/// The pause node's successor chosen with no label (02 §6.3): the single unlabelled out-edge,
/// else the single `*` edge; none → `None`; two or more → an ambiguity error.
fn pause_successor(workflow: &Workflow, current: usize) -> Result<Option<usize>, NodeError> {
    let out = &workflow.out_edges[current];
    for wanted in [When::Unlabelled, When::Default] {
        let matching: Vec<usize> = out.iter().copied().filter(|i| workflow.edges[*i].when == wanted).collect();
        match matching.len() {
            0 => continue,
            1 => return Ok(Some(workflow.edges[matching[0]].to)),
            n => return Err(ambiguity(workflow, current, None, n)),
        }
    }
    Ok(None)
}

/// A checkpoint with every known secret value scrubbed (08 §6: a resumed run sees `<redacted>`).
fn scrubbed_checkpoint(
    engine: &Engine,
    checkpoint: agentd_store::Checkpoint,
    llm_tokens: &AtomicU64,
) -> agentd_store::Checkpoint {
    let mut checkpoint = checkpoint;
    checkpoint.budget_used.llm_tokens = llm_tokens.load(std::sync::atomic::Ordering::SeqCst);
    crate::secrets::scrub_doc(engine.secrets.scrubber(), &mut checkpoint);
    checkpoint
}

/// `node_outputs` of a checkpoint: every stored output plus the reserved `trigger` entry.
fn context_map(state: &RunState<'_>) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("trigger".to_string(), state.trigger.clone());
    for (i, output) in state.outputs.iter().enumerate() {
        if let Some(value) = output {
            map.insert(state.workflow.nodes[i].id.clone(), value.clone());
        }
    }
    map
}

/// `loop_counts` of a checkpoint: only loop edges can have a count, so only they are visited
/// (a scan of every edge per progress checkpoint would make long runs quadratic).
fn loop_map(loop_edges: &[usize], counts: &[u32]) -> std::collections::BTreeMap<String, u32> {
    loop_edges.iter().filter(|i| counts[**i] > 0).map(|i| (i.to_string(), counts[*i])).collect()
}

fn trace_values(trace: &[TraceEntry]) -> Vec<Value> {
    trace.iter().filter_map(|e| serde_json::to_value(e).ok()).collect()
}

/// Writes the progress checkpoint after `current` completed and `next` was chosen: the whole
/// checkpoint the first time, then only what changed (O(1) per node).
#[allow(clippy::too_many_arguments, reason = "the walk state a checkpoint captures")]
fn write_progress(
    engine: &Engine,
    base: &CheckpointBase,
    state: &RunState<'_>,
    cursor: &mut ProgressCursor,
    current: usize,
    output: &Value,
    next: usize,
    loop_counts: &[u32],
    steps: u64,
    trace: &[TraceEntry],
    reply: &Option<HttpReply>,
    cost: &Cost,
) -> Result<(), String> {
    let store = engine.durable.store.as_ref().ok_or("no state store is configured")?.get()?;
    let workflow = state.workflow;
    let now = timestamp(jiff::Timestamp::now());
    let fs_written = state.fs_written.load(std::sync::atomic::Ordering::SeqCst);
    let http_response = reply.as_ref().and_then(|r| serde_json::to_value(r).ok());
    let cost_value = serde_json::to_value(cost).unwrap_or(Value::Null);
    let current_id = workflow.nodes[current].id.clone();
    let next_id = workflow.nodes[next].id.clone();
    if !cursor.started {
        let mut outputs = context_map(state);
        outputs.insert(current_id.clone(), output.clone());
        let checkpoint = base.checkpoint(
            outputs,
            current_id,
            Some(next_id),
            None,
            false,
            loop_map(&state.graph.loop_edges, loop_counts),
            steps,
            trace_values(trace),
            http_response,
            fs_written,
            cost_value,
            now,
        );
        let checkpoint = scrubbed_checkpoint(engine, checkpoint, &state.budget_tokens);
        store.put_checkpoint(&checkpoint).map_err(|e| e.to_string())?;
        cursor.started = true;
    } else {
        let mut changed = serde_json::Map::new();
        changed.insert(current_id.clone(), output.clone());
        let update = agentd_store::ProgressUpdate {
            run_id: base.run_id.clone(),
            paused_at: current_id,
            resume_node: Some(next_id),
            reason: None,
            awaiting_approval: false,
            loop_counts: loop_map(&state.graph.loop_edges, loop_counts),
            steps,
            http_response,
            budget_used: agentd_store::BudgetUsed {
                llm_tokens: state.budget_tokens.load(std::sync::atomic::Ordering::SeqCst),
                fs_write_bytes: fs_written,
            },
            cost: cost_value,
            updated_at: now,
            changed_outputs: changed,
            trace_from: cursor.trace_written as u64,
            new_trace: trace_values(&trace[cursor.trace_written.min(trace.len())..]),
        };
        let mut update = update;
        let scrubber = engine.secrets.scrubber();
        if !scrubber.is_empty() {
            update.changed_outputs.values_mut().for_each(|v| scrubber.scrub_value(v));
            update.new_trace.iter_mut().for_each(|v| scrubber.scrub_value(v));
        }
        store.append_progress(&update).map_err(|e| e.to_string())?;
    }
    cursor.trace_written = trace.len();
    Ok(())
}

/// Restores the walk state from a checkpoint (02 §6.3 resume rules). `Ok(None)` = no successor:
/// the run completes at once.
#[allow(clippy::too_many_arguments, reason = "every piece of walk state a checkpoint restores")]
fn restore(
    engine: &Engine,
    state: &mut RunState<'_>,
    resume: &Resume,
    loop_counts: &mut [u32],
    steps: &mut u64,
    trace: &mut Vec<TraceEntry>,
    reply: &mut Option<HttpReply>,
    cost: &mut Cost,
) -> Result<Option<usize>, String> {
    let workflow = state.workflow;
    let checkpoint = &resume.checkpoint;
    if checkpoint.workflow != workflow.name {
        return Err(NodeError::workflow(
            &workflow.name,
            format_args!("checkpoint is for workflow `{}`, not `{}`", checkpoint.workflow, workflow.name),
        )
        .text);
    }
    for (id, value) in &checkpoint.node_outputs {
        if id == "trigger" {
            state.trigger = value.clone();
        } else if let Some(i) = workflow.index_of(id) {
            state.outputs[i] = Some(value.clone());
        }
    }
    let same_file = match (&checkpoint.workflow_sha256, &engine.durable.workflow_sha256) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    if same_file {
        for (edge, count) in &checkpoint.loop_counts {
            if let Some(slot) = edge.parse::<usize>().ok().and_then(|i| loop_counts.get_mut(i)) {
                *slot = *count;
            }
        }
    } else {
        tracing::warn!(run_id = %checkpoint.run_id, "the workflow file changed since the checkpoint; loop counters are reset");
        engine.audit.emit(
            Level::Warn,
            "checkpoint.loop_counts_reset",
            json!({"execution_id": checkpoint.run_id, "workflow": workflow.name}),
        );
    }
    *steps = checkpoint.steps;
    *trace = checkpoint.trace.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect();
    *reply = checkpoint.http_response.clone().and_then(|v| serde_json::from_value(v).ok());
    if let Ok(restored) = serde_json::from_value::<Cost>(checkpoint.cost.clone()) {
        *cost = restored;
    } else {
        *cost = Cost { workflow_starts: 1, ..Cost::default() };
    }
    state.fs_written.store(checkpoint.budget_used.fs_write_bytes, std::sync::atomic::Ordering::SeqCst);
    state.budget_tokens.store(checkpoint.budget_used.llm_tokens, std::sync::atomic::Ordering::SeqCst);
    state.llm_tokens.store(checkpoint.budget_used.llm_tokens, std::sync::atomic::Ordering::SeqCst);
    if checkpoint.awaiting_approval
        && let Some(i) = workflow.index_of(&checkpoint.paused_at)
    {
        state.outputs[i] = Some(json!({"approved": true, "note": resume.note}));
    }
    match &checkpoint.resume_node {
        None => Ok(None),
        Some(id) => workflow.index_of(id).map(Some).ok_or_else(|| {
            NodeError::workflow(
                &workflow.name,
                format_args!("checkpoint resumes at node `{id}`, which the workflow does not declare"),
            )
            .text
        }),
    }
}

/// Stores the record in the run history (best effort: a failure is a warning, 02 §7).
fn store_history(engine: &Engine, record: &RunRecord) {
    let (Some(handle), Some(max_runs)) = (engine.durable.store.as_ref(), engine.durable.history_max_runs) else {
        return;
    };
    let keep = usize::try_from(max_runs).unwrap_or(usize::MAX);
    let row = match serde_json::to_string(record) {
        Ok(text) => agentd_store::RunRow {
            execution_id: record.execution_id.clone(),
            workflow: record.workflow.clone(),
            start_node: record.start_node.clone(),
            status: record.status.clone(),
            last_node: record.last_node.clone(),
            started_at: record.started_at.clone(),
            finished_at: Some(record.finished_at.clone()),
            wall_ms: record.wall_ms,
            record: Value::Null,
            record_text: Some(text),
        },
        Err(e) => {
            tracing::warn!(execution_id = %record.execution_id, reason = %e, "run history not written");
            return;
        }
    };
    let row = match &engine.history_writer {
        Some(writer) => match writer.write(row, keep) {
            Ok(()) => return,
            Err(row) => *row,
        },
        None => row,
    };
    let result = handle.get().and_then(|store| store.record_runs(&[row], keep).map_err(|e| e.to_string()));
    if let Err(reason) = result {
        tracing::warn!(execution_id = %record.execution_id, %reason, "run history not written");
    }
}

fn cancelled(cancel: &crate::Cancel, last_node: Option<String>) -> Outcome {
    Outcome::Errored { reason: cancel.reason().unwrap_or("cancelled").to_string(), last_node }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[allow(clippy::too_many_arguments, reason = "a trace entry has that many fields")]
fn entry(
    node: &Node,
    outcome: &str,
    branch: Option<String>,
    output: Value,
    elapsed_ms: u64,
    attempts: Option<u32>,
    error: Option<String>,
    started_at: String,
) -> TraceEntry {
    TraceEntry {
        node_id: node.id.clone(),
        kind: node.kind.type_name().to_string(),
        outcome: outcome.to_string(),
        branch,
        output,
        elapsed_ms,
        attempts,
        error,
        children: None,
        started_at: Some(started_at),
    }
}

/// Runs a node with its retry policy, its per-attempt timeout and the run deadline.
async fn attempt_with_retry(
    engine: &Engine,
    state: &mut RunState<'_>,
    node: &Node,
    cancel: &tokio_util::sync::CancellationToken,
) -> (Attempted, u32) {
    let retry = match &node.kind {
        NodeKind::Call(_) | NodeKind::Parallel(_) | NodeKind::Map(_) | NodeKind::PauseForApproval(_) => None,
        _ => node.retry.as_ref(),
    };
    let max_attempts = retry.map_or(1, |r| r.max_attempts.max(1));
    let mut attempt = 1;
    loop {
        let result = attempt_once(engine, state, node, cancel).await;
        let error = match result {
            Attempted::Error(error) => error,
            other => return (other, attempt),
        };
        let Some(retry) = retry.filter(|r| attempt < max_attempts && error.retryable(r.on)) else {
            return (Attempted::Error(error), attempt);
        };
        let jitter = if retry.jitter.is_finite() { retry.jitter.clamp(0.0, 0.5) } else { 0.0 };
        let u: f64 = if jitter > 0.0 { rand::random::<f64>() * 2.0 - 1.0 } else { 0.0 };
        let base = retry.backoff_ms.saturating_mul(u64::from(attempt)) as f64;
        let wait_ms = (base * (1.0 + jitter * u)).max(0.0) as u64;
        engine.audit.emit(
            Level::Warn,
            "node.retry",
            json!({
                "execution_id": state.execution_id, "workflow": state.workflow.name, "node_id": node.id,
                "attempt": attempt, "max_attempts": max_attempts, "backoff_ms": retry.backoff_ms,
                "jitter": jitter, "wait_ms": wait_ms, "reason": error.text,
            }),
        );
        let wake = Instant::now() + std::time::Duration::from_millis(wait_ms);
        if wake > state.deadline {
            return (Attempted::DeadlineExpired, attempt);
        }
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = cancel.cancelled() => return (Attempted::Cancelled, attempt),
        }
        attempt += 1;
    }
}

/// One attempt: pure kinds run inline; effectful kinds race the node timeout, the run deadline
/// and cancellation.
async fn attempt_once(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    cancel: &tokio_util::sync::CancellationToken,
) -> Attempted {
    if let Some(result) = nodes::run_pure(engine, state, node) {
        return match result {
            Ok(step) => Attempted::Done(step),
            Err(error) => Attempted::Error(error),
        };
    }
    let node_timeout = match &node.kind {
        NodeKind::ShellRun(_) => None,
        _ => node.timeout_secs.map(|s| std::time::Duration::from_secs(s.max(1))),
    };
    let node_deadline = node_timeout.map(|t| Instant::now() + t);
    let limit = match node_deadline {
        Some(d) if d < state.deadline => d,
        _ => state.deadline,
    };
    tokio::select! {
        result = nodes::run_effect(engine, state, node) => match result {
            Ok(step) => Attempted::Done(step),
            // A node that gave up because the run deadline passed ends the run `timed_out`.
            Err(_) if Instant::now() >= state.deadline => Attempted::DeadlineExpired,
            Err(error) => Attempted::Error(error),
        },
        () = tokio::time::sleep_until(limit) => {
            if limit < state.deadline {
                Attempted::Error(NodeError::timeout(&node.id, node.timeout_secs.unwrap_or(1).max(1)))
            } else {
                Attempted::DeadlineExpired
            }
        }
        () = cancel.cancelled() => Attempted::Cancelled,
    }
}

/// Chooses the next node (03 §8.2). `Ok(None)` = dead end.
fn choose_edge(
    workflow: &Workflow,
    current: usize,
    label: Option<&str>,
    loop_counts: &mut [u32],
) -> Result<Option<usize>, NodeError> {
    let out = &workflow.out_edges[current];
    let live = |i: &usize| {
        let edge = &workflow.edges[*i];
        edge.max_iterations.is_none_or(|max| loop_counts[*i] < max)
    };
    let matches = |i: &usize| match (&workflow.edges[*i].when, label) {
        (When::Unlabelled, None) => true,
        (When::Label(l), Some(label)) => l == label,
        _ => false,
    };
    let mut candidates = out.iter().filter(|i| matches(i) && live(i));
    let first = candidates.next().copied();
    let chosen = match (first, candidates.next()) {
        (Some(only), None) => Some(only),
        (Some(_), Some(_)) => {
            let n = out.iter().filter(|i| matches(i) && live(i)).count();
            return Err(ambiguity(workflow, current, label, n));
        }
        (None, _) => {
            let mut defaults = out.iter().filter(|i| workflow.edges[**i].when == When::Default && live(i));
            match (defaults.next().copied(), defaults.next()) {
                (None, _) => None,
                (Some(only), None) => Some(only),
                (Some(_), Some(_)) => {
                    let n = out.iter().filter(|i| workflow.edges[**i].when == When::Default && live(i)).count();
                    return Err(ambiguity(workflow, current, label, n));
                }
            }
        }
    };
    Ok(chosen.map(|i| {
        if workflow.edges[i].max_iterations.is_some() {
            loop_counts[i] += 1;
        }
        workflow.edges[i].to
    }))
}

fn ambiguity(workflow: &Workflow, current: usize, label: Option<&str>, n: usize) -> NodeError {
    NodeError::workflow(
        &workflow.name,
        format_args!(
            "node `{}` has {n} matching out-edges for branch `{}`; workflow graphs must select exactly one",
            workflow.nodes[current].id,
            label.unwrap_or("none")
        ),
    )
}
