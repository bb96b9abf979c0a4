//! Durable execution through the binary (01 §7, §9.3–§9.5; 02 §6–§7): pause checkpoints and
//! their approval or rejection from another process, `--resume`, progress checkpoints with
//! `--checkpoint-each-node`, `--resume-incomplete`, `--list-checkpoints`, the run history
//! (`agentd runs`), and a run killed mid-node that resumes without re-running earlier nodes.
//!
//! Every test uses its own scratch directory and names the state dir explicitly (`--state-dir`;
//! its env twin or the default only where that is what is checked).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Run, Scratch, agentd_path};

/// The state dir every test passes, as given on the command line (relative to the scratch root).
const STATE: &str = "state";

/// prepare → gate (pause) → after (renders the gate's context entry as JSON) → save (writes it
/// to `trigger.out`).
const APPROVAL: &str = r#"name = "approval_chain"

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "prepare"
type = "template_render"
template = "draft for {{trigger.title}}"

[[nodes]]
id = "gate"
type = "pause_for_approval"
reason = "Check the draft, then approve."

[[nodes]]
id = "after"
type = "template_render"
input_from = "gate"
template = "{{}}"

[[nodes]]
id = "save"
type = "write_file"
path_from = "trigger.out"
content_from = "after.rendered"

[[edges]]
from = "prepare"
to = "gate"

[[edges]]
from = "gate"
to = "after"

[[edges]]
from = "after"
to = "save"
"#;

/// first (write_file) → second (write_file) → load (read_file of `trigger.late`) → report.
const CHAIN: &str = r#"name = "chain"

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "first"
type = "write_file"
path_from = "trigger.first"
content_from = "trigger.first"

[[nodes]]
id = "second"
type = "write_file"
path_from = "trigger.second"
content_from = "trigger.second"

[[nodes]]
id = "load"
type = "read_file"
path_from = "trigger.late"

[[nodes]]
id = "report"
type = "template_render"
input_from = "load"
template = "{{content}} after {{first.path}} ({{second.bytes}} bytes)"

[[edges]]
from = "first"
to = "second"

[[edges]]
from = "second"
to = "load"

[[edges]]
from = "load"
to = "report"
"#;

/// `agentd ARGS --state-dir state` in the scratch root.
fn st(scratch: &Scratch, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--state-dir", STATE]);
    scratch.run(all)
}

/// One `--list-checkpoints` line (01 §7.3).
fn checkpoint_line(run_id: &str, state: &str, workflow: &str, resume_node: &str) -> String {
    format!("{run_id}  {state:<11}  workflow={workflow}  resume_node={resume_node}")
}

/// `--list-checkpoints` stdout (asserting exit 0 and an empty stderr).
fn list_checkpoints(scratch: &Scratch) -> String {
    let run = st(scratch, &["--list-checkpoints"]);
    run.code(0).stderr_empty();
    run.stdout.clone()
}

/// Runs the approval workflow until it pauses; returns the run id.
fn pause(scratch: &Scratch, out: &Path) -> String {
    scratch.write("approval.toml", APPROVAL);
    let input = json!({"title": "v2", "out": out}).to_string();
    let run = st(scratch, &["run", "approval.toml", "--quiet", "--input", &input]);
    run.code(7).stderr_empty();
    let outcome = run.json();
    let run_id = outcome["run_id"].as_str().expect("run_id").to_string();
    assert_eq!(
        outcome,
        json!({"status": "paused", "run_id": run_id, "last_node": "gate", "reason": "Check the draft, then approve."})
    );
    run_id
}

/// `agentd runs show ID --json`: the stored record.
fn history_record(scratch: &Scratch, run_id: &str) -> Value {
    let run = st(scratch, &["runs", "show", run_id, "--json"]);
    run.code(0);
    run.json()
}

/// `agentd runs --json ARGS`.
fn history(scratch: &Scratch, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["runs", "--json"];
    args.extend_from_slice(extra);
    let run = st(scratch, &args);
    run.code(0);
    run.json().as_array().expect("runs --json is an array").clone()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["execution_id"].as_str().expect("execution_id").to_string()).collect()
}

/// `(node_id, outcome)` per trace entry of a record.
fn path(record: &Value) -> Vec<(String, String)> {
    record["trace"]["entries"]
        .as_array()
        .expect("trace entries")
        .iter()
        .map(|e| {
            (e["node_id"].as_str().expect("node_id").to_string(), e["outcome"].as_str().expect("outcome").to_string())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn read_record(scratch: &Scratch, name: &str) -> Value {
    serde_json::from_str(&scratch.read(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Pause, approve, reject, resume
// ---------------------------------------------------------------------------------------------

#[test]
fn pause_list_and_approve_from_another_process() {
    let scratch = Scratch::new();
    let out = scratch.path("out/approved.txt");
    scratch.write("approval.toml", APPROVAL);
    let input = json!({"title": "v2", "out": out}).to_string();
    let run = st(&scratch, &["run", "approval.toml", "--quiet", "--input", &input, "--record", "paused.json"]);
    run.code(7);
    let run_id = run.json()["run_id"].as_str().expect("run_id").to_string();
    let paused = read_record(&scratch, "paused.json");
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["detail"], json!({"run_id": run_id, "reason": "Check the draft, then approve."}));
    assert_eq!(path(&paused), pairs(&[("prepare", "continue"), ("gate", "pause")]));
    assert!(!out.exists(), "nothing after the pause ran");

    // 01 §7.3: exact layout.
    assert_eq!(
        list_checkpoints(&scratch),
        format!("{}\n", checkpoint_line(&run_id, "paused", "approval_chain", "after"))
    );
    let rows = history(&scratch, &[]);
    assert_eq!(ids(&rows), std::slice::from_ref(&run_id));
    assert_eq!(rows[0]["status"], "paused");
    assert_eq!(rows[0]["last_node"], "gate");

    // A second process, elsewhere, with no FILE: the workflow comes from the checkpoint (01 §9.4).
    let elsewhere = scratch.mkdir("elsewhere");
    let state = scratch.path(STATE);
    let record_path = scratch.path("resumed.json");
    let mut approve = scratch.agentd();
    approve.current_dir(&elsewhere).args(["approve", &run_id, "--note", "ship it", "--quiet"]);
    approve.arg("--state-dir").arg(&state).arg("--record").arg(&record_path);
    let run = scratch.exec(&mut approve);
    run.code(0);
    assert_eq!(run.stderr, format!("agentd: run record written to {}\n", record_path.display()));
    let content = r#"{"approved":true,"note":"ship it"}"#;
    assert_eq!(
        run.json(),
        json!({"status": "completed", "final_value": {"bytes": content.len(), "path": out, "written": true}, "last_node": "save"})
    );
    // 02 §6.3 rule 5: the pause node's context entry, as a later template node sees it.
    assert_eq!(scratch.read("out/approved.txt"), content);
    assert!(!elsewhere.join(".agentd").exists() && !elsewhere.join(STATE).exists());

    // 02 §3: the resumed run's trace is the restored one followed by the new entries.
    let resumed: Value = serde_json::from_str(&std::fs::read_to_string(&record_path).expect("record")).expect("JSON");
    assert_eq!(resumed["execution_id"], run_id.as_str(), "a resumed run keeps its id (02 §6.1)");
    assert_eq!(resumed["trace"]["execution_id"], run_id.as_str());
    assert_eq!(resumed["status"], "completed");
    assert_eq!(resumed["start_node"], "main", "the checkpoint's start node (02 §5)");
    assert_eq!(resumed["last_node"], "save");
    assert_eq!(
        path(&resumed),
        pairs(&[("prepare", "continue"), ("gate", "pause"), ("after", "continue"), ("save", "continue")])
    );
    let entries = resumed["trace"]["entries"].as_array().expect("entries");
    assert_eq!(
        entries[..2],
        paused["trace"]["entries"].as_array().expect("entries")[..],
        "restored entries, as they were"
    );
    assert_eq!(entries[2]["output"], json!({"rendered": content}));
    assert_eq!(resumed["started_at"], paused["started_at"], "started_at is the first start of the run (02 §5)");
    assert_eq!(resumed["cost"]["workflow_starts"], 1, "a resume is not a new start (02 §5)");
    assert_eq!(resumed["cost"]["workflow_completions"], 1);

    // The history row of the paused run now holds the completed record.
    let stored = history_record(&scratch, &run_id);
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored, resumed, "runs show --json prints the stored record itself (01 §9.3)");
    let rows = history(&scratch, &[]);
    assert_eq!(ids(&rows), std::slice::from_ref(&run_id), "one row per run: the paused row was updated");
    assert_eq!(rows[0]["status"], "completed");
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"), "the pause checkpoint is gone");

    // Approving again: nothing left to approve.
    let again = st(&scratch, &["approve", &run_id, "--config", "approval.toml", "--quiet"]);
    again.code(2);
    assert_eq!(again.stderr, format!("agentd: no checkpoint for run {run_id} in {STATE}\n"));
    assert_eq!(scratch.read("out/approved.txt"), content);
}

#[test]
fn resume_of_a_paused_run_counts_as_approval() {
    let scratch = Scratch::new();
    let out = scratch.path("out/resumed.txt");
    let run_id = pause(&scratch, &out);
    let run = st(&scratch, &["--config", "approval.toml", "--resume", &run_id, "--quiet", "--record", "r.json"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
    assert_eq!(run.json()["last_node"], "save");
    // No --note: the note is null (02 §6.3 rule 5).
    assert_eq!(scratch.read("out/resumed.txt"), r#"{"approved":true,"note":null}"#);
    let record = read_record(&scratch, "r.json");
    assert_eq!(record["execution_id"], run_id.as_str());
    assert_eq!(
        path(&record),
        pairs(&[("prepare", "continue"), ("gate", "pause"), ("after", "continue"), ("save", "continue")])
    );
    assert_eq!(history_record(&scratch, &run_id)["status"], "completed");
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
    let again = st(&scratch, &["--config", "approval.toml", "--resume", &run_id, "--quiet"]);
    again.code(2);
    assert_eq!(again.stderr, format!("agentd: no checkpoint for run {run_id} in {STATE}\n"));
}

#[test]
fn approve_without_a_note_and_the_env_twin_of_the_state_dir() {
    let scratch = Scratch::new();
    let out = scratch.path("out/plain.txt");
    let run_id = pause(&scratch, &out);
    let run = scratch.exec(scratch.agentd().env("AGENTD_STATE_DIR", STATE).args(["approve", &run_id, "--quiet"]));
    run.code(0).stderr_empty();
    assert_eq!(run.json()["status"], "completed");
    assert_eq!(scratch.read("out/plain.txt"), r#"{"approved":true,"note":null}"#);
}

#[test]
fn reject_fails_the_run_and_removes_the_checkpoint() {
    let scratch = Scratch::new();
    let out = scratch.path("out/never.txt");
    let first = pause(&scratch, &out);
    let second = pause(&scratch, &out);
    let mut expected = [
        checkpoint_line(&first, "paused", "approval_chain", "after"),
        checkpoint_line(&second, "paused", "approval_chain", "after"),
    ];
    expected.sort();
    assert_eq!(list_checkpoints(&scratch), format!("{}\n", expected.join("\n")), "ascending run_id");

    // reject needs no workflow (01 §3 step 4): run it where there is none.
    std::fs::remove_file(scratch.path("approval.toml")).expect("rm workflow");
    let run = st(&scratch, &["reject", &first, "--reason", "too risky"]);
    run.code(0).stderr_empty();
    assert_eq!(
        run.stdout,
        "{\n  \"status\": \"failed\",\n  \"reason\": \"rejected: too risky\",\n  \"last_node\": \"gate\"\n}\n"
    );
    assert_eq!(
        list_checkpoints(&scratch),
        format!("{}\n", checkpoint_line(&second, "paused", "approval_chain", "after"))
    );
    let record = history_record(&scratch, &first);
    assert_eq!(record["status"], "failed");
    assert_eq!(record["last_node"], "gate");
    assert_eq!(record["detail"], json!({"reason": "rejected: too risky"}));
    assert_eq!(ids(&history(&scratch, &["--status", "failed"])), std::slice::from_ref(&first));

    let run = st(&scratch, &["reject", &second]);
    run.code(0).stderr_empty();
    assert_eq!(run.json(), json!({"status": "failed", "reason": "rejected by operator", "last_node": "gate"}));
    assert_eq!(history_record(&scratch, &second)["detail"], json!({"reason": "rejected by operator"}));
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
    assert!(!out.exists(), "a rejected run never continues");

    // A rejected run can be neither rejected again nor approved.
    let run = st(&scratch, &["reject", &first]);
    run.code(2);
    assert_eq!(run.stderr, format!("agentd: no checkpoint for run {first} in {STATE}\n"));
    scratch.write("approval.toml", APPROVAL);
    let run = st(&scratch, &["approve", &first, "--config", "approval.toml", "--quiet"]);
    run.code(2);
    assert_eq!(run.stderr, format!("agentd: no checkpoint for run {first} in {STATE}\n"));
    assert!(!out.exists());
}

#[test]
fn unknown_run_ids_are_usage_errors() {
    let scratch = Scratch::new();
    let out = scratch.path("out/x.txt");
    pause(&scratch, &out);
    let unknown = "exec-0-0-1";
    let expected = format!("agentd: no checkpoint for run {unknown} in {STATE}\n");
    for args in [
        vec!["approve", unknown, "--config", "approval.toml", "--quiet"],
        vec!["--resume", unknown, "--config", "approval.toml", "--quiet"],
        vec!["reject", unknown],
    ] {
        let run = st(&scratch, &args);
        run.code(2);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr, expected, "{args:?}");
    }
    // No workflow named at all: still a usage error naming the run (exact line: see
    // `approve_of_an_unknown_run_without_a_workflow`).
    let run = st(&scratch, &["approve", unknown, "--quiet"]);
    run.code(2);
    assert!(run.stderr.starts_with(&format!("agentd: no checkpoint for run {unknown} in {STATE}")), "{}", run.stderr);

    // A state dir that does not exist: the same answers, and nothing is created.
    for args in [vec!["approve", unknown, "--config", "approval.toml", "--quiet"], vec!["reject", unknown]] {
        let mut all = args.clone();
        all.extend(["--state-dir", "nowhere"]);
        let run = scratch.run(&all);
        run.code(2);
        assert_eq!(run.stderr, format!("agentd: no checkpoint for run {unknown} in nowhere\n"), "{args:?}");
    }
    assert!(!scratch.path("nowhere").exists());
}

#[test]
fn approve_of_an_unknown_run_without_a_workflow() {
    // 01 §9.4 = §7.1 step 1: `agentd: no checkpoint for run <id> in <dir>`, exit 2 — also when no
    // FILE / --config is given and the workflow would have come from the checkpoint.
    let scratch = Scratch::new();
    pause(&scratch, &scratch.path("out/x.txt"));
    let run = st(&scratch, &["approve", "exec-0-0-1", "--quiet"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("agentd: no checkpoint for run exec-0-0-1 in {STATE}\n"));
}

/// Runs the chain with `--checkpoint-each-node` while `late.txt` is missing: errored at `load`,
/// a recoverable checkpoint left behind. Returns the run id.
fn errored_chain(scratch: &Scratch) -> String {
    scratch.write("chain.toml", CHAIN);
    let input = json!({
        "first": scratch.path("out/first.txt"),
        "second": scratch.path("out/second.txt"),
        "late": scratch.path("late.txt"),
    });
    scratch.write("chain-input.json", input.to_string());
    let run = st(
        scratch,
        &[
            "run",
            "chain.toml",
            "--quiet",
            "--checkpoint-each-node",
            "--input",
            "chain-input.json",
            "--record",
            "err.json",
        ],
    );
    run.code(5);
    let outcome = run.json();
    assert_eq!(outcome["status"], "errored");
    assert_eq!(outcome["last_node"], "load");
    let reason = outcome["reason"].as_str().expect("reason");
    assert!(reason.starts_with("tool `read_file` failed: read "), "{reason}");
    let record = read_record(scratch, "err.json");
    assert_eq!(path(&record), pairs(&[("first", "continue"), ("second", "continue"), ("load", "error")]));
    record["execution_id"].as_str().expect("execution_id").to_string()
}

#[test]
fn approve_of_a_progress_checkpoint_is_refused() {
    let scratch = Scratch::new();
    let run_id = errored_chain(&scratch);
    let line = format!("{}\n", checkpoint_line(&run_id, "recoverable", "chain", "load"));
    assert_eq!(list_checkpoints(&scratch), line);
    for args in [
        vec!["approve", run_id.as_str(), "--quiet"],
        vec!["approve", run_id.as_str(), "--config", "chain.toml", "--quiet"],
        vec!["reject", run_id.as_str()],
    ] {
        let run = st(&scratch, &args);
        run.code(2);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr, format!("agentd: run {run_id} is not awaiting approval\n"), "{args:?}");
    }
    assert_eq!(list_checkpoints(&scratch), line, "the refused command left the checkpoint alone");
}

#[test]
fn resume_against_a_workflow_with_another_name_is_errored() {
    let scratch = Scratch::new();
    let out = scratch.path("out/x.txt");
    let run_id = pause(&scratch, &out);
    scratch.write("renamed.toml", APPROVAL.replace("name = \"approval_chain\"", "name = \"renamed\""));
    let reason = "workflow `renamed`: checkpoint is for workflow `approval_chain`, not `renamed`";
    for args in [
        vec!["--config", "renamed.toml", "--resume", run_id.as_str(), "--quiet"],
        vec!["approve", run_id.as_str(), "--config", "renamed.toml", "--quiet"],
    ] {
        let run = st(&scratch, &args);
        run.code(5);
        assert_eq!(run.json(), json!({"status": "errored", "reason": reason, "last_node": null}), "{args:?}");
        assert_eq!(run.stderr, format!("agentd: {reason}\n"), "{args:?}");
    }
    assert!(!out.exists());
    // Errored: the checkpoint is kept and still awaits approval (02 §6.3 rule 7), unclaimed.
    assert_eq!(
        list_checkpoints(&scratch),
        format!("{}\n", checkpoint_line(&run_id, "paused", "approval_chain", "after"))
    );
    let run = st(&scratch, &["approve", &run_id, "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
    assert!(out.exists());
}

#[test]
fn resume_against_a_workflow_with_another_name_writes_the_record() {
    // 01 §7.1 step 3 makes it an errored run, and step 6: `--record` exactly as one-shot, where
    // the record is written in every case (01 §5.3).
    let scratch = Scratch::new();
    let run_id = pause(&scratch, &scratch.path("out/x.txt"));
    scratch.write("renamed.toml", APPROVAL.replace("name = \"approval_chain\"", "name = \"renamed\""));
    let run = st(&scratch, &["--config", "renamed.toml", "--resume", &run_id, "--quiet", "--record", "r.json"]);
    run.code(5);
    run.stderr_has_line("agentd: run record written to r.json");
    let record = read_record(&scratch, "r.json");
    assert_eq!(record["status"], "errored");
    assert_eq!(record["execution_id"], run_id.as_str());
    assert_eq!(
        record["detail"],
        json!({"error": "workflow `renamed`: checkpoint is for workflow `approval_chain`, not `renamed`"})
    );
}

// ---------------------------------------------------------------------------------------------
// Progress checkpoints, --resume-incomplete
// ---------------------------------------------------------------------------------------------

#[test]
fn a_recoverable_run_is_finished_by_resume_incomplete_without_rerunning_earlier_nodes() {
    let scratch = Scratch::new();
    let run_id = errored_chain(&scratch);
    let errored = read_record(&scratch, "err.json");
    assert_eq!(list_checkpoints(&scratch), format!("{}\n", checkpoint_line(&run_id, "recoverable", "chain", "load")));
    assert_eq!(history_record(&scratch, &run_id)["status"], "errored");
    let first = scratch.path("out/first.txt");
    let second = scratch.path("out/second.txt");
    assert!(first.is_file() && second.is_file());

    // Still missing: the resumed run errors again, its checkpoint is kept (02 §6.3 rule 7).
    let run = st(&scratch, &["--config", "chain.toml", "--resume-incomplete", "--quiet"]);
    run.code(5);
    let outcome = run.json();
    assert_eq!(outcome["status"], "errored");
    assert_eq!(outcome["last_node"], "load");
    let reason = outcome["reason"].as_str().expect("reason");
    assert_eq!(run.stderr, format!("agentd: resuming {run_id} …\nagentd: resume {run_id}: {reason}\n"));
    assert_eq!(list_checkpoints(&scratch), format!("{}\n", checkpoint_line(&run_id, "recoverable", "chain", "load")));

    // Nodes before `load` must not run again: their files are gone and must stay gone.
    std::fs::remove_file(&first).expect("rm first");
    std::fs::remove_file(&second).expect("rm second");
    scratch.write("late.txt", "late content");
    let run = st(&scratch, &["--config", "chain.toml", "--resume-incomplete", "--quiet", "--record", "ignored.json"]);
    run.code(0);
    assert_eq!(run.stderr, format!("agentd: resuming {run_id} …\n"));
    let rendered = format!("late content after {} ({} bytes)", first.display(), second.display().to_string().len());
    assert_eq!(
        run.json(),
        json!({"status": "completed", "final_value": {"rendered": rendered}, "last_node": "report"}),
        "earlier outputs come from the checkpoint"
    );
    assert!(!first.exists(), "`first` ran again on resume (02 §6.4)");
    assert!(!second.exists(), "`second` ran again on resume (02 §6.4)");
    assert!(!scratch.path("ignored.json").exists(), "--record is ignored by --resume-incomplete (01 §7.2)");
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));

    let record = history_record(&scratch, &run_id);
    assert_eq!(record["status"], "completed");
    assert_eq!(
        path(&record),
        pairs(&[("first", "continue"), ("second", "continue"), ("load", "continue"), ("report", "continue")])
    );
    assert_eq!(
        record["trace"]["entries"].as_array().expect("entries")[..2],
        errored["trace"]["entries"].as_array().expect("entries")[..2],
        "restored entries, as they were"
    );

    let run = st(&scratch, &["--config", "chain.toml", "--resume-incomplete", "--quiet"]);
    run.code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("agentd: no recoverable runs for workflow `chain` in {STATE}\n"));
}

#[test]
fn resume_of_a_recoverable_run_by_id() {
    let scratch = Scratch::new();
    let run_id = errored_chain(&scratch);
    std::fs::remove_file(scratch.path("out/first.txt")).expect("rm");
    scratch.write("late.txt", "now here");
    let run = st(&scratch, &["--config", "chain.toml", "--resume", &run_id, "--quiet", "--record", "r.json"]);
    run.code(0);
    assert_eq!(run.stderr, "agentd: run record written to r.json\n");
    assert_eq!(run.json()["last_node"], "report");
    assert!(!scratch.path("out/first.txt").exists());
    let record = read_record(&scratch, "r.json");
    assert_eq!(record["execution_id"], run_id.as_str());
    assert_eq!(record["cost"]["workflow_starts"], 1);
    assert_eq!(
        path(&record),
        pairs(&[("first", "continue"), ("second", "continue"), ("load", "continue"), ("report", "continue")])
    );
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
}

#[test]
fn resume_incomplete_with_nothing_to_do() {
    let scratch = Scratch::new();
    scratch.write("chain.toml", CHAIN);
    // No state dir at all.
    let run = st(&scratch, &["--config", "chain.toml", "--resume-incomplete", "--quiet"]);
    run.code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("agentd: no recoverable runs for workflow `chain` in {STATE}\n"));

    // A paused run of this workflow and a recoverable run of another one are not candidates.
    let out = scratch.path("out/x.txt");
    let paused = pause(&scratch, &out);
    let recoverable = errored_chain(&scratch);
    let run = st(&scratch, &["--config", "approval.toml", "--resume-incomplete", "--quiet"]);
    run.code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("agentd: no recoverable runs for workflow `approval_chain` in {STATE}\n"));
    let listing = list_checkpoints(&scratch);
    assert!(listing.contains(&checkpoint_line(&paused, "paused", "approval_chain", "after")), "{listing}");
    assert!(listing.contains(&checkpoint_line(&recoverable, "recoverable", "chain", "load")), "{listing}");
    assert!(!out.exists());
}

#[test]
fn a_completed_run_leaves_no_progress_checkpoint() {
    let scratch = Scratch::new();
    scratch.write("late.txt", "present");
    scratch.write("chain.toml", CHAIN);
    let input = json!({
        "first": scratch.path("out/first.txt"),
        "second": scratch.path("out/second.txt"),
        "late": scratch.path("late.txt"),
    })
    .to_string();
    let run = st(&scratch, &["run", "chain.toml", "--quiet", "--checkpoint-each-node", "--input", &input]);
    run.code(0).stderr_empty();
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
}

// ---------------------------------------------------------------------------------------------
// --list-checkpoints, the history, the state dir itself
// ---------------------------------------------------------------------------------------------

#[test]
fn list_checkpoints_on_a_missing_state_dir_creates_nothing() {
    let scratch = Scratch::new();
    let run = scratch.run(["--list-checkpoints", "--state-dir", "missing/deeper"]);
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "no checkpoints in missing/deeper\n", "the dir as given (01 §7.3)");
    let run = scratch.run(["runs", "--state-dir", "missing/deeper"]);
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "no runs in missing/deeper\n");
    let run = scratch.run(["runs", "show", "exec-0-0-1", "--state-dir", "missing/deeper"]);
    run.code(2);
    assert_eq!(run.stderr, "agentd: no run exec-0-0-1 in missing/deeper\n");
    assert!(!scratch.path("missing").exists(), "read-only commands never create the state dir (01 §7)");
    // No workflow is needed, not even a readable one (01 §3 step 3).
    let run = scratch.run(["--list-checkpoints", "--config", "missing.toml", "--state-dir", "missing/deeper"]);
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "no checkpoints in missing/deeper\n");
    // The default state dir.
    let run = scratch.run(["--list-checkpoints"]);
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "no checkpoints in ./.agentd\n");
    assert!(scratch.listing().is_empty(), "{:?}", scratch.listing());
}

/// Runs a fixture with a record and the state dir; returns the record.
fn recorded(scratch: &Scratch, fixture: &str, extra: &[&str], code: i32) -> Value {
    let file = scratch.fixture(fixture);
    let mut args = vec!["run", file.as_str(), "--quiet", "--record", "rec.json"];
    args.extend_from_slice(extra);
    st(scratch, &args).code(code);
    read_record(scratch, "rec.json")
}

#[test]
fn runs_lists_the_history_newest_first() {
    let scratch = Scratch::new();
    let records = [
        recorded(&scratch, "terminate.toml", &[], 0),
        recorded(&scratch, "fail.toml", &["--start", "default"], 5),
        recorded(&scratch, "pause.toml", &[], 7),
        recorded(&scratch, "parse_json.toml", &["--input", r#"{"text": 5}"#], 5),
    ];
    let statuses: Vec<&str> = records.iter().map(|r| r["status"].as_str().expect("status")).collect();
    assert_eq!(statuses, ["completed", "failed", "paused", "errored"]);
    let newest_first: Vec<&Value> = records.iter().rev().collect();

    // 01 §9.3 text layout.
    let run = st(&scratch, &["runs"]);
    run.code(0).stderr_empty();
    let expected: Vec<String> = newest_first
        .iter()
        .map(|r| {
            let started = r["started_at"].as_str().expect("started_at");
            format!(
                "{}  {:<9}  workflow={}  start={}  started={}Z  {} ms",
                r["execution_id"].as_str().expect("id"),
                r["status"].as_str().expect("status"),
                r["workflow"].as_str().expect("workflow"),
                r["start_node"].as_str().expect("start"),
                &started[..19],
                r["wall_ms"]
            )
        })
        .collect();
    assert_eq!(run.stdout, format!("{}\n", expected.join("\n")));
    assert_eq!(st(&scratch, &["runs", "list"]).stdout, run.stdout, "`runs` = `runs list`");
    assert!(run.stdout.contains("  paused     workflow=approval  start=main  "), "{}", run.stdout);
    assert!(run.stdout.contains("  errored    workflow=parse_json  "), "{}", run.stdout);

    // --json: the seven keys.
    let text = st(&scratch, &["runs", "--json"]);
    text.code(0);
    assert!(text.stdout.starts_with("[\n  {\n    \""), "pretty JSON: {}", text.stdout);
    let rows = text.json().as_array().expect("array").clone();
    assert_eq!(rows.len(), 4);
    for (row, record) in rows.iter().zip(&newest_first) {
        let mut keys: Vec<&str> = row.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["execution_id", "last_node", "start_node", "started_at", "status", "wall_ms", "workflow"]);
        for key in ["execution_id", "workflow", "start_node", "status", "last_node", "started_at", "wall_ms"] {
            assert_eq!(row[key], record[key], "{key}");
        }
    }

    // Filters.
    let id = |i: usize| records[i]["execution_id"].as_str().expect("id").to_string();
    assert_eq!(ids(&history(&scratch, &["--status", "failed"])), [id(1)]);
    assert_eq!(ids(&history(&scratch, &["--status", "paused"])), [id(2)]);
    assert_eq!(ids(&history(&scratch, &["--status", "timed_out"])), Vec::<String>::new());
    assert_eq!(ids(&history(&scratch, &["--workflow", "approval"])), [id(2)]);
    assert_eq!(ids(&history(&scratch, &["--limit", "2"])), [id(3), id(2)]);
    assert_eq!(ids(&history(&scratch, &["--limit", "0"])), [id(3), id(2), id(1), id(0)]);
    assert_eq!(ids(&history(&scratch, &["--status", "completed", "--limit", "1"])), [id(0)]);
    let run = st(&scratch, &["runs", "--status", "failed"]);
    assert_eq!(run.stdout, format!("{}\n", expected[2]));
    let run = st(&scratch, &["runs", "--workflow", "nope"]);
    run.code(0);
    assert_eq!(run.stdout, format!("no runs in {STATE}\n"));
    assert_eq!(history(&scratch, &["--workflow", "nope"]), Vec::<Value>::new());
    let run = st(&scratch, &["runs", "--status", "bogus"]);
    run.code(2);
    assert_eq!(run.stderr_lines().len(), 2, "a usage error: {}", run.stderr);

    // runs show: the record, as `inspect` renders it, or the JSON itself.
    for record in &records {
        let id = record["execution_id"].as_str().expect("id");
        assert_eq!(&history_record(&scratch, id), record, "{id}");
    }
    scratch.write("errored.json", serde_json::to_string_pretty(&records[3]).expect("JSON"));
    let inspected = scratch.run(["inspect", "errored.json"]);
    inspected.code(0);
    let shown = st(&scratch, &["runs", "show", &id(3)]);
    shown.code(0).stderr_empty();
    assert_eq!(shown.stdout, inspected.stdout);
    let run = st(&scratch, &["runs", "show", "exec-0-0-1"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("agentd: no run exec-0-0-1 in {STATE}\n"));
}

#[test]
fn runs_shows_twenty_by_default() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for _ in 0..22 {
        st(&scratch, &["run", &file, "--quiet"]).code(0);
    }
    let run = st(&scratch, &["runs"]);
    run.code(0);
    assert_eq!(run.stdout.lines().count(), 20, "{}", run.stdout);
    assert_eq!(history(&scratch, &[]).len(), 20);
    assert_eq!(history(&scratch, &["--limit", "0"]).len(), 22);
}

#[test]
fn no_history_stores_nothing() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    st(&scratch, &["run", &file, "--quiet", "--no-history"]).code(0);
    assert!(!scratch.path(STATE).exists(), "nothing needed the state dir");
    let run = scratch.exec(
        scratch.agentd().env("AGENTD_NO_HISTORY", "1").args(["run", &file, "--quiet"]).args(["--state-dir", STATE]),
    );
    run.code(0);
    assert!(!scratch.path(STATE).exists(), "AGENTD_NO_HISTORY=1 is the env twin");

    // A pause still writes its checkpoint, but no history row, nor does its approval.
    let out = scratch.path("out/x.txt");
    scratch.write("approval.toml", APPROVAL);
    let input = json!({"title": "t", "out": out}).to_string();
    let run = st(&scratch, &["run", "approval.toml", "--quiet", "--no-history", "--input", &input]);
    run.code(7);
    let run_id = run.json()["run_id"].as_str().expect("run_id").to_string();
    assert_eq!(
        list_checkpoints(&scratch),
        format!("{}\n", checkpoint_line(&run_id, "paused", "approval_chain", "after"))
    );
    let runs = st(&scratch, &["runs"]);
    runs.code(0);
    assert_eq!(runs.stdout, format!("no runs in {STATE}\n"));
    st(&scratch, &["approve", &run_id, "--quiet", "--no-history"]).code(0);
    assert!(out.exists());
    assert_eq!(st(&scratch, &["runs"]).stdout, format!("no runs in {STATE}\n"));
    assert_eq!(history(&scratch, &["--limit", "0"]), Vec::<Value>::new());
}

#[test]
fn history_max_runs_keeps_the_newest_finished_runs_and_every_paused_one() {
    let scratch = Scratch::new();
    let paused = recorded(&scratch, "pause.toml", &["--history-max-runs", "2"], 7);
    let mut finished = Vec::new();
    for _ in 0..4 {
        let record = recorded(&scratch, "terminate.toml", &["--history-max-runs", "2"], 0);
        finished.push(record["execution_id"].as_str().expect("id").to_string());
    }
    let kept = ids(&history(&scratch, &["--limit", "0"]));
    assert_eq!(
        kept,
        [finished[3].clone(), finished[2].clone(), paused["execution_id"].as_str().expect("id").to_string()],
        "2 newest finished rows + the paused row (02 §7)"
    );
}

#[test]
fn a_corrupt_state_db_is_a_clear_error() {
    let scratch = Scratch::new();
    let garbage: Vec<u8> = b"this is not an SQLite database \x00\xff\xfe".iter().copied().cycle().take(8192).collect();
    scratch.write("state/state.db", &garbage);
    scratch.write("approval.toml", APPROVAL);
    scratch.write("chain.toml", CHAIN);
    let check = |args: &[&str]| {
        let run = st(&scratch, args);
        run.code(5);
        assert!(!run.stderr.is_empty(), "{args:?}: a message on stderr");
        for line in run.stderr_lines() {
            assert!(line.starts_with("agentd: "), "{args:?}: {line}");
        }
        run
    };
    for args in [
        vec!["--list-checkpoints"],
        vec!["runs"],
        vec!["runs", "--json"],
        vec!["runs", "show", "exec-0-0-1"],
        vec!["reject", "exec-0-0-1"],
        vec!["approve", "exec-0-0-1", "--config", "approval.toml", "--quiet"],
        vec!["--config", "approval.toml", "--resume", "exec-0-0-1", "--quiet"],
        vec!["--config", "chain.toml", "--resume-incomplete", "--quiet"],
    ] {
        let run = check(&args);
        assert_eq!(run.stdout, "", "{args:?}");
    }
    // A pause cannot be saved: errored (02 §6.3).
    let input = json!({"title": "t", "out": scratch.path("out/x.txt")}).to_string();
    let run = check(&["run", "approval.toml", "--quiet", "--input", &input]);
    let outcome = run.json();
    assert_eq!(outcome["status"], "errored");
    assert_eq!(outcome["last_node"], "gate");
    let reason = outcome["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with(
            "workflow `approval_chain`: node `gate` is pause_for_approval but the run state could not be saved: "
        ),
        "{reason}"
    );
    // History writes are best effort: a run that needs nothing else still completes (02 §7).
    let file = scratch.fixture("terminate.toml");
    let run = st(&scratch, &["run", &file, "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
    assert_eq!(std::fs::read(scratch.path("state/state.db")).expect("db"), garbage, "the file is left as it was");
}

#[test]
fn approve_without_a_workflow_on_a_corrupt_state_db_exits_5() {
    // 01 §7: a state dir that exists but cannot be opened → stderr message, exit 5 — also when
    // `approve` would take the workflow from the checkpoint.
    let scratch = Scratch::new();
    scratch.write("state/state.db", b"garbage, not a database".repeat(400));
    let run = st(&scratch, &["approve", "exec-0-0-1", "--quiet"]);
    run.code(5);
    assert!(!run.stderr.contains("no checkpoint"), "the open failure is the error, not a missing run:\n{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Concurrency and crashes
// ---------------------------------------------------------------------------------------------

/// gate → tag (read_env of the approving process) → name → save: the continuation writes a file
/// named after the process that ran it.
const RACE: &str = r#"name = "race"

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "gate"
type = "pause_for_approval"

[[nodes]]
id = "tag"
type = "read_env"
key = "AGENTD_IT_APPROVER"

[[nodes]]
id = "name"
type = "template_render"
template = "{{trigger.dir}}/approved-by-{{tag.value}}.txt"

[[nodes]]
id = "save"
type = "write_file"
path_from = "name.rendered"
content_from = "tag.value"

[[edges]]
from = "gate"
to = "tag"

[[edges]]
from = "tag"
to = "name"

[[edges]]
from = "name"
to = "save"
"#;

/// A plain `std::process::Command` for `agentd` (so it can be spawned), in the scratch root.
fn spawnable(scratch: &Scratch, args: &[&str]) -> Command {
    let mut command = Command::new(agentd_path());
    command.env_clear().current_dir(scratch.root()).args(args).args(["--state-dir", STATE]);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Kills (SIGKILL) and reaps a child the test started if the test ends early.
struct Reap(Option<std::process::Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn concurrent_approvals_run_the_continuation_once() {
    let scratch = Scratch::new();
    scratch.write("race.toml", RACE);
    for round in 0..3 {
        let dir = scratch.mkdir(format!("round{round}"));
        let input = json!({"dir": dir}).to_string();
        let run = st(&scratch, &["run", "race.toml", "--quiet", "--input", &input]);
        run.code(7);
        let run_id = run.json()["run_id"].as_str().expect("run_id").to_string();
        let children: Vec<Reap> = ["a", "b"]
            .iter()
            .map(|who| {
                let mut command = spawnable(&scratch, &["approve", &run_id, "--quiet"]);
                command.env("AGENTD_IT_APPROVER", who);
                Reap(Some(command.spawn().expect("spawn agentd")))
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|mut reap| reap.0.take().expect("child").wait_with_output().expect("wait"))
            .collect();
        let mut winners = 0;
        for output in &outputs {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("panicked"), "{stderr}");
            match output.status.code() {
                Some(0) => {
                    winners += 1;
                    let outcome: Value = serde_json::from_str(&stdout).expect("outcome");
                    assert_eq!(outcome["status"], "completed", "{outcome}");
                }
                Some(2) => {
                    assert_eq!(stdout, "", "the loser prints no outcome");
                    // The loser either lost the claim, or came after the winner had finished
                    // and deleted the checkpoint (the exact no-checkpoint line without a
                    // workflow is checked by `approve_of_an_unknown_run_without_a_workflow`).
                    let lines: Vec<&str> = stderr.lines().collect();
                    let ok = lines.len() == 1
                        && (lines[0] == format!("agentd: run {run_id} is already being resumed")
                            || lines[0] == format!("agentd: run {run_id} is not awaiting approval")
                            || lines[0].starts_with(&format!("agentd: no checkpoint for run {run_id} in {STATE}")));
                    assert!(ok, "round {round}: unexpected stderr {stderr:?}");
                }
                other => panic!("round {round}: exit {other:?}\n{stdout}\n{stderr}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one approval runs the continuation");
        let written: Vec<String> = std::fs::read_dir(&dir)
            .expect("round dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(written.len(), 1, "round {round}: the write_file side effect happened once: {written:?}");
        assert_eq!(history_record(&scratch, &run_id)["status"], "completed");
    }
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
}

/// w1 → w2 → w3 (write_file) → fifo (read_file of a FIFO nobody writes: blocks) → done.
const CRASH: &str = r#"name = "crash"

[[start_nodes]]
name = "main"
source = "manual"

[[nodes]]
id = "w1"
type = "write_file"
path_from = "trigger.w1"
content_from = "trigger.w1"

[[nodes]]
id = "w2"
type = "write_file"
path_from = "trigger.w2"
content_from = "trigger.w2"

[[nodes]]
id = "w3"
type = "write_file"
path_from = "trigger.w3"
content_from = "trigger.w3"

[[nodes]]
id = "fifo"
type = "read_file"
path_from = "trigger.pipe"

[[nodes]]
id = "done"
type = "template_render"
input_from = "fifo"
template = "{{content}}: {{w1.bytes}} {{w2.bytes}} {{w3.bytes}}"

[[edges]]
from = "w1"
to = "w2"

[[edges]]
from = "w2"
to = "w3"

[[edges]]
from = "w3"
to = "fifo"

[[edges]]
from = "fifo"
to = "done"
"#;

/// A crash scenario: the CRASH workflow, a FIFO at `pipe`, and the three write_file outputs.
#[cfg(unix)]
struct Crash {
    scratch: Scratch,
    pipe: std::path::PathBuf,
    outputs: [std::path::PathBuf; 3],
    input: String,
}

#[cfg(unix)]
impl Crash {
    fn new() -> Crash {
        let scratch = Scratch::new();
        scratch.write("crash.toml", CRASH);
        let pipe = scratch.path("pipe");
        assert!(Command::new("mkfifo").arg(&pipe).status().expect("mkfifo").success());
        let outputs = ["w1", "w2", "w3"].map(|w| scratch.path(format!("out/{w}.txt")));
        let input = json!({"w1": outputs[0], "w2": outputs[1], "w3": outputs[2], "pipe": pipe}).to_string();
        Crash { scratch, pipe, outputs, input }
    }

    /// Starts the run with `--checkpoint-each-node`, waits (polling `--list-checkpoints`) until
    /// its progress checkpoint names the FIFO node as the next one, then SIGKILLs it. Returns
    /// the run id.
    fn run_and_kill(&self) -> String {
        let scratch = &self.scratch;
        let args = ["run", "crash.toml", "--quiet", "--checkpoint-each-node", "--input", &self.input];
        let mut reap = Reap(Some(spawnable(scratch, &args).spawn().expect("spawn agentd")));
        let deadline = Instant::now() + Duration::from_secs(30);
        let run_id = loop {
            let listing = st(scratch, &["--list-checkpoints"]);
            listing.code(0);
            let found = listing.stdout.lines().find_map(|line| {
                let (id, rest) = line.split_once("  ")?;
                (rest == "recoverable  workflow=crash  resume_node=fifo").then(|| id.to_string())
            });
            if let Some(id) = found {
                break id;
            }
            if let Some(status) = reap.0.as_mut().expect("child").try_wait().expect("try_wait") {
                panic!("agentd exited ({status}) before blocking on the FIFO; checkpoints:\n{}", listing.stdout);
            }
            assert!(Instant::now() < deadline, "no recoverable checkpoint at `fifo` appeared:\n{}", listing.stdout);
            std::thread::sleep(Duration::from_millis(20));
        };
        for output in &self.outputs {
            assert!(output.is_file(), "{} was written before the checkpoint", output.display());
        }
        kill_9(&mut reap);
        run_id
    }

    /// Replaces the FIFO with a regular file and deletes what the write_file nodes wrote.
    fn unblock_and_clean(&self) {
        std::fs::remove_file(&self.pipe).expect("rm fifo");
        self.scratch.write("pipe", "unblocked");
        for output in &self.outputs {
            std::fs::remove_file(output).expect("rm output");
        }
    }

    /// Asserts the resumed run completed without re-running w1..w3.
    fn assert_completed_once(&self, run: &Run) {
        run.code(0);
        let bytes = |i: usize| self.outputs[i].display().to_string().len();
        assert_eq!(
            run.json(),
            json!({"status": "completed", "final_value": {"rendered": format!("unblocked: {} {} {}", bytes(0), bytes(1), bytes(2))}, "last_node": "done"}),
            "w1..w3 outputs come from the checkpoint"
        );
        for output in &self.outputs {
            assert!(
                !output.exists(),
                "{} was written again: a node before resume_node re-ran (02 §6.4)",
                output.display()
            );
        }
    }
}

/// SIGKILL through `kill -9 <pid>`, then reap; asserts the process died of the signal.
#[cfg(unix)]
fn kill_9(reap: &mut Reap) {
    let pid = reap.0.as_ref().expect("child").id();
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = reap.0.take().expect("child").wait().expect("wait");
    assert_eq!(status.code(), None, "agentd was still running and died of SIGKILL");
}

const CRASH_PATH: [(&str, &str); 5] =
    [("w1", "continue"), ("w2", "continue"), ("w3", "continue"), ("fifo", "continue"), ("done", "continue")];

#[cfg(unix)]
#[test]
fn a_killed_run_resumes_at_its_last_progress_checkpoint() {
    // Issue 3 acceptance: SIGKILL while a node blocks; `--resume` finishes the run and every
    // earlier write_file happened exactly once.
    let crash = Crash::new();
    let scratch = &crash.scratch;
    let run_id = crash.run_and_kill();
    assert_eq!(list_checkpoints(scratch), format!("{}\n", checkpoint_line(&run_id, "recoverable", "crash", "fifo")));
    crash.unblock_and_clean();
    let run = st(scratch, &["--config", "crash.toml", "--resume", &run_id, "--quiet", "--record", "r.json"]);
    crash.assert_completed_once(&run);
    let record = read_record(scratch, "r.json");
    assert_eq!(record["execution_id"], run_id.as_str());
    assert_eq!(path(&record), pairs(&CRASH_PATH));
    assert_eq!(list_checkpoints(scratch), format!("no checkpoints in {STATE}\n"));
    assert_eq!(history_record(scratch, &run_id)["status"], "completed");
}

#[cfg(target_os = "linux")]
#[test]
fn a_claim_left_by_a_killed_resumer_is_taken_over() {
    // 01 §7.1 step 2 refuses only a claim held by a LIVE process; 02 §7: a claim whose owner is
    // no longer alive on the same host may be taken over.
    let crash = Crash::new();
    let scratch = &crash.scratch;
    let run_id = crash.run_and_kill();
    // Resume while the FIFO still blocks: the resumer claims the run and blocks in `fifo`.
    let mut reap = Reap(Some(
        spawnable(scratch, &["--config", "crash.toml", "--resume", &run_id, "--quiet"]).spawn().expect("spawn"),
    ));
    // Opening the FIFO for writing returns once the resumer has opened it for reading, i.e. it
    // holds the claim and is inside `fifo`; keeping the writer open keeps its read blocked. The
    // open runs on a helper thread so that a resumer that never gets there fails the test
    // instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    let fifo = crash.pipe.clone();
    std::thread::spawn(move || {
        let _ = sender.send(std::fs::OpenOptions::new().write(true).open(&fifo));
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let writer = loop {
        match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok(writer) => break writer.expect("open fifo for writing"),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let exited = reap.0.as_mut().expect("child").try_wait().expect("try_wait");
                if exited.is_some() || Instant::now() >= deadline {
                    // Release the helper thread's open before failing.
                    drop(std::fs::File::open(&crash.pipe));
                    panic!("the resumer never blocked on the FIFO (exit: {exited:?})");
                }
            }
            Err(e) => panic!("{e}"),
        }
    };
    let busy = st(scratch, &["--config", "crash.toml", "--resume", &run_id, "--quiet"]);
    busy.code(2);
    assert_eq!(busy.stderr, format!("agentd: run {run_id} is already being resumed\n"));
    kill_9(&mut reap);
    drop(writer);
    assert_eq!(list_checkpoints(scratch), format!("{}\n", checkpoint_line(&run_id, "recoverable", "crash", "fifo")));

    crash.unblock_and_clean();
    let run = st(scratch, &["--config", "crash.toml", "--resume", &run_id, "--quiet"]);
    crash.assert_completed_once(&run);
    assert_eq!(list_checkpoints(scratch), format!("no checkpoints in {STATE}\n"));
}

#[cfg(unix)]
#[test]
fn a_timed_out_run_keeps_its_progress_checkpoint() {
    // 02 §6.3: a progress checkpoint is kept on timed_out, so the run stays recoverable.
    let crash = Crash::new();
    let scratch = &crash.scratch;
    let args = ["run", "crash.toml", "--quiet", "--checkpoint-each-node", "--timeout-secs", "1", "--input"];
    let mut args = args.to_vec();
    args.push(&crash.input);
    let run = st(scratch, &args);
    run.code(5);
    let outcome = run.json();
    assert_eq!(outcome["status"], "timed_out", "{outcome}");
    assert_eq!(outcome["last_node"], "fifo");
    let listing = list_checkpoints(scratch);
    let (run_id, rest) = listing.trim_end().split_once("  ").expect("one checkpoint line");
    assert_eq!(rest, "recoverable  workflow=crash  resume_node=fifo", "{listing}");
    assert_eq!(history_record(scratch, run_id)["status"], "timed_out");

    crash.unblock_and_clean();
    let run = st(scratch, &["--config", "crash.toml", "--resume-incomplete", "--quiet"]);
    crash.assert_completed_once(&run);
    assert_eq!(run.stderr, format!("agentd: resuming {run_id} …\n"));
    let record = history_record(scratch, run_id);
    assert_eq!(record["status"], "completed");
    assert_eq!(path(&record), pairs(&CRASH_PATH));
    assert_eq!(list_checkpoints(scratch), format!("no checkpoints in {STATE}\n"));
}

#[cfg(unix)]
#[test]
fn a_paused_run_that_times_out_after_approval_loses_its_checkpoint() {
    // 02 §6.3: a pause checkpoint is removed when the resumed run ends timed_out.
    let scratch = Scratch::new();
    scratch.write(
        "gated.toml",
        "name = \"gated\"\n\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\n\
         [[nodes]]\nid = \"gate\"\ntype = \"pause_for_approval\"\n\n\
         [[nodes]]\nid = \"read\"\ntype = \"read_file\"\npath_from = \"trigger.path\"\n\n\
         [[edges]]\nfrom = \"gate\"\nto = \"read\"\n",
    );
    assert!(Command::new("mkfifo").arg(scratch.path("pipe")).status().expect("mkfifo").success());
    let run = st(&scratch, &["run", "gated.toml", "--quiet", "--input", r#"{"path": "pipe"}"#]);
    run.code(7);
    let run_id = run.json()["run_id"].as_str().expect("run_id").to_string();
    let run = st(&scratch, &["approve", &run_id, "--quiet", "--timeout-secs", "1"]);
    run.code(5);
    assert_eq!(run.json()["status"], "timed_out");
    assert_eq!(run.json()["last_node"], "read");
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
    assert_eq!(history_record(&scratch, &run_id)["status"], "timed_out");
}

#[cfg(unix)]
#[test]
fn state_dir_and_database_permissions() {
    // 02 §7: directory 0700, database files 0600 (they contain node outputs).
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    pause(&scratch, &scratch.path("out/x.txt"));
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&scratch.path(STATE)), 0o700);
    let files: Vec<_> =
        std::fs::read_dir(scratch.path(STATE)).expect("state dir").map(|e| e.expect("entry").path()).collect();
    assert!(files.iter().any(|f| f.ends_with("state.db")), "{files:?}");
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// A two-node workflow without a pause, for history and durability tests.
const PLAIN: &str = "name = \"plain\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n";

#[test]
fn runs_since_filters_by_start_time_and_rejects_garbage() {
    let scratch = Scratch::new();
    let file = scratch.write("plain.toml", PLAIN).display().to_string();
    scratch.run(["run", &file, "--state-dir", STATE, "--quiet"]).code(0);
    let all = scratch.run(["runs", "--state-dir", STATE, "--json", "--since", "2000-01-01T00:00:00Z"]);
    all.code(0);
    assert_eq!(all.json().as_array().map(Vec::len), Some(1));
    let none = scratch.run(["runs", "--state-dir", STATE, "--json", "--since", "2999-01-01T00:00:00Z"]);
    none.code(0);
    assert_eq!(none.json(), json!([]));
    let bad = scratch.run(["runs", "--state-dir", STATE, "--since", "yesterday"]);
    bad.code(2);
    assert_eq!(bad.stderr_lines()[0], "agentd: invalid value `yesterday` for `--since`: expected an RFC 3339 instant");
}

#[test]
fn fsync_durability_is_an_opt_in_that_behaves_the_same() {
    let scratch = Scratch::new();
    let file = scratch.write("plain.toml", PLAIN).display().to_string();
    for mode in ["normal", "fsync"] {
        let run = scratch.run([
            "run",
            &file,
            "--state-dir",
            STATE,
            "--quiet",
            "--checkpoint-each-node",
            "--durability",
            mode,
        ]);
        run.code(0);
        assert_eq!(run.json()["status"], "completed");
    }
    let listed = scratch.run(["runs", "--state-dir", STATE, "--json"]);
    assert_eq!(listed.json().as_array().map(Vec::len), Some(2));
    let bad = scratch.run(["run", &file, "--state-dir", STATE, "--durability", "sometimes"]);
    bad.code(2);
    assert_eq!(bad.stderr_lines()[0], "agentd: invalid value `sometimes` for `--durability`: expected normal or fsync");
}

#[test]
fn an_approval_reaches_the_configured_audit_sink() {
    let scratch = Scratch::new();
    let text = format!("{APPROVAL}\n[logging.audit]\ntarget = \"file:audit.jsonl\"\n");
    let file = scratch.write("audited.toml", text).display().to_string();
    let out = scratch.path("out.txt").display().to_string();
    let input = format!(r#"{{"title": "t", "out": "{out}"}}"#);
    let paused = scratch.run(["run", &file, "--state-dir", STATE, "--quiet", "--input", &input]);
    paused.code(7);
    let run_id = paused.json()["run_id"].as_str().expect("run_id").to_string();
    scratch.run(["approve", &run_id, "--state-dir", STATE, "--quiet", "--config", &file, "--note", "ok"]).code(0);
    let audit = scratch.read("audit.jsonl");
    let approved: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["event"] == "approval.approved")
        .collect();
    assert_eq!(approved.len(), 1, "{audit}");
    assert_eq!(approved[0]["fields"]["run_id"], run_id.as_str());
    assert_eq!(approved[0]["fields"]["note"], "ok");
}

/// Issue 3 acceptance, with real side effects: three POSTs to a local server, a fourth that is in
/// flight (the server holds it) when the process is SIGKILLed, and a fifth after it.
const HTTP_CRASH: &str = r#"name = "http_crash"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "a"

[[nodes]]
id = "a"
type = "http_request"
method = "POST"
url_from = "trigger.a"

[[nodes]]
id = "b"
type = "http_request"
method = "POST"
url_from = "trigger.b"

[[nodes]]
id = "c"
type = "http_request"
method = "POST"
url_from = "trigger.c"

[[nodes]]
id = "held"
type = "http_request"
method = "POST"
url_from = "trigger.held"

[[nodes]]
id = "after"
type = "http_request"
method = "POST"
url_from = "trigger.after"

[[edges]]
from = "a"
to = "b"

[[edges]]
from = "b"
to = "c"

[[edges]]
from = "c"
to = "held"

[[edges]]
from = "held"
to = "after"
"#;

#[cfg(unix)]
#[test]
fn a_run_killed_during_an_http_call_resumes_with_each_completed_call_made_once() {
    let server = crate::http_server::TestServer::start();
    let scratch = Scratch::new();
    scratch.write("http_crash.toml", HTTP_CRASH);
    let input = json!({
        "a": server.url("/ok?n=a"), "b": server.url("/ok?n=b"), "c": server.url("/ok?n=c"),
        "held": server.url("/hold"), "after": server.url("/ok?n=after"),
    })
    .to_string();
    let args = ["run", "http_crash.toml", "--quiet", "--checkpoint-each-node", "--input", &input];
    let mut reap = Reap(Some(spawnable(&scratch, &args).spawn().expect("spawn agentd")));
    let count = |path: &str| server.requests().iter().filter(|r| r.path == path).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("/hold") == 0 {
        assert!(reap.0.as_mut().expect("child").try_wait().expect("try_wait").is_none(), "agentd exited early");
        assert!(Instant::now() < deadline, "the held request never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_9(&mut reap);
    let listing = list_checkpoints(&scratch);
    let run_id = listing.split_once("  ").map(|(id, _)| id.to_string()).expect("a checkpoint");
    assert_eq!(listing, format!("{}\n", checkpoint_line(&run_id, "recoverable", "http_crash", "held")));

    // The resume re-sends the interrupted call (at least once); the server answers it at once.
    let run = st(&scratch, &["--config", "http_crash.toml", "--resume", &run_id, "--quiet", "--record", "r.json"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
    assert_eq!(run.json()["last_node"], "after");
    for done in ["/ok?n=a", "/ok?n=b", "/ok?n=c", "/ok?n=after"] {
        assert_eq!(count(done), 1, "{done} must have been requested exactly once");
    }
    let held = count("/hold");
    assert!((1..=2).contains(&held), "the interrupted call happened {held} times (at most twice)");
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
}

#[test]
fn a_locked_state_db_is_a_clear_error_and_loses_nothing() {
    // Another process holds an exclusive lock on state.db for longer than the busy timeout.
    let scratch = Scratch::new();
    let pause = scratch.fixture("pause.toml");
    let paused = st(&scratch, &["run", &pause, "--quiet"]);
    paused.code(7);
    let db = scratch.path(STATE).join("state.db");
    let holder = "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\ntime.sleep(30)\n";
    let mut lock = Command::new("python3");
    lock.args(["-c", holder]).arg(&db).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = lock.spawn().expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")), &mut line)
        .expect("read");
    assert_eq!(line.trim(), "locked");
    let mut reap = Reap(Some(child));
    let started = Instant::now();
    let run = st(&scratch, &["run", &pause, "--quiet"]);
    let elapsed = started.elapsed();
    if let Some(mut holder) = reap.0.take() {
        let _ = holder.kill();
        let _ = holder.wait();
    }
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("locked") || run.stderr.contains("busy"), "{}", run.stderr);
    assert!(elapsed < Duration::from_secs(20), "bounded by the busy timeout");
    // The earlier paused run is still there.
    let listing = list_checkpoints(&scratch);
    assert!(listing.contains("paused"), "{listing}");
}

/// A map whose third element blocks until the test unblocks it; each element logs its item.
const MAP_CRASH: &str = r#"name = "map_crash"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "prepare"

[[nodes]]
id = "prepare"
type = "template_render"
template = "go"

[[nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = "element.toml"
max_items = 10
max_concurrent = 1

[[edges]]
from = "prepare"
to = "each"
"#;

const ELEMENT: &str = r#"name = "element"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "work"

[[nodes]]
id = "work"
type = "shell_run"
command = "/bin/sh"
args_from = "trigger.input"
timeout_secs = 120
"#;

#[cfg(unix)]
#[test]
fn a_run_killed_during_a_map_resumes_without_rerunning_finished_elements() {
    let scratch = Scratch::new();
    scratch.write("map_crash.toml", MAP_CRASH);
    scratch.write("element.toml", ELEMENT);
    let pipe = scratch.path("pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().expect("mkfifo").success());
    let log = scratch.path("log.txt");
    let item = |name: &str, block: bool| {
        let wait = if block { format!("; cat {} > /dev/null", pipe.display()) } else { String::new() };
        json!(["-c", format!("echo {name} >> {}{wait}; echo {name}", log.display())])
    };
    let input = json!({"items": [item("a", false), item("b", false), item("c", true), item("d", false)]}).to_string();
    let args = ["run", "map_crash.toml", "--quiet", "--checkpoint-each-node", "--input", &input];
    let mut reap = Reap(Some(spawnable(&scratch, &args).spawn().expect("spawn agentd")));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains('c') {
        assert!(reap.0.as_mut().expect("child").try_wait().expect("try_wait").is_none(), "agentd exited early");
        assert!(Instant::now() < deadline, "element c never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_9(&mut reap);
    let listing = list_checkpoints(&scratch);
    let run_id = listing.split_once("  ").map(|(id, _)| id.to_string()).expect("a checkpoint");
    assert_eq!(listing, format!("{}\n", checkpoint_line(&run_id, "recoverable", "map_crash", "each")));
    // Unblock element c for the resumed run.
    std::fs::remove_file(&pipe).expect("rm fifo");
    scratch.write("pipe", "");
    let run = st(&scratch, &["--config", "map_crash.toml", "--resume", &run_id, "--quiet"]);
    run.code(0);
    let results = run.json()["final_value"]["results"].clone();
    let stdout: Vec<Value> = results.as_array().into_iter().flatten().map(|r| r["result"]["stdout"].clone()).collect();
    assert_eq!(stdout, vec![json!("a\n"), json!("b\n"), json!("c\n"), json!("d\n")], "results in input order");
    let lines = std::fs::read_to_string(&log).expect("log");
    let count = |name: &str| lines.lines().filter(|l| *l == name).count();
    assert_eq!((count("a"), count("b"), count("d")), (1, 1, 1), "finished elements ran exactly once: {lines}");
    assert!((1..=2).contains(&count("c")), "the interrupted element ran at most twice: {lines}");
    assert_eq!(list_checkpoints(&scratch), format!("no checkpoints in {STATE}\n"));
}
