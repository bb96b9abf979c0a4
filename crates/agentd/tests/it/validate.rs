//! `agentd validate FILE` / `--validate-only` (01 §3 steps 6–9, §9.1; 02 §4) and the load and
//! validation diagnostics of a normal run.

use serde_json::json;

use crate::snap;
use crate::support::{Scratch, top_level_keys};

#[test]
fn valid_workflow() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["validate", &file]);
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "{\n  \"workflow\": \"terminate\",\n  \"ok\": true\n}\n");
}

#[test]
fn valid_workflow_with_warnings() {
    let scratch = Scratch::new();
    let file = scratch.fixture("warning.toml");
    let run = scratch.run(["validate", &file]);
    run.code(0).stderr_empty();
    assert_eq!(top_level_keys(&run.stdout), ["workflow", "ok", "warnings"]);
    assert_eq!(
        run.json(),
        json!({"workflow": "warned", "ok": true, "warnings": [
            {"code": "unfollowable_edge", "message": "edge #0 `start` → `done`: node `start` (merge) never emits label `maybe`"}
        ]})
    );
    snap!(run.render());
}

#[test]
fn validate_only_is_the_same_as_validate() {
    let scratch = Scratch::new();
    for fixture in ["terminate.toml", "warning.toml", "invalid.toml", "invalid_with_warning.toml", "unknown_key.toml"] {
        let file = scratch.fixture(fixture);
        let sub = scratch.run(["validate", &file]);
        let flag = scratch.run(["--validate-only", "--config", &file]);
        assert_eq!(sub.code, flag.code, "{fixture}");
        assert_eq!(sub.stdout, flag.stdout, "{fixture}");
        assert_eq!(sub.stderr, flag.stderr, "{fixture}");
    }
}

#[test]
fn validate_only_never_runs_and_never_warns_about_policy() {
    let scratch = Scratch::new();
    let file = scratch.fixture("fs.toml");
    let run =
        scratch.run(["--validate-only", "-c", &file, "--input", r#"{"path": "x.txt", "content": "x"}"#, "-s", "write"]);
    run.code(0).stderr_empty();
    assert!(!scratch.path("x.txt").exists());
    assert_eq!(run.json(), json!({"workflow": "fs", "ok": true}));
}

#[test]
fn invalid_workflow_reports_all_issues() {
    let scratch = Scratch::new();
    let file = scratch.fixture("invalid.toml");
    let run = scratch.run(["validate", &file]);
    run.code(5);
    assert_eq!(top_level_keys(&run.stdout), ["workflow", "ok", "issues"]);
    assert_eq!(
        run.json(),
        json!({"workflow": "broken", "ok": false, "issues": [
            {"code": "unknown_start_entry_node", "message": "start node `main` references unknown entry node `nowhere`"},
            {"code": "dangling_edge", "message": "edge #0 `only` → `ghost`: target node `ghost` is not declared"}
        ]})
    );
    // Caret diagnostics on stderr, each naming file:line:col.
    assert!(run.stderr.contains("invalid.toml:8:14"), "{}", run.stderr);
    assert!(run.stderr.contains("invalid.toml:16:6"), "{}", run.stderr);
    assert!(run.stderr.contains('^'), "{}", run.stderr);
    snap!(run.render());
}

#[test]
fn invalid_workflow_with_warnings_lists_both() {
    let scratch = Scratch::new();
    let file = scratch.fixture("invalid_with_warning.toml");
    let run = scratch.run(["validate", &file]);
    run.code(5);
    assert_eq!(top_level_keys(&run.stdout), ["workflow", "ok", "issues", "warnings"]);
    let report = run.json();
    assert_eq!(report["issues"], json!([{"code": "dup_node_id", "message": "node id `a` is declared more than once"}]));
    assert_eq!(report["warnings"][0]["code"], "unfollowable_edge");
    snap!(run.render());
}

#[test]
fn running_an_invalid_workflow_prints_the_report_and_exits_5() {
    let scratch = Scratch::new();
    let file = scratch.fixture("invalid.toml");
    let validate = scratch.run(["validate", &file]);
    let run = scratch.run(["run", &file, "--record", "r.json"]);
    run.code(5);
    assert_eq!(run.stdout, validate.stdout);
    assert!(!scratch.path("r.json").exists(), "no run happened");
}

#[test]
fn warnings_of_an_invalid_workflow_use_the_warning_line_on_a_normal_run() {
    // 01 §3 step 8: warnings → one stderr line each, `agentd: warning: [<code>] <message>`.
    let scratch = Scratch::new();
    let file = scratch.fixture("invalid_with_warning.toml");
    let run = scratch.run(["run", &file]);
    run.code(5);
    run.stderr_has_line(
        "agentd: warning: [unfollowable_edge] edge #1 `done` → `after`: `done` is a terminate node; its out-edges are never followed",
    );
}

#[test]
fn warnings_on_a_normal_run_are_one_line_each() {
    let scratch = Scratch::new();
    let file = scratch.fixture("warning.toml");
    let run = scratch.run(["run", &file]);
    run.code(0);
    run.stderr_has_line(
        "agentd: warning: [unfollowable_edge] edge #0 `start` → `done`: node `start` (merge) never emits label `maybe`",
    );
    let warning_lines = run.stderr_lines().into_iter().filter(|l| l.starts_with("agentd: warning: [")).count();
    assert_eq!(warning_lines, 1, "{}", run.stderr);
    snap!(run.render());
}

#[test]
fn quiet_suppresses_warning_lines() {
    let scratch = Scratch::new();
    let file = scratch.fixture("warning.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(0).stderr_empty();
    assert_eq!(run.json()["status"], "completed");
}

#[test]
fn toml_syntax_error_names_file_line_and_column() {
    let scratch = Scratch::new();
    let file = scratch.fixture("truncated.toml");
    for args in [vec!["validate", &file], vec!["run", &file], vec!["--validate-only", "-c", &file]] {
        let run = scratch.run(&args);
        run.code(2);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(run.stderr.starts_with("agentd: "), "{}", run.stderr);
        assert!(run.stderr.contains("truncated.toml:3:15"), "{args:?}: {}", run.stderr);
    }
    snap!(scratch.run(["validate", &file]).render());
}

#[test]
fn unknown_key_is_a_load_error_with_location() {
    let scratch = Scratch::new();
    let file = scratch.fixture("unknown_key.toml");
    let run = scratch.run(["validate", &file]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("unknown_key.toml:10:1"), "{}", run.stderr);
    assert!(run.stderr.contains("colour"), "{}", run.stderr);
    snap!(run.render());
}

#[test]
fn unknown_top_level_key_is_a_load_error() {
    let scratch = Scratch::new();
    scratch.write("top.toml", "name = \"x\"\nbogus = 1\n");
    let run = scratch.run(["validate", "top.toml"]);
    run.code(2);
    assert!(run.stderr.contains("top.toml:2:1"), "{}", run.stderr);
}

#[test]
fn unreadable_workflow_is_exit_2() {
    let scratch = Scratch::new();
    let run = scratch.run(["validate", "missing.toml"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: failed to read missing.toml: "), "{}", run.stderr);
}

#[test]
fn validate_without_a_file_is_no_workflow() {
    let scratch = Scratch::new();
    let run = scratch.run(["validate"]);
    run.code(2);
    assert!(run.stderr.starts_with("agentd: no workflow configured."), "{}", run.stderr);
}

#[test]
fn wrapped_form_validates_like_the_bare_form() {
    let scratch = Scratch::new();
    scratch.write(
        "wrapped.toml",
        "[[workflows]]\nname = \"hello\"\n[[workflows.start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[workflows.nodes]]\nid = \"done\"\ntype = \"terminate\"\n",
    );
    let run = scratch.run(["validate", "wrapped.toml"]);
    run.code(0);
    assert_eq!(run.json(), json!({"workflow": "hello", "ok": true}));
    let run = scratch.run(["run", "wrapped.toml", "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["last_node"], "done");
}

#[test]
fn empty_name_is_reported_as_is() {
    let scratch = Scratch::new();
    scratch.write("noname.toml", "name = \"\"\n");
    let run = scratch.run(["validate", "noname.toml"]);
    run.code(0);
    assert_eq!(run.stdout, "{\n  \"workflow\": \"\",\n  \"ok\": true\n}\n");
}

#[test]
fn bad_policy_patterns_are_validation_errors() {
    // 05 §3.1 load-time rules: one `policy_bad_pattern` issue per offending entry, naming the
    // table, index and pattern; valid entries (including relative and in-segment `*`) pass.
    let scratch = Scratch::new();
    scratch.write(
        "patterns.toml",
        r#"name = "patterns"

[policy.fs]
read = ["", "/a/**/b", "/a/?", "~/x", "/ok/**", "/a/[x]", "/a/{b}", "rel/**", "/var/log/app*", "/data/*/reports/**", "/logs/app-*.log"]
write = ["/w/safe/**", "/tab/	x"]

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "done"
type = "terminate"
"#,
    );
    let run = scratch.run(["validate", "patterns.toml"]);
    run.code(5);
    let report = run.json();
    let issues = report["issues"].as_array().expect("issues");
    assert!(issues.iter().all(|i| i["code"] == "policy_bad_pattern"), "{report}");
    let expected = [
        ("[policy.fs].read[0]", ""),
        ("[policy.fs].read[1]", "/a/**/b"),
        ("[policy.fs].read[2]", "/a/?"),
        ("[policy.fs].read[3]", "~/x"),
        ("[policy.fs].read[5]", "/a/[x]"),
        ("[policy.fs].read[6]", "/a/{b}"),
        ("[policy.fs].write[1]", "/tab/"),
    ];
    assert_eq!(issues.len(), expected.len(), "{report}");
    for (issue, (location, pattern)) in issues.iter().zip(expected) {
        let message = issue["message"].as_str().expect("message");
        assert!(message.contains(location), "{message} should name {location}");
        assert!(message.contains(pattern), "{message} should name {pattern:?}");
    }
    // The same workflow never runs.
    let run = scratch.run(["run", "patterns.toml", "--record", "r.json"]);
    run.code(5);
    assert!(!scratch.path("r.json").exists());
}
