//! The project corpus: the main suite passes with every landed capability covered, the gate demo
//! separates the fragile router from the robust one, and a trial replays from its seed.

use agentd_conformance::capabilities::{MATRIX, NOT_LANDED};

use crate::support::{assert_schema_valid, run, scenario};

#[test]
fn main_suite_passes_and_covers_every_landed_capability() {
    let ran = run(&["conformance/suite", "--json", "--seed", "7"]);
    assert_eq!(ran.code, 0, "stdout:\n{}\nstderr:\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_schema_valid(&report);
    let summary = &report["summary"];
    assert!(summary["scenarios"].as_u64().unwrap_or(0) >= 40, "at least 40 scenarios");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["seed"], "7");
    let uncovered: Vec<&str> =
        summary["coverage"]["uncovered"].as_array().expect("list").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(uncovered, NOT_LANDED, "every landed capability id must be covered by a passing scenario");
    assert_eq!(summary["coverage"]["total"], MATRIX.len());
    assert_eq!(summary["coverage"]["unknown_tags"].as_array().map(Vec::len), Some(0));
    assert!(ran.stderr.starts_with("agentd-conformance: seed 7 (replay with --seed 7)"), "{}", ran.stderr);
}

#[test]
fn gate_demo_fragile_router_fails_the_gate_and_the_robust_one_passes() {
    let ran = run(&["conformance/gate-demo", "--json", "--seed", "1", "--min-pass-rate", "0.95"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let report = ran.json();
    assert_schema_valid(&report);
    let fragile = scenario(&report, "fragile-router");
    assert_eq!(fragile["trials"], 8);
    assert_eq!(fragile["pass_k"], 0.0);
    let rate = fragile["pass_rate"].as_f64().expect("rate");
    assert!(rate > 0.0 && rate < 1.0, "pass^8 < 1 with some trials passing: {rate}");
    assert_eq!(fragile["passed"], false);
    let robust = scenario(&report, "robust-router");
    assert_eq!((robust["pass_k"].as_f64(), robust["pass_rate"].as_f64()), (Some(1.0), Some(1.0)));
    assert_eq!(robust["passed"], true);
    assert!(ran.stderr.contains("reliability gate FAILED:"), "{}", ran.stderr);
    assert!(ran.stderr.contains(&format!("  fragile-router — pass_rate {rate:.2} < required 0.95")), "{}", ran.stderr);
    assert!(!ran.stderr.contains("robust-router —"), "{}", ran.stderr);

    let text = run(&["conformance/gate-demo", "--seed", "1"]);
    assert!(text.stdout.contains("  FAIL fragile-router                     pass^8  = 0.00"), "{}", text.stdout);
    assert!(
        text.stdout.contains("  ok   robust-router                      pass^8  = 1.0   1 calls / 13 tok"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("(seed 0x"), "failure lines carry the trial seed:\n{}", text.stdout);
}

#[test]
fn a_trial_replays_from_the_suite_seed() {
    let full = run(&["conformance/gate-demo", "--json", "--seed", "0x2a", "--filter", "fragile"]).json();
    let trials = scenario(&full, "fragile-router")["trial_results"].as_array().expect("trials").clone();
    assert_eq!(trials.len(), 8);
    for trial in [0usize, 5, 7] {
        let replay = run(&[
            "conformance/gate-demo",
            "--json",
            "--seed",
            "42",
            "--filter",
            "fragile",
            "--trial",
            &trial.to_string(),
        ])
        .json();
        let replayed = &scenario(&replay, "fragile-router")["trial_results"][0];
        assert_eq!(replayed["seed"], trials[trial]["seed"]);
        assert_eq!(replayed["passed"], trials[trial]["passed"], "trial {trial} replays identically");
        assert_eq!(replayed["failures"], trials[trial]["failures"]);
    }
}
