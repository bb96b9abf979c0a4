//! `call`, `parallel` and `map` through the binary (04 §8): results and soft/hard failures,
//! timeouts, nested pauses, the depth limit, load failures that name the child file and line,
//! cycles refused at load, map bounds, result order under random latencies, the shared budget
//! envelope and the parent's policy applying to children.

use serde_json::{Value, json};

use crate::support::{Run, Scratch};

fn starts(entry: &str) -> String {
    format!("[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"{entry}\"\n")
}

/// A child that renders its input (a non-object input is `trigger.input`; an object's fields are
/// merged into `trigger`, 03 §6.2).
const ECHO: &str = "name = \"echo\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"show\"\n[[nodes]]\nid = \"show\"\ntype = \"template_render\"\ntemplate = \"got {{trigger.input}}{{trigger.a}}\"\n";
/// A child that fails.
const FAILS: &str = "name = \"fails\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"no\"\n[[nodes]]\nid = \"no\"\ntype = \"fail\"\nreason = \"child said no\"\n";
/// A child that pauses.
const PAUSES: &str = "name = \"pauses\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"wait\"\n[[nodes]]\nid = \"wait\"\ntype = \"pause_for_approval\"\n[[nodes]]\nid = \"after\"\ntype = \"terminate\"\n[[edges]]\nfrom = \"wait\"\nto = \"after\"\n";
/// A child that sleeps for `trigger.input` seconds (a string) and then renders it.
const SLEEPS: &str = "name = \"sleeps\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"nap\"\n[[nodes]]\nid = \"nap\"\ntype = \"shell_run\"\ncommand = \"/bin/sleep\"\nargs_from = \"trigger.input\"\ntimeout_secs = 60\n[[nodes]]\nid = \"show\"\ntype = \"template_render\"\ntemplate = \"slept {{trigger.input}}\"\n[[edges]]\nfrom = \"nap\"\nto = \"show\"\n";

fn node(kind_fields: &str) -> String {
    format!("[[nodes]]\nid = \"x\"\n{kind_fields}\n")
}

fn parent(scratch: &Scratch, body: &str) -> String {
    let text = format!("name = \"parent\"\n{}{body}", starts("x"));
    scratch.write("parent.toml", text);
    "parent.toml".to_string()
}

fn run(scratch: &Scratch, input: Value, extra: &[&str]) -> Run {
    let input = input.to_string();
    let mut args = vec!["run", "parent.toml", "--quiet", "--input", &input, "--record", "r.json"];
    args.extend_from_slice(extra);
    scratch.run(args)
}

fn record(scratch: &Scratch) -> Value {
    serde_json::from_str(&scratch.read("r.json")).expect("record")
}

#[test]
fn call_returns_the_child_result_and_attaches_its_trace() {
    let scratch = Scratch::new();
    scratch.write("children/echo.toml", ECHO);
    parent(&scratch, &node("type = \"call\"\nworkflow = \"children/echo.toml\"\ninput_from = \"trigger.value\""));
    let out = run(&scratch, json!({"value": 7}), &[]);
    out.code(0);
    assert_eq!(out.json()["final_value"], json!({"result": {"rendered": "got 7{{trigger.a}}"}}));
    let rec = record(&scratch);
    let child = &rec["trace"]["entries"][0]["children"][0];
    assert_eq!(child["workflow"], "echo");
    assert_eq!(child["status"], "completed");
    assert_eq!(child["entries"][0]["node_id"], "show");
    assert_eq!(rec["cost"]["workflow_starts"], 2, "the child's counters add to the parent's cost");
    // `inspect` renders the whole tree.
    let shown = scratch.run(["inspect", "r.json"]);
    shown.code(0);
    assert!(shown.stdout.contains("1. show [template_render] continue"), "{}", shown.stdout);
}

#[test]
fn call_defaults_to_the_raw_trigger_input_and_paths_relative_to_the_parent_file() {
    let scratch = Scratch::new();
    scratch.write("flows/echo.toml", ECHO);
    let text = format!("name = \"parent\"\n{}{}", starts("x"), node("type = \"call\"\nworkflow = \"echo.toml\""));
    scratch.write("flows/parent.toml", text);
    let out = scratch.run(["run", "flows/parent.toml", "--quiet", "--input", r#"{"a": 1}"#]);
    out.code(0);
    assert_eq!(out.json()["final_value"]["result"]["rendered"], "got {{trigger.input}}1");
}

#[test]
fn call_child_failure_takes_the_error_branch() {
    let scratch = Scratch::new();
    scratch.write("fails.toml", FAILS);
    parent(&scratch, &node("type = \"call\"\nworkflow = \"fails.toml\""));
    let out = run(&scratch, json!({}), &[]);
    out.code(0);
    assert_eq!(out.json()["final_value"], json!({"error": "child said no"}));
    assert_eq!(record(&scratch)["trace"]["entries"][0]["branch"], "error");
}

#[test]
fn nested_pause_is_hard_for_call_and_soft_for_parallel() {
    let scratch = Scratch::new();
    scratch.write("pauses.toml", PAUSES);
    parent(&scratch, &node("type = \"call\"\nworkflow = \"pauses.toml\""));
    let out = run(&scratch, json!({}), &[]);
    out.code(5);
    assert_eq!(
        out.json()["reason"],
        "workflow `parent`: sub-workflow paused; nested pause_for_approval is not supported"
    );
    scratch.write("echo.toml", ECHO);
    parent(
        &scratch,
        &node(
            "type = \"parallel\"\nbranches = [{ workflow = \"pauses.toml\" }, { workflow = \"echo.toml\", input_from = \"trigger.v\" }]",
        ),
    );
    let out = run(&scratch, json!({"v": 1}), &[]);
    out.code(0);
    assert_eq!(
        out.json()["final_value"],
        json!({"ok": false, "results": [
            {"error": "sub-workflow paused; nested pause_for_approval is not supported"},
            {"result": {"rendered": "got 1{{trigger.a}}"}}
        ]})
    );
}

#[test]
fn a_parent_deadline_during_a_child_times_the_parent_out() {
    let scratch = Scratch::new();
    scratch.write("sleeps.toml", SLEEPS);
    parent(&scratch, &node("type = \"call\"\nworkflow = \"sleeps.toml\"\ninput_from = \"trigger.args\""));
    let started = std::time::Instant::now();
    let out = run(&scratch, json!({"args": ["30"]}), &["--timeout-secs", "1"]);
    out.code(5);
    assert_eq!(out.json()["status"], "timed_out");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_node_timeout_on_call_is_a_timeout_error() {
    let scratch = Scratch::new();
    scratch.write("sleeps.toml", SLEEPS);
    parent(
        &scratch,
        &node("type = \"call\"\nworkflow = \"sleeps.toml\"\ninput_from = \"trigger.args\"\ntimeout_secs = 1"),
    );
    let out = run(&scratch, json!({"args": ["30"]}), &[]);
    out.code(5);
    assert_eq!(out.json()["reason"], "timeout: node x exceeded 1s");
}

#[test]
fn missing_and_invalid_children() {
    let scratch = Scratch::new();
    parent(&scratch, &node("type = \"call\"\nworkflow = \"nowhere.toml\""));
    let out = run(&scratch, json!({}), &[]);
    out.code(5);
    let reason = out.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("workflow `parent`: call `x`: read child workflow "), "{reason}");
    assert!(reason.contains("nowhere.toml"), "{reason}");

    scratch.write("bad.toml", "name = \"bad\"\n[[nodes]]\nid = \"a\"\ntype = \"template_render\"\ntemplate = \"x\"\n[[edges]]\nfrom = \"a\"\nto = \"ghost\"\n");
    parent(&scratch, &node("type = \"call\"\nworkflow = \"bad.toml\""));
    let out = run(&scratch, json!({}), &[]);
    out.code(5);
    let reason = out.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("bad.toml failed validation: "), "{reason}");
    assert!(reason.contains("bad.toml:8:"), "the diagnostic names the child file and line: {reason}");

    scratch.write("broken.toml", "name = \"broken\"\n[[nodes]\n");
    parent(
        &scratch,
        &node("type = \"map\"\nitems_from = \"trigger.items\"\nworkflow = \"broken.toml\"\nmax_items = 3"),
    );
    let out = run(&scratch, json!({"items": [1]}), &[]);
    out.code(0);
    let error = out.json()["final_value"]["results"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with("parse child ") && error.contains("broken.toml:2:"), "{error}");
}

#[test]
fn cycles_between_files_are_refused_at_load() {
    let scratch = Scratch::new();
    scratch.write("a.toml", format!("name = \"a\"\n{}{}", starts("x"), node("type = \"call\"\nworkflow = \"b.toml\"")));
    scratch.write("b.toml", format!("name = \"b\"\n{}{}", starts("x"), node("type = \"call\"\nworkflow = \"a.toml\"")));
    let out = scratch.run(["run", "a.toml", "--quiet"]);
    out.code(5);
    assert!(out.stderr.contains("sub-workflow cycle: "), "{}", out.stderr);
}

#[test]
fn the_depth_limit_is_hard() {
    let scratch = Scratch::new();
    // c0 → c1 → … → c9: the child at depth 9 may not start.
    for i in 0..10 {
        let body = if i < 9 {
            node(&format!("type = \"call\"\nworkflow = \"c{}.toml\"", i + 1))
        } else {
            node("type = \"terminate\"")
        };
        scratch.write(format!("c{i}.toml"), format!("name = \"c{i}\"\n{}{body}", starts("x")));
    }
    let out = scratch.run(["run", "c0.toml", "--quiet"]);
    out.code(5);
    assert_eq!(out.json()["reason"], "workflow `c8`: call depth exceeded 8 at node `x`");
    // Eight levels are fine.
    let out = scratch.run(["run", "c1.toml", "--quiet"]);
    out.code(0);
}

fn map_node(extra: &str) -> String {
    node(&format!("type = \"map\"\nitems_from = \"trigger.items\"\nworkflow = \"echo.toml\"\nmax_items = 3\n{extra}"))
}

#[test]
fn map_bounds_and_shapes() {
    let scratch = Scratch::new();
    scratch.write("echo.toml", ECHO);
    parent(&scratch, &map_node(""));
    let out = run(&scratch, json!({"items": [1, "b", {"a": 3}]}), &[]);
    out.code(0);
    assert_eq!(
        out.json()["final_value"],
        json!({"ok": true, "results": [
            {"result": {"rendered": "got 1{{trigger.a}}"}},
            {"result": {"rendered": "got b{{trigger.a}}"}},
            {"result": {"rendered": "got {{trigger.input}}3"}}
        ]})
    );
    let out = run(&scratch, json!({"items": []}), &[]);
    out.code(0);
    assert_eq!(out.json()["final_value"], json!({"ok": true, "results": []}));
    assert_eq!(record(&scratch)["cost"]["workflow_starts"], 1, "no children for an empty array");

    let out = run(&scratch, json!({"items": [1, 2, 3, 4]}), &[]);
    out.code(5);
    assert_eq!(
        out.json()["reason"],
        "workflow `parent`: map node `x`: 4 items exceed the declared max_items 3 — raise the bound deliberately or shrink the input"
    );
    let out = run(&scratch, json!({"items": "abc"}), &[]);
    out.code(5);
    assert_eq!(
        out.json()["reason"],
        "workflow `parent`: map node `x`: items_from `trigger.items` resolved to a string — an array is required"
    );
    let out = run(&scratch, json!({}), &[]);
    out.code(5);
    assert_eq!(
        out.json()["reason"],
        "workflow `parent`: map node `x`: items_from `trigger.items` is not set in the execution context"
    );
}

#[test]
fn map_child_failures_are_soft_and_labelled() {
    let scratch = Scratch::new();
    scratch.write("fails.toml", FAILS);
    parent(&scratch, &node("type = \"map\"\nitems_from = \"trigger.items\"\nworkflow = \"fails.toml\"\nmax_items = 2"));
    let out = run(&scratch, json!({"items": [1, 2]}), &[]);
    out.code(0);
    assert_eq!(
        out.json()["final_value"],
        json!({"ok": false, "results": [{"error": "sub-workflow failed: child said no"}, {"error": "sub-workflow failed: child said no"}]})
    );
    assert_eq!(record(&scratch)["trace"]["entries"][0]["branch"], "error");
}

#[test]
fn map_results_keep_input_order_under_random_latencies() {
    let scratch = Scratch::new();
    scratch.write("sleeps.toml", SLEEPS);
    parent(
        &scratch,
        &node(
            "type = \"map\"\nitems_from = \"trigger.items\"\nworkflow = \"sleeps.toml\"\nmax_items = 12\nmax_concurrent = 4",
        ),
    );
    // Pseudo-random latencies (fixed seed), so later elements often finish first.
    let mut x: u32 = 0x2545_f491;
    let delays: Vec<String> = (0..12)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            format!("0.{:02}", x % 20)
        })
        .collect();
    let items: Vec<Value> = delays.iter().map(|d| json!([d])).collect();
    let out = run(&scratch, json!({"items": items}), &[]);
    out.code(0);
    let results = out.json()["final_value"]["results"].as_array().cloned().unwrap_or_default();
    let got: Vec<String> =
        results.iter().map(|r| r["result"]["rendered"].as_str().unwrap_or_default().to_string()).collect();
    let want: Vec<String> = delays.iter().map(|d| format!("slept [\"{d}\"]")).collect();
    assert_eq!(got, want);
    let children = record(&scratch)["trace"]["entries"][0]["children"].as_array().map(Vec::len);
    assert_eq!(children, Some(12));
}

#[test]
fn children_share_the_parent_token_budget() {
    let scratch = Scratch::new();
    scratch
        .write("answers.toml", "cycle = true\n[[turns]]\ncontent = \"ok\"\nprompt_tokens = 6\ncompletion_tokens = 4\n");
    scratch.write(
        "ask.toml",
        "name = \"ask\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"q\"\n[[nodes]]\nid = \"q\"\ntype = \"llm_infer\"\nbackend = \"model\"\nprompt = \"hi\"\n",
    );
    let body = format!(
        "[[intelligence.backends]]\nname = \"model\"\nprovider = \"scripted\"\npath = \"answers.toml\"\n[budget]\nmax_llm_tokens = 25\n{}",
        node(
            "type = \"map\"\nitems_from = \"trigger.items\"\nworkflow = \"ask.toml\"\nmax_items = 5\nmax_concurrent = 1"
        )
    );
    parent(&scratch, &body);
    let out = run(&scratch, json!({"items": [1, 2, 3, 4, 5]}), &[]);
    out.code(0);
    let results = out.json()["final_value"]["results"].clone();
    let errors: Vec<&Value> = results.as_array().into_iter().flatten().filter(|r| r.get("error").is_some()).collect();
    assert_eq!(
        errors.len(),
        2,
        "three children fit in 25 tokens (10 each, the third overshoots), two are refused: {results}"
    );
    assert!(errors[0]["error"].as_str().unwrap_or_default().contains("budget.max_llm_tokens exceeded: 30 / 25"));
    let cost = &record(&scratch)["cost"];
    assert_eq!((cost["llm_calls"].as_u64(), cost["llm_tokens"].as_u64()), (Some(3), Some(30)));
}

#[test]
fn a_child_cannot_widen_the_parent_policy() {
    let scratch = Scratch::new();
    scratch.write("secret.txt", "top secret");
    scratch.mkdir("safe");
    let root = scratch.root_str();
    scratch.write(
        "reader.toml",
        format!(
            "name = \"reader\"\n[policy.fs]\nread = [\"{root}/**\"]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"r\"\n[[nodes]]\nid = \"r\"\ntype = \"read_file\"\npath_from = \"trigger.input\"\n"
        ),
    );
    let body = format!(
        "[policy.fs]\nread = [\"{root}/safe/**\"]\n{}",
        node("type = \"call\"\nworkflow = \"reader.toml\"\ninput_from = \"trigger.path\"")
    );
    parent(&scratch, &body);
    let out = run(&scratch, json!({"path": format!("{root}/secret.txt")}), &[]);
    out.code(5);
    let reason = out.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("policy violation: read_file denied on "), "{reason}");
    assert!(!out.stdout.contains("top secret"));
    assert_eq!(record(&scratch)["cost"]["policy_denials"], 1, "child denials count in the parent");
}

#[test]
fn dry_run_is_inherited() {
    let scratch = Scratch::new();
    scratch.write(
        "writer.toml",
        "name = \"writer\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"w\"\n[[nodes]]\nid = \"w\"\ntype = \"write_file\"\npath_from = \"trigger.input\"\ncontent_from = \"trigger.input\"\n",
    );
    parent(&scratch, &node("type = \"call\"\nworkflow = \"writer.toml\"\ninput_from = \"trigger.path\""));
    let out = run(&scratch, json!({"path": "out.txt"}), &["--dry-run"]);
    out.code(0);
    assert_eq!(out.json()["final_value"]["result"]["dry_run"], true);
    assert!(!scratch.path("out.txt").exists());
}
