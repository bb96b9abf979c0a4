//! The filesystem policy through the binary (05 §2, §3.2, §4, §6, §7): every escape of the
//! 05 §3.2 table is denied for write_file, read_file and create_dir, reported in the outcome, on
//! stderr and in the record, and nothing is written outside the allowlist.

use serde_json::{Value, json};

use crate::snap;
use crate::support::{Run, Scratch};

/// Scratch layout: `safe/` (allowed), `outside/` (not), `safe/link` → `outside`,
/// `safe/file-link` → `outside/x.txt`, and files outside that a read must never reveal.
fn layout() -> (Scratch, String) {
    let scratch = Scratch::new();
    let file = scratch.fixture("fs_policy.toml");
    scratch.mkdir("safe");
    scratch.mkdir("records");
    scratch.write("outside/x.txt", "untouched outside");
    scratch.write("escape.txt", "untouched escape");
    scratch.write("x.txt", "untouched x");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(scratch.path("outside"), scratch.path("safe/link")).expect("dir symlink");
        std::os::unix::fs::symlink(scratch.path("outside/x.txt"), scratch.path("safe/file-link"))
            .expect("file symlink");
    }
    (scratch, file)
}

/// Every regular file outside `records/` with its content, and every directory.
fn snapshot_tree(scratch: &Scratch) -> Vec<(String, Option<String>)> {
    scratch
        .listing()
        .into_iter()
        .filter(|p| !p.starts_with("records"))
        .map(|p| {
            let path = scratch.path(&p);
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let content = meta.file_type().is_file().then(|| std::fs::read_to_string(&path).unwrap_or_default());
            (p, content)
        })
        .collect()
}

struct Case {
    requested: String,
    checked: String,
}

/// The escapes of 05 §3.2 (absolute and relative forms), with the checked path each must be
/// reported under.
fn escapes(scratch: &Scratch) -> Vec<Case> {
    let root = scratch.root_str();
    let case = |requested: String, checked: &str| Case { requested, checked: format!("{root}/{checked}") };
    let mut cases = vec![
        case(format!("{root}/safe/../escape.txt"), "escape.txt"),
        case(format!("{root}/safe/a/../../x.txt"), "x.txt"),
        case(format!("{root}/safe/./../outside/x.txt"), "outside/x.txt"),
        case(format!("{root}/safe//sub/../../safe2/x"), "safe2/x"),
        case("safe/../escape.txt".to_string(), "escape.txt"),
        case("./safe/./../outside/x.txt".to_string(), "outside/x.txt"),
        case("safe/a/b/../../../x.txt".to_string(), "x.txt"),
        case(format!("{root}/safe/.."), ""),
    ];
    cases.last_mut().expect("case").checked = root.clone();
    if cfg!(unix) {
        cases.push(case(format!("{root}/safe/link/x.txt"), "outside/x.txt"));
        cases.push(case(format!("{root}/safe/link/new/deeper.txt"), "outside/new/deeper.txt"));
        cases.push(case("safe/link/x.txt".to_string(), "outside/x.txt"));
        cases.push(case(format!("{root}/safe/link"), "outside"));
        cases.push(case(format!("{root}/safe/file-link"), "outside/x.txt"));
    }
    cases
}

/// Runs one operation on `path` with a record at `record_path`; returns the run and the
/// parsed record.
fn attempt(scratch: &Scratch, file: &str, start: &str, path: &str, extra: &[&str], record_path: &str) -> (Run, Value) {
    let input = json!({"path": path, "content": "written by agentd"}).to_string();
    let mut args = vec!["run", file, "--quiet", "--start", start, "--input", &input, "--record", record_path];
    args.extend_from_slice(extra);
    let run = scratch.run(&args);
    let record = serde_json::from_str(&scratch.read(record_path)).expect("record JSON");
    (run, record)
}

/// Asserts a denial is reported identically on every channel.
#[track_caller]
#[allow(clippy::too_many_arguments, reason = "one denial has that many facets")]
fn assert_denied(
    run: &Run,
    record: &Value,
    record_path: &str,
    op: &str,
    node: &str,
    list: &str,
    checked: &str,
    requested: &str,
) {
    let reason = format!("policy violation: {op} denied on {checked}: path not in [policy.fs].{list}");
    let context = format!("{op} on {requested:?}");
    assert_eq!(run.code, Some(5), "{context}: exit code\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": node}), "{context}: outcome");
    assert_eq!(
        run.stderr,
        format!("agentd: run record written to {record_path}\nagentd: {reason}\n"),
        "{context}: stderr"
    );
    assert_eq!(record["status"], "errored", "{context}");
    assert_eq!(record["detail"], json!({ "error": reason }), "{context}");
    assert_eq!(record["cost"]["policy_denials"], 1, "{context}: cost.policy_denials");
    assert_eq!(record["cost"]["node_failures"], 1, "{context}");
    let entries = record["trace"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{context}");
    assert_eq!(entries[0]["node_id"], node, "{context}");
    assert_eq!(entries[0]["kind"], op, "{context}");
    assert_eq!(entries[0]["outcome"], "error", "{context}");
    assert_eq!(entries[0]["output"], Value::Null, "{context}");
    assert_eq!(entries[0]["error"], reason.as_str(), "{context}");
    assert!(!run.stdout.contains("untouched"), "{context}: a denied read revealed content");
}

fn run_escapes(extra: &[&str]) -> Vec<String> {
    // `--no-history`: nothing needs the state store, so no state dir appears in the tree
    // compared below (01 §7: the state dir is opened lazily, on first need).
    let extra: Vec<&str> = extra.iter().copied().chain(["--no-history"]).collect();
    let extra = extra.as_slice();
    let (scratch, file) = layout();
    let before = snapshot_tree(&scratch);
    let mut failures = Vec::new();
    for (index, case) in escapes(&scratch).iter().enumerate() {
        for (start, op, list) in
            [("write", "write_file", "write"), ("read", "read_file", "read"), ("mkdir", "create_dir", "write")]
        {
            let record_path = format!("records/{start}-{index}.json");
            let (run, record) = attempt(&scratch, &file, start, &case.requested, extra, &record_path);
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                assert_denied(&run, &record, &record_path, op, start, list, &case.checked, &case.requested)
            }));
            if let Err(panic) = checked {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(message);
            }
        }
    }
    let after = snapshot_tree(&scratch);
    if before != after {
        failures.push(format!("the tree changed outside records/:\nbefore {before:?}\nafter  {after:?}"));
    }
    failures
}

#[test]
fn every_escape_is_denied_for_every_fs_operation() {
    let failures = run_escapes(&[]);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn every_escape_is_denied_under_dry_run_too() {
    let failures = run_escapes(&["--dry-run"]);
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn a_denial_as_the_user_sees_it() {
    let (scratch, file) = layout();
    let input = json!({"path": format!("{}/safe/../escape.txt", scratch.root_str()), "content": "pwned"}).to_string();
    let run = scratch.run(["run", &file, "--start", "write", "--input", &input, "--record", "records/r.json"]);
    run.code(5);
    snap!(run.render());
    assert_eq!(scratch.read("escape.txt"), "untouched escape");
    let record = scratch.scrub(&scratch.read("records/r.json"));
    snap!("denial_record", record);
}

#[test]
fn allowed_operations_work() {
    let (scratch, file) = layout();
    let root = scratch.root_str();
    let ok = |start: &str, path: &str| {
        let input = json!({"path": path, "content": "inside"}).to_string();
        let run = scratch.run(["run", &file, "--quiet", "--start", start, "--input", &input]);
        run.code(0);
        run.json()["final_value"].clone()
    };
    assert_eq!(
        ok("write", &format!("{root}/safe/ok.txt")),
        json!({"bytes": 6, "path": format!("{root}/safe/ok.txt"), "written": true})
    );
    assert_eq!(scratch.read("safe/ok.txt"), "inside");
    assert_eq!(ok("read", &format!("{root}/safe/ok.txt"))["content"], "inside");
    // Nothing under `new` exists yet: allowed, parents created.
    ok("write", &format!("{root}/safe/new/dir/x.txt"));
    assert_eq!(scratch.read("safe/new/dir/x.txt"), "inside");
    // Relative to the working directory.
    ok("write", "safe/rel.txt");
    assert_eq!(scratch.read("safe/rel.txt"), "inside");
    // `..` that stays inside the allowed directory.
    ok("write", "safe/sub/../inner.txt");
    assert_eq!(scratch.read("safe/inner.txt"), "inside");
    // `P/**` includes `P` itself (create_dir of an existing dir is success).
    assert_eq!(ok("mkdir", &format!("{root}/safe")), json!({"created": true, "path": format!("{root}/safe")}));
    ok("mkdir", "safe/made/deep");
    assert!(scratch.path("safe/made/deep").is_dir());
}

#[test]
fn percent_encoded_dots_are_a_literal_name() {
    let (scratch, file) = layout();
    let path = format!("{}/safe/%2e%2e/x", scratch.root_str());
    let input = json!({"path": path, "content": "literal"}).to_string();
    let run = scratch.run(["run", &file, "--quiet", "--start", "write", "--input", &input]);
    run.code(0);
    assert_eq!(scratch.read("safe/%2e%2e/x"), "literal");
    let run2 = scratch.run(["run", &file, "--quiet", "--start", "read", "--input", &input]);
    run2.code(0);
    assert_eq!(run2.json()["final_value"]["content"], "literal");
    assert_eq!(run.json()["final_value"]["path"], path);
}

#[test]
fn read_is_checked_against_the_read_list() {
    // A separate read list: writable but not readable, and the reverse.
    let scratch = Scratch::new();
    let root = scratch.root_str();
    scratch.write(
        "split.toml",
        crate::support::fixture_text("fs.toml").replace(
            "name = \"fs\"",
            &format!("name = \"split\"\n\n[policy.fs]\nread = [\"{root}/in/**\"]\nwrite = [\"{root}/out/**\"]"),
        ),
    );
    scratch.write("in/a.txt", "readable");
    scratch.write("out/b.txt", "write-only");
    let go = |start: &str, path: &str| {
        let input = json!({"path": path, "content": "x"}).to_string();
        scratch.run(["run", "split.toml", "--quiet", "--start", start, "--input", &input])
    };
    go("read", "in/a.txt").code(0);
    let run = go("read", "out/b.txt");
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        format!("policy violation: read_file denied on {root}/out/b.txt: path not in [policy.fs].read")
    );
    let run = go("write", "in/a.txt");
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        format!("policy violation: write_file denied on {root}/in/a.txt: path not in [policy.fs].write")
    );
    assert_eq!(scratch.read("in/a.txt"), "readable");
    go("write", "out/c.txt").code(0);
}

#[test]
fn empty_write_list_denies_with_the_empty_list_reason() {
    let scratch = Scratch::new();
    let root = scratch.root_str();
    scratch.write(
        "ro.toml",
        crate::support::fixture_text("fs.toml")
            .replace("name = \"fs\"", &format!("name = \"ro\"\n\n[policy.fs]\nread = [\"{root}/**\"]\nwrite = []")),
    );
    let input = json!({"path": "any.txt", "content": "x"}).to_string();
    let run = scratch.run(["run", "ro.toml", "--quiet", "--start", "write", "--input", &input]);
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        format!("policy violation: write_file denied on {root}/any.txt: [policy.fs].write is empty")
    );
    assert!(!scratch.path("any.txt").exists());
}

#[test]
fn policy_without_fs_table_denies_fs_operations() {
    let scratch = Scratch::new();
    scratch.write(
        "envonly.toml",
        crate::support::fixture_text("fs.toml")
            .replace("name = \"fs\"", "name = \"envonly\"\n\n[policy.env]\nread_keys = [\"*\"]"),
    );
    let input = json!({"path": "any.txt", "content": "x"}).to_string();
    let run = scratch.run(["run", "envonly.toml", "--quiet", "--start", "write", "--input", &input]);
    run.code(5);
    let reason = run.json()["reason"].as_str().expect("reason").to_string();
    assert!(
        reason.starts_with(&format!("policy violation: write_file denied on {}/any.txt: ", scratch.root_str())),
        "{reason}"
    );
    assert!(!scratch.path("any.txt").exists());
}

#[test]
fn allow_all_mode_emits_one_warning_line() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file]);
    run.code(0);
    let lines: Vec<&str> = run.stderr_lines().into_iter().filter(|l| l.contains("policy.allow_all")).collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].to_lowercase().contains("warn"), "{}", lines[0]);
    assert!(lines[0].contains("terminate"), "the line names the workflow: {}", lines[0]);
    snap!(run.render());
}

#[test]
fn no_allow_all_warning_with_a_policy() {
    let (scratch, file) = layout();
    let input = json!({"path": "safe/a.txt", "content": "x"}).to_string();
    let run = scratch.run(["run", &file, "--start", "write", "--input", &input]);
    run.code(0).stderr_empty();
}

#[test]
fn allow_all_warning_is_silenced_by_quiet() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    scratch.run(["run", &file, "--quiet"]).code(0).stderr_empty();
}

#[test]
fn require_policy_refuses_a_workflow_without_policy() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--require-policy"]);
    run.code(5);
    assert_eq!(run.stdout, "");
    run.stderr_has_line("agentd: workflow has no [policy] table and --require-policy is set");
    let run = scratch.exec(scratch.agentd().env("AGENTD_REQUIRE_POLICY", "1").args(["run", &file]));
    run.code(5);
    let (scratch, file) = layout();
    let input = json!({"path": "safe/a.txt", "content": "x"}).to_string();
    scratch.run(["run", &file, "--require-policy", "--start", "write", "--input", &input]).code(0);
}

mod budget {
    use serde_json::{Value, json};

    use crate::support::Scratch;

    fn run_budget(first: usize, second: usize) -> (Scratch, crate::support::Run, Value) {
        let scratch = Scratch::new();
        let file = scratch.fixture("fs_budget.toml");
        scratch.mkdir("safe");
        let input = json!({
            "first_path": "safe/first.txt", "first": "a".repeat(first),
            "second_path": "safe/second.txt", "second": "b".repeat(second),
        });
        scratch.write("input.json", input.to_string());
        let run = scratch.run(["run", &file, "--quiet", "--input", "input.json", "--record", "r.json"]);
        let record = serde_json::from_str(&scratch.read("r.json")).expect("record");
        (scratch, run, record)
    }

    #[test]
    fn a_write_over_the_budget_is_refused_and_nothing_is_written() {
        let (scratch, run, record) = run_budget(629_146, 629_146);
        run.code(5);
        let reason = "tool `write_file` failed: budget.fs_write exceeded: tried to write 629146 bytes but 629146 / 1048576 already consumed";
        assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": "second"}));
        assert_eq!(run.stderr, format!("agentd: run record written to r.json\nagentd: {reason}\n"));
        assert_eq!(std::fs::metadata(scratch.path("safe/first.txt")).expect("first").len(), 629_146);
        assert!(!scratch.path("safe/second.txt").exists(), "nothing written over budget");
        // Budget denials are not policy denials (05 §7).
        assert_eq!(record["cost"]["policy_denials"], 0);
        assert_eq!(record["cost"]["node_failures"], 1);
        assert_eq!(record["trace"]["entries"][1]["error"], reason);
    }

    #[test]
    fn a_single_write_larger_than_the_budget() {
        let (scratch, run, _) = run_budget(2 * 1_048_576, 1);
        run.code(5);
        assert_eq!(
            run.json()["reason"],
            "tool `write_file` failed: budget.fs_write exceeded: tried to write 2097152 bytes but 0 / 1048576 already consumed"
        );
        assert_eq!(run.json()["last_node"], "first");
        assert!(!scratch.path("safe/first.txt").exists());
        assert!(!scratch.path("safe/second.txt").exists());
    }

    #[test]
    fn exactly_the_budget_is_allowed_one_more_byte_is_not() {
        let (scratch, run, _) = run_budget(1_048_576, 1);
        run.code(5);
        assert_eq!(
            run.json()["reason"],
            "tool `write_file` failed: budget.fs_write exceeded: tried to write 1 bytes but 1048576 / 1048576 already consumed"
        );
        assert_eq!(std::fs::metadata(scratch.path("safe/first.txt")).expect("first").len(), 1_048_576);
        assert!(!scratch.path("safe/second.txt").exists());
    }

    #[test]
    fn writes_within_the_budget_succeed() {
        let (scratch, run, _) = run_budget(1000, 2000);
        run.code(0);
        assert_eq!(scratch.read("safe/second.txt").len(), 2000);
    }

    #[test]
    fn the_budget_is_per_run() {
        // Two runs of 0.6 MiB each both succeed: usage does not carry over between runs.
        let (scratch, run, _) = run_budget(629_146, 0);
        run.code(0);
        let run = scratch.run(["run", "fs_budget.toml", "--quiet", "--input", "input.json"]);
        run.code(0);
    }
}

#[cfg(unix)]
#[test]
fn pattern_prefixes_resolve_symlinks_but_the_final_segment_does_not() {
    // 05 §3.2 step 5: `<tmp>/alias/**` still matches when `alias` is a symlink to `real`; the
    // literal pattern `<tmp>/safe/f.txt` does not come to allow the target of a symlink `f.txt`.
    let scratch = Scratch::new();
    let root = scratch.root_str();
    scratch.mkdir("real");
    scratch.mkdir("safe");
    scratch.write("outside/t.txt", "original");
    std::os::unix::fs::symlink(scratch.path("real"), scratch.path("alias")).expect("symlink");
    std::os::unix::fs::symlink(scratch.path("outside/t.txt"), scratch.path("safe/f.txt")).expect("symlink");
    let text = crate::support::fixture_text("fs_policy.toml")
        .replace("\"@TMP@/safe/**\"", &format!("\"{root}/alias/**\", \"{root}/safe/f.txt\""));
    scratch.write("wf.toml", text);
    let write = |path: String| {
        let input = json!({"path": path, "content": "new"}).to_string();
        scratch.run(["run", "wf.toml", "--quiet", "--start", "write", "--input", &input])
    };
    write(format!("{root}/alias/x.txt")).code(0);
    assert_eq!(scratch.read("real/x.txt"), "new");
    write(format!("{root}/real/y.txt")).code(0);
    let run = write(format!("{root}/safe/f.txt"));
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        format!("policy violation: write_file denied on {root}/outside/t.txt: path not in [policy.fs].write")
    );
    assert_eq!(scratch.read("outside/t.txt"), "original");
}
