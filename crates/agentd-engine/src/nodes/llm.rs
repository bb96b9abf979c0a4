//! `llm_infer` (04 §7.1, 06 §5): resolve the backend → dry-run → render the prompt → the
//! inference loop of `agentd-intel` with the engine's hooks: the per-run token budget before each
//! call, token accounting after each successful one, audit for repairs and retries.

use std::sync::atomic::Ordering;

use agentd_intel::infer::{self, InferHooks, InferRequest};
use agentd_intel::{Completion, RetryEvent};
use agentd_workflow::{LlmInferNode, Node};
use serde_json::{Value, json};

use super::{Step, not_configured};
use crate::Engine;
use crate::audit::Level;
use crate::error::{Category, NodeError};
use crate::run::RunState;

pub(super) async fn llm_infer(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &LlmInferNode,
) -> Result<Step, NodeError> {
    let Some(backends) = engine.intel.as_deref().filter(|b| !b.is_empty()) else {
        return Err(not_configured(
            node,
            "intelligence backend ([[intelligence.backends]], --intel-unix or --intel-http)",
        ));
    };
    if !backends.contains(&config.backend) {
        return Err(intelligence(backends.unknown(&config.backend).to_string()));
    }
    if state.dry_run {
        return Ok(Step::output(infer::dry_run_output()));
    }
    let null = Value::Null;
    let data = match &config.input_from {
        Some(path) => super::resolve(state, path).unwrap_or(&null),
        None => &null,
    };
    let prompt = config.prompt.render(data, |key| state.lookup(key));
    let request = InferRequest {
        node_id: &node.id,
        backend: &config.backend,
        prompt,
        max_tokens: config.max_tokens,
        temperature: config.temperature,
        contract: state.graph.contracts.get(&node.id),
        output_repairs: config.output_repairs,
    };
    let hooks = Hooks { engine, state, node };
    let cancel = tokio_util::sync::CancellationToken::new();
    match infer::infer(backends, &request, &hooks, state.deadline, &cancel).await {
        Ok(output) => Ok(Step::output(output.to_value())),
        Err(infer::Error::Refused { refusal, .. }) => Err(refusal),
        Err(error @ infer::Error::Rejected { .. }) => {
            Err(NodeError { category: Category::Schema, text: format!("schema validation failed: {error}") })
        }
        // The run deadline: the walk sees the deadline passed and ends the run `timed_out`.
        Err(infer::Error::Call { error, .. }) if error.is_deadline() => {
            Err(NodeError { category: Category::Timeout, text: format!("timeout: {error}") })
        }
        Err(infer::Error::Call { error, .. }) => Err(intelligence(error.to_string())),
    }
}

fn intelligence(message: String) -> NodeError {
    NodeError { category: Category::Intelligence, text: format!("intelligence call failed: {message}") }
}

struct Hooks<'a, 'r> {
    engine: &'a Engine,
    state: &'a RunState<'r>,
    node: &'a Node,
}

impl InferHooks for Hooks<'_, '_> {
    type Refusal = NodeError;

    fn before_call(&self, _attempt: u32) -> Result<(), NodeError> {
        let used = self.state.budget_tokens.load(Ordering::SeqCst);
        let cap = self.engine.limits.max_llm_tokens;
        agentd_intel::check_token_budget(used, cap).map_err(|exceeded| {
            self.engine.audit.emit(
                Level::Warn,
                "budget.exhausted",
                json!({
                    "execution_id": self.state.execution_id, "workflow": self.state.workflow.name,
                    "kind": "llm_tokens", "scope": "run", "used": exceeded.used, "cap": exceeded.cap,
                    "node_id": self.node.id,
                }),
            );
            NodeError::budget(
                "llm_infer",
                "max_llm_tokens",
                format_args!("{} / {} tokens consumed", exceeded.used, exceeded.cap),
            )
        })
    }

    fn after_call(&self, completion: &Completion) {
        self.state.budget_tokens.fetch_add(completion.usage.total(), Ordering::SeqCst);
        self.state.llm_tokens.fetch_add(completion.usage.total(), Ordering::SeqCst);
        self.state.llm_calls.fetch_add(1, Ordering::SeqCst);
    }

    fn on_repair(&self, attempt: u32, reason: &str) {
        self.engine.audit.emit(
            Level::Info,
            "llm_infer.repair",
            json!({
                "execution_id": self.state.execution_id, "workflow": self.state.workflow.name,
                "node_id": self.node.id, "attempt": attempt, "reason": reason,
            }),
        );
    }

    fn on_retry(&self, event: &RetryEvent) {
        self.engine.audit.emit(
            Level::Warn,
            "intel.retry",
            json!({
                "execution_id": self.state.execution_id, "workflow": self.state.workflow.name,
                "node_id": self.node.id, "backend": event.backend, "attempt": event.attempt,
                "status": event.status, "delay_ms": u64::try_from(event.delay.as_millis()).unwrap_or(u64::MAX),
                "reason": event.reason,
            }),
        );
    }
}
