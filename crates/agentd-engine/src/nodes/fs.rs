//! Filesystem kinds: `read_file`, `write_file`, `create_dir` (04 §3). Order of operations:
//! resolve the path → policy on the checked path → dry-run → budget → I/O on the checked path.

use std::sync::atomic::Ordering;

use agentd_tools::fs::Access;
use agentd_workflow::{Node, PathNode, WriteFileNode};
use serde_json::{Value, json};

use super::{Step, require, require_str, tool_error};
use crate::Engine;
use crate::audit::Level;
use crate::error::NodeError;
use crate::run::RunState;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, agentd_tools::Error> + Send + 'static,
) -> Result<T, agentd_tools::Error> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(agentd_tools::Error::Failed(format!("filesystem task failed: {e}"))))
}

pub(super) async fn read_file(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &PathNode,
) -> Result<Step, NodeError> {
    let shown = require_str(state, "read_file", &config.path_from)?.to_string();
    let checked = agentd_tools::fs::check("read_file", &engine.policy, &engine.cwd, &shown, Access::Read)
        .map_err(|e| tool_error(engine, state, node, e))?;
    if state.dry_run {
        return Ok(Step::output(json!({"dry_run": true, "path": shown})));
    }
    let shown_for_io = shown.clone();
    let text = blocking(move || agentd_tools::fs::read_text(&checked, &shown_for_io))
        .await
        .map_err(|e| tool_error(engine, state, node, e))?;
    Ok(Step::output(json!({"bytes": text.bytes, "content": text.content, "path": shown})))
}

pub(super) async fn write_file(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &WriteFileNode,
) -> Result<Step, NodeError> {
    let shown = require_str(state, "write_file", &config.path_from)?.to_string();
    let checked = agentd_tools::fs::check("write_file", &engine.policy, &engine.cwd, &shown, Access::Write)
        .map_err(|e| tool_error(engine, state, node, e))?;
    let content = match require(state, "write_file", &config.content_from)? {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let n = content.len() as u64;
    if state.dry_run {
        return Ok(Step::output(json!({"bytes": n, "dry_run": true, "path": shown})));
    }
    // Reserve the bytes before writing; refuse if the run's budget would overflow.
    if let Some(cap) = engine.limits.max_fs_write_bytes {
        let reserved = state
            .fs_written
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| used.checked_add(n).filter(|total| *total <= cap));
        if let Err(used) = reserved {
            engine.audit.emit(
                Level::Warn,
                "budget.fs_write_denied",
                json!({"execution_id": state.execution_id, "workflow": state.workflow.name, "node_id": node.id, "bytes": n, "used": used, "cap": cap, "scope": "run"}),
            );
            return Err(NodeError::budget(
                "write_file",
                "fs_write",
                format_args!("tried to write {n} bytes but {used} / {cap} already consumed"),
            ));
        }
    } else {
        state.fs_written.fetch_add(n, Ordering::SeqCst);
    }
    let shown_for_io = shown.clone();
    let result = blocking(move || agentd_tools::fs::write_bytes(&checked, &shown_for_io, &content)).await;
    if let Err(error) = result {
        state.fs_written.fetch_sub(n, Ordering::SeqCst);
        return Err(tool_error(engine, state, node, error));
    }
    Ok(Step::output(json!({"bytes": n, "path": shown, "written": true})))
}

pub(super) async fn create_dir(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &PathNode,
) -> Result<Step, NodeError> {
    let shown = require_str(state, "create_dir", &config.path_from)?.to_string();
    let checked = agentd_tools::fs::check("create_dir", &engine.policy, &engine.cwd, &shown, Access::Write)
        .map_err(|e| tool_error(engine, state, node, e))?;
    if state.dry_run {
        return Ok(Step::output(json!({"dry_run": true, "path": shown})));
    }
    let shown_for_io = shown.clone();
    blocking(move || agentd_tools::fs::create_dir(&checked, &shown_for_io))
        .await
        .map_err(|e| tool_error(engine, state, node, e))?;
    Ok(Step::output(json!({"created": true, "path": shown})))
}
