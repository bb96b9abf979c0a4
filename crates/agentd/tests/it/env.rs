//! Environment twins (01 §2, §2.10): each setting's variable, the parsing rules per type, and
//! the precedence CLI flag > environment.

use serde_json::json;

use crate::snap;
use crate::support::Scratch;

#[test]
fn agentd_config_names_the_workflow() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_CONFIG", &file).arg("--quiet"));
    run.code(0);
    assert_eq!(run.json()["last_node"], "done");
}

#[test]
fn config_flag_beats_agentd_config() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_CONFIG", "missing.toml").args(["--config", &file, "--quiet"]));
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
}

#[test]
fn file_positional_beats_agentd_config_without_conflict() {
    // `FILE` beats `AGENTD_CONFIG` (01 §1); only `--config` on the command line conflicts.
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_CONFIG", "missing.toml").args(["run", &file, "--quiet"]));
    run.code(0);
    assert_eq!(run.json()["last_node"], "done");
}

#[test]
fn whitespace_only_agentd_config_is_unset() {
    let scratch = Scratch::new();
    let run = scratch.exec(scratch.agentd().env("AGENTD_CONFIG", "  \t "));
    run.code(2);
    assert!(run.stderr.starts_with("agentd: no workflow configured."), "{}", run.stderr);
}

#[test]
fn agentd_input_inline_json() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_INPUT", r#"{"from": "env"}"#).args(["run", &file, "--quiet"]));
    run.code(0);
    assert_eq!(run.json()["final_value"]["value"], json!({"from": "env", "kind": "manual"}));
}

#[test]
fn agentd_input_file_path() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.write("payload.txt", "plain words");
    let run = scratch.exec(scratch.agentd().env("AGENTD_INPUT", "payload.txt").args(["run", &file, "--quiet"]));
    run.code(0);
    assert_eq!(run.json()["final_value"]["value"], json!({"kind": "manual", "raw": "plain words"}));
}

#[test]
fn agentd_input_dash_reads_stdin() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch
        .exec(scratch.agentd().env("AGENTD_INPUT", "-").args(["run", &file, "--quiet"]).write_stdin(r#"[1, "two"]"#));
    run.code(0);
    assert_eq!(run.json()["final_value"]["value"], json!({"input": [1, "two"], "kind": "manual"}));
}

#[test]
fn agentd_input_invalid_inline_json_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_INPUT", "{oops").args(["run", &file, "--quiet"]));
    run.code(2);
    assert!(run.stderr.starts_with("agentd: --input: invalid inline JSON: "), "{}", run.stderr);
}

#[test]
fn input_flag_beats_agentd_input() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch
        .exec(scratch.agentd().env("AGENTD_INPUT", r#"{"from": "env"}"#).args(["run", &file, "-i", "[2]", "--quiet"]));
    run.code(0);
    assert_eq!(run.json()["final_value"]["value"], json!({"input": [2], "kind": "manual"}));
}

#[test]
fn whitespace_only_agentd_input_is_unset() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_INPUT", "   ").args(["run", &file, "--quiet"]));
    run.code(0);
    assert_eq!(run.json()["final_value"]["value"], json!({"input": null, "kind": "manual"}));
}

#[test]
fn agentd_start_and_cli_precedence() {
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_START", "second").args(["run", &file, "--quiet"]));
    assert_eq!(run.code(0).json()["last_node"], "two");
    let run = scratch.exec(scratch.agentd().env("AGENTD_START", "nope").args(["run", &file, "-s", "first", "--quiet"]));
    assert_eq!(run.code(0).json()["last_node"], "one");
}

#[test]
fn whitespace_only_agentd_start_is_unset() {
    // Unset → automatic pick, which is impossible here (two manual starts): exit 2, not an
    // errored run for a start named "  ".
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_START", "  ").args(["run", &file, "--quiet"]));
    run.code(2);
    assert_eq!(run.stderr, "agentd: cannot pick a start node automatically (2 manual / 3 total); pass --start NAME\n");
}

fn dry_run_with(value: &str) -> bool {
    let scratch = Scratch::new();
    let file = scratch.fixture("fs.toml");
    let input = json!({"path": "out.txt", "content": "x"}).to_string();
    let run = scratch.exec(
        scratch.agentd().env("AGENTD_DRY_RUN", value).args(["run", &file, "--start", "write", "-i", &input, "--quiet"]),
    );
    run.code(0);
    let dry = run.json()["final_value"]["dry_run"] == json!(true);
    assert_eq!(dry, !scratch.path("out.txt").exists(), "AGENTD_DRY_RUN={value:?}: output and effect disagree");
    dry
}

#[test]
fn agentd_dry_run_bool_parsing() {
    for truthy in ["1", "true", "TRUE", "True"] {
        assert!(dry_run_with(truthy), "AGENTD_DRY_RUN={truthy:?} must enable dry-run");
    }
    for falsy in ["yes", "on", "0", "false", "tRUE", "2", "", " "] {
        assert!(!dry_run_with(falsy), "AGENTD_DRY_RUN={falsy:?} must not enable dry-run");
    }
}

#[test]
fn agentd_timeout_secs_non_numeric_falls_back_with_a_warning() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for bad in ["abc", "0", "-5"] {
        let run = scratch.exec(scratch.agentd().env("AGENTD_TIMEOUT_SECS", bad).args(["run", &file, "--quiet"]));
        run.code(0);
        assert_eq!(run.json()["status"], "completed");
        let warnings: Vec<&str> =
            run.stderr_lines().into_iter().filter(|l| l.contains("AGENTD_TIMEOUT_SECS")).collect();
        assert_eq!(warnings.len(), 1, "AGENTD_TIMEOUT_SECS={bad:?}: one warning line expected:\n{}", run.stderr);
        assert!(warnings[0].starts_with("agentd: "), "{}", warnings[0]);
    }
    let run = scratch.exec(scratch.agentd().env("AGENTD_TIMEOUT_SECS", "abc").args(["run", &file, "--quiet"]));
    snap!(run.render());
}

#[test]
fn agentd_timeout_secs_numeric_is_silent_and_cli_beats_it() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_TIMEOUT_SECS", "30").args(["run", &file, "--quiet"]));
    run.code(0).stderr_empty();
    // A malformed environment value never matters when the flag is given.
    let run = scratch.exec(scratch.agentd().env("AGENTD_TIMEOUT_SECS", "abc").args([
        "run",
        &file,
        "--timeout-secs",
        "30",
        "--quiet",
    ]));
    run.code(0).stderr_empty();
}

#[test]
fn agentd_record_writes_the_record() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_RECORD", "env-record.json").args(["run", &file, "--quiet"]));
    run.code(0);
    run.stderr_has_line("agentd: run record written to env-record.json");
    let record: serde_json::Value = serde_json::from_str(&scratch.read("env-record.json")).expect("record JSON");
    assert_eq!(record["status"], "completed");
}

#[test]
fn whitespace_only_agentd_record_is_unset() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_RECORD", " ").args(["run", &file, "--quiet"]));
    run.code(0).stderr_empty();
}

#[test]
fn agentd_validate_only_validates() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_VALIDATE_ONLY", "1").args(["--config", &file]));
    run.code(0).stderr_empty();
    assert_eq!(run.stdout, "{\n  \"workflow\": \"terminate\",\n  \"ok\": true\n}\n");
}

#[test]
fn agentd_quiet_silences_warnings() {
    let scratch = Scratch::new();
    let file = scratch.fixture("warning.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_QUIET", "true").args(["run", &file]));
    run.code(0).stderr_empty();
}

#[test]
fn agentd_log_format_bad_value_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_LOG_FORMAT", "xml").args(["run", &file]));
    run.code(2);
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
    assert_eq!(run.stderr_lines()[1], "hint: run `agentd --help` for usage");
}

#[test]
fn agentd_http_bind_bad_value_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_HTTP_BIND", "localhost:1").args(["run", &file]));
    run.code(2);
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
}
