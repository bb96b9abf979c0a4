//! Control kinds: `condition`, `switch`, `respond` (merge, fail and terminate are one-liners in
//! the dispatcher; `pause_for_approval` is handled by the walk).

use agentd_workflow::{ConditionNode, RespondNode, SwitchNode, is_truthy, switch_label};
use serde_json::{Value, json};

use super::{Step, require, resolve};
use crate::documents::HttpReply;
use crate::error::NodeError;
use crate::run::RunState;

pub(super) fn condition(state: &RunState<'_>, config: &ConditionNode) -> Result<Step, NodeError> {
    let value = resolve(state, &config.expr).cloned().unwrap_or(Value::Null);
    let label = if is_truthy(&value) { "true" } else { "false" };
    Ok(Step::Continue { output: json!({ "value": value }), label: Some(label.to_string()) })
}

pub(super) fn switch(state: &RunState<'_>, config: &SwitchNode) -> Result<Step, NodeError> {
    let value = resolve(state, &config.expr).cloned().unwrap_or(Value::Null);
    let label = switch_label(&value);
    Ok(Step::Continue { output: json!({ "value": value }), label: Some(label) })
}

pub(super) fn respond(state: &RunState<'_>, config: &RespondNode) -> Result<Step, NodeError> {
    let data = match &config.input_from {
        Some(path) => require(state, "respond", path)?,
        None => &state.input,
    };
    let status = config.status.unwrap_or(200);
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| NodeError::tool("respond", format_args!("status {status} is outside 100..=599")))?;
    let content_type = config.content_type.clone().unwrap_or_else(|| "application/json".to_string());
    let body = config.body_template.render(data, |key| state.lookup(key));
    let output = json!({"bytes": body.len(), "content_type": content_type, "status": status});
    Ok(Step::Reply { output, reply: HttpReply { status, content_type, body } })
}
