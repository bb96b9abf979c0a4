//! Operational logging and the audit sink as seen from the shell (01 §2.5, §2.6, §3 steps
//! 10–11; 05 §2 allow-all warning), with the precedence CLI > env > `[logging]` > default.

use serde_json::Value;

use crate::support::Scratch;

/// A workflow without `[policy]` (so it logs the allow-all warning) plus extra tables.
fn workflow_with(scratch: &Scratch, tables: &str) -> String {
    scratch.write(
        "logged.toml",
        format!(
            "name = \"logged\"\n{tables}\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n\n[[nodes]]\nid = \"done\"\ntype = \"terminate\"\n"
        ),
    );
    "logged.toml".to_string()
}

fn allow_all_lines(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.contains("policy.allow_all")).count()
}

#[test]
fn workflow_log_level_applies_and_cli_and_env_beat_it() {
    let scratch = Scratch::new();
    let file = workflow_with(&scratch, "[logging]\nlevel = \"error\"\n");
    let run = scratch.run(["run", &file]);
    run.code(0);
    assert_eq!(allow_all_lines(&run.stderr), 0, "[logging].level = error hides warnings: {}", run.stderr);

    let run = scratch.run(["run", &file, "--log-level", "warn"]);
    run.code(0);
    assert_eq!(allow_all_lines(&run.stderr), 1, "--log-level beats [logging]: {}", run.stderr);

    let run = scratch.exec(scratch.agentd().env("AGENTD_LOG", "warn").args(["run", &file]));
    run.code(0);
    assert_eq!(allow_all_lines(&run.stderr), 1, "AGENTD_LOG beats [logging]: {}", run.stderr);

    let run = scratch.exec(scratch.agentd().env("AGENTD_LOG", "error").args(["run", &file, "--log-level", "warn"]));
    run.code(0);
    assert_eq!(allow_all_lines(&run.stderr), 1, "--log-level beats AGENTD_LOG: {}", run.stderr);
}

#[test]
fn unparseable_log_level_means_info() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--log-level", "=)(not a directive"]);
    run.code(0);
    assert!(run.stderr.contains("workflow.started"), "info-level audit events are logged at `info`: {}", run.stderr);
}

#[test]
fn json_log_format_writes_json_lines() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--log-format", "json"]);
    run.code(0);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    let line: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", lines[0]));
    assert_eq!(line["level"], "WARN");
    assert!(lines[0].contains("policy.allow_all"), "{}", lines[0]);
}

#[test]
fn log_target_stdout_and_env_twin() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.exec(scratch.agentd().env("AGENTD_LOG_TARGET", "stdout").args(["run", &file]));
    run.code(0).stderr_empty();
    assert!(run.stdout.contains("policy.allow_all"), "{}", run.stdout);
}

#[test]
fn quiet_keeps_the_audit_sink() {
    let scratch = Scratch::new();
    let file = workflow_with(&scratch, "[logging.audit]\ntarget = \"file:audit/audit.jsonl\"\n");
    let run = scratch.run(["run", &file, "--quiet"]);
    run.code(0).stderr_empty();
    let audit = scratch.read("audit/audit.jsonl");
    let events: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(|v| v["fields"]["event"].as_str().unwrap_or_default().to_string())
        .collect();
    for event in ["policy.allow_all", "workflow.started", "workflow.completed"] {
        assert!(events.iter().any(|e| e == event), "audit lacks {event}: {audit}");
    }
}

#[test]
fn allow_all_warning_line_is_logged_even_with_an_audit_sink() {
    // 05 §2: allow-all mode emits one warning log line AND the audit event.
    let scratch = Scratch::new();
    let file = workflow_with(&scratch, "[logging.audit]\ntarget = \"file:audit.jsonl\"\n");
    let run = scratch.run(["run", &file]);
    run.code(0);
    assert!(scratch.read("audit.jsonl").contains("policy.allow_all"));
    assert_eq!(allow_all_lines(&run.stderr), 1, "one warning log line expected on stderr: {:?}", run.stderr);
}

#[test]
fn unknown_mode_warns_and_infers() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    let run = scratch.run(["run", &file, "--quiet", "--mode", "bogus"]);
    run.code(0);
    assert_eq!(run.json()["status"], "completed");
    let warnings: Vec<&str> = run.stderr_lines().into_iter().filter(|l| l.contains("bogus")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].starts_with("agentd: warning"), "{}", warnings[0]);
}

#[test]
fn signing_required_refuses_an_unsigned_workflow() {
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    for run in [
        scratch.run(["run", &file, "--quiet", "--signing-required", "--record", "r.json"]),
        scratch.exec(scratch.agentd().env("AGENTD_SIGNING_REQUIRED", "true").args(["run", &file, "--quiet"])),
    ] {
        run.code(5);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.starts_with("agentd: workflow signature verification failed: "), "{}", run.stderr);
    }
    assert!(!scratch.path("r.json").exists());
}

#[test]
fn logging_install_failure_exits_5() {
    // 01 §3 step 10: a log target that cannot be opened is a logging install failure → 5.
    let scratch = Scratch::new();
    let file = scratch.fixture("terminate.toml");
    scratch.write("plain-file", "not a directory");
    let run = scratch.run(["run", &file, "--log-target", "file:plain-file/agentd.log", "--record", "r.json"]);
    run.code(5);
    assert_eq!(run.stdout, "", "no run happens");
    assert!(run.stderr.starts_with("agentd: "), "{}", run.stderr);
    assert!(run.stderr.contains("plain-file"), "the error names the path: {}", run.stderr);
    assert!(!scratch.path("r.json").exists());
}
