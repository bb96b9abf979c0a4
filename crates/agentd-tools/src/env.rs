//! `read_env`: policy-gated reads of the process environment.

use std::collections::BTreeSet;

use agentd_policy::{Decision, Family, Policy};

use crate::Error;

/// The value of an environment variable, or its absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Set, valid UTF-8.
    Set(String),
    /// Not set.
    Missing,
}

/// Reads `key` after policy `env.read(key)`. Variables that back a declared secret are always
/// refused (04 §4), whatever the policy says, so secret values never reach node outputs.
pub fn read_env(
    op: &'static str,
    policy: &Policy,
    secret_backed: &BTreeSet<String>,
    key: &str,
) -> Result<EnvValue, Error> {
    let decision = policy.check_env(key);
    if !decision.allowed {
        return Err(Error::Denied { op, target: key.to_string(), decision });
    }
    if secret_backed.contains(key) {
        return Err(Error::Denied {
            op,
            target: key.to_string(),
            decision: Decision::deny(Family::Env, "variable backs a declared secret"),
        });
    }
    if key.is_empty() || key.contains(['=', '\0']) {
        return Ok(EnvValue::Missing);
    }
    match std::env::var(key) {
        Ok(value) => Ok(EnvValue::Set(value)),
        Err(std::env::VarError::NotPresent) => Ok(EnvValue::Missing),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Failed(format!("env var `{key}` is not valid UTF-8"))),
    }
}
