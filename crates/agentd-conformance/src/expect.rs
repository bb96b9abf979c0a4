//! `[expected]` matching (10 §4): one failure line per failed check, in the order of the table.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::prepare::Placeholders;
use crate::scenario::{Expected, ExpectedHttp};

/// What a trial's run looked like, whatever way it was started.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Status word (`completed`, …, or `rejected`).
    pub status: String,
    /// The outcome's `last_node`.
    pub last_node: Option<String>,
    /// Failed reason or errored error text.
    pub reason: Option<String>,
    /// Final value (completed runs only).
    pub final_value: Option<Value>,
    /// Node ids of the trace, in order.
    pub path: Vec<String>,
    /// Node id → output of its last `continue` entry.
    pub outputs: BTreeMap<String, Value>,
    /// `cost.llm_calls`.
    pub llm_calls: u64,
    /// `cost.llm_tokens`.
    pub llm_tokens: u64,
    /// `cost.node_executions`.
    pub node_executions: u64,
    /// `cost.policy_denials`.
    pub policy_denials: u64,
    /// The run record as JSON (secret-leak checks).
    pub record_json: String,
}

/// The last HTTP delivery's response.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    /// Status.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// Body text.
    pub body: String,
}

/// Everything the checks look at.
pub struct Evidence<'a> {
    /// The run.
    pub observed: &'a Observed,
    /// Requests the stub received.
    pub http_requests: u64,
    /// Trial wall time.
    pub latency_ms: u64,
    /// The last delivery's response (`[trigger.request]` only).
    pub response: Option<&'a HttpResponse>,
    /// `secret `NAME` leaked into <where>` lines.
    pub leaks: &'a [String],
}

/// `[expected]` with placeholders replaced.
pub fn substituted(expected: &Expected, p: &Placeholders) -> Expected {
    let mut e = expected.clone();
    let text = |s: &mut String| *s = p.apply(s);
    e.last_node.iter_mut().for_each(text);
    e.reason_contains.iter_mut().for_each(text);
    e.path.iter_mut().flatten().for_each(text);
    e.present_paths.iter_mut().for_each(text);
    e.absent_paths.iter_mut().for_each(text);
    e.final_value.iter_mut().for_each(|v| p.apply_json(v));
    e.outputs.values_mut().for_each(|v| p.apply_json(v));
    if let Some(http) = &mut e.http {
        http.body_contains.iter_mut().for_each(text);
        http.headers.values_mut().for_each(text);
    }
    e
}

/// Runs every set check; the failure lines, empty when the trial passed.
pub fn check(expected: &Expected, evidence: &Evidence<'_>) -> Vec<String> {
    let o = evidence.observed;
    let mut failures = Vec::new();
    if let Some(status) = expected.status
        && status.as_str() != o.status
    {
        failures.push(format!("status: expected `{}`, got `{}`", status.as_str(), o.status));
    }
    if let Some(node) = &expected.last_node {
        match &o.last_node {
            Some(actual) if actual == node => {}
            Some(actual) => failures.push(format!("last_node: expected `{node}`, got `{actual}`")),
            None => failures.push(format!("last_node: expected `{node}`, got null")),
        }
    }
    if let Some(needle) = &expected.reason_contains {
        match &o.reason {
            Some(reason) if reason.contains(needle.as_str()) => {}
            Some(reason) => failures.push(format!("reason_contains `{needle}` not in `{reason}`")),
            None => failures.push(format!("reason_contains set but the run has no reason (status {})", o.status)),
        }
    }
    check_path(expected, o, &mut failures);
    check_counters(expected, evidence, &mut failures);
    if let Some(value) = &expected.final_value {
        match &o.final_value {
            Some(actual) if o.status == "completed" && json_equal(value, actual) => {}
            Some(actual) => failures.push(format!("final_value: expected {value}, got {actual}")),
            None => failures.push(format!("final_value: expected {value}, got no final value (status {})", o.status)),
        }
    }
    for path in &expected.present_paths {
        if std::fs::symlink_metadata(path).is_err() {
            failures.push(format!("present_paths: `{path}` missing"));
        }
    }
    for path in &expected.absent_paths {
        if std::fs::symlink_metadata(path).is_ok() {
            failures.push(format!("absent_paths: `{path}` exists"));
        }
    }
    if let Some(max) = expected.max_latency_ms
        && evidence.latency_ms > max
    {
        failures.push(format!("max_latency_ms: {} > {max}", evidence.latency_ms));
    }
    if expected.no_secret_leak {
        failures.extend(evidence.leaks.iter().cloned());
    }
    for (node, want) in &expected.outputs {
        match o.outputs.get(node) {
            None => failures.push(format!("outputs.{node}: the node produced no output")),
            Some(got) => {
                if let Err(at) = subset(want, got, "") {
                    failures.push(format!("outputs.{node}: {at}"));
                }
            }
        }
    }
    if let Some(http) = &expected.http {
        check_http(http, evidence.response, &mut failures);
    }
    failures
}

fn check_path(expected: &Expected, o: &Observed, failures: &mut Vec<String>) {
    let Some(path) = &expected.path else { return };
    let show = |ids: &[String]| format!("[{}]", ids.join(", "));
    if expected.path_exact {
        if &o.path != path {
            failures.push(format!("path (exact): expected {}, got {}", show(path), show(&o.path)));
        }
    } else if !o.path.starts_with(path) {
        failures.push(format!("path (prefix): expected {}, got {}", show(path), show(&o.path)));
    }
}

fn check_counters(expected: &Expected, evidence: &Evidence<'_>, failures: &mut Vec<String>) {
    let o = evidence.observed;
    let mut at_most = |name: &str, actual: u64, bound: Option<u64>| {
        if let Some(bound) = bound
            && actual > bound
        {
            failures.push(format!("{name}: {actual} > {bound}"));
        }
    };
    at_most("max_llm_calls", o.llm_calls, expected.max_llm_calls);
    at_most("max_total_tokens", o.llm_tokens, expected.max_total_tokens);
    at_most("max_policy_denials", o.policy_denials, expected.max_policy_denials);
    at_most("max_node_executions", o.node_executions, expected.max_node_executions);
    let mut at_least = |name: &str, actual: u64, bound: Option<u64>| {
        if let Some(bound) = bound
            && actual < bound
        {
            failures.push(format!("{name}: {actual} < {bound}"));
        }
    };
    at_least("min_policy_denials", o.policy_denials, expected.min_policy_denials);
    at_least("min_llm_calls", o.llm_calls, expected.min_llm_calls);
    let requests = evidence.http_requests;
    if let Some(min) = expected.min_http_requests
        && requests < min
    {
        failures.push(format!("http_requests: {requests} < {min}"));
    }
    if let Some(max) = expected.max_http_requests
        && requests > max
    {
        failures.push(format!("http_requests: {requests} > {max}"));
    }
}

fn check_http(http: &ExpectedHttp, response: Option<&HttpResponse>, failures: &mut Vec<String>) {
    let Some(response) = response else {
        failures.push("http: [expected.http] set but no HTTP delivery was made (needs [trigger.request])".into());
        return;
    };
    if let Some(status) = http.status
        && status != response.status
    {
        failures.push(format!("http.status: expected {status}, got {}", response.status));
    }
    if let Some(needle) = &http.body_contains
        && !response.body.contains(needle.as_str())
    {
        failures.push(format!("http.body_contains: `{needle}` not in `{}`", cut(&response.body)));
    }
    if let Some(want) = &http.content_type {
        let got = response.headers.get("content-type").map_or("", String::as_str);
        if got != want {
            failures.push(format!("http.content_type: expected `{want}`, got `{got}`"));
        }
    }
    for (name, want) in &http.headers {
        match response.headers.get(&name.to_ascii_lowercase()) {
            Some(got) if got == want => {}
            Some(got) => failures.push(format!("http.headers.{name}: expected `{want}`, got `{got}`")),
            None => failures.push(format!("http.headers.{name}: missing")),
        }
    }
    if let Some(want) = http.replayed {
        let got = response.headers.get("x-agentd-idempotent-replay").is_some_and(|v| v == "true");
        if got != want {
            failures.push(format!("http.replayed: expected {want}, got {got}"));
        }
    }
}

fn cut(text: &str) -> String {
    let mut shown: String = text.chars().take(200).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown.replace('\n', " ")
}

/// JSON equality with object key order ignored and numbers compared by value.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Subset match of `[expected.outputs]`: objects by expected keys, arrays element-wise with the
/// same length, scalars equal. `Err` names the first mismatch.
pub fn subset(want: &Value, got: &Value, at: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, value) in w {
                let here = format!("{at}.{key}");
                match g.get(key) {
                    Some(inner) => subset(value, inner, &here)?,
                    None => return Err(format!("{} missing", here.trim_start_matches('.'))),
                }
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                return Err(format!("{}: expected {} elements, got {}", display(at), w.len(), g.len()));
            }
            w.iter().zip(g).enumerate().try_for_each(|(i, (a, b))| subset(a, b, &format!("{at}[{i}]")))
        }
        _ if json_equal(want, got) => Ok(()),
        _ => Err(format!("{}: expected {want}, got {got}", display(at))),
    }
}

fn display(at: &str) -> &str {
    let trimmed = at.trim_start_matches('.');
    if trimmed.is_empty() { "value" } else { trimmed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_keys_unordered() {
        assert!(json_equal(&json!({"a": 1, "b": [2.0]}), &json!({"b": [2], "a": 1.0})));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn subset_rules() {
        assert!(subset(&json!({"a": {"b": 1}}), &json!({"a": {"b": 1, "c": 2}, "d": 3}), "").is_ok());
        assert!(subset(&json!([{"x": 1}]), &json!([{"x": 1, "y": 2}]), "").is_ok());
        let error = subset(&json!([1, 2]), &json!([1]), "").unwrap_err();
        assert!(error.contains("expected 2 elements"), "{error}");
        let error = subset(&json!({"a": {"b": 1}}), &json!({"a": {}}), "").unwrap_err();
        assert_eq!(error, "a.b missing");
    }

    #[test]
    fn failure_texts_follow_the_spec() {
        let observed = Observed { status: "errored".into(), reason: Some("boom".into()), ..Observed::default() };
        let expected = Expected {
            status: Some(crate::scenario::StatusWord::Completed),
            last_node: Some("x".into()),
            reason_contains: Some("zap".into()),
            max_llm_calls: Some(0),
            ..Expected::default()
        };
        let evidence = Evidence { observed: &observed, http_requests: 0, latency_ms: 1, response: None, leaks: &[] };
        assert_eq!(
            check(&expected, &evidence),
            vec![
                "status: expected `completed`, got `errored`".to_string(),
                "last_node: expected `x`, got null".to_string(),
                "reason_contains `zap` not in `boom`".to_string(),
            ]
        );
    }
}
