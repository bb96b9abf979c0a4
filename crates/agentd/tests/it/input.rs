//! The trigger input forms of 01 §5.2 and the `trigger` value they produce (03 §6.2).

use serde_json::{Value, json};

use crate::snap;
use crate::support::{Run, Scratch};

/// The `trigger` value the echo workflow saw.
#[track_caller]
fn trigger(run: &Run) -> Value {
    run.code(0);
    let outcome = run.json();
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["final_value"]["found"], true);
    outcome["final_value"]["value"].clone()
}

#[test]
fn absent_input_is_null_with_kind_manual() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet"]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "input": null}));
}

#[test]
fn inline_object_fields_join_the_trigger_and_kind_can_be_overridden() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"a": 1, "b": [true]}"#]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "a": 1, "b": [true]}));
    let run = scratch.run(["run", &file, "--quiet", "--input", r#"{"kind": "cron"}"#]);
    assert_eq!(trigger(&run), json!({"kind": "cron"}));
}

#[test]
fn inline_array_and_leading_whitespace() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", "  \n [1, 2]"]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "input": [1, 2]}));
}

#[test]
fn invalid_inline_json_is_a_usage_error_with_the_exact_message() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", "{bad"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    let expected_error = serde_json::from_str::<Value>("{bad").expect_err("invalid").to_string();
    assert_eq!(run.stderr, format!("agentd: --input: invalid inline JSON: {expected_error}\n"));
    snap!(run.render());
}

#[test]
fn invalid_inline_array_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", "[1, 2"]);
    run.code(2);
    assert!(run.stderr.starts_with("agentd: --input: invalid inline JSON: "), "{}", run.stderr);
}

#[test]
fn dash_reads_json_from_stdin() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch
        .exec(scratch.agentd().args(["run", &file, "--quiet", "--input", "-"]).write_stdin(r#"{"via": "stdin"}"#));
    assert_eq!(trigger(&run), json!({"kind": "manual", "via": "stdin"}));
}

#[test]
fn dash_with_non_json_stdin_is_raw() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let text = "line one\nline two {not json\n";
    let run = scratch.exec(scratch.agentd().args(["run", &file, "--quiet", "-i", "-"]).write_stdin(text));
    assert_eq!(trigger(&run), json!({"kind": "manual", "raw": text}));
}

#[test]
fn file_with_json_is_used_as_is() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.write("in/payload.json", "  {\"n\": 42, \"s\": \"x\"}\n");
    let run = scratch.run(["run", &file, "--quiet", "--input", "in/payload.json"]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "n": 42, "s": "x"}));
    scratch.write("scalar.json", "\"just a string\"");
    let run = scratch.run(["run", &file, "--quiet", "--input", "scalar.json"]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "input": "just a string"}));
}

#[test]
fn file_with_non_json_is_raw_verbatim() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let text = "  Subject: hello\r\n\r\nbody with \"quotes\" and a tab\t\n";
    scratch.write("mail.txt", text);
    let run = scratch.run(["run", &file, "--quiet", "--input", "mail.txt"]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "raw": text}));
}

#[test]
fn empty_file_is_raw_empty_string() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.write("empty.txt", "");
    let run = scratch.run(["run", &file, "--quiet", "--input", "empty.txt"]);
    assert_eq!(trigger(&run), json!({"kind": "manual", "raw": ""}));
}

#[test]
fn missing_file_is_a_usage_error_naming_the_path() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run = scratch.run(["run", &file, "--quiet", "--input", "nowhere/payload.json"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: failed to read nowhere/payload.json: "), "{}", run.stderr);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    snap!(run.render());
}

#[test]
fn directory_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.mkdir("a_dir");
    let run = scratch.run(["run", &file, "--quiet", "--input", "a_dir"]);
    run.code(2);
    assert!(run.stderr.starts_with("agentd: failed to read a_dir: "), "{}", run.stderr);
}

#[test]
fn non_utf8_file_content_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.write("latin1.txt", b"caf\xe9 \xff\xfe");
    let run = scratch.run(["run", &file, "--quiet", "--input", "latin1.txt"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: failed to read latin1.txt: "), "{}", run.stderr);
}

#[test]
fn non_utf8_stdin_is_a_usage_error() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    let run =
        scratch.exec(scratch.agentd().args(["run", &file, "--quiet", "--input", "-"]).write_stdin(&b"\xff\xfe"[..]));
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: "), "{}", run.stderr);
}

#[cfg(unix)]
mod non_utf8_paths {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use serde_json::json;

    use super::trigger;
    use crate::support::Scratch;

    #[test]
    fn existing_non_utf8_path_is_read() {
        let scratch = Scratch::new();
        let file = scratch.fixture("echo.toml");
        let name = OsStr::from_bytes(b"input-\xff\xfe.json");
        std::fs::write(scratch.path(name), r#"{"bytes": "path"}"#).expect("write");
        let run = scratch.exec(
            scratch
                .agentd()
                .args([OsStr::new("run"), OsStr::new(&file), OsStr::new("--quiet")])
                .arg("--input")
                .arg(name),
        );
        assert_eq!(trigger(&run), json!({"kind": "manual", "bytes": "path"}));
    }

    #[test]
    fn missing_non_utf8_path_is_a_usage_error() {
        let scratch = Scratch::new();
        let file = scratch.fixture("echo.toml");
        let name = OsStr::from_bytes(b"missing-\xff.json");
        let run = scratch.exec(scratch.agentd().args(["run", &file, "--quiet"]).arg("--input").arg(name));
        run.code(2);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.starts_with("agentd: failed to read missing-"), "{}", run.stderr);
        assert!(run.stderr.contains(".json: "), "the path is named (lossily): {}", run.stderr);
    }
}
