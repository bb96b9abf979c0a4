//! Hostile or broken input never crashes the binary: every case ends in a clear error naming the
//! problem and the documented exit code, and no "panicked" ever reaches stderr (the harness
//! checks that for every run).

use std::io::Read;
use std::process::{Command, Stdio};

use crate::snap;
use crate::support::{Scratch, agentd_path};

#[test]
fn truncated_toml() {
    let scratch = Scratch::new();
    let full = crate::support::fixture_text("terminate.toml");
    // Cut the document at many points: each is either a load error (exit 2) or, when the cut
    // happens to leave a well-formed document, a validation or run result.
    for cut in (1..full.len()).step_by(7) {
        let Some(prefix) = full.get(..cut) else { continue };
        scratch.write("cut.toml", prefix);
        let run = scratch.run(["run", "cut.toml", "--quiet"]);
        match run.code {
            Some(2) => {
                assert_eq!(run.stdout, "", "cut at {cut}");
                assert!(run.stderr.starts_with("agentd: "), "cut at {cut}: {}", run.stderr);
                assert!(run.stderr.contains("cut.toml"), "cut at {cut}: the file is named: {}", run.stderr);
            }
            Some(0 | 5) => {}
            other => panic!("cut at {cut}: unexpected exit {other:?}\n{}", run.stderr),
        }
    }
}

#[test]
fn binary_garbage_workflow() {
    let scratch = Scratch::new();
    let mut garbage = Vec::new();
    let mut state: u32 = 0x1234_5678;
    for _ in 0..4096 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        garbage.push((state >> 24) as u8);
    }
    garbage[3] = 0xff;
    scratch.write("garbage.toml", &garbage);
    let run = scratch.run(["run", "garbage.toml"]);
    run.code(2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("agentd: "), "{}", run.stderr);
    assert!(run.stderr.contains("garbage.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("UTF-8"), "the problem is named: {}", run.stderr);
    snap!(run.render());
}

#[test]
fn nul_bytes_and_control_characters_in_a_workflow() {
    let scratch = Scratch::new();
    scratch.write("nul.toml", "name = \"x\0y\"\n\u{1b}[31m = 1\n");
    let run = scratch.run(["validate", "nul.toml"]);
    run.code(2);
    assert!(run.stderr.contains("nul.toml"), "{}", run.stderr);
}

#[test]
fn ten_megabyte_string_value() {
    let scratch = Scratch::new();
    let big = "x".repeat(10 * 1024 * 1024);
    scratch.write(
        "big.toml",
        format!(
            "name = \"big\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"t\"\ntype = \"template_render\"\ntemplate = \"{big}\"\n"
        ),
    );
    let run = scratch.run(["run", "big.toml", "--quiet"]);
    run.code(0);
    assert_eq!(run.json()["final_value"]["rendered"].as_str().map(str::len), Some(big.len()));
    // The same value in an unknown key: a load error, exit 2, and the diagnostic stays readable.
    scratch.write("big_bad.toml", format!("name = \"big\"\nbogus = \"{big}\"\n"));
    let run = scratch.run(["validate", "big_bad.toml"]);
    run.code(2);
    assert!(run.stderr.contains("big_bad.toml:2:1"), "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert!(run.stderr.len() < 64 * 1024, "a 10 MB line must not be echoed whole: {} bytes", run.stderr.len());
}

#[test]
fn deeply_nested_arrays() {
    let scratch = Scratch::new();
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    scratch.write("deep.toml", format!("name = \"deep\"\nvalue = {nested}\n"));
    let run = scratch.run(["validate", "deep.toml"]);
    run.code(2);
    assert!(run.stderr.starts_with("agentd: "), "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert!(run.stderr.contains("deep.toml:2:"), "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert!(run.stderr.len() < 64 * 1024, "a 200 KB line must not be echoed whole: {} bytes", run.stderr.len());

    scratch.write(
        "deep_node.toml",
        format!("name = \"deep\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"t\"\ntype = \"terminate\"\ndescription = {nested}\n"),
    );
    scratch.run(["run", "deep_node.toml"]).code(2);

    // The same depth as trigger input: parsed or kept raw, never a crash.
    scratch.write("wf.toml", crate::support::fixture_text("echo.toml"));
    scratch.write("deep.json", &nested);
    let run = scratch.run(["run", "wf.toml", "--quiet", "--input", "deep.json"]);
    run.code(0);
    let run =
        scratch.run(["run", "wf.toml", "--quiet", "--input", &format!("{}{}", "[".repeat(5000), "]".repeat(5000))]);
    assert!(matches!(run.code, Some(0 | 2)), "{:?} {}", run.code, run.stderr);
}

#[test]
fn deeply_nested_inline_tables() {
    let scratch = Scratch::new();
    let depth = 50_000;
    let nested = format!("{}1{}", "{ a = ".repeat(depth), " }".repeat(depth));
    scratch.write("deep_tables.toml", format!("name = \"deep\"\nvalue = {nested}\n"));
    scratch.run(["validate", "deep_tables.toml"]).code(2);
}

#[test]
fn workflow_path_is_a_directory() {
    let scratch = Scratch::new();
    scratch.mkdir("a_dir.toml");
    for args in [vec!["run", "a_dir.toml"], vec!["validate", "a_dir.toml"], vec!["--config", "a_dir.toml"]] {
        let run = scratch.run(&args);
        run.code(2);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.starts_with("agentd: failed to read a_dir.toml: "), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn empty_workflow_file() {
    let scratch = Scratch::new();
    scratch.write("empty.toml", "");
    let run = scratch.run(["validate", "empty.toml"]);
    assert!(matches!(run.code, Some(2 | 5)), "{:?} {}", run.code, run.stderr);
    assert!(run.stderr.starts_with("agentd: ") || !run.stdout.is_empty());
}

#[cfg(unix)]
mod non_utf8_workflow_paths {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use crate::support::Scratch;

    #[test]
    fn missing() {
        let scratch = Scratch::new();
        let name = OsStr::from_bytes(b"wf-\xff\xfe.toml");
        let run = scratch.exec(scratch.agentd().arg("run").arg(name));
        run.code(2);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.starts_with("agentd: failed to read wf-"), "{}", run.stderr);
        assert!(run.stderr.contains(".toml: "), "{}", run.stderr);
    }

    #[test]
    fn existing() {
        let scratch = Scratch::new();
        let name = OsStr::from_bytes(b"wf-\xff.toml");
        std::fs::write(scratch.path(name), crate::support::fixture_text("terminate.toml")).expect("write");
        let run = scratch.exec(scratch.agentd().arg("run").arg(name).arg("--quiet"));
        run.code(0);
        assert_eq!(run.json()["last_node"], "done");
        let run = scratch.exec(scratch.agentd().arg("--config").arg(name).arg("--validate-only"));
        run.code(0);
    }

    #[test]
    fn non_utf8_flag_values() {
        let scratch = Scratch::new();
        let file = scratch.fixture("starts.toml");
        let run = scratch
            .exec(scratch.agentd().args(["run", &file, "--quiet", "--start"]).arg(OsStr::from_bytes(b"st\xffart")));
        run.code(5);
        assert_eq!(run.json()["status"], "errored");
        let run = scratch.exec(scratch.agentd().arg(OsStr::from_bytes(b"--\xff")));
        run.code(2);
        assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
        let run =
            scratch.exec(scratch.agentd().args(["run", &file, "--timeout-secs"]).arg(OsStr::from_bytes(b"1\xff")));
        run.code(2);
    }
}

/// Spawns agentd with stdout piped and closes the read end at once, so every write to stdout
/// fails with a broken pipe. The output is larger than any pipe buffer, so the binary really
/// writes into the closed pipe.
fn with_closed_stdout(scratch: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(agentd_path())
        .env_clear()
        .current_dir(scratch.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agentd");
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    let status = child.wait().expect("wait");
    (status.code(), stderr)
}

#[test]
fn broken_stdout_pipe_on_a_large_outcome() {
    let scratch = Scratch::new();
    let file = scratch.fixture("echo.toml");
    scratch.write("big.txt", "y".repeat(1024 * 1024));
    let (code, stderr) = with_closed_stdout(&scratch, &["run", &file, "--quiet", "--input", "big.txt"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "the run completed; a closed stdout is not a crash: {stderr}");
}

#[test]
fn broken_stdout_pipe_on_help_validate_and_inspect() {
    let scratch = Scratch::new();
    let (code, stderr) = with_closed_stdout(&scratch, &["--help"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(code.is_some(), "killed by a signal");

    let file = scratch.fixture("step_cap.toml");
    let run = scratch.run(["run", &file, "--quiet", "--record", "big-record.json"]);
    run.code(5);
    let (code, stderr) = with_closed_stdout(&scratch, &["inspect", "big-record.json"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(code.is_some(), "killed by a signal");

    let (code, stderr) = with_closed_stdout(&scratch, &["--version"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0));
}

#[test]
fn broken_stdout_pipe_with_logging_to_stdout() {
    let scratch = Scratch::new();
    let file = scratch.fixture("step_cap.toml");
    let (code, stderr) = with_closed_stdout(&scratch, &["run", &file, "--log-level", "info", "--log-target", "stdout"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(5), "{stderr}");
}
