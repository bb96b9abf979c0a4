//! `agentd inspect RUN.json|-` (01 §8): a text timeline of any record, from a real run or from
//! an older version with fields missing.

use serde_json::json;

use crate::snap;
use crate::support::Scratch;

/// A real record: a switch branch, long outputs, and a policy denial at the end.
fn real_record(scratch: &Scratch) -> String {
    scratch.write(
        "inspected.toml",
        format!(
            r#"name = "inspected"

[policy.fs]
write = ["{root}/allowed/**"]

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "route"
type = "switch"
expr = "trigger.kind"

[[nodes]]
id = "long"
type = "template_render"
input_from = "trigger"
template = "{{{{text}}}}"

[[nodes]]
id = "save"
type = "write_file"
path_from = "trigger.target"
content_from = "long.rendered"

[[edges]]
from = "route"
when = "manual"
to = "long"

[[edges]]
from = "long"
to = "save"
"#,
            root = scratch.root_str()
        ),
    );
    let input = json!({"text": "é".repeat(100) + &"x".repeat(100), "target": "/etc/agentd-inspect-test"});
    let run = scratch.run(["run", "inspected.toml", "--quiet", "--input", &input.to_string(), "--record", "run.json"]);
    run.code(5);
    "run.json".to_string()
}

#[test]
fn renders_a_record_from_a_real_run() {
    let scratch = Scratch::new();
    let path = real_record(&scratch);
    let run = scratch.run(["inspect", &path]);
    run.code(0).stderr_empty();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("run exec-") && lines[0].ends_with("  workflow=inspected  status=errored"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("  start=main  ")
            && lines[1].ends_with(" ms  0 llm call(s) / 0 tokens  1 policy denial(s)")
    );
    assert_eq!(lines[2], "  path:");
    assert!(lines[3].starts_with("     1. route [switch] continue →manual  "), "{}", lines[3]);
    assert_eq!(lines[4], "        output: {\"value\":\"manual\"}");
    assert!(lines[5].starts_with("     2. long [template_render] continue  "), "{}", lines[5]);
    // 160 Unicode scalar values, then `…`.
    let output = lines[6].strip_prefix("        output: ").expect("output line");
    assert_eq!(output.chars().count(), 161, "{output}");
    assert!(output.starts_with("{\"rendered\":\"éé") && output.ends_with('…'), "{output}");
    assert!(lines[7].starts_with("     3. save [write_file] error  "), "{}", lines[7]);
    assert_eq!(
        lines[8],
        "        error: policy violation: write_file denied on /etc/agentd-inspect-test: path not in [policy.fs].write"
    );
    assert_eq!(
        lines[9],
        "  outcome: {\"error\":\"policy violation: write_file denied on /etc/agentd-inspect-test: path not in [policy.fs].write\"}"
    );
    assert_eq!(lines.len(), 10, "{}", run.stdout);
    snap!(run.render());
}

#[test]
fn reads_the_record_from_stdin() {
    let scratch = Scratch::new();
    let path = real_record(&scratch);
    let from_file = scratch.run(["inspect", &path]);
    let from_stdin = scratch.exec(scratch.agentd().args(["inspect", "-"]).write_stdin(scratch.read(&path)));
    from_stdin.code(0).stderr_empty();
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

#[test]
fn completed_record_shows_the_detail_and_no_error_lines() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    scratch.run(["run", &file, "--quiet", "--record", "r.json"]).code(0);
    let run = scratch.run(["inspect", "r.json"]);
    run.code(0);
    snap!(run.render());
    assert!(!run.stdout.contains("  outcome:"), "detail null → no outcome line: {}", run.stdout);
    // The terminate entry (output null) is the last line: no output line follows it.
    let last = run.stdout.lines().last().expect("lines");
    assert!(last.starts_with("     2. done [terminate] terminate  "), "{}", run.stdout);
}

#[test]
fn missing_argument_is_a_usage_error() {
    let scratch = Scratch::new();
    let run = scratch.run(["inspect"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "agentd inspect: usage: agentd inspect RUN.json\n");
}

#[test]
fn unreadable_file_exits_2() {
    let scratch = Scratch::new();
    let run = scratch.run(["inspect", "nope.json"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: "), "{}", run.stderr);
    assert!(run.stderr.contains("nope.json"), "{}", run.stderr);
    scratch.mkdir("dir.json");
    let run = scratch.run(["inspect", "dir.json"]);
    run.code(2);
    assert!(run.stderr.contains("dir.json"), "{}", run.stderr);
}

#[test]
fn invalid_json_exits_2() {
    let scratch = Scratch::new();
    scratch.write("broken.json", "{\"workflow\": ");
    let run = scratch.run(["inspect", "broken.json"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: "), "{}", run.stderr);
    let run = scratch.exec(scratch.agentd().args(["inspect", "-"]).write_stdin("not json at all"));
    run.code(2);
    assert_eq!(run.stdout, "");
    scratch.write("binary.json", b"\xff\xfe\x00\x01");
    scratch.run(["inspect", "binary.json"]).code(2);
}

#[test]
fn older_record_with_missing_fields() {
    let scratch = Scratch::new();
    scratch.write(
        "old.json",
        json!({
            "workflow": "legacy",
            "status": "completed",
            "future_field": {"ignored": true},
            "cost": {"llm_calls": 2},
            "trace": {"entries": [
                {"node_id": "a", "kind": "merge", "outcome": "continue", "branch": null, "elapsed_ms": 3},
                {"output": null, "branch": 7},
                {"node_id": "c", "kind": "call", "outcome": "continue", "output": "short", "elapsed_ms": "slow",
                 "error": "x".repeat(170),
                 "children": [{"execution_id": "exec-1-2-3", "workflow": "child", "status": "completed", "entries": [{}, {}]},
                              {}]}
            ]},
            "detail": {"final_value": "y".repeat(250)}
        })
        .to_string(),
    );
    let run = scratch.run(["inspect", "old.json"]);
    run.code(0).stderr_empty();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "run ?  workflow=legacy  status=completed");
    assert_eq!(lines[1], "  start=  0 ms  2 llm call(s) / 0 tokens  0 policy denial(s)");
    assert_eq!(lines[2], "  path:");
    assert_eq!(lines[3], "     1. a [merge] continue  3 ms");
    assert_eq!(lines[4], "     2. ? [?] ?  0 ms");
    assert_eq!(lines[5], "     3. c [call] continue  0 ms");
    assert_eq!(lines[6], "        output: \"short\"");
    assert_eq!(lines[7], format!("        error: {}…", "x".repeat(160)));
    assert_eq!(lines[8], "        child exec-1-2-3 workflow=child status=completed (2 node(s))");
    // A child's entries are rendered under it, indented (the whole tree shows).
    assert_eq!(lines[9], "           1. ? [?] ?  0 ms");
    assert_eq!(lines[10], "           2. ? [?] ?  0 ms");
    assert_eq!(lines[11], "        child  workflow= status= (0 node(s))");
    let outcome = lines[12].strip_prefix("  outcome: ").expect("outcome line");
    assert_eq!(outcome.chars().count(), 201);
    assert!(outcome.starts_with("{\"final_value\":\"yyy") && outcome.ends_with('…'));
    assert_eq!(lines.len(), 13, "{}", run.stdout);
    snap!(run.render());
}

#[test]
fn record_without_entries() {
    let scratch = Scratch::new();
    scratch.write("empty.json", r#"{"execution_id": "", "workflow": 5, "trace": {}, "detail": null}"#);
    let run = scratch.run(["inspect", "empty.json"]);
    run.code(0);
    assert_eq!(
        run.stdout,
        "run ?  workflow=  status=\n  start=  0 ms  0 llm call(s) / 0 tokens  0 policy denial(s)\n  (no node trace captured)\n"
    );
    for text in ["[]", "null", "42", "\"text\""] {
        scratch.write("any.json", text);
        let run = scratch.run(["inspect", "any.json"]);
        run.code(0);
        assert!(run.stdout.ends_with("  (no node trace captured)\n"), "{text}: {}", run.stdout);
    }
}

#[test]
fn index_is_right_aligned_in_width_two() {
    let scratch = Scratch::new();
    let entries: Vec<_> = (0..12)
        .map(|i| json!({"node_id": format!("n{i}"), "kind": "merge", "outcome": "continue", "elapsed_ms": 0}))
        .collect();
    scratch.write("many.json", json!({"execution_id": "exec-a-b-c", "trace": {"entries": entries}}).to_string());
    let run = scratch.run(["inspect", "many.json"]);
    run.code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[3], "     1. n0 [merge] continue  0 ms");
    assert_eq!(lines[12], "    10. n9 [merge] continue  0 ms");
    assert_eq!(lines[14], "    12. n11 [merge] continue  0 ms");
}
