//! `read_env`: the process environment, behind `env.read_keys` and the secret guard.

use agentd_tools::env::EnvValue;
use agentd_workflow::{Node, ReadEnvNode};
use serde_json::json;

use super::{Step, tool_error};
use crate::Engine;
use crate::error::NodeError;
use crate::run::RunState;

pub(super) fn read_env(
    engine: &Engine,
    state: &RunState<'_>,
    node: &Node,
    config: &ReadEnvNode,
) -> Result<Step, NodeError> {
    let value = agentd_tools::env::read_env("read_env", &engine.policy, &engine.secret_backed_env, &config.key)
        .map_err(|e| tool_error(engine, state, node, e))?;
    let output = match value {
        EnvValue::Set(value) => json!({"key": config.key, "value": value}),
        EnvValue::Missing => json!({"key": config.key, "missing": true, "value": null}),
    };
    Ok(Step::output(output))
}
