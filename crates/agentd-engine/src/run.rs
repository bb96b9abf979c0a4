//! The walk (03 §8): one node at a time, edges chosen by the engine, retries, the run deadline,
//! the step cap, and the outcome, trace and record at the end.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use agentd_workflow::{Node, NodeKind, When, Workflow};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::audit::Level;
use crate::documents::*;
use crate::error::{Category, NodeError};
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

pub(crate) async fn execute(engine: &Engine, request: RunRequest) -> RunResult {
    let workflow = &*engine.workflow;
    let started_wall = jiff::Timestamp::now();
    let started = Instant::now();
    let execution_id = crate::ids::next_execution_id();
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
    audit.emit(
        Level::Info,
        "workflow.started",
        run_fields(json!({"start_node": request.start, "trigger_kind": request.trigger_kind})),
    );

    let mut state = RunState {
        workflow,
        execution_id: execution_id.clone(),
        outputs: vec![None; workflow.nodes.len()],
        trigger: trigger_value(&request.trigger_kind, &request.input),
        input: request.input,
        dry_run: request.dry_run,
        deadline: started + request.timeout,
        fs_written: Arc::new(AtomicU64::new(0)),
    };

    let outcome = 'walk: {
        let Some(start) = workflow.start(&request.start) else {
            break 'walk Outcome::Errored {
                reason: NodeError::workflow(&workflow.name, format_args!("unknown start node `{}`", request.start))
                    .text,
                last_node: None,
            };
        };
        let Some(mut current) = start.entry else {
            break 'walk Outcome::Errored {
                reason: NodeError::workflow(
                    &workflow.name,
                    format_args!("start node `{}` has no unambiguous entry node (declare `entry_node`)", start.name),
                )
                .text,
                last_node: None,
            };
        };
        let mut loop_counts = vec![0u32; workflow.edges.len()];
        let mut steps: u64 = 0;
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
            let node = &workflow.nodes[current];
            let node_started = Instant::now();
            let started_at = timestamp(jiff::Timestamp::now());

            if let NodeKind::PauseForApproval(_) = &node.kind {
                // Pausing needs the durable state store, which this build does not have yet.
                let error = NodeError::workflow(
                    &workflow.name,
                    format_args!(
                        "node `{}` is pause_for_approval but the run state could not be saved: no state store in this build (durable execution is not available yet)",
                        node.id
                    ),
                );
                cost.node_executions += 1;
                cost.node_failures += 1;
                trace.push(entry(node, "error", None, Value::Null, 0, None, Some(error.text.clone()), started_at));
                break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
            }

            let (attempted, attempts) = attempt_with_retry(engine, &mut state, node, &request.cancel.token).await;
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
                    trace.push(entry(
                        node,
                        "error",
                        None,
                        Value::Null,
                        elapsed_ms,
                        attempts_field,
                        Some(error.text.clone()),
                        started_at,
                    ));
                    break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
                }
                Attempted::DeadlineExpired => {
                    break 'walk Outcome::TimedOut {
                        elapsed_ms: millis(started.elapsed()),
                        last_node: Some(node.id.clone()),
                    };
                }
                Attempted::Cancelled => {
                    break 'walk cancelled(&request.cancel, Some(node.id.clone()));
                }
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
            trace.push(entry(
                node,
                "continue",
                label.clone(),
                output.clone(),
                elapsed_ms,
                attempts_field,
                None,
                started_at,
            ));
            match choose_edge(workflow, current, label.as_deref(), &mut loop_counts) {
                Ok(Some(next)) => {
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
                Err(error) => {
                    break 'walk Outcome::Errored { reason: error.text, last_node: Some(node.id.clone()) };
                }
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
    let finished_wall = jiff::Timestamp::now();
    let record = RunRecord {
        workflow: workflow.name.clone(),
        start_node: request.start,
        execution_id: execution_id.clone(),
        status: outcome.status().to_string(),
        last_node: outcome.last_node().map(str::to_string),
        detail: outcome.detail(),
        wall_ms: elapsed_ms,
        cost,
        trace: Trace { execution_id, entries: trace },
        started_at: timestamp(started_wall),
        finished_at: timestamp(finished_wall),
        trigger_kind: state.trigger.get("kind").and_then(Value::as_str).unwrap_or(&request.trigger_kind).to_string(),
    };
    RunResult { outcome, record }
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
