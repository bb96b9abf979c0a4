//! Picking the start node of a one-shot run (01 §5.1).

use serde_json::json;

use crate::snap;
use crate::support::Scratch;

#[test]
fn the_single_manual_start_is_picked() {
    let scratch = Scratch::new();
    let file = scratch.fixture("one_manual.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["final_value"], json!({"rendered": "picked cli"}));
}

#[test]
fn the_only_start_of_any_source_is_picked() {
    let scratch = Scratch::new();
    let file = scratch.fixture("only_event.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["final_value"], json!({"rendered": "picked on_event"}));
}

#[test]
fn several_manual_starts_are_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    let run = scratch.run(["run", &file, "--quiet", "--record", "never.json"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "agentd: cannot pick a start node automatically (2 manual / 3 total); pass --start NAME\n");
    snap!(run.render());
}

#[test]
fn no_start_nodes_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("no_starts.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(2);
    assert_eq!(run.stderr, "agentd: cannot pick a start node automatically (0 manual / 0 total); pass --start NAME\n");
}

#[test]
fn start_flag_picks_any_start_including_non_manual() {
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    let run = scratch.run(["run", &file, "--quiet", "--start", "hook"]);
    run.code(0);
    assert_eq!(run.json()["final_value"], json!({"rendered": "hook"}));
}

#[test]
fn unknown_start_is_an_errored_run() {
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    let run = scratch.run(["run", &file, "--quiet", "--start", "nope", "--record", "rec.json"]);
    run.code(5);
    assert_eq!(
        run.json(),
        json!({"status": "errored", "reason": "workflow `starts`: unknown start node `nope`", "last_node": null})
    );
    run.stderr_has_line("agentd: workflow `starts`: unknown start node `nope`");
    snap!(run.render());

    // The record is written for this errored run too, with an empty trace (02 §5, 01 §5.3).
    let record: serde_json::Value = serde_json::from_str(&scratch.read("rec.json")).expect("record");
    assert_eq!(record["status"], "errored");
    assert_eq!(record["start_node"], "nope");
    assert_eq!(record["last_node"], serde_json::Value::Null);
    assert_eq!(record["detail"], json!({"error": "workflow `starts`: unknown start node `nope`"}));
    assert_eq!(record["trace"]["entries"], json!([]));
    assert!(record["execution_id"].as_str().is_some_and(|id| id.starts_with("exec-")), "{record}");
}
