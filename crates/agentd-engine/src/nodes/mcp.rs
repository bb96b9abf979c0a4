//! MCP kinds: `call_mcp_tool`, `read_mcp_resource` (04 §6). Order of operations: select the
//! server → allowlist check (policy, before dry-run) → dry-run → the call, bounded by the
//! remaining run time.

use agentd_mcp::McpError;
use agentd_workflow::{CallMcpToolNode, Node, ReadMcpResourceNode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Step, not_configured, require_str, resolve};
use crate::Engine;
use crate::audit::Level;
use crate::error::{Category, NodeError};
use crate::run::RunState;

pub(super) async fn call_tool(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &CallMcpToolNode,
) -> Result<Step, NodeError> {
    let hub = hub(engine, node)?;
    let server = hub.select_server(config.server.as_deref()).map_err(|e| mcp_error(engine, state, node, e))?;
    let decision = hub.check_tool(&server, &config.tool).map_err(|e| mcp_error(engine, state, node, e))?;
    if !decision.allowed {
        let target = format!("{server}:{}", config.tool);
        return Err(mcp_error(engine, state, node, McpError::Denied { op: "call_mcp_tool", target, decision }));
    }
    let arguments = match &config.args_from {
        None => Value::Null,
        Some(path) => resolve(state, path).cloned().unwrap_or(Value::Null),
    };
    if state.dry_run {
        return Ok(Step::output(agentd_mcp::dry_run_tool_output(&server, &config.tool)));
    }
    let remaining = state.deadline.saturating_duration_since(Instant::now());
    let output = hub
        .call_tool(&server, &config.tool, arguments, Some(remaining))
        .await
        .map_err(|e| mcp_error(engine, state, node, e))?;
    let label = output.branch_label().map(str::to_string);
    Ok(Step::Continue { output: output.to_value(), label })
}

pub(super) async fn read_resource(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &ReadMcpResourceNode,
) -> Result<Step, NodeError> {
    let uri = require_str(state, "read_mcp_resource", &config.resource_from)?.to_string();
    let hub = hub(engine, node)?;
    let server = hub.select_server(config.server.as_deref()).map_err(|e| mcp_error(engine, state, node, e))?;
    let decision = hub.check_resource(&server, &uri).map_err(|e| mcp_error(engine, state, node, e))?;
    if !decision.allowed {
        let target = format!("{server}:{uri}");
        return Err(mcp_error(engine, state, node, McpError::Denied { op: "read_mcp_resource", target, decision }));
    }
    if state.dry_run {
        return Ok(Step::output(agentd_mcp::dry_run_resource_output(&server, &uri)));
    }
    let remaining = state.deadline.saturating_duration_since(Instant::now());
    let output =
        hub.read_resource(&server, &uri, Some(remaining)).await.map_err(|e| mcp_error(engine, state, node, e))?;
    Ok(Step::output(output.to_value()))
}

fn hub<'e>(engine: &'e Engine, node: &Node) -> Result<&'e agentd_mcp::McpHub, NodeError> {
    match engine.mcp.as_deref() {
        Some(hub) if !hub.server_names().is_empty() => Ok(hub),
        _ => Err(not_configured(node, "MCP server ([[mcp_servers]] or --mcp-stdio)")),
    }
}

/// Maps an MCP failure onto the engine's categories, auditing denials (05 §6).
fn mcp_error(engine: &Engine, state: &RunState<'_>, node: &Node, error: McpError) -> NodeError {
    let text = error.to_string();
    let category = match error.category() {
        agentd_mcp::Category::Policy => {
            if let McpError::Denied { op, target, decision } = &error {
                engine.audit.emit(
                    Level::Warn,
                    "policy.denied",
                    json!({
                        "execution_id": state.execution_id, "workflow": state.workflow.name, "node_id": node.id,
                        "op": op, "family": "mcp", "target": agentd_policy::truncate_target(target),
                        "reason": decision.reason, "latency_ms": 0, "in_agent_loop": false,
                    }),
                );
            }
            Category::Policy
        }
        agentd_mcp::Category::Capability => Category::Capability,
        agentd_mcp::Category::Workflow => {
            return NodeError::workflow(&state.workflow.name, text);
        }
        agentd_mcp::Category::Tool => Category::Tool,
        agentd_mcp::Category::Mcp => Category::Mcp,
        agentd_mcp::Category::Timeout => Category::Timeout,
    };
    NodeError { category, text }
}
