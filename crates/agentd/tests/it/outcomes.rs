//! Run outcomes, exit codes and the engine's walk rules through the binary (01 §5.3, 02 §2,
//! 03 §8).

use serde_json::{Value, json};

use crate::snap;
use crate::support::Scratch;

#[test]
fn completed_by_terminate_has_null_final_value() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "{\n  \"status\": \"completed\",\n  \"final_value\": null,\n  \"last_node\": \"done\"\n}\n");
}

#[test]
fn completed_by_dead_end_has_the_last_output() {
    let scratch = Scratch::new();
    let file = scratch.fixture("one_manual.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(0).stderr_empty();
    snap!(run.render());
    assert_eq!(
        run.json(),
        json!({"status": "completed", "final_value": {"rendered": "picked cli"}, "last_node": "one"})
    );
}

#[test]
fn completed_after_respond_carries_http_response() {
    let scratch = Scratch::new();
    let file = scratch.fixture("respond.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"name": "Ada"}"#]);
    run.code(0).stderr_empty();
    assert_eq!(
        run.json(),
        json!({
            "status": "completed",
            "final_value": {"rendered": "after Ada"},
            "last_node": "after",
            "http_response": {"status": 201, "content_type": "text/plain", "body": "hi Ada"}
        })
    );
    snap!(run.render());
}

#[test]
fn respond_output_counts_utf8_bytes_and_defaults() {
    let scratch = Scratch::new();
    scratch.write(
        "reply.toml",
        r#"name = "reply"
[[start_nodes]]
name = "main"
source = "manual"
[[nodes]]
id = "reply"
type = "respond"
body_template = '{"greeting": "{{}}"}'
"#,
    );
    // Raw trigger input is the data value by default (03 §7): a string input is the whole data.
    scratch.write("word.json", "\"h\u{e9}llo\"");
    let run = scratch.run(["run", "reply.toml", "--quiet", "-i", "word.json"]);
    run.code(0);
    let outcome = run.json();
    assert_eq!(
        outcome["http_response"],
        json!({"status": 200, "content_type": "application/json", "body": "{\"greeting\": \"h\u{e9}llo\"}"})
    );
    assert_eq!(outcome["final_value"], json!({"bytes": 22, "content_type": "application/json", "status": 200}));
}

#[test]
fn failed_with_the_default_reason_exits_5() {
    let scratch = Scratch::new();
    let file = scratch.fixture("fail.toml");
    let run = scratch.run(["run", &file, "--quiet", "--start", "default"]);
    run.code(5).stderr_empty();
    assert_eq!(run.json(), json!({"status": "failed", "reason": "workflow failed", "last_node": "boom"}));
    snap!(run.render());
}

#[test]
fn failed_with_an_explicit_reason_exits_5() {
    let scratch = Scratch::new();
    let file = scratch.fixture("fail.toml");
    let run = scratch.run(["run", &file, "--quiet", "--start", "explicit"]);
    run.code(5).stderr_empty();
    assert_eq!(
        run.stdout,
        "{\n  \"status\": \"failed\",\n  \"reason\": \"refusing: the input is not acceptable\",\n  \"last_node\": \"refuse\"\n}\n"
    );
}

#[test]
fn errored_prints_the_outcome_and_the_reason_on_stderr() {
    let scratch = Scratch::new();
    let file = scratch.fixture("parse_json.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"text": 5}"#]);
    run.code(5);
    let reason = "tool `parse_json` failed: path `trigger.text` must resolve to a string; got number";
    assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": "parse"}));
    assert_eq!(run.stderr, format!("agentd: {reason}\n"));
    snap!(run.render());
}

#[test]
fn ambiguous_out_edges_error_the_run() {
    let scratch = Scratch::new();
    let file = scratch.fixture("ambiguous.toml");
    let run = scratch.run(["run", &file, "--quiet", "--record", "rec.json"]);
    run.code(5);
    let reason = "workflow `ambiguous`: node `fork` has 2 matching out-edges for branch `none`; workflow graphs must select exactly one";
    assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": "fork"}));
    run.stderr_has_line(&format!("agentd: {reason}"));
    // Engine-level errors add no `error` entry to the trace (02 §3).
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    let entries = record["trace"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{record}");
    assert_eq!(entries[0]["node_id"], "fork");
    assert_eq!(entries[0]["outcome"], "continue");
    assert!(entries.iter().all(|e| e["outcome"] != "error"), "{record}");
}

#[test]
fn ambiguous_edges_warning_is_printed_before_the_run() {
    let scratch = Scratch::new();
    let file = scratch.fixture("ambiguous.toml");
    let run = scratch.run(["run", &file]);
    run.code(5);
    assert!(run.stderr_lines().iter().any(|l| l.starts_with("agentd: warning: [ambiguous_edges] ")), "{}", run.stderr);
    snap!(run.render());
}

#[test]
fn evaluator_optimizer_loop_takes_the_default_edge_when_the_loop_is_used_up() {
    let scratch = Scratch::new();
    let file = scratch.fixture("evaluator_optimizer.toml");
    let input = r#"{"topic": "rust", "good_enough": false, "verdict": "retry"}"#;
    let run = scratch.run(["run", &file, "--quiet", "--input", input, "--record", "rec.json"]);
    run.code(5);
    assert_eq!(
        run.json(),
        json!({"status": "failed", "reason": "no acceptable draft after 3 retries", "last_node": "give_up"})
    );
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    let path: Vec<&str> = record["trace"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["node_id"].as_str().expect("id"))
        .collect();
    let mut expected = Vec::new();
    for _ in 0..4 {
        expected.extend(["generate", "evaluate", "route"]);
    }
    expected.push("give_up");
    assert_eq!(path, expected);
    let branches: Vec<Value> = record["trace"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["node_id"] == "route")
        .map(|e| e["branch"].clone())
        .collect();
    assert_eq!(branches, vec![json!("retry"); 4]);
    assert_eq!(record["cost"]["node_executions"], 13);
    assert_eq!(record["cost"]["workflow_failures"], 1);
}

#[test]
fn evaluator_optimizer_loop_accepts_a_good_draft() {
    let scratch = Scratch::new();
    let file = scratch.fixture("evaluator_optimizer.toml");
    let input = r#"{"topic": "rust", "good_enough": "yes", "verdict": "retry"}"#;
    let run = scratch.run(["run", &file, "--quiet", "--input", input]);
    run.code(0);
    assert_eq!(
        run.json(),
        json!({"status": "completed", "final_value": {"rendered": "accepted: draft about rust"}, "last_node": "accept"})
    );
}

#[test]
fn evaluator_optimizer_unknown_verdict_falls_to_the_default_edge_at_once() {
    let scratch = Scratch::new();
    let file = scratch.fixture("evaluator_optimizer.toml");
    let input = r#"{"topic": "rust", "good_enough": 0, "verdict": "bin it"}"#;
    let run = scratch.run(["run", &file, "--quiet", "--input", input, "--record", "rec.json"]);
    run.code(5);
    assert_eq!(run.json()["last_node"], "give_up");
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    assert_eq!(record["trace"]["entries"].as_array().expect("entries").len(), 4);
}

#[test]
fn step_cap_errors_the_run() {
    let scratch = Scratch::new();
    let file = scratch.fixture("step_cap.toml");
    let run = scratch.run(["run", &file, "--quiet", "--record", "rec.json"]);
    run.code(5);
    let reason = "workflow `spinner`: safety cap hit: engine walked 10000 nodes without reaching a terminal outcome";
    let outcome = run.json();
    assert_eq!(outcome["status"], "errored");
    assert_eq!(outcome["reason"], reason);
    run.stderr_has_line(&format!("agentd: {reason}"));
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    assert_eq!(record["trace"]["entries"].as_array().expect("entries").len(), 10_000);
    assert_eq!(record["cost"]["node_executions"], 10_000);
    assert_eq!(record["cost"]["workflow_errored"], 1);
    // 10 000 = 3 × 3333 + 1: the 10 000th node walked is `a`.
    assert_eq!(outcome["last_node"], "a");
}

#[test]
fn pause_for_approval_without_a_state_store_errors() {
    let scratch = Scratch::new();
    let file = scratch.fixture("pause.toml");
    let run = scratch.run(["run", &file, "--quiet", "--record", "rec.json"]);
    run.code(5);
    let outcome = run.json();
    assert_eq!(outcome["status"], "errored");
    assert_eq!(outcome["last_node"], "gate");
    let reason = outcome["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with(
            "workflow `approval`: node `gate` is pause_for_approval but the run state could not be saved: "
        ),
        "{reason}"
    );
    run.stderr_has_line(&format!("agentd: {reason}"));
    snap!(run.render());
}

#[test]
fn pause_for_approval_under_dry_run_behaves_the_same() {
    let scratch = Scratch::new();
    let file = scratch.fixture("pause.toml");
    let run = scratch.run(["run", &file, "--quiet", "--dry-run"]);
    run.code(5);
    assert_eq!(run.json()["last_node"], "gate");
}

#[test]
fn every_unavailable_kind_is_a_capability_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("unavailable.toml");
    let kinds = [
        ("http_request", "fetch"),
        ("shell_run", "shell"),
        ("call_mcp_tool", "tool"),
        ("read_mcp_resource", "resource"),
        ("llm_infer", "infer"),
        ("agent_loop", "agent"),
        ("call", "child"),
        ("parallel", "fan_out"),
        ("map", "each"),
    ];
    let input = r#"{"url": "http://127.0.0.1:9/", "uri": "docs://a", "items": [1]}"#;
    let mut transcript = String::new();
    for (kind, node) in kinds {
        let run = scratch.run(["run", &file, "--quiet", "--start", kind, "--input", input]);
        run.code(5);
        let outcome = run.json();
        assert_eq!(outcome["status"], "errored", "{kind}");
        assert_eq!(outcome["last_node"], node, "{kind}");
        let reason = outcome["reason"].as_str().expect("reason");
        let prefix = format!("capability unavailable: no handler registered for node kind `{kind}` (node `{node}`)");
        assert!(reason.starts_with(&prefix), "{kind}: {reason}");
        assert_eq!(run.stderr, format!("agentd: {reason}\n"), "{kind}");
        transcript.push_str(&format!("{kind}: {reason}\n"));
    }
    snap!(transcript);
}

#[cfg(unix)]
mod timed_out {
    use std::process::Stdio;
    use std::time::Duration;

    use serde_json::Value;

    use crate::support::Scratch;

    /// `read_file` of a FIFO nobody writes to blocks until the run deadline: the run must end
    /// `timed_out` (03 §8.4) and the process must then exit 5 (01 §5.3). The child is killed by
    /// the harness only if it never exits (a failsafe, not synchronisation).
    fn run_until_deadline(extra: &[&str], workflow: &str) -> (Option<i32>, String, String) {
        let scratch = Scratch::new();
        let file = scratch.fixture_as("fs.toml", workflow);
        if workflow != "fs.toml" {
            let text = scratch.read(&file).replace("name = \"fs\"", "name = \"fs\"\n\n[budget]\nmax_run_time_secs = 1");
            scratch.write(&file, text);
        }
        let status = std::process::Command::new("mkfifo")
            .arg(scratch.path("pipe"))
            .stdout(Stdio::null())
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let mut command = scratch.agentd();
        command.args(["run", &file, "--quiet", "--start", "read", "--input", r#"{"path": "pipe"}"#]);
        command.args(extra);
        command.timeout(Duration::from_secs(15));
        let output = command.output().expect("spawn");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[test]
    fn a_node_blocked_past_the_deadline_times_out_and_the_process_exits() {
        let (code, stdout, stderr) = run_until_deadline(&["--timeout-secs", "1"], "fs.toml");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let outcome: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?} {stderr}"));
        assert_eq!(outcome["status"], "timed_out", "{outcome}");
        assert_eq!(outcome["last_node"], "read");
        let elapsed = outcome["elapsed_ms"].as_u64().expect("elapsed_ms");
        assert!((1000..15_000).contains(&elapsed), "{elapsed}");
        assert_eq!(
            outcome.as_object().expect("object").keys().collect::<Vec<_>>(),
            ["elapsed_ms", "last_node", "status"]
        );
        assert!(stdout.starts_with("{\n  \"status\": \"timed_out\",\n  \"elapsed_ms\": "), "{stdout}");
        assert_eq!(code, Some(5), "agentd must exit 5 after a timed_out run, not hang (killed = None)");
    }

    #[test]
    fn budget_max_run_time_clamps_the_timeout() {
        let (code, stdout, stderr) = run_until_deadline(&["--timeout-secs", "120"], "clamped.toml");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let outcome: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?} {stderr}"));
        assert_eq!(outcome["status"], "timed_out", "{outcome}");
        assert!(outcome["elapsed_ms"].as_u64().expect("elapsed_ms") < 15_000);
        assert_eq!(code, Some(5), "agentd must exit 5 after a timed_out run, not hang (killed = None)");
    }
}
