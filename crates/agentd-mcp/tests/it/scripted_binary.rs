//! The `agentd-mcp-scripted` binary refuses bad command lines and bad scripts clearly.

use std::process::Command;

use crate::harness::{scripted_binary, write};

fn run(arguments: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(scripted_binary()).args(arguments).output().unwrap_or_else(|e| panic!("spawn: {e}"));
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn garbage_scripts_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        ("bad.toml", "tools = [", "script "),
        ("unknown.toml", "[[tools]]\nname = \"a\"\nsurprise = true", "surprise"),
        ("empty-call.toml", "[[calls]]\ntool = \"a\"", "calls[0]: set one of"),
        ("bad.json", "{\"tools\": 5}", "invalid type"),
        ("binary.toml", "\u{0}\u{7f}\u{1b}", "script "),
    ];
    for (name, text, expected) in cases {
        let path = write(dir.path(), name, text);
        let (code, stderr) = run(&[&path.display().to_string()]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.starts_with("agentd-mcp-scripted: script "), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

#[test]
fn bad_command_lines_are_refused() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no script given"), "{stderr}");
    let (code, stderr) = run(&["/nonexistent/script.toml"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read script /nonexistent/script.toml"), "{stderr}");
    let (code, stderr) = run(&["x.toml", "--bogus"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown flag `--bogus`"), "{stderr}");
}
