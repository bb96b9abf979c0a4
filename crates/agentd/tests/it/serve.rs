//! Serve mode through the binary (01 §6, 07): the banner, a webhook run answered by `respond`,
//! graceful drain on SIGTERM, SIGHUP / `--reload-file` reloads (a bad reload keeps the old
//! configuration), and the startup errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Scratch, agentd_path};

fn echo(greeting: &str) -> String {
    format!(
        r#"name = "echo"

[[start_nodes]]
name = "on_hook"
source = "http"
entry_node = "answer"

[[http_routes]]
method = "POST"
path = "/hook"
start_node = "on_hook"

[[nodes]]
id = "answer"
type = "respond"
status = 201
content_type = "application/json"
body_template = "{{\"greeting\": \"{greeting}\", \"id\": \"{{{{id}}}}\"}}"
"#
    )
}

struct Daemon {
    child: Child,
    port: u16,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start(scratch: &Scratch, extra: &[&str]) -> Daemon {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut command = Command::new(agentd_path());
    command
        .env_clear()
        .current_dir(scratch.root())
        .args(["serve", "echo.toml", "--bind", &bind, "--state-dir", "state", "--drain-timeout-secs", "5"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn agentd serve");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut daemon = Daemon { child, port, stderr };
    let banner = read_until(&mut daemon, "GET /healthz is always live");
    assert!(
        banner.contains(&format!("workflow `echo` listening on http://127.0.0.1:{port}/ (1 routes; drain_timeout=5s)")),
        "{banner}"
    );
    assert!(banner.contains("POST /hook → on_hook"), "{banner}");
    daemon
}

/// Reads stderr lines until one contains `needle` (bounded by a failsafe).
fn read_until(daemon: &mut Daemon, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while Instant::now() < deadline {
        let mut line = String::new();
        if daemon.stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
    panic!("never saw `{needle}` on stderr:\n{seen}");
}

fn post(port: u16, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!(
        "POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn signal(daemon: &Daemon, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &daemon.child.id().to_string()]).status().expect("kill");
    assert!(ok.success());
}

#[test]
fn serves_a_webhook_and_drains_on_sigterm() {
    let scratch = Scratch::new();
    scratch.write("echo.toml", echo("hello"));
    let mut daemon = start(&scratch, &[]);
    let (status, body) = post(daemon.port, r#"{"id": "42"}"#);
    assert_eq!(status, 201);
    assert_eq!(body, r#"{"greeting": "hello", "id": "42"}"#);
    signal(&daemon, "TERM");
    read_until(&mut daemon, "drain complete");
    let status = daemon.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_reloads_and_a_bad_reload_keeps_the_old_configuration() {
    let scratch = Scratch::new();
    scratch.write("echo.toml", echo("one"));
    let mut daemon = start(&scratch, &[]);
    scratch.write("echo.toml", echo("two"));
    signal(&daemon, "HUP");
    read_until(&mut daemon, "reload succeeded");
    assert_eq!(post(daemon.port, r#"{"id": "1"}"#).1, r#"{"greeting": "two", "id": "1"}"#);
    scratch.write("echo.toml", "name = \"echo\"\n[[nodes]]\nid = \n");
    signal(&daemon, "HUP");
    read_until(&mut daemon, "reload failed; keeping the running configuration");
    assert_eq!(post(daemon.port, r#"{"id": "2"}"#).1, r#"{"greeting": "two", "id": "2"}"#);
}

#[test]
fn a_reload_file_change_reloads() {
    let scratch = Scratch::new();
    scratch.write("echo.toml", echo("one"));
    let mut daemon = start(&scratch, &["--reload-file", "reload.touch"]);
    assert!(scratch.path("reload.touch").exists(), "the reload file is created");
    scratch.write("echo.toml", echo("three"));
    std::thread::sleep(Duration::from_millis(1100));
    scratch.write("reload.touch", "now");
    read_until(&mut daemon, "reload succeeded");
    assert_eq!(post(daemon.port, r#"{"id": "3"}"#).1, r#"{"greeting": "three", "id": "3"}"#);
}

#[test]
fn serve_startup_errors() {
    let scratch = Scratch::new();
    scratch.write("plain.toml", "name = \"plain\"\n[[nodes]]\nid = \"a\"\ntype = \"terminate\"\n");
    let run = scratch.run(["serve", "plain.toml"]);
    run.code(2);
    assert!(run.stderr.contains("serve mode requires at least one [[http_routes]] entry"), "{}", run.stderr);
    scratch.write("echo.toml", echo("x"));
    let run = scratch.run(["serve", "echo.toml", "--bind", "localhost:80"]);
    run.code(2);
    // The port is taken: a bind failure is a startup error (exit 5).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let bind = taken.local_addr().expect("addr").to_string();
    let run = scratch.run(["serve", "echo.toml", "--bind", &bind]);
    run.code(5);
}
