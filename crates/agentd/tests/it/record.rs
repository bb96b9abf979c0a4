//! `--record PATH` (01 §2.1, §5.3; 02 §3, §5): written for every run result, in the field order
//! of the specification, never left half-written.

use serde_json::{Value, json};

use crate::snap;
use crate::support::{Scratch, keys_at_indent, top_level_keys};

const RECORD_KEYS: [&str; 12] = [
    "workflow",
    "start_node",
    "execution_id",
    "status",
    "last_node",
    "detail",
    "wall_ms",
    "cost",
    "trace",
    "started_at",
    "finished_at",
    "trigger_kind",
];

const COST_KEYS: [&str; 10] = [
    "workflow_starts",
    "workflow_completions",
    "workflow_failures",
    "workflow_timeouts",
    "workflow_errored",
    "node_executions",
    "node_failures",
    "policy_denials",
    "llm_calls",
    "llm_tokens",
];

/// The raw record text and its parsed form.
fn record(scratch: &Scratch, name: &str) -> (String, Value) {
    let text = scratch.read(name);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("record is not JSON ({e}):\n{text}"));
    (text, value)
}

/// Checks the key order of the raw text (serde_json maps would sort them).
#[track_caller]
fn assert_field_order(text: &str) {
    assert_eq!(top_level_keys(text), RECORD_KEYS, "record field order (02 §5)");
    // `cost` is an object at indent 2, its keys at indent 4.
    let cost_start = text.find("\n  \"cost\": {").expect("cost object");
    let cost_end = cost_start + text[cost_start..].find("\n  },").expect("end of cost");
    assert_eq!(keys_at_indent(&text[cost_start..cost_end], 4), COST_KEYS, "cost field order (02 §5)");
    let trace_start = text.find("\n  \"trace\": {").expect("trace object");
    let trace_end = trace_start + text[trace_start..].find("\n  },").expect("end of trace");
    assert_eq!(keys_at_indent(&text[trace_start..trace_end], 4), ["execution_id", "entries"], "trace field order");
}

/// Checks each trace entry's key order: the spec's order, optional fields only when present.
#[track_caller]
fn assert_entry_order(text: &str) {
    const ORDER: [&str; 10] =
        ["node_id", "kind", "outcome", "branch", "output", "elapsed_ms", "attempts", "error", "children", "started_at"];
    let trace_start = text.find("\n  \"trace\": {").expect("trace object");
    for chunk in text[trace_start..].split("\n      {").skip(1) {
        let chunk = chunk.split("\n      }").next().expect("entry");
        let keys = keys_at_indent(chunk, 8);
        assert!(keys.len() >= 6, "entry keys {keys:?}");
        assert_eq!(keys[..6], ORDER[..6], "trace entry field order (02 §3)");
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| ORDER.iter().position(|o| o == k).unwrap_or_else(|| panic!("unknown key {k}")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "trace entry field order (02 §3): {keys:?}");
    }
}

#[test]
fn completed_run_record_fields() {
    let scratch = Scratch::new();
    let file = scratch.fixture("evaluator_optimizer.toml");
    let input = r#"{"topic": "rust", "good_enough": true}"#;
    let run = scratch.run(["run", &file, "--quiet", "--input", input, "--record", "run.json"]);
    run.code(0);
    assert_eq!(run.stderr, "agentd: run record written to run.json\n");
    let (text, record) = record(&scratch, "run.json");
    assert!(text.ends_with('\n'));
    assert_field_order(&text);
    assert_entry_order(&text);
    assert_eq!(record["workflow"], "evaluator_optimizer");
    assert_eq!(record["start_node"], "main");
    assert_eq!(record["status"], "completed");
    assert_eq!(record["last_node"], "accept");
    assert_eq!(record["detail"], json!({"rendered": "accepted: draft about rust"}));
    assert_eq!(record["trigger_kind"], "manual");
    assert_eq!(record["execution_id"], record["trace"]["execution_id"]);
    assert_eq!(
        record["cost"],
        json!({"workflow_starts": 1, "workflow_completions": 1, "workflow_failures": 0, "workflow_timeouts": 0,
               "workflow_errored": 0, "node_executions": 3, "node_failures": 0, "policy_denials": 0,
               "llm_calls": 0, "llm_tokens": 0})
    );
    let entries = record["trace"]["entries"].as_array().expect("entries");
    let summary: Vec<(&str, &str, &str, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["node_id"].as_str().expect("node_id"),
                e["kind"].as_str().expect("kind"),
                e["outcome"].as_str().expect("outcome"),
                e["branch"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("generate", "template_render", "continue", Value::Null),
            ("evaluate", "condition", "continue", json!("true")),
            ("accept", "template_render", "continue", Value::Null),
        ]
    );
    for entry in entries {
        assert!(entry["elapsed_ms"].is_u64(), "{entry}");
        assert!(entry.get("error").is_none(), "`error` only on error entries: {entry}");
        assert!(entry.get("attempts").is_none(), "`attempts` only when retried: {entry}");
    }
    for key in ["started_at", "finished_at"] {
        let stamp = record[key].as_str().expect("timestamp");
        // RFC 3339 UTC with milliseconds: 2025-05-01T12:00:03.120Z
        assert_eq!(stamp.len(), 24, "{key}: {stamp}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T' && stamp.as_bytes()[19] == b'.', "{key}: {stamp}");
    }
    assert!(record["started_at"].as_str() <= record["finished_at"].as_str());
    snap!(text);
}

#[test]
fn failed_run_record() {
    let scratch = Scratch::new();
    let file = scratch.fixture("fail.toml");
    let run = scratch.run(["run", &file, "--quiet", "--start", "explicit", "--record", "failed.json"]);
    run.code(5);
    assert_eq!(run.stderr, "agentd: run record written to failed.json\n");
    let (text, record) = record(&scratch, "failed.json");
    assert_field_order(&text);
    assert_entry_order(&text);
    assert_eq!(record["status"], "failed");
    assert_eq!(record["last_node"], "refuse");
    assert_eq!(record["detail"], json!({"reason": "refusing: the input is not acceptable"}));
    assert_eq!(record["cost"]["workflow_failures"], 1);
    assert_eq!(record["cost"]["workflow_completions"], 0);
    assert_eq!(record["cost"]["node_executions"], 2);
    let last = record["trace"]["entries"].as_array().expect("entries").last().cloned().expect("entry");
    assert_eq!(last["outcome"], "fail");
    assert_eq!(last["output"], Value::Null);
    assert_eq!(last["branch"], Value::Null);
}

#[test]
fn errored_run_record() {
    let scratch = Scratch::new();
    let file = scratch.fixture("parse_json.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"text": "[1,"}"#, "--record", "errored.json"]);
    run.code(5);
    let (text, record) = record(&scratch, "errored.json");
    let reason = run.json()["reason"].as_str().expect("reason").to_string();
    assert_eq!(run.stderr, format!("agentd: run record written to errored.json\nagentd: {reason}\n"));
    assert_field_order(&text);
    assert_entry_order(&text);
    assert_eq!(record["status"], "errored");
    assert_eq!(record["last_node"], "parse");
    assert_eq!(record["detail"], json!({ "error": reason }));
    assert_eq!(record["cost"]["workflow_errored"], 1);
    assert_eq!(record["cost"]["node_failures"], 1);
    assert_eq!(record["cost"]["node_executions"], 1);
    assert_eq!(record["cost"]["policy_denials"], 0);
    let entries = record["trace"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["outcome"], "error");
    assert_eq!(entries[0]["error"], reason.as_str());
    assert_eq!(entries[0]["output"], Value::Null);
    snap!(text);
}

#[test]
fn respond_run_record_detail_has_final_value_and_http_response() {
    let scratch = Scratch::new();
    let file = scratch.fixture("respond.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"name": "Ada"}"#, "--record", "r.json"]);
    run.code(0);
    let (_, record) = record(&scratch, "r.json");
    assert_eq!(
        record["detail"],
        json!({"final_value": {"rendered": "after Ada"}, "http_response": {"status": 201, "content_type": "text/plain", "body": "hi Ada"}})
    );
}

#[test]
fn record_overwrites_an_existing_file() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    scratch.write("r.json", "old content that is longer than nothing at all ".repeat(200));
    scratch.run(["run", &file, "--quiet", "--record", "r.json"]).code(0);
    let (_, record) = record(&scratch, "r.json");
    assert_eq!(record["status"], "completed");
}

#[test]
fn unwritable_record_path_keeps_the_exit_code() {
    let scratch = Scratch::new();
    let ok = scratch.fixture("terminate.toml");
    let failing = scratch.fixture("fail.toml");
    scratch.write("plain-file", "I am not a directory");
    let before = scratch.listing();

    let run = scratch.run(["run", &ok, "--quiet", "--record", "plain-file/r.json"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed", "the outcome is still printed");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].starts_with("agentd: failed to write run record to plain-file/r.json: "), "{}", run.stderr);
    snap!(run.render());

    let run = scratch.run(["run", &failing, "--quiet", "--start", "default", "--record", "plain-file/r.json"]);
    run.code(5);
    assert!(run.stderr.starts_with("agentd: failed to write run record to plain-file/r.json: "), "{}", run.stderr);

    // A directory in the way: no partial or temporary file is left behind.
    scratch.mkdir("a-dir");
    let run = scratch.run(["run", &ok, "--quiet", "--record", "a-dir"]);
    run.code(0);
    assert!(run.stderr.starts_with("agentd: failed to write run record to a-dir: "), "{}", run.stderr);
    // The run history (the default state dir `.agentd`) is not a record file: leave it out.
    let mut after = scratch.listing();
    after.retain(|p| p != "a-dir" && p != ".agentd" && !p.starts_with(".agentd/"));
    assert_eq!(after, before, "no partial record file may be left");
    assert!(std::fs::read_dir(scratch.path("a-dir")).expect("dir").next().is_none());
    // A record that cannot be written does not keep the run out of the history (01 §5.3).
    let runs = scratch.run(["runs", "--json"]);
    runs.code(0);
    let statuses: Vec<Value> = runs.json().as_array().expect("array").iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses.len(), 3, "{}", runs.stdout);
    assert_eq!(statuses.iter().filter(|s| *s == "completed").count(), 2, "{}", runs.stdout);
    assert_eq!(statuses.iter().filter(|s| *s == "failed").count(), 1, "{}", runs.stdout);
}

#[test]
fn record_in_a_missing_directory_fails_cleanly() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--quiet", "--record", "missing/dir/r.json"]);
    run.code(0);
    assert!(run.stderr.starts_with("agentd: failed to write run record to missing/dir/r.json: "), "{}", run.stderr);
    assert!(!scratch.path("missing").exists());
}

#[test]
fn record_is_not_written_for_usage_errors() {
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    scratch.run(["run", &file, "--record", "r.json"]).code(2);
    assert!(!scratch.path("r.json").exists());
}

#[test]
fn validate_only_ignores_record() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["--validate-only", "--config", &file, "--record", "r.json"]);
    run.code(0).stderr_empty();
    assert!(!scratch.path("r.json").exists());
}

#[test]
fn execution_ids_have_the_spec_shape() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    scratch.run(["run", &file, "--quiet", "--record", "a.json"]).code(0);
    scratch.run(["run", &file, "--quiet", "--record", "b.json"]).code(0);
    let (_, a) = record(&scratch, "a.json");
    let (_, b) = record(&scratch, "b.json");
    let id = a["execution_id"].as_str().expect("id");
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts.len(), 4, "{id}");
    assert_eq!(parts[0], "exec");
    for part in &parts[1..] {
        assert!(!part.is_empty() && part.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{id}");
        assert!(part.len() == 1 || !part.starts_with('0'), "no padding: {id}");
    }
    // A fresh process: its counter starts at 1.
    assert_eq!(parts[3], "1", "{id}");
    assert_ne!(a["execution_id"], b["execution_id"]);
}
