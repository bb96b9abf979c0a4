//! Network and process kinds: `http_request`, `shell_run` (04 §5). Order of operations follows
//! the spec: resolve the target → policy → dry-run → body/arguments → effect.

use std::time::Duration;

use agentd_workflow::{HttpRequestNode, Node, ShellRunNode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Step, require, require_str, resolve, tool_error};
use crate::Engine;
use crate::audit::Level;
use crate::error::NodeError;
use crate::run::RunState;
use crate::secrets::resolve_placeholders;

pub(super) async fn http_request(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &HttpRequestNode,
) -> Result<Step, NodeError> {
    const KIND: &str = "http_request";
    let raw_url = require_str(state, KIND, &config.url_from)?;
    let target = agentd_tools::http::check(KIND, &engine.policy, &*engine.resolver, &config.method, raw_url)
        .await
        .map_err(|e| tool_error(engine, state, node, e))?;
    if state.dry_run {
        return Ok(Step::output(json!({"dry_run": true, "method": target.method, "url": target.url.as_str()})));
    }
    let body = match &config.body_from {
        None => None,
        Some(path) => Some(match require(state, KIND, path)? {
            Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        }),
    };
    if let Some(body) = &body
        && body.len() > agentd_tools::http::MAX_REQUEST_BODY
    {
        return Err(NodeError::tool(
            KIND,
            format_args!("request body {} bytes exceeds cap ({})", body.len(), agentd_tools::http::MAX_REQUEST_BODY),
        ));
    }
    let mut headers = Vec::with_capacity(config.headers.len());
    for (name, template) in &config.headers {
        let value = resolve_placeholders(&engine.secrets, template)
            .await
            .map_err(|e| NodeError::tool(KIND, format_args!("header `{name}`: {e}")))?;
        if value.contains(['\r', '\n']) {
            return Err(NodeError::tool(KIND, format_args!("header `{name}`: value contains CR or LF")));
        }
        headers.push((name.clone(), value));
    }
    let remaining = state.deadline.saturating_duration_since(Instant::now());
    let request = agentd_tools::http::Request {
        target,
        headers,
        body,
        timeout: remaining.min(agentd_tools::http::EXCHANGE_TIMEOUT).max(Duration::from_millis(1)),
        trace_headers: Vec::new(),
    };
    let response = engine.http.send(request).await.map_err(|e| tool_error(engine, state, node, e))?;
    if response.truncated {
        engine.audit.emit(
            Level::Warn,
            "http_response.truncated",
            json!({
                "execution_id": state.execution_id, "workflow": state.workflow.name, "node_id": node.id,
                "cap_bytes": agentd_tools::http::MAX_RESPONSE_BODY,
            }),
        );
    }
    let mut output = json!({
        "body": String::from_utf8_lossy(&response.body),
        "bytes": response.body.len(),
        "headers": response.headers,
        "status": response.status,
    });
    if response.truncated {
        output["truncated"] = Value::Bool(true);
    }
    let label = (!(200..=299).contains(&response.status)).then(|| "error".to_string());
    Ok(Step::Continue { output, label })
}

pub(super) async fn shell_run(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &ShellRunNode,
) -> Result<Step, NodeError> {
    const KIND: &str = "shell_run";
    let program = agentd_tools::shell::check(KIND, &engine.policy, &config.command)
        .map_err(|e| tool_error(engine, state, node, e))?;
    let args = arguments(state, config)?;
    let shown = program.display().to_string();
    if state.dry_run {
        return Ok(Step::output(json!({"args": args, "command": shown, "dry_run": true})));
    }
    let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(30).max(1));
    let limits = agentd_tools::shell::Limits { timeout, cwd: &engine.cwd, extra_env: &[] };
    let done =
        agentd_tools::shell::run(&program, &args, limits).await.map_err(|e| tool_error(engine, state, node, e))?;
    let label = (done.exit_code != 0 || done.signal.is_some()).then(|| "error".to_string());
    let output = json!({
        "args": args,
        "command": shown,
        "duration_ms": u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX),
        "exit_code": done.exit_code,
        "signal": done.signal,
        "stderr": done.stderr,
        "stdout": done.stdout,
        "timed_out": done.timed_out,
        "truncated": done.truncated,
    });
    Ok(Step::Continue { output, label })
}

fn arguments(state: &RunState<'_>, config: &ShellRunNode) -> Result<Vec<String>, NodeError> {
    const KIND: &str = "shell_run";
    let Some(path) = &config.args_from else { return Ok(Vec::new()) };
    match resolve(state, path) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(NodeError::tool(
                    KIND,
                    format_args!(
                        "args element must be a string; got {}",
                        agentd_workflow::value_path::type_name(other)
                    ),
                )),
            })
            .collect(),
        Some(other) => Err(NodeError::tool(
            KIND,
            format_args!(
                "args_from `{path}` must resolve to an array of strings; got {}",
                agentd_workflow::value_path::type_name(other)
            ),
        )),
    }
}
