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
fn pause_for_approval_with_an_unusable_state_dir_errors() {
    // The pause checkpoint cannot be committed (02 §6.3 "Durability"): a state dir under a
    // regular file can never be created, so the run is errored instead of paused.
    let scratch = Scratch::new();
    let file = scratch.fixture("pause.toml");
    scratch.write("plain-file", "I am not a directory");
    let run = scratch.run(["run", &file, "--quiet", "--state-dir", "plain-file/state", "--record", "rec.json"]);
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
    assert!(!reason.contains('\n'), "a single-line reason (02 §8): {reason:?}");
    run.stderr_has_line(&format!("agentd: {reason}"));
    assert!(outcome.get("run_id").is_none(), "no run id is handed out for a pause that was not saved: {outcome}");
    // The record is written for errored runs too (01 §5.3).
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    assert_eq!(record["status"], "errored");
    assert_eq!(record["last_node"], "gate");
    assert_eq!(record["detail"], json!({ "error": reason }));
    assert!(scratch.path("plain-file").is_file(), "the regular file in the way is left alone");
    snap!(run.render());
}

#[test]
fn pause_for_approval_under_dry_run_behaves_the_same() {
    // 02 §6.3: the pause checkpoint is written whatever the dry-run flag; --dry-run changes
    // nothing about a pause (01 §5.3: outcome with run_id, exit 7).
    let scratch = Scratch::new();
    let file = scratch.fixture("pause.toml");
    let mut outcomes = Vec::new();
    for extra in [None, Some("--dry-run")] {
        let mut args = vec!["run", file.as_str(), "--quiet", "--state-dir", "state"];
        args.extend(extra);
        let run = scratch.run(&args);
        run.code(7).stderr_empty();
        let mut outcome = run.json();
        let run_id = outcome["run_id"].as_str().expect("run_id").to_string();
        assert!(run_id.starts_with("exec-"), "{outcome}");
        assert_eq!(
            crate::support::top_level_keys(&run.stdout),
            ["status", "run_id", "last_node", "reason"],
            "outcome field order (02 §2)"
        );
        outcome["run_id"] = json!("[RUN_ID]");
        outcomes.push((run_id, outcome));
    }
    let expected = json!({
        "status": "paused", "run_id": "[RUN_ID]", "last_node": "gate", "reason": "Check the draft, then approve."
    });
    assert_eq!(outcomes[0].1, expected);
    assert_eq!(outcomes[1].1, expected, "--dry-run pauses exactly like a normal run");
    assert_ne!(outcomes[0].0, outcomes[1].0, "each pause has its own run id");
    // Both pauses are durable: two paused checkpoints in the state dir.
    let list = scratch.run(["--list-checkpoints", "--state-dir", "state"]);
    list.code(0);
    for (run_id, _) in &outcomes {
        assert!(
            list.stdout.lines().any(|l| l == format!("{run_id}  paused       workflow=approval  resume_node=apply")),
            "{run_id} missing from\n{}",
            list.stdout
        );
    }
}

#[test]
fn every_unavailable_kind_is_a_capability_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("unavailable.toml");
    let kinds =
        [("call_mcp_tool", "tool"), ("read_mcp_resource", "resource"), ("llm_infer", "infer"), ("agent_loop", "agent")];
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

mod retries {
    use serde_json::{Value, json};

    use crate::support::Scratch;

    /// A node that always errors, with `retry = { max_attempts = 3, backoff_ms = 0, on = ON }`.
    fn retrying(scratch: &Scratch, node: &str, on: &str) -> String {
        let root = scratch.root_str();
        scratch.write(
            "retry.toml",
            format!(
                "name = \"retry\"\n\n[policy.fs]\nwrite = [\"{root}/safe/**\"]\n\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\n{node}\nretry = {{ max_attempts = 3, backoff_ms = 0, on = \"{on}\" }}\n"
            ),
        );
        "retry.toml".to_string()
    }

    fn record(scratch: &Scratch) -> Value {
        serde_json::from_str(&scratch.read("r.json")).expect("record")
    }

    #[test]
    fn a_tool_error_is_retried_and_the_trace_counts_attempts() {
        let scratch = Scratch::new();
        let file = retrying(
            &scratch,
            "[[nodes]]\nid = \"parse\"\ntype = \"parse_json\"\ninput_from = \"trigger.text\"",
            "any",
        );
        let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"text": "nope"}"#, "--record", "r.json"]);
        run.code(5);
        assert_eq!(run.json()["status"], "errored");
        let record = record(&scratch);
        let entries = record["trace"]["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 1, "one entry per node execution, however many attempts");
        assert_eq!(entries[0]["attempts"], 3);
        assert_eq!(record["cost"]["node_executions"], 1, "a retried node counts once");
        assert_eq!(record["cost"]["node_failures"], 1);
    }

    #[test]
    fn a_policy_denial_is_never_retried() {
        // 05 §4: never retried, whatever `retry.on` says.
        let scratch = Scratch::new();
        let file = retrying(
            &scratch,
            "[[nodes]]\nid = \"save\"\ntype = \"write_file\"\npath_from = \"trigger.path\"\ncontent_from = \"trigger.path\"",
            "any",
        );
        let run =
            scratch.run(["run", &file, "--quiet", "--input", r#"{"path": "/etc/agentd-retry"}"#, "--record", "r.json"]);
        run.code(5);
        assert_eq!(
            run.json(),
            json!({"status": "errored", "reason": "policy violation: write_file denied on /etc/agentd-retry: path not in [policy.fs].write", "last_node": "save"})
        );
        let record = record(&scratch);
        let entry = &record["trace"]["entries"][0];
        assert!(entry.get("attempts").is_none(), "a denial is attempted once: {entry}");
        assert_eq!(record["cost"]["policy_denials"], 1);
    }

    #[test]
    fn transient_retries_tool_errors() {
        // Tool errors are transient (03 §8.3).
        let scratch = Scratch::new();
        let file = retrying(
            &scratch,
            "[[nodes]]\nid = \"parse\"\ntype = \"parse_json\"\ninput_from = \"trigger.text\"",
            "transient",
        );
        let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"text": "nope"}"#, "--record", "r.json"]);
        run.code(5);
        assert_eq!(record(&scratch)["trace"]["entries"][0]["attempts"], 3);
    }

    #[test]
    fn a_budget_error_is_never_retried() {
        // 03 §8.3: budget errors are never retried, whatever `retry.on` says.
        let scratch = Scratch::new();
        let file = retrying(
            &scratch,
            "[budget]\nmax_fs_write_mb = 1\n\n[[nodes]]\nid = \"save\"\ntype = \"write_file\"\npath_from = \"trigger.path\"\ncontent_from = \"trigger.content\"",
            "any",
        );
        let input =
            json!({"path": format!("{}/safe/big.txt", scratch.root_str()), "content": "z".repeat(2 * 1_048_576)});
        scratch.write("big.json", input.to_string());
        let run = scratch.run(["run", &file, "--quiet", "--input", "big.json", "--record", "r.json"]);
        run.code(5);
        let reason = run.json()["reason"].as_str().expect("reason").to_string();
        assert!(reason.starts_with("tool `write_file` failed: budget.fs_write exceeded: "), "{reason}");
        let record = record(&scratch);
        assert!(record["trace"]["entries"][0].get("attempts").is_none(), "{}", record["trace"]);
        assert!(!scratch.path("safe/big.txt").exists());
    }
}

#[test]
fn workflow_values_serialise_with_sorted_keys() {
    // 02 general rules: node outputs and final values have object keys in ascending byte order,
    // while the outcome's own fields keep the specification's order.
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"zeta": 1, "alpha": {"z": 0, "a": 1}, "Beta": 2}"#]);
    run.code(0);
    let order: Vec<&str> = [
        "\"status\"",
        "\"final_value\"",
        "\"found\"",
        "\"value\"",
        "\"Beta\"",
        "\"alpha\"",
        "\"a\"",
        "\"z\"",
        "\"kind\"",
        "\"zeta\"",
        "\"last_node\"",
    ]
    .into_iter()
    .collect();
    let positions: Vec<usize> =
        order.iter().map(|k| run.stdout.find(k).unwrap_or_else(|| panic!("{k} missing: {}", run.stdout))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "key order {order:?} in\n{}", run.stdout);
}

#[test]
fn record_trigger_kind_follows_an_input_kind_field() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.run(["run", &file, "--quiet", "--input", r#"{"kind": "cron"}"#, "--record", "r.json"]).code(0);
    let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
    assert_eq!(record["trigger_kind"], "cron");
    scratch.run(["run", &file, "--quiet", "--record", "r.json"]).code(0);
    let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
    assert_eq!(record["trigger_kind"], "manual");
}
