//! Node dispatch: one handler per kind, grouped by family. Handlers return a [`Step`]; the walk
//! stores the output and picks the edge.

mod compose;
mod control;
mod data;
mod env;
mod fs;
mod llm;
mod mcp;
mod net;

use agentd_workflow::{ContextPath, Node, NodeKind};
use serde_json::{Value, json};

use crate::Engine;
use crate::audit::Level;
use crate::documents::HttpReply;
use crate::error::NodeError;
use crate::run::RunState;

/// What a node handler produced.
pub(crate) enum Step {
    /// Store `output`, then follow the edge matching `label`.
    Continue { output: Value, label: Option<String> },
    /// Like `Continue` without a label, and record the run's HTTP reply (`respond`).
    Reply { output: Value, reply: HttpReply },
    /// End the run completed with `final_value` null.
    Terminate,
    /// End the run failed.
    Fail { reason: String },
}

impl Step {
    fn output(output: Value) -> Step {
        Step::Continue { output, label: None }
    }
}

/// Runs kinds that need no I/O or waiting; `None` for kinds that must go through
/// [`run_effect`].
pub(crate) fn run_pure(engine: &Engine, state: &RunState<'_>, node: &Node) -> Option<Result<Step, NodeError>> {
    Some(match &node.kind {
        NodeKind::Condition(c) => control::condition(state, c),
        NodeKind::Switch(c) => control::switch(state, c),
        NodeKind::Merge(_) => Ok(Step::output(Value::Null)),
        NodeKind::Fail(c) => {
            Ok(Step::Fail { reason: c.reason.clone().unwrap_or_else(|| "workflow failed".to_string()) })
        }
        NodeKind::Terminate(_) => Ok(Step::Terminate),
        NodeKind::Respond(c) => control::respond(state, c),
        NodeKind::ParseJson(c) => data::parse_json(state, c),
        NodeKind::JsonSelect(c) => data::json_select(state, c),
        NodeKind::TemplateRender(c) => data::template_render(state, c),
        NodeKind::DiffCompute(c) => data::diff_compute(state, c),
        NodeKind::ReadEnv(c) => env::read_env(engine, state, node, c),
        NodeKind::ReadFile(_)
        | NodeKind::WriteFile(_)
        | NodeKind::CreateDir(_)
        | NodeKind::HttpRequest(_)
        | NodeKind::ShellRun(_)
        | NodeKind::CallMcpTool(_)
        | NodeKind::ReadMcpResource(_)
        | NodeKind::LlmInfer(_)
        | NodeKind::Call(_)
        | NodeKind::Parallel(_)
        | NodeKind::Map(_) => return None,
        // The engine handles pauses itself; reaching here is an engine bug, reported loudly.
        NodeKind::PauseForApproval(_) => {
            Err(NodeError::config(format_args!("node `{}`: pause_for_approval is handled by the engine", node.id)))
        }
        NodeKind::AgentLoop(_) => Err(unavailable(node, "the agent loop")),
    })
}

/// Runs kinds that perform I/O.
pub(crate) async fn run_effect(engine: &Engine, state: &RunState<'_>, node: &Node) -> Result<Step, NodeError> {
    match &node.kind {
        NodeKind::ReadFile(c) => fs::read_file(engine, state, node, c).await,
        NodeKind::WriteFile(c) => fs::write_file(engine, state, node, c).await,
        NodeKind::CreateDir(c) => fs::create_dir(engine, state, node, c).await,
        NodeKind::HttpRequest(c) => net::http_request(engine, state, node, c).await,
        NodeKind::ShellRun(c) => net::shell_run(engine, state, node, c).await,
        NodeKind::CallMcpTool(c) => mcp::call_tool(engine, state, node, c).await,
        NodeKind::ReadMcpResource(c) => mcp::read_resource(engine, state, node, c).await,
        NodeKind::LlmInfer(c) => llm::llm_infer(engine, state, node, c).await,
        NodeKind::Call(c) => compose::call(engine, state, node, c).await,
        NodeKind::Parallel(c) => compose::parallel(engine, state, node, c).await,
        NodeKind::Map(c) => compose::map(engine, state, node, c).await,
        _ => run_pure(engine, state, node).unwrap_or_else(|| Err(NodeError::config("node kind has no handler"))),
    }
}

/// The capability error of a kind this build does not include (04 §0).
pub(crate) fn unavailable(node: &Node, capability: &str) -> NodeError {
    NodeError::capability(format_args!(
        "no handler registered for node kind `{}` (node `{}`): this build does not include {capability} yet",
        node.kind.type_name(),
        node.id
    ))
}

/// The capability error of a kind whose backend or server is not configured (04 §0).
pub(crate) fn not_configured(node: &Node, what: &str) -> NodeError {
    NodeError::capability(format_args!(
        "no handler registered for node kind `{}` (node `{}`): no {what} is configured",
        node.kind.type_name(),
        node.id
    ))
}

/// The value at a path, or `None` when not set.
pub(crate) fn resolve<'s>(state: &'s RunState<'_>, path: &ContextPath) -> Option<&'s Value> {
    path.resolve(|key| state.lookup(key))
}

/// The value at a path; not set → tool error.
pub(crate) fn require<'s>(state: &'s RunState<'_>, kind: &str, path: &ContextPath) -> Result<&'s Value, NodeError> {
    resolve(state, path)
        .ok_or_else(|| NodeError::tool(kind, format_args!("path `{path}` is not set in the execution context")))
}

/// The string at a path; not set or not a string → tool error.
pub(crate) fn require_str<'s>(state: &'s RunState<'_>, kind: &str, path: &ContextPath) -> Result<&'s str, NodeError> {
    match require(state, kind, path)? {
        Value::String(s) => Ok(s),
        other => Err(NodeError::tool(
            kind,
            format_args!(
                "path `{path}` must resolve to a string; got {}",
                agentd_workflow::value_path::type_name(other)
            ),
        )),
    }
}

/// Turns a tools error into a node error, auditing policy denials (05 §6).
pub(crate) fn tool_error(engine: &Engine, state: &RunState<'_>, node: &Node, error: agentd_tools::Error) -> NodeError {
    match error {
        agentd_tools::Error::Denied { op, target, decision } => {
            let text = decision.violation_text(op, &target);
            engine.audit.emit(
                Level::Warn,
                "policy.denied",
                json!({
                    "execution_id": state.execution_id, "workflow": state.workflow.name, "node_id": node.id,
                    "op": op, "family": decision.family.as_str(), "target": agentd_policy::truncate_target(&target),
                    "reason": decision.reason, "latency_ms": 0, "in_agent_loop": false,
                }),
            );
            NodeError::policy(text)
        }
        agentd_tools::Error::Failed(message) => NodeError::tool(node.kind.type_name(), message),
    }
}
