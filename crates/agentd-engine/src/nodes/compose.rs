//! Composition kinds: `call`, `parallel`, `map` (04 §8). A child run walks the child's graph
//! under the parent's engine (policy, backends, MCP servers, secrets), shares the root run's
//! budgets, cancellation and deadline, and its trace is attached under the composing node.

use std::sync::Arc;

use agentd_workflow::{CallNode, ContextPath, MapNode, Node, ParallelNode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Step, resolve};
use crate::error::{Category, NodeError};
use crate::graph::Graph;
use crate::run::{ParentLink, RunState};
use crate::{ChildTrace, Engine, Outcome, RunRequest};

/// Composition depth limit (04 §8).
const MAX_DEPTH: u32 = 8;

/// How one child run ended, as the composing node sees it.
enum ChildEnd {
    Completed(Value),
    Failed(String),
    TimedOut,
    Paused,
    Errored(String),
}

/// Why a child did not start.
enum NotStarted {
    /// Load or start failure: soft for `parallel`/`map`, hard for `call`.
    Soft(String),
    /// The depth limit: hard for all three kinds.
    Hard(NodeError),
}

/// One fan-out element: the child's trace (when it started) and its result — `Ok(Ok)` a value,
/// `Ok(Err)` a soft error element, `Err` a hard error that fails the node.
type Element = (Option<ChildTrace>, Result<Result<Value, String>, NodeError>);

const PAUSED: &str = "sub-workflow paused; nested pause_for_approval is not supported";
const TIMED_OUT: &str = "sub-workflow timed out";

pub(super) async fn call(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &CallNode,
) -> Result<Step, NodeError> {
    let input = child_input(state, config.input_from.as_ref());
    let end = match run_child(engine, state, node, &config.workflow, config.start.as_deref(), input).await {
        Ok((trace, end)) => {
            attach(state, [trace]);
            end
        }
        Err(NotStarted::Hard(error)) => return Err(error),
        Err(NotStarted::Soft(text)) => {
            return Err(NodeError::workflow(&state.workflow.name, format_args!("call `{}`: {text}", node.id)));
        }
    };
    let error = |text: &str| Step::Continue { output: json!({"error": text}), label: Some("error".to_string()) };
    match end {
        ChildEnd::Completed(value) => Ok(Step::Continue { output: json!({"result": value}), label: None }),
        ChildEnd::Failed(reason) => Ok(error(&reason)),
        ChildEnd::TimedOut => deadline_or(state, error(TIMED_OUT)),
        ChildEnd::Paused => Err(NodeError::workflow(&state.workflow.name, PAUSED)),
        ChildEnd::Errored(reason) => Err(NodeError { category: Category::Workflow, text: reason }),
    }
}

pub(super) async fn parallel(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &ParallelNode,
) -> Result<Step, NodeError> {
    // Every input is resolved from the parent context first.
    let inputs: Vec<Value> = config.branches.iter().map(|b| child_input(state, b.input_from.as_ref())).collect();
    let runs = config
        .branches
        .iter()
        .zip(inputs)
        .map(|(branch, input)| soft_child(engine, state, node, &branch.workflow, branch.start.as_deref(), input));
    let results = futures_util::future::join_all(runs).await;
    fan_in(state, results)
}

pub(super) async fn map(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &MapNode,
) -> Result<Step, NodeError> {
    let hard = |message: String| NodeError::workflow(&state.workflow.name, message);
    let path = &config.items_from;
    let items = match resolve(state, path) {
        None => {
            return Err(hard(format!(
                "map node `{}`: items_from `{path}` is not set in the execution context",
                node.id
            )));
        }
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(hard(format!(
                "map node `{}`: items_from `{path}` resolved to {} — an array is required",
                node.id,
                a_type(other)
            )));
        }
    };
    if items.len() > config.max_items as usize {
        return Err(hard(format!(
            "map node `{}`: {} items exceed the declared max_items {} — raise the bound deliberately or shrink the input",
            node.id,
            items.len(),
            config.max_items
        )));
    }
    let window = config.max_concurrent.unwrap_or(4).max(1) as usize;
    let journal = Journal::open(engine, state, node);
    let replayed = journal.as_ref().map(Journal::finished).unwrap_or_default();
    // A sliding window: the next element starts as soon as any child finishes; results keep
    // input order. Elements finished before a crash are replayed from the journal.
    let results: Vec<_> = futures_util::stream::iter(items.into_iter().enumerate())
        .map(|(index, item)| {
            let replay = replayed.get(&index).cloned();
            let journal = journal.as_ref();
            async move {
                if let Some(done) = replay {
                    return (None, Ok(done));
                }
                let element = soft_child(engine, state, node, &config.workflow, config.start.as_deref(), item).await;
                if let (Some(journal), (_, Ok(soft))) = (journal, &element) {
                    journal.record(index, soft);
                }
                element
            }
        })
        .buffered(window)
        .collect()
        .await;
    fan_in(state, results)
}

/// `{"ok", "results"}` in order; any element error → label `error`. A hard error (depth, or the
/// run deadline) fails the node.
fn fan_in(state: &RunState<'_>, results: Vec<Element>) -> Result<Step, NodeError> {
    let mut ok = true;
    let mut out = Vec::with_capacity(results.len());
    let (traces, results): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    attach(state, traces.into_iter().flatten());
    for result in results {
        match result? {
            Ok(value) => out.push(json!({"result": value})),
            Err(text) => {
                ok = false;
                out.push(json!({"error": text}));
            }
        }
    }
    let label = (!ok).then(|| "error".to_string());
    Ok(Step::Continue { output: json!({"ok": ok, "results": out}), label })
}

/// The step journal of one `map` execution: finished elements, keyed by the run, the node and the
/// walk step, so a resumed run replays them and a later visit of the node (a loop) does not.
struct Journal {
    store: Arc<dyn agentd_store::Store>,
    scrubber: crate::secrets::Scrubber,
    run_id: String,
    prefix: String,
}

impl Journal {
    fn open(engine: &Engine, state: &RunState<'_>, node: &Node) -> Option<Journal> {
        if !state.journal || state.dry_run {
            return None;
        }
        let store = engine.store_handle()?.get().ok()?;
        let prefix = format!("map/{}/{}/", node.id, state.step);
        let scrubber = engine.secrets().scrubber().clone();
        Some(Journal { store, scrubber, run_id: state.execution_id.clone(), prefix })
    }

    /// Elements recorded by an earlier attempt of this step.
    fn finished(&self) -> std::collections::HashMap<usize, Result<Value, String>> {
        let entries = self.store.journal(&self.run_id, &self.prefix).unwrap_or_default();
        entries
            .into_iter()
            .filter_map(|(key, value)| {
                let index = key.strip_prefix(&self.prefix)?.parse().ok()?;
                let result = match (value.get("result"), value.get("error").and_then(Value::as_str)) {
                    (Some(result), _) => Ok(result.clone()),
                    (None, Some(error)) => Err(error.to_string()),
                    (None, None) => return None,
                };
                Some((index, result))
            })
            .collect()
    }

    /// Records a finished element (best effort: without it the element just runs again).
    fn record(&self, index: usize, result: &Result<Value, String>) {
        let mut value = match result {
            Ok(value) => json!({"result": value}),
            Err(error) => json!({"error": error}),
        };
        self.scrubber.scrub_value(&mut value);
        if let Err(e) = self.store.journal_put(&self.run_id, &format!("{}{index}", self.prefix), &value) {
            tracing::warn!(run_id = %self.run_id, reason = %e, "map element not journaled");
        }
    }
}

/// One child whose failures are soft (`parallel`, `map`): `Ok(Err(text))` is an error element.
async fn soft_child(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    workflow: &str,
    start: Option<&str>,
    input: Value,
) -> Element {
    let (trace, end) = match run_child(engine, state, node, workflow, start, input).await {
        Err(NotStarted::Hard(error)) => return (None, Err(error)),
        Err(NotStarted::Soft(text)) => return (None, Ok(Err(text))),
        Ok((trace, end)) => (trace, end),
    };
    (Some(trace), soft_end(state, node, end))
}

fn soft_end(state: &RunState<'_>, node: &Node, end: ChildEnd) -> Result<Result<Value, String>, NodeError> {
    match end {
        ChildEnd::Completed(value) => Ok(Ok(value)),
        ChildEnd::Failed(reason) => Ok(Err(format!("sub-workflow failed: {reason}"))),
        // The parent's deadline passed: the parent run ends `timed_out`.
        ChildEnd::TimedOut if Instant::now() >= state.deadline => Err(NodeError::timeout(&node.id, 0)),
        ChildEnd::TimedOut => Ok(Err(TIMED_OUT.to_string())),
        ChildEnd::Paused => Ok(Err(PAUSED.to_string())),
        ChildEnd::Errored(reason) => Ok(Err(reason)),
    }
}

/// A child that timed out because the parent's deadline passed ends the parent `timed_out` (the
/// walk turns an error after the deadline into the run's `timed_out` outcome).
fn deadline_or(state: &RunState<'_>, step: Step) -> Result<Step, NodeError> {
    if Instant::now() >= state.deadline { Err(NodeError::timeout(&state.execution_id, 0)) } else { Ok(step) }
}

/// `input_from` absent → the parent's raw trigger input; set but not resolvable → null.
fn child_input(state: &RunState<'_>, input_from: Option<&ContextPath>) -> Value {
    match input_from {
        None => state.input.clone(),
        Some(path) => resolve(state, path).cloned().unwrap_or(Value::Null),
    }
}

/// Starts one child run of `literal` and waits for it.
async fn run_child(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    literal: &str,
    start: Option<&str>,
    input: Value,
) -> Result<(ChildTrace, ChildEnd), NotStarted> {
    let depth = state.depth + 1;
    if depth > MAX_DEPTH {
        return Err(NotStarted::Hard(NodeError::workflow(
            &state.workflow.name,
            format_args!("call depth exceeded {MAX_DEPTH} at node `{}`", node.id),
        )));
    }
    let graph: Arc<Graph> = match state.graph.children.get(literal) {
        Some(Ok(graph)) => graph.clone(),
        Some(Err(load)) => return Err(NotStarted::Soft(load.text())),
        None => return Err(NotStarted::Soft(format!("read child workflow {literal}: not loaded"))),
    };
    let child = &graph.workflow;
    let start = match start {
        Some(name) if child.start(name).is_some() => name.to_string(),
        Some(name) => return Err(NotStarted::Soft(format!("child start node `{name}` not found"))),
        None => match child.start_nodes.first() {
            Some(first) => first.name.clone(),
            None => return Err(NotStarted::Soft("child workflow declares no start nodes".to_string())),
        },
    };
    let request = RunRequest {
        start,
        input,
        trigger_kind: "manual".to_string(),
        timeout: state.deadline.saturating_duration_since(Instant::now()),
        dry_run: state.dry_run,
        // The child shares the parent's cancellation: cancelling the parent cancels it.
        cancel: state.cancel.clone(),
        resume: None,
    };
    let link = ParentLink { depth, fs_written: state.fs_written.clone(), budget_tokens: state.budget_tokens.clone() };
    let result = crate::run::execute(engine, graph.clone(), request, Some(link)).await;
    let record = &result.record;
    {
        let mut cost = state.child_cost.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cost.add(&record.cost);
    }
    let trace = ChildTrace {
        execution_id: record.execution_id.clone(),
        workflow: record.workflow.clone(),
        start_node: record.start_node.clone(),
        status: record.status.clone(),
        last_node: record.last_node.clone(),
        entries: record.trace.entries.clone(),
    };
    Ok((
        trace,
        match result.outcome {
            Outcome::Completed { final_value, .. } => ChildEnd::Completed(final_value),
            Outcome::Failed { reason, .. } => ChildEnd::Failed(reason),
            Outcome::TimedOut { .. } => ChildEnd::TimedOut,
            Outcome::Paused { .. } => ChildEnd::Paused,
            Outcome::Errored { reason, .. } => ChildEnd::Errored(reason),
        },
    ))
}

/// Attaches child traces to the composing node's trace entry, in declaration / input order.
fn attach(state: &RunState<'_>, traces: impl IntoIterator<Item = ChildTrace>) {
    state.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(traces);
}

fn a_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
