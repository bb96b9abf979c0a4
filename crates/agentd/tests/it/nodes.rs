//! Node kinds that run in this build, driven through the binary (04 §1–§4, 03 §7).

use serde_json::{Value, json};

use crate::snap;
use crate::support::{Run, Scratch};

/// Runs `workflow` with `input`, expecting a completed run; returns its final value.
#[track_caller]
fn final_value(scratch: &Scratch, workflow: &str, extra: &[&str], input: &Value) -> Value {
    let input = input.to_string();
    let mut args = vec!["run", workflow, "--quiet", "--input", &input];
    args.extend_from_slice(extra);
    let run = scratch.run(&args);
    run.code(0);
    let outcome = run.json();
    assert_eq!(outcome["status"], "completed", "{outcome}");
    outcome["final_value"].clone()
}

/// Runs and expects an errored run; returns the reason after checking stdout/stderr agree.
#[track_caller]
fn errored(scratch: &Scratch, workflow: &str, extra: &[&str], input: &Value) -> (String, Run) {
    let input = input.to_string();
    let mut args = vec!["run", workflow, "--quiet", "--input", &input];
    args.extend_from_slice(extra);
    let run = scratch.run(&args);
    run.code(5);
    let outcome = run.json();
    assert_eq!(outcome["status"], "errored", "{outcome}");
    let reason = outcome["reason"].as_str().expect("reason").to_string();
    assert_eq!(run.stderr, format!("agentd: {reason}\n"));
    (reason, run)
}

#[test]
fn condition_truthiness_table() {
    let scratch = Scratch::new();
    let file = scratch.fixture("condition.toml");
    let falsy = [json!(null), json!(false), json!(""), json!(0), json!(0.0), json!(-0.0), json!([]), json!({})];
    let truthy = [
        json!(true),
        json!("0"),
        json!("false"),
        json!(" "),
        json!(1),
        json!(-1),
        json!(0.5),
        json!(1e-300),
        json!([0]),
        json!([null]),
        json!({"a": null}),
    ];
    for value in &falsy {
        let out = final_value(&scratch, &file, &[], &json!({ "v": value }));
        assert_eq!(out, json!({"rendered": "falsy"}), "{value} must be falsy");
    }
    for value in &truthy {
        let out = final_value(&scratch, &file, &[], &json!({ "v": value }));
        assert_eq!(out, json!({"rendered": "truthy"}), "{value} must be truthy");
    }
    // Not set → null → falsy.
    let out = final_value(&scratch, &file, &[], &json!({}));
    assert_eq!(out, json!({"rendered": "falsy"}));
}

#[test]
fn condition_output_and_branch_in_the_trace() {
    let scratch = Scratch::new();
    let file = scratch.fixture("condition.toml");
    final_value(&scratch, &file, &["--record", "rec.json"], &json!({"v": [1, 2]}));
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    let first = &record["trace"]["entries"][0];
    assert_eq!(first["node_id"], "test");
    assert_eq!(first["outcome"], "continue");
    assert_eq!(first["branch"], "true");
    assert_eq!(first["output"], json!({"value": [1, 2]}));
}

/// The label the lone switch emitted for `value`.
fn switch_label(scratch: &Scratch, file: &str, value: &Value) -> (Value, Value) {
    let out = final_value(scratch, file, &["--record", "rec.json"], &json!({ "v": value }));
    let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    (out, record["trace"]["entries"][0]["branch"].clone())
}

#[test]
fn switch_labels_for_every_value_type() {
    let scratch = Scratch::new();
    let file = scratch.fixture("switch_labels.toml");
    // Numbers are written as JSON text so floats keep their form (`2.0`).
    let cases: [(&str, &str); 13] = [
        ("\"bug\"", "bug"),
        ("\"\"", ""),
        ("true", "true"),
        ("false", "false"),
        ("42", "42"),
        ("-7", "-7"),
        ("1.5", "1.5"),
        ("2.0", "2.0"),
        ("0", "0"),
        ("18446744073709551615", "18446744073709551615"),
        ("null", "null"),
        ("[1, 2]", "array"),
        ("{\"a\": 1}", "object"),
    ];
    for (json_text, label) in cases {
        let value: Value = serde_json::from_str(json_text).expect("case JSON");
        let input = format!("{{\"v\": {json_text}}}");
        let run = scratch.run(["run", &file, "--quiet", "--record", "rec.json", "--input", &input]);
        run.code(0);
        let outcome = run.json();
        assert_eq!(outcome["final_value"], json!({ "value": value }), "{json_text}");
        let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
        assert_eq!(record["trace"]["entries"][0]["branch"], label, "switch on {json_text}");
    }
    // Not set → null → label "null".
    let (out, label) = switch_label(&scratch, &file, &Value::Null);
    assert_eq!(out, json!({"value": null}));
    assert_eq!(label, "null");
}

#[test]
fn switch_routes_on_labels_and_falls_back_to_the_default_edge() {
    let scratch = Scratch::new();
    let file = scratch.fixture("switch_routes.toml");
    let route = |input: &str| {
        let run = scratch.run(["run", &file, "--quiet", "--input", input]);
        run.code(0);
        run.json()["final_value"]["rendered"].as_str().expect("rendered").to_string()
    };
    assert_eq!(route(r#"{"v": 42}"#), "took 42");
    assert_eq!(route(r#"{"v": "42"}"#), "took 42");
    assert_eq!(route(r#"{"v": 2.0}"#), "took 2.0");
    assert_eq!(route(r#"{"v": 2}"#), "took the default edge");
    assert_eq!(route(r#"{"v": ""}"#), "took the empty label");
    assert_eq!(route(r#"{"v": null}"#), "took the default edge");
    assert_eq!(route(r#"{"v": [42]}"#), "took the default edge");
}

#[test]
fn merge_outputs_null_and_passes_through() {
    let scratch = Scratch::new();
    let file = scratch.fixture("merge.toml");
    for v in [true, false] {
        let out = final_value(&scratch, &file, &["--record", "rec.json"], &json!({ "v": v }));
        assert_eq!(out, json!({"rendered": "joined"}));
        let record: Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
        let join = &record["trace"]["entries"][1];
        assert_eq!(join["node_id"], "join");
        assert_eq!(join["output"], Value::Null);
        assert_eq!(join["branch"], Value::Null);
    }
}

#[test]
fn parse_json_parses_a_string() {
    let scratch = Scratch::new();
    let file = scratch.fixture("parse_json.toml");
    let out = final_value(&scratch, &file, &[], &json!({"text": "{\"b\": [1, 2.5], \"a\": null}"}));
    assert_eq!(out, json!({"parsed": {"a": null, "b": [1, 2.5]}}));
    let out = final_value(&scratch, &file, &[], &json!({"text": "\"just text\""}));
    assert_eq!(out, json!({"parsed": "just text"}));
}

#[test]
fn parse_json_invalid_is_a_tool_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("parse_json.toml");
    let (reason, run) = errored(&scratch, &file, &[], &json!({"text": "{not json"}));
    let parser = serde_json::from_str::<Value>("{not json").expect_err("invalid").to_string();
    assert_eq!(reason, format!("tool `parse_json` failed: invalid JSON at `trigger.text`: {parser}"));
    snap!(run.render());
}

#[test]
fn parse_json_unset_and_wrong_type_errors() {
    let scratch = Scratch::new();
    let file = scratch.fixture("parse_json.toml");
    let (reason, _) = errored(&scratch, &file, &[], &json!({}));
    assert_eq!(reason, "tool `parse_json` failed: path `trigger.text` is not set in the execution context");
    for (value, type_name) in [
        (json!(null), "null"),
        (json!(true), "bool"),
        (json!(1), "number"),
        (json!([]), "array"),
        (json!({}), "object"),
    ] {
        let (reason, _) = errored(&scratch, &file, &[], &json!({ "text": value }));
        assert_eq!(
            reason,
            format!("tool `parse_json` failed: path `trigger.text` must resolve to a string; got {type_name}")
        );
    }
}

#[test]
fn json_select_found_missing_explicit_null_index_and_whole() {
    let scratch = Scratch::new();
    let file = scratch.fixture("json_select.toml");
    let data = json!({"data": {"user": {"name": "Ada", "nickname": null}, "tags": ["x", "y"]}});
    let select = |start: &str| final_value(&scratch, &file, &["--start", start], &data);
    assert_eq!(select("found"), json!({"found": true, "value": "Ada"}));
    assert_eq!(select("missing"), json!({"found": false, "value": null}));
    assert_eq!(select("explicit_null"), json!({"found": true, "value": null}));
    assert_eq!(select("index"), json!({"found": true, "value": "y"}));
    assert_eq!(select("whole"), json!({"found": true, "value": data["data"]}));
    let (reason, _) = errored(&scratch, &file, &["--start", "unset_input"], &data);
    assert_eq!(reason, "tool `json_select` failed: path `trigger.nowhere` is not set in the execution context");
}

#[test]
fn template_render_spec_example() {
    let scratch = Scratch::new();
    let file = scratch.fixture("template.toml");
    let input = json!({"data": {"user": {"name": "Ada"}, "tags": ["x", "y"], "n": 7}});
    let out = final_value(&scratch, &file, &["--start", "example"], &input);
    assert_eq!(out, json!({"rendered": "hi Ada, first=x, n=7, all=[\"x\",\"y\"], {{missing}}"}));
}

#[test]
fn template_render_context_fallback_and_edge_rules() {
    let scratch = Scratch::new();
    let file = scratch.fixture("template.toml");
    let input = json!({"label": "bug", "data": {"user": {"name": "Ada"}}});
    let out = final_value(&scratch, &file, &["--start", "fallback"], &input);
    assert_eq!(
        out,
        json!({"rendered": "label=bug user=Ada kind=manual whole={\"user\":{\"name\":\"Ada\"}} nope={{nope.x}} secret={{secret:TOKEN}} open {{ user.name"})
    );
}

#[test]
fn template_render_without_input_from_uses_null_data_and_the_context() {
    let scratch = Scratch::new();
    let file = scratch.fixture("template.toml");
    let out = final_value(&scratch, &file, &["--start", "no_input"], &json!({"data": {"n": 7}}));
    assert_eq!(out, json!({"rendered": "null data: [null] [{{x}}] via context: 7"}));
}

#[test]
fn template_render_unset_input_is_an_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("template.toml");
    let (reason, _) = errored(&scratch, &file, &["--start", "unset"], &json!({}));
    assert_eq!(reason, "tool `template_render` failed: path `trigger.nowhere` is not set in the execution context");
}

#[test]
fn diff_compute_example() {
    let scratch = Scratch::new();
    let file = scratch.fixture("diff.toml");
    let input = json!({
        "left": {"a": {"b": 1}, "items": [{"name": "x"}, 2], "gone": true, "same": [1, {"k": "v"}]},
        "right": {"a": {"b": 2}, "items": [{"name": "y"}], "new": null, "same": [1, {"k": "v"}]}
    });
    let run = scratch.run(["run", &file, "--quiet", "--input", &input.to_string()]);
    run.code(0);
    assert_eq!(
        run.json()["final_value"],
        json!({
            "added": {"new": null},
            "changed": {"a.b": {"from": 1, "to": 2}, "items[0].name": {"from": "x", "to": "y"}},
            "removed": {"gone": true, "items[1]": 2},
            "unchanged": false
        })
    );
    snap!(run.render());
}

#[test]
fn diff_compute_roots_strict_equality_and_unchanged() {
    let scratch = Scratch::new();
    let file = scratch.fixture("diff.toml");
    // Written as text: the integer 1 and the float 1.0 differ.
    let diff = |left: &str, right: &str| {
        let input = format!("{{\"left\": {left}, \"right\": {right}}}");
        let run = scratch.run(["run", &file, "--quiet", "--input", &input]);
        run.code(0);
        run.json()["final_value"].clone()
    };
    assert_eq!(
        diff("1", "1.0"),
        json!({"added": {}, "changed": {"$": {"from": 1, "to": 1.0}}, "removed": {}, "unchanged": false})
    );
    assert_eq!(diff("1", "\"1\"")["changed"], json!({"$": {"from": 1, "to": "1"}}));
    assert_eq!(diff("[1]", "[1, {\"x\": 2}]")["added"], json!({"[1]": {"x": 2}}));
    assert_eq!(diff("[[1, 2]]", "[[1]]")["removed"], json!({"[0][1]": 2}));
    assert_eq!(
        diff("{\"a\": [1]}", "{\"a\": [1]}"),
        json!({"added": {}, "changed": {}, "removed": {}, "unchanged": true})
    );
    assert_eq!(diff("{\"a\": 1}", "[1]")["changed"], json!({"$": {"from": {"a": 1}, "to": [1]}}));
}

#[test]
fn diff_compute_unset_side_is_an_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("diff.toml");
    let (reason, _) = errored(&scratch, &file, &[], &json!({"left": 1}));
    assert_eq!(reason, "tool `diff_compute` failed: path `trigger.right` is not set in the execution context");
}

mod read_env {
    use serde_json::json;

    use crate::snap;
    use crate::support::Scratch;

    fn run(scratch: &Scratch, file: &str, start: &str) -> crate::support::Run {
        scratch.exec(
            scratch
                .agentd()
                .env("APP_NAME", "billing")
                .env("APP_TOKEN", "s3cr3t-value")
                .env("HOME", "/home/someone")
                .args(["run", file, "--quiet", "--start", start]),
        )
    }

    #[test]
    fn set_variable() {
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env.toml");
        let run = run(&scratch, &file, "set");
        run.code(0).stderr_empty();
        assert_eq!(run.json()["final_value"], json!({"key": "APP_NAME", "value": "billing"}));
    }

    #[test]
    fn missing_variable() {
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env.toml");
        let run = run(&scratch, &file, "missing");
        run.code(0);
        assert_eq!(run.json()["final_value"], json!({"key": "APP_MISSING", "missing": true, "value": null}));
    }

    #[test]
    fn denied_by_policy() {
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env.toml");
        let run = run(&scratch, &file, "denied");
        run.code(5);
        let reason = "policy violation: read_env denied on HOME: key not in [policy.env].read_keys";
        assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": "denied"}));
        assert_eq!(run.stderr, format!("agentd: {reason}\n"));
        assert!(!run.stdout.contains("/home/someone"));
    }

    #[test]
    fn secret_backed_variable_is_refused_and_never_leaks() {
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env.toml");
        let mut command = scratch.agentd();
        command
            .env("APP_NAME", "billing")
            .env("APP_TOKEN", "s3cr3t-value")
            .args(["run", &file, "--start", "secret", "--record", "rec.json"]);
        let run = scratch.exec(&mut command);
        run.code(5);
        let reason = "policy violation: read_env denied on APP_TOKEN: variable backs a declared secret";
        assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": "secret"}));
        let record = scratch.read("rec.json");
        for text in [&run.stdout, &run.stderr, &record] {
            assert!(!text.contains("s3cr3t-value"), "a secret value leaked:\n{text}");
        }
        let record: serde_json::Value = serde_json::from_str(&record).expect("record");
        assert_eq!(record["cost"]["policy_denials"], 1);
        snap!(run.render());
    }

    #[test]
    fn allow_all_mode_reads_anything_but_secret_backed_variables() {
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env_allow_all.toml");
        let plain = run(&scratch, &file, "plain");
        plain.code(0);
        assert_eq!(plain.json()["final_value"], json!({"key": "HOME", "value": "/home/someone"}));
        let secret = run(&scratch, &file, "secret");
        secret.code(5);
        assert_eq!(
            secret.json()["reason"],
            "policy violation: read_env denied on APP_TOKEN: variable backs a declared secret"
        );
        assert!(!secret.stdout.contains("s3cr3t-value") && !secret.stderr.contains("s3cr3t-value"));
    }

    #[test]
    fn empty_policy_table_denies_read_env() {
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env_empty_policy.toml");
        let run = run(&scratch, &file, "main");
        run.code(5);
        let outcome = run.json();
        assert_eq!(outcome["status"], "errored");
        assert_eq!(outcome["last_node"], "home");
        let reason = outcome["reason"].as_str().expect("reason");
        assert!(reason.starts_with("policy violation: read_env denied on HOME: "), "{reason}");
        assert!(!run.stdout.contains("/home/someone"));
    }

    #[test]
    fn undeclared_secret_source_fails_at_startup() {
        // 08 §3.3 (01 §3 step 13): every declared secret is resolved once at startup; a failure
        // is `agentd: [[secrets]]: secret `NAME`: <reason>`, exit 5, before any run.
        let scratch = Scratch::new();
        let file = scratch.fixture("read_env.toml");
        let run =
            scratch.exec(scratch.agentd().env("APP_NAME", "billing").args(["run", &file, "--quiet", "--start", "set"]));
        run.code(5);
        assert_eq!(run.stdout, "", "no run happens");
        assert!(run.stderr.starts_with("agentd: [[secrets]]: secret `tracker_token`: "), "{}", run.stderr);
    }
}

mod filesystem {
    use serde_json::{Value, json};

    use super::{errored, final_value};
    use crate::support::Scratch;

    #[test]
    fn write_read_and_create_dir() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        let out =
            final_value(&scratch, &file, &["--start", "write"], &json!({"path": "out/deep/a.txt", "content": "héllo"}));
        assert_eq!(out, json!({"bytes": 6, "path": "out/deep/a.txt", "written": true}));
        assert_eq!(scratch.read("out/deep/a.txt"), "héllo");

        let out = final_value(&scratch, &file, &["--start", "read"], &json!({"path": "out/deep/a.txt"}));
        assert_eq!(out, json!({"bytes": 6, "content": "héllo", "path": "out/deep/a.txt"}));

        let out = final_value(&scratch, &file, &["--start", "mkdir"], &json!({"path": "made/one/two"}));
        assert_eq!(out, json!({"created": true, "path": "made/one/two"}));
        assert!(scratch.path("made/one/two").is_dir());
        // An existing directory is success.
        let out = final_value(&scratch, &file, &["--start", "mkdir"], &json!({"path": "made/one/two"}));
        assert_eq!(out, json!({"created": true, "path": "made/one/two"}));
    }

    #[test]
    fn absolute_paths_are_echoed_as_given() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        let path = format!("{}/./abs/../abs.txt", scratch.root_str());
        let out = final_value(&scratch, &file, &["--start", "write"], &json!({"path": path, "content": "x"}));
        assert_eq!(out, json!({"bytes": 1, "path": path, "written": true}));
        assert_eq!(scratch.read("abs.txt"), "x");
    }

    #[test]
    fn write_truncates_an_existing_file() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        scratch.write("t.txt", "a much longer previous content");
        final_value(&scratch, &file, &["--start", "write"], &json!({"path": "t.txt", "content": "short"}));
        assert_eq!(scratch.read("t.txt"), "short");
    }

    #[test]
    fn non_string_content_is_written_as_compact_json() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        for (content, text) in [
            (json!({"b": [1, 2], "a": {"x": null}}), r#"{"a":{"x":null},"b":[1,2]}"#),
            (json!(42), "42"),
            (json!(true), "true"),
            (json!(null), "null"),
            (json!([1.5, "s"]), r#"[1.5,"s"]"#),
        ] {
            let out =
                final_value(&scratch, &file, &["--start", "write"], &json!({"path": "c.json", "content": content}));
            assert_eq!(out["bytes"], text.len(), "{content}");
            assert_eq!(scratch.read("c.json"), text, "{content}");
        }
    }

    #[test]
    fn dry_run_outputs_placeholders_and_touches_nothing() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        scratch.write("exists.txt", "content");
        let out = final_value(
            &scratch,
            &file,
            &["--start", "write", "--dry-run"],
            &json!({"path": "new/w.txt", "content": {"k": 1}}),
        );
        assert_eq!(out, json!({"bytes": 7, "dry_run": true, "path": "new/w.txt"}));
        let out = final_value(&scratch, &file, &["--start", "read", "--dry-run"], &json!({"path": "exists.txt"}));
        assert_eq!(out, json!({"dry_run": true, "path": "exists.txt"}));
        let out = final_value(&scratch, &file, &["--start", "mkdir", "--dry-run"], &json!({"path": "new/dir"}));
        assert_eq!(out, json!({"dry_run": true, "path": "new/dir"}));
        assert!(!scratch.path("new").exists(), "dry-run created something: {:?}", scratch.listing());
    }

    #[test]
    fn dry_run_read_of_a_missing_file_is_still_a_placeholder() {
        // Order (04 §3.1): resolve → policy → dry-run → read; the read never happens.
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        let out = final_value(&scratch, &file, &["--start", "read", "--dry-run"], &json!({"path": "nope.txt"}));
        assert_eq!(out, json!({"dry_run": true, "path": "nope.txt"}));
    }

    #[test]
    fn unset_content_errors_even_under_dry_run() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        for extra in [&["--start", "write"][..], &["--start", "write", "--dry-run"][..]] {
            let (reason, _) = errored(&scratch, &file, extra, &json!({"path": "w.txt"}));
            assert_eq!(reason, "tool `write_file` failed: path `trigger.content` is not set in the execution context");
        }
        assert!(!scratch.path("w.txt").exists());
    }

    #[test]
    fn path_type_errors() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        for (start, kind) in [("write", "write_file"), ("read", "read_file"), ("mkdir", "create_dir")] {
            for (value, type_name) in [
                (json!(7), "number"),
                (json!(null), "null"),
                (json!(["a"]), "array"),
                (json!({}), "object"),
                (json!(false), "bool"),
            ] {
                let (reason, _) =
                    errored(&scratch, &file, &["--start", start], &json!({"path": value, "content": "x"}));
                assert_eq!(
                    reason,
                    format!("tool `{kind}` failed: path `trigger.path` must resolve to a string; got {type_name}")
                );
            }
            let (reason, _) = errored(&scratch, &file, &["--start", start], &json!({"content": "x"}));
            assert_eq!(
                reason,
                format!("tool `{kind}` failed: path `trigger.path` is not set in the execution context")
            );
        }
    }

    #[test]
    fn read_of_a_missing_file_is_a_tool_error_naming_the_path() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        let (reason, _) = errored(&scratch, &file, &["--start", "read"], &json!({"path": "nope.txt"}));
        assert!(reason.starts_with("tool `read_file` failed: read nope.txt: "), "{reason}");
    }

    #[test]
    fn read_of_non_utf8_content_is_a_tool_error() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        scratch.write("bin.dat", b"\xff\xfe\x00binary");
        let (reason, _) = errored(&scratch, &file, &["--start", "read"], &json!({"path": "bin.dat"}));
        assert!(reason.starts_with("tool `read_file` failed: "), "{reason}");
        assert!(reason.contains("bin.dat"), "the error names the path: {reason}");
    }

    #[test]
    fn write_into_a_path_under_a_regular_file_is_a_tool_error() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        scratch.write("plain", "x");
        let (reason, _) =
            errored(&scratch, &file, &["--start", "write"], &json!({"path": "plain/sub/x.txt", "content": "x"}));
        assert!(reason.starts_with("tool `write_file` failed: mkdir_p "), "{reason}");
        let (reason, _) = errored(&scratch, &file, &["--start", "mkdir"], &json!({"path": "plain/sub"}));
        assert!(reason.starts_with("tool `create_dir` failed: mkdir_p "), "{reason}");
    }

    #[test]
    fn records_of_fs_runs_have_the_outputs() {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs.toml");
        final_value(
            &scratch,
            &file,
            &["--start", "write", "--record", "r.json"],
            &json!({"path": "r.txt", "content": "abc"}),
        );
        let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
        assert_eq!(record["trace"]["entries"][0]["output"], json!({"bytes": 3, "path": "r.txt", "written": true}));
        assert_eq!(record["detail"], json!({"bytes": 3, "path": "r.txt", "written": true}));
    }
}
