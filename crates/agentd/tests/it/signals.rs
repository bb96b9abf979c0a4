//! SIGINT / SIGTERM during a one-shot run (01 §5.4): the run is cancelled, recorded as errored
//! with `interrupted by signal <NAME>`, the errored outcome is printed and the process exits
//! 128 + signal number.
//!
//! Synchronisation without sleeping: the workflow reads a FIFO. Opening the FIFO for writing in
//! the test blocks until agentd has opened it for reading, i.e. until the run is inside that node
//! (by then the engine has yielded to its signal watcher). Holding the writer open keeps the
//! read blocked while the signal arrives. The handler itself is installed by the runtime's
//! signal task a moment after the run starts; the test waits until the kernel reports the
//! signal as caught (`SigCgt` in `/proc/<pid>/status`) before sending it, so an early signal
//! cannot take the default action. (That window — a signal in the first microseconds of a run
//! kills the process outright — is a known gap of the binary, reported separately.)

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Scratch, agentd_path};

/// Waits until process `pid` catches signal `number` (bounded; never sleeps).
fn wait_until_caught(pid: u32, number: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (number - 1)) != 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agentd never installed a handler for signal {number} during the run"
        );
        std::thread::yield_now();
    }
}

fn interrupt(signal: &str, number: u32, name: &str, code: i32) {
    let scratch = Scratch::new();
    let file = scratch.fixture("fs.toml");
    let fifo = scratch.path("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let mut child = Command::new(agentd_path())
        .env_clear()
        .current_dir(scratch.root())
        .args(["run", &file, "--quiet", "--start", "read", "--input", r#"{"path": "pipe"}"#, "--record", "r.json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agentd");
    // Blocks until agentd opened the FIFO for reading.
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).expect("open fifo for writing");
    wait_until_caught(child.id(), number);
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
    assert!(status.success());

    // Read the outcome (the process may still be waiting for the blocked read to finish).
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read stdout") == 0 {
            break;
        }
        text.push_str(&line);
        if line == "}\n" {
            break;
        }
    }
    drop(writer);
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let outcome: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}\n{stderr}"));
    let reason = format!("interrupted by signal {name}");
    assert_eq!(outcome["status"], "errored", "{outcome}");
    assert_eq!(outcome["reason"], reason.as_str());
    assert_eq!(outcome["last_node"], "read");
    assert!(stderr.lines().any(|l| l == format!("agentd: {reason}")), "{stderr}");
    assert_eq!(status.code(), Some(code), "exit 128 + signal number");
    let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
    assert_eq!(record["status"], "errored");
    assert_eq!(record["detail"]["error"], reason.as_str());
}

#[test]
fn sigint_cancels_the_run_and_exits_130() {
    interrupt("-INT", 2, "SIGINT", 130);
}

#[test]
fn sigterm_cancels_the_run_and_exits_143() {
    interrupt("-TERM", 15, "SIGTERM", 143);
}
