//! Flag parsing as seen from the shell (01 §1, §2): the two-line usage error, value forms,
//! aliases, repetition, conflicts, help and version.

use predicates::prelude::*;

use crate::snap;
use crate::support::Scratch;

/// Usage errors print exactly two lines on stderr, nothing on stdout, and exit 2 (01 §1).
#[track_caller]
fn assert_usage_error(run: &crate::support::Run, first_line: &str) {
    run.code(2);
    assert_eq!(run.stdout, "", "usage errors print nothing on stdout");
    assert_eq!(
        run.stderr,
        format!("{first_line}\nhint: run `agentd --help` for usage\n"),
        "usage errors are exactly two lines"
    );
}

#[test]
fn unknown_flag_is_the_two_line_usage_error() {
    let scratch = Scratch::new();
    let run = scratch.run(["--mystery"]);
    assert_usage_error(&run, "agentd: unknown argument `--mystery`");
    snap!(run.render());
}

#[test]
fn unknown_flag_after_a_subcommand_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--mystery"]);
    assert_usage_error(&run, "agentd: unknown argument `--mystery`");
}

#[test]
fn missing_value_is_a_usage_error() {
    let scratch = Scratch::new();
    let run = scratch.run(["--config"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
    assert!(run.stderr_lines()[0].starts_with("agentd: "), "{}", run.stderr);
    assert!(run.stderr_lines()[0].contains("--config"), "{}", run.stderr);
    assert_eq!(run.stderr_lines()[1], "hint: run `agentd --help` for usage");
    snap!(run.render());
}

#[test]
fn missing_value_of_a_trailing_input_flag_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--input"]);
    run.code(2);
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
    assert!(run.stderr_lines()[0].contains("--input"), "{}", run.stderr);
    assert_eq!(run.stderr_lines()[1], "hint: run `agentd --help` for usage");
}

#[test]
fn malformed_timeout_secs_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for bad in ["abc", "-1", "1.5", "", "12s"] {
        let run = scratch.run(["run", &file, "--timeout-secs", bad]);
        run.code(2);
        assert_eq!(run.stdout, "", "--timeout-secs {bad:?}");
        assert_eq!(run.stderr_lines().len(), 2, "--timeout-secs {bad:?}: {}", run.stderr);
        assert!(run.stderr_lines()[0].starts_with("agentd: "), "{}", run.stderr);
        assert!(run.stderr_lines()[0].contains("--timeout-secs"), "{}", run.stderr);
        assert_eq!(run.stderr_lines()[1], "hint: run `agentd --help` for usage");
    }
    snap!(scratch.run(["run", &file, "--timeout-secs", "abc"]).render());
}

#[test]
fn timeout_secs_zero_on_the_cli_is_accepted() {
    // `0` on the CLI is treated as `1` (01 §2.1): not a usage error.
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--timeout-secs", "0", "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
}

#[test]
fn bad_log_format_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--log-format", "xml"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
    assert!(run.stderr_lines()[0].contains("--log-format"), "{}", run.stderr);
    snap!(run.render());
}

#[test]
fn log_format_aliases_are_accepted() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for format in ["text", "pretty", "json"] {
        scratch.run(["run", &file, "--log-format", format, "--quiet"]).code(0);
    }
}

#[test]
fn bad_log_target_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for bad in ["syslog", "file:", "stderr2"] {
        let run = scratch.run(["run", &file, "--log-target", bad]);
        run.code(2);
        assert_eq!(run.stdout, "", "--log-target {bad:?}");
        assert_eq!(run.stderr_lines().len(), 2, "--log-target {bad:?}: {}", run.stderr);
        assert!(run.stderr_lines()[0].contains("--log-target"), "{}", run.stderr);
    }
    snap!(scratch.run(["run", &file, "--log-target", "syslog"]).render());
}

#[test]
fn log_target_file_writes_the_log_there() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--log-target", "file:logs/agentd.log"]);
    run.code(0);
    let log = scratch.read("logs/agentd.log");
    assert!(log.contains("policy.allow_all"), "the allow-all warning goes to the log file: {log:?}");
    assert!(!run.stderr.contains("policy.allow_all"), "{}", run.stderr);
}

#[test]
fn bad_bind_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for bad in ["localhost:8080", "127.0.0.1", "::1:80", "127.0.0.1:99999", "example.com:80"] {
        let run = scratch.run(["run", &file, "--bind", bad]);
        run.code(2);
        assert_eq!(run.stdout, "", "--bind {bad:?}");
        assert_eq!(run.stderr_lines().len(), 2, "--bind {bad:?}: {}", run.stderr);
        assert!(run.stderr_lines()[0].contains("--bind"), "{}", run.stderr);
    }
    snap!(scratch.run(["run", &file, "-b", "localhost:8080"]).render());
}

#[test]
fn good_bind_values_are_accepted() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for good in ["127.0.0.1:0", "[::1]:8080", "0.0.0.0:65535"] {
        scratch.run(["run", &file, "--bind", good, "--quiet"]).code(0);
    }
}

#[test]
fn flag_equals_value_and_flag_space_value_are_the_same() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let spaced = scratch.run(["--config", &file, "--input", r#"{"a": 1}"#, "--quiet"]);
    let equals = scratch.run([format!("--config={file}"), r#"--input={"a": 1}"#.to_string(), "--quiet".to_string()]);
    spaced.code(0);
    equals.code(0);
    assert_eq!(spaced.stdout, equals.stdout);
    assert_eq!(equals.json()["final_value"]["value"], serde_json::json!({"a": 1, "kind": "manual"}));
}

#[test]
fn short_and_long_aliases() {
    let scratch = Scratch::new();
    let file = scratch.fixture("starts.toml");
    let long = scratch.run(["--config", &file, "--start", "second", "--input", "[1]", "--quiet"]);
    let short = scratch.run(["-c", &file, "-s", "second", "-i", "[1]", "--quiet"]);
    let input_file = scratch.run(["-c", &file, "-s", "second", "--input-file", "[1]", "--quiet"]);
    long.code(0);
    assert_eq!(long.json()["last_node"], "two");
    assert_eq!(short.code(0).stdout, long.stdout);
    assert_eq!(input_file.code(0).stdout, long.stdout);
}

#[test]
fn input_file_alias_reads_a_file() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.write("payload.json", r#"{"from": "file"}"#);
    let run = scratch.run(["run", &file, "--input-file", "payload.json", "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["final_value"]["value"]["from"], "file");
}

#[test]
fn last_occurrence_wins() {
    let scratch = Scratch::new();
    let starts = scratch.fixture("starts.toml");
    let echo = scratch.fixture("echo.toml");

    let run = scratch.run(["-c", &starts, "--start", "first", "--start", "second", "--quiet"]);
    assert_eq!(run.code(0).json()["last_node"], "two");

    let run = scratch.run(["run", &echo, "-i", "[1]", "--input", "[2]", "--quiet"]);
    assert_eq!(run.code(0).json()["final_value"]["value"]["input"], serde_json::json!([2]));

    // The earlier --config names a file that does not exist: only the last one is loaded.
    let run = scratch.run(["--config", "missing.toml", "--config", &echo, "--quiet"]);
    run.code(0);
}

#[test]
fn file_and_config_on_one_command_line_conflict() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--config", &file]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
    assert_eq!(run.stderr_lines()[1], "hint: run `agentd --help` for usage");
    snap!(run.render());

    let run = scratch.run(["validate", &file, "-c", &file]);
    run.code(2);
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
}

#[test]
fn no_workflow_configured() {
    let scratch = Scratch::new();
    let run = scratch.run(Vec::<String>::new());
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with("agentd: no workflow configured. Pass --config FILE / AGENTD_CONFIG"),
        "{}",
        run.stderr
    );
    snap!(run.render());
}

#[test]
fn version_prints_just_the_semver() {
    let scratch = Scratch::new();
    for flag in ["-V", "--version"] {
        let run = scratch.run([flag]);
        run.code(0).stderr_empty();
        assert_eq!(run.stdout, format!("{}\n", env!("CARGO_PKG_VERSION")), "{flag}");
        let version = run.stdout.trim_end();
        let parts: Vec<&str> = version.split('.').collect();
        assert_eq!(parts.len(), 3, "semver MAJOR.MINOR.PATCH: {version}");
        assert!(parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())), "{version}");
    }
}

#[test]
fn version_through_assert_cmd_predicates() {
    let scratch = Scratch::new();
    scratch
        .agentd()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^[0-9]+\.[0-9]+\.[0-9]+\n$").expect("regex"))
        .stderr(predicate::str::is_empty());
}

#[test]
fn help_after_a_subcommand() {
    let scratch = Scratch::new();
    for sub in ["run", "validate"] {
        scratch
            .agentd()
            .args([sub, "--help"])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("--config").and(predicate::str::contains("AGENTD_CONFIG")))
            .stderr(predicate::str::is_empty());
    }
}

/// The flags of 01 §2: (long, short/long aliases, env twin, default as printed).
const FLAGS: &[(&str, &[&str], Option<&str>, &str)] = &[
    ("config", &["-c"], Some("AGENTD_CONFIG"), ""),
    ("input", &["-i", "--input-file"], Some("AGENTD_INPUT"), "null"),
    ("start", &["-s"], Some("AGENTD_START"), ""),
    ("mode", &[], Some("AGENTD_MODE"), ""),
    ("timeout-secs", &[], Some("AGENTD_TIMEOUT_SECS"), "120"),
    ("dry-run", &[], Some("AGENTD_DRY_RUN"), "off"),
    ("validate-only", &[], Some("AGENTD_VALIDATE_ONLY"), "off"),
    ("record", &[], Some("AGENTD_RECORD"), "none"),
    ("bind", &["-b"], Some("AGENTD_HTTP_BIND"), "127.0.0.1:8080"),
    ("drain-timeout-secs", &[], Some("AGENTD_DRAIN_TIMEOUT_SECS"), "30"),
    ("reload-file", &[], Some("AGENTD_RELOAD_FILE"), "none"),
    ("state-dir", &[], Some("AGENTD_STATE_DIR"), "./.agentd"),
    ("resume", &[], Some("AGENTD_RESUME"), "none"),
    ("checkpoint-each-node", &[], Some("AGENTD_CHECKPOINT_EACH_NODE"), "off"),
    ("resume-incomplete", &[], None, "off"),
    ("list-checkpoints", &[], None, "off"),
    ("no-history", &[], Some("AGENTD_NO_HISTORY"), "off"),
    ("history-max-runs", &[], Some("AGENTD_HISTORY_MAX_RUNS"), "1000"),
    ("intel-unix", &[], Some("AGENTD_INTEL_UNIX"), "none"),
    ("intel-http", &[], Some("AGENTD_INTEL_HTTP"), "none"),
    ("intel-http-bearer-file", &[], Some("AGENTD_INTEL_HTTP_BEARER_FILE"), "none"),
    ("mcp-stdio", &[], Some("AGENTD_MCP_STDIO"), "none"),
    ("log-level", &[], Some("AGENTD_LOG"), "warn"),
    ("log-format", &[], Some("AGENTD_LOG_FORMAT"), "text"),
    ("log-target", &[], Some("AGENTD_LOG_TARGET"), "stderr"),
    ("quiet", &[], Some("AGENTD_QUIET"), "off"),
    ("signing-required", &[], Some("AGENTD_SIGNING_REQUIRED"), "off"),
    ("signing-key-file", &[], Some("AGENTD_SIGNING_KEY_FILE"), "none"),
    ("instruction", &[], Some("AGENTD_INSTRUCTION"), "none"),
    ("instruction-file", &[], None, "none"),
    ("goal", &[], Some("AGENTD_GOAL"), "none"),
    ("instructions", &[], Some("AGENTD_INSTRUCTIONS"), "none"),
    ("auto-approve", &[], Some("AGENTD_AUTO_APPROVE"), "off"),
    ("plan-only", &[], Some("AGENTD_PLAN_ONLY"), "off"),
    ("plan-out", &[], Some("AGENTD_PLAN_OUT"), "none"),
    ("promote", &[], Some("AGENTD_PROMOTE"), "none"),
    ("max-replans", &[], Some("AGENTD_MAX_REPLANS"), "2"),
    ("no-replan-on-failure", &[], Some("AGENTD_NO_REPLAN_ON_FAILURE"), "off"),
    ("no-prompt", &[], Some("AGENTD_NO_PROMPT"), "off"),
    ("queue-approval", &[], Some("AGENTD_QUEUE_APPROVAL"), "off"),
    ("require-policy", &[], Some("AGENTD_REQUIRE_POLICY"), "off"),
    ("control", &[], Some("AGENTD_CONTROL"), "off"),
    ("control-bind", &[], Some("AGENTD_CONTROL_BIND"), "none"),
    ("store", &[], Some("AGENTD_STORE"), "sqlite"),
    ("node-id", &[], Some("AGENTD_NODE_ID"), ""),
];

/// The help entry of `--long`: from the line that declares it up to the next declaration,
/// whitespace collapsed (help text wraps). Declarations are indented by at most six spaces;
/// wrapped continuation lines are indented further.
fn help_entry(help: &str, long: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let is_declaration = |line: &str| indent(line) <= 6 && line.trim_start().starts_with('-');
    let declares = |line: &str| {
        is_declaration(line) && line.trim_start().split([' ', ',']).any(|word| word == format!("--{long}"))
    };
    let start = lines.iter().position(|l| declares(l))?;
    let mut entry = vec![lines[start]];
    for line in &lines[start + 1..] {
        if line.trim().is_empty() || is_declaration(line) || indent(line) == 0 {
            break;
        }
        entry.push(line);
    }
    Some(entry.join(" ").split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn help_lists_every_flag_with_aliases_env_twin_and_default() {
    let scratch = Scratch::new();
    let run = scratch.run(["--help"]);
    run.code(0).stderr_empty();
    let help = &run.stdout;
    let mut problems = Vec::new();
    for (long, aliases, env, default) in FLAGS {
        let Some(entry) = help_entry(help, long) else {
            problems.push(format!("--{long}: not listed"));
            continue;
        };
        for alias in *aliases {
            if !entry.contains(alias) {
                problems.push(format!("--{long}: alias {alias} missing in {entry:?}"));
            }
        }
        match env {
            Some(env) if !entry.contains(env) => {
                problems.push(format!("--{long}: env twin {env} missing in {entry:?}"))
            }
            None if entry.contains("AGENTD_") => {
                problems.push(format!("--{long}: has no env twin but shows one: {entry:?}"))
            }
            _ => {}
        }
        if !entry.to_lowercase().contains("default") {
            problems.push(format!("--{long}: no default shown in {entry:?}"));
        } else if !default.is_empty() && !entry.contains(default) {
            problems.push(format!("--{long}: default {default:?} missing in {entry:?}"));
        }
    }
    for (flag, alias) in [("help", "-h"), ("version", "-V")] {
        match help_entry(help, flag) {
            Some(entry) if entry.contains(alias) => {}
            other => problems.push(format!("--{flag}: missing or without {alias}: {other:?}")),
        }
    }
    assert!(problems.is_empty(), "help problems:\n{}\n\n{help}", problems.join("\n"));
}

#[test]
fn help_snapshot() {
    let scratch = Scratch::new();
    let run = scratch.run(["--help"]);
    run.code(0);
    snap!(run.render());
}

#[test]
fn help_forms_agree() {
    let scratch = Scratch::new();
    let long = scratch.run(["--help"]);
    long.code(0);
    for form in [vec!["-h"], vec!["help"]] {
        let run = scratch.run(&form);
        run.code(0).stderr_empty();
        assert_eq!(run.stdout, long.stdout, "{form:?} prints the same help as --help");
    }
}

#[test]
fn flags_are_accepted_after_a_subcommand() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--input", "[7]", "--dry-run", "--timeout-secs", "5", "--quiet"]);
    run.code(0).stderr_empty();
    assert_eq!(run.json()["final_value"]["value"]["input"], serde_json::json!([7]));
}

#[test]
fn run_subcommand_forces_one_shot_even_with_routes() {
    let scratch = Scratch::new();
    scratch.write(
        "routes.toml",
        r#"name = "routed"
[[start_nodes]]
name = "hook"
source = "http"
[[http_routes]]
method = "POST"
path = "/hook"
start_node = "hook"
[[nodes]]
id = "done"
type = "terminate"
"#,
    );
    let run = scratch.run(["run", "routes.toml", "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
    let run = scratch.run(["--config", "routes.toml", "--mode", "once", "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["last_node"], "done");
}
