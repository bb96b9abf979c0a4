//! Flags, exit codes, bad scenario files, baselines and drift, JUnit and forecasts.

use std::path::Path;

use crate::support::{assert_schema_valid, routing_scenario, run, scenario};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write scenario");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn help_and_version_exit_zero() {
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--min-pass-rate"), "{}", help.stdout);
    let version = run(&["--version"]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_two_with_a_hint() {
    for args in [
        &["--min-pass-rate", "1.5"][..],
        &["--min-pass-rate=abc"],
        &["--seed", "banana"],
        &["--trials", "0"],
        &["--jobs", "0"],
        &["--forecast-runs-per-day", "-1"],
        &["--no-such-flag"],
        &["--live", "env.toml"],
    ] {
        let ran = run(args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.starts_with("agentd-conformance: "), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("hint: run `agentd-conformance --help`"), "{args:?}: {}", ran.stderr);
    }
}

#[test]
fn no_scenarios_is_exit_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run(&[path(dir.path())]);
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains(&format!("agentd-conformance: no scenarios under {}", dir.path().display())));
    let missing = run(&["/nonexistent/agentd/corpus"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no scenarios under /nonexistent/agentd/corpus"));
    write(dir.path(), "a.toml", &routing_scenario("only", "y", "y"));
    let filtered = run(&[path(dir.path()), "--filter", "zzz"]);
    assert_eq!(filtered.code, 1, "{}", filtered.stderr);
}

#[test]
fn bad_scenario_files_become_load_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("binary.toml", "\u{0}\u{1}\u{2}garbage\u{ff}", "binary.toml", "line 1"),
        ("unknown-key.toml", "name = \"unknown-key\"\nbogus = 1\n[workflow]\ninline = \"\"\n", "unknown-key", "bogus"),
        (
            "no-workflow.toml",
            "name = \"no-workflow\"\n[workflow]\n",
            "no-workflow",
            "scenario.workflow needs `inline` or `path`",
        ),
        (
            "bad-workflow.toml",
            "name = \"bad-workflow\"\n[workflow]\ninline = '''\nname = \"w\"\n[[nodes]]\nid = \"a\"\ntype = \"teleport\"\n'''\n",
            "bad-workflow",
            "workflow invalid: [",
        ),
        (
            "bad-rate.toml",
            "name = \"bad-rate\"\nmin_pass_rate = 2.0\n[workflow]\ninline = \"\"\n",
            "bad-rate.toml",
            "min_pass_rate",
        ),
        (
            "bad-status.toml",
            "name = \"bad-status\"\n[workflow]\ninline = \"\"\n[expected]\nstatus = \"great\"\n",
            "bad-status.toml",
            "status",
        ),
        (
            "missing-file.toml",
            "name = \"missing-file\"\n[workflow]\npath = \"nope/absent.wf\"\n",
            "missing-file",
            "absent.wf",
        ),
    ];
    for (file, text, _, _) in &cases {
        std::fs::write(dir.path().join(file), text.as_bytes()).expect("write");
    }
    std::fs::write(dir.path().join("stray.wf"), b"not a scenario").expect("write");
    let ran = run(&[path(dir.path()), "--json", "--seed", "1"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let report = ran.json();
    assert_schema_valid(&report);
    assert_eq!(report["summary"]["scenarios"], cases.len());
    assert_eq!(report["summary"]["failed"], cases.len());
    for (file, _, name, needle) in &cases {
        let entry = report["scenarios"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["file"] == *file))
            .unwrap_or_else(|| panic!("{file} missing from the report"));
        let error = entry["load_error"].as_str().unwrap_or_else(|| panic!("{file}: no load error"));
        assert!(error.contains(needle), "{file}: {error}");
        assert!(!error.contains('\n'), "{file}: one line: {error}");
        assert!(entry["name"].as_str().is_some_and(|n| n.contains(name)), "{file}: {}", entry["name"]);
        assert_eq!(entry["passed_trials"], 0);
        assert_eq!(entry["trial_results"].as_array().map(Vec::len), Some(0));
    }
}

#[test]
fn baseline_drift_reports_a_regression_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    write(&corpus, "route.toml", &routing_scenario("route", "yes", "yes"));
    write(&corpus, "steady.toml", &routing_scenario("steady", "a", "a"));
    let baseline = dir.path().join("baseline.json");
    let saved = run(&[path(&corpus), "--seed", "3", "--save-baseline", path(&baseline)]);
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    assert!(saved.stderr.contains(&format!("baseline written to {}", baseline.display())), "{}", saved.stderr);

    let unchanged = run(&[path(&corpus), "--seed", "3", "--baseline", path(&baseline)]);
    assert_eq!(unchanged.code, 0, "{}", unchanged.stderr);
    assert!(unchanged.stderr.contains("drift vs baseline: no pass_rate regressions"), "{}", unchanged.stderr);

    // The model now answers differently: the route scenario regresses from 1.0 to 0.0.
    write(&corpus, "route.toml", &routing_scenario("route", "no", "yes"));
    let drifted = run(&[path(&corpus), "--json", "--seed", "3", "--baseline", path(&baseline)]);
    assert_eq!(drifted.code, 1, "{}", drifted.stderr);
    assert!(drifted.stderr.contains("drift vs baseline — REGRESSIONS:"), "{}", drifted.stderr);
    assert!(drifted.stderr.contains("  route — pass_rate 1.00 → 0.00  (tokens 6 → 6)"), "{}", drifted.stderr);
    assert!(!drifted.stderr.contains("  steady —"), "{}", drifted.stderr);
    let report = drifted.json();
    assert_schema_valid(&report);
    let entries = report["summary"]["drift"]["scenarios"].as_array().expect("drift entries");
    let route = entries.iter().find(|e| e["name"] == "route").expect("route entry");
    assert_eq!((route["regressed"].as_bool(), route["change"].as_str()), (Some(true), Some("regressed")));

    let unreadable = run(&[path(&corpus), "--seed", "3", "--baseline", "/nonexistent/baseline.json"]);
    assert_eq!(unreadable.code, 1);
    assert!(unreadable.stderr.contains("agentd-conformance: read baseline /nonexistent/baseline.json:"));
}

#[test]
fn junit_forecast_and_the_text_footer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(corpus.join("nested")).expect("mkdir");
    write(&corpus.join("nested"), "pass.toml", &routing_scenario("passes", "go", "go"));
    write(
        &corpus,
        "fail.toml",
        &routing_scenario("fails <&>", "stop", "go")
            .replace("[\"llm_infer\", \"switch\"]", "[\"made_up_tag\", \"switch\"]"),
    );
    let junit = dir.path().join("report.xml");
    let ran = run(&[
        path(&corpus),
        "--seed",
        "9",
        "--junit",
        path(&junit),
        "--forecast-runs-per-day",
        "1000",
        "--price-per-mtok",
        "3",
    ]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("\n2 scenario(s): 1 passed, 1 failed | mean pass^k = 0.500 | 2 llm calls, 12 tokens\n"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("cost-per-success: 12 tokens/success (24 tokens over 2 passing trials)"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("  WARNING unknown capability tags: made_up_tag"), "{}", ran.stdout);
    assert!(
        ran.stderr.contains(
            "forecast @ 1000 runs/day: 12 tokens/success → 12000 tokens/day, 360000 tokens/month (~$1.08/month)"
        ),
        "{}",
        ran.stderr
    );
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<testsuite name=\"agentd-conformance\" tests=\"2\" failures=\"1\" skipped=\"0\""), "{xml}");
    assert!(xml.contains("classname=\"nested.pass\" name=\"passes\""), "{xml}");
    assert!(xml.contains("name=\"fails &lt;&amp;&gt;\""), "{xml}");
    assert!(xml.contains("<failure message=\"trial 0 (seed 0x"), "{xml}");
}

#[test]
fn platforms_skip_and_tolerated_bars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = if cfg!(windows) { "linux" } else { "windows" };
    write(
        dir.path(),
        "skip.toml",
        &routing_scenario("elsewhere", "x", "x")
            .replace("trials = 2", &format!("trials = 2\nplatforms = [\"{other}\"]")),
    );
    write(dir.path(), "ok.toml", &routing_scenario("fine", "x", "x"));
    let ran = run(&[path(dir.path()), "--json", "--seed", "1"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let report = ran.json();
    assert_schema_valid(&report);
    assert_eq!(report["summary"]["skipped"], 1);
    assert_eq!(report["summary"]["scenarios"], 1);
    assert_eq!(scenario(&report, "elsewhere")["status"], "skipped");
    let text = run(&[path(dir.path()), "--seed", "1"]);
    assert!(text.stdout.contains("  skip elsewhere"), "{}", text.stdout);
    assert!(text.stdout.contains(", 1 skipped |"), "{}", text.stdout);
}
