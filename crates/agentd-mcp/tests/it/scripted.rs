//! The hub against our scripted server: faults (crash, hang, garbage), timeouts, allowlist
//! denials that never reach the server, error results, pins, startup failures, shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentd_mcp::{CollectingAudit, McpError, McpHub, ServerSpec, ToolReference, tool_digest};
use serde_json::{Value, json};

use crate::harness::{http, logged_calls, options, scripted_binary, scripted_http, spec, start, stdio, write};

const SCRIPT: &str = r#"
[[tools]]
name = "echo"
description = "echoes its text"
result = { content = [{ type = "text", text = "Echo: {{arguments.text}}" }] }

[[tools]]
name = "pid"
result = { content = [{ type = "text", text = "{{pid}}" }] }

[[tools]]
name = "fails"
result = { content = [{ type = "text", text = "it failed" }], isError = true, structuredContent = { code = 7 } }

[[tools]]
name = "rpc_error"
error = { code = -32000, message = "boom" }

[[tools]]
name = "secret_tool"
result = { content = [] }

[[resources]]
uri = "docs://a"
name = "a"
mime_type = "text/plain"
text = "hello"
"#;

fn script_with(dir: &Path, extra: &str) -> String {
    write(dir, "script.toml", &format!("{SCRIPT}\n{extra}")).display().to_string()
}

fn scripted_spec(script: &str, log: &Path) -> ServerSpec {
    let log = log.display().to_string();
    spec(
        "docs",
        stdio(&[&scripted_binary(), script, "--call-log", &log]),
        &["echo", "pid", "fails", "rpc_error", "slow*"],
        &["docs://*"],
    )
}

async fn echo(hub: &McpHub, text: &str) -> Result<agentd_mcp::ToolOutput, McpError> {
    hub.call_tool("docs", "echo", json!({"text": text}), None).await
}

fn echoed(output: &agentd_mcp::ToolOutput) -> &str {
    output.content[0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_tool_result_has_the_node_output_shape() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub = start(vec![scripted_spec(&script_with(dir.path(), ""), &log)], Default::default()).await;
    let output = echo(&hub, "hi").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        output.to_value(),
        json!({"content": [{"type": "text", "text": "Echo: hi"}], "is_error": false, "server": "docs", "structured": null, "tool": "echo"})
    );
    assert_eq!(output.branch_label(), None);
    assert_eq!(hub.protocol_version("docs").ok().flatten().as_deref(), Some("2025-06-18"));
    hub.shutdown().await;
}

#[tokio::test]
async fn is_error_results_take_the_error_branch() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub = start(vec![scripted_spec(&script_with(dir.path(), ""), &log)], Default::default()).await;
    let output = hub.call_tool("docs", "fails", Value::Null, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(output.is_error);
    assert_eq!(output.branch_label(), Some("error"));
    assert_eq!(output.structured, json!({"code": 7}));
    let error = hub.call_tool("docs", "rpc_error", Value::Null, None).await.err();
    assert_eq!(error.map(|e| e.to_string()).as_deref(), Some("mcp: docs error -32000: boom"));
    hub.shutdown().await;
}

#[tokio::test]
async fn a_denied_tool_never_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub = start(vec![scripted_spec(&script_with(dir.path(), ""), &log)], Default::default()).await;
    let error = hub.call_tool("docs", "secret_tool", json!({}), None).await.err();
    let Some(error @ McpError::Denied { .. }) = error else { panic!("not denied: {error:?}") };
    assert_eq!(
        error.to_string(),
        "policy violation: call_mcp_tool denied on docs:secret_tool: tool secret_tool not in allow_tools of server docs"
    );
    let denied = hub.read_resource("docs", "file:///etc/passwd", None).await.err();
    assert!(matches!(denied, Some(McpError::Denied { .. })), "{denied:?}");
    echo(&hub, "after").await.unwrap_or_else(|e| panic!("{e}"));
    hub.shutdown().await;
    let calls = logged_calls(&log);
    assert!(calls.iter().any(|(method, name)| method == "tools/call" && name.as_deref() == Some("echo")));
    assert!(!calls.iter().any(|(_, name)| name.as_deref() == Some("secret_tool")), "{calls:?}");
    assert!(!calls.iter().any(|(method, _)| method == "resources/read"), "{calls:?}");
}

#[tokio::test]
async fn null_arguments_are_omitted_and_other_types_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub = start(vec![scripted_spec(&script_with(dir.path(), ""), &log)], Default::default()).await;
    hub.call_tool("docs", "pid", Value::Null, None).await.unwrap_or_else(|e| panic!("{e}"));
    let error = hub.call_tool("docs", "pid", json!([1]), None).await.err();
    assert_eq!(
        error.map(|e| e.to_string()).as_deref(),
        Some("tool `call_mcp_tool` failed: arguments must be an object; got array")
    );
    hub.shutdown().await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let call: Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| entry["method"] == "tools/call")
        .unwrap_or(Value::Null);
    assert_eq!(call["params"]["name"], "pid");
    assert!(call["params"].get("arguments").is_none(), "{call}");
}

#[tokio::test]
async fn a_resource_read_has_the_node_output_shape() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub = start(vec![scripted_spec(&script_with(dir.path(), ""), &log)], Default::default()).await;
    let output = hub.read_resource("docs", "docs://a", None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        output.to_value(),
        json!({"contents": [{"uri": "docs://a", "mimeType": "text/plain", "text": "hello"}], "server": "docs", "uri": "docs://a"})
    );
    let missing = hub.read_resource("docs", "docs://missing", None).await.err();
    assert_eq!(
        missing.map(|e| e.to_string()).as_deref(),
        Some("mcp: docs error -32000: no scripted reply for `docs://missing`")
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_crash_mid_call_is_a_clear_error_and_the_next_call_respawns() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let audit = Arc::new(CollectingAudit::default());
    let script = script_with(dir.path(), "[faults]\ncrash_on_call = [2]\nexit_code = 3");
    let hub = start(vec![scripted_spec(&script, &log)], options(&audit)).await;
    assert_eq!(echoed(&echo(&hub, "one").await.unwrap_or_else(|e| panic!("{e}"))), "Echo: one");
    let error = echo(&hub, "two").await.err();
    assert_eq!(error.map(|e| e.to_string()).as_deref(), Some("mcp: docs exited (exit status: 3)"));
    let output = echo(&hub, "three").await.unwrap_or_else(|e| panic!("after the crash: {e}"));
    assert_eq!(echoed(&output), "Echo: three");
    let names = audit.names();
    assert!(names.contains(&"mcp.server_exited".to_owned()), "{names:?}");
    assert_eq!(names.iter().filter(|name| *name == "mcp.server_started").count(), 2, "{names:?}");
    hub.shutdown().await;
}

#[tokio::test]
async fn respawns_are_limited_to_one_per_interval() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let audit = Arc::new(CollectingAudit::default());
    // Every process crashes on its first call: the respawn after the first crash happens at
    // once, the next crash falls inside the interval.
    let script = script_with(dir.path(), "[faults]\ncrash_on_call = [1]");
    let options = agentd_mcp::HubOptions { respawn_interval: Duration::from_secs(600), ..options(&audit) };
    let hub = start(vec![scripted_spec(&script, &log)], options).await;
    let first = echo(&hub, "a").await.err().map(|e| e.to_string());
    assert_eq!(first.as_deref(), Some("mcp: docs exited (exit status: 3)"));
    let second = echo(&hub, "b").await.err().map(|e| e.to_string());
    assert_eq!(second.as_deref(), Some("mcp: docs exited (exit status: 3)"));
    let third = echo(&hub, "c").await.err().map(|e| e.to_string());
    assert_eq!(third.as_deref(), Some("mcp: docs exited (exit status: 3)"));
    assert_eq!(audit.names().iter().filter(|name| *name == "mcp.server_started").count(), 2);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_bounded_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let mut server = scripted_spec(&script_with(dir.path(), "[faults]\nhang_on_call = [1]"), &log);
    server.request_timeout = Duration::from_secs(1);
    let hub = start(vec![server], Default::default()).await;
    let error = echo(&hub, "hang").await.err();
    assert!(
        matches!(&error, Some(McpError::Timeout { seconds: 1, run_deadline: false, method: "tools/call", .. })),
        "{error:?}"
    );
    assert_eq!(error.map(|e| e.to_string()).as_deref(), Some("mcp: docs did not answer tools/call within 1s"));
    assert_eq!(echoed(&echo(&hub, "next").await.unwrap_or_else(|e| panic!("{e}"))), "Echo: next");
    hub.shutdown().await;
    // The timed-out request was cancelled on the wire.
    let calls = logged_calls(&log);
    assert!(calls.iter().any(|(method, _)| method == "notifications/cancelled"), "{calls:?}");
}

#[tokio::test]
async fn the_run_deadline_caps_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub =
        start(vec![scripted_spec(&script_with(dir.path(), "[faults]\nhang_on_call = [1]"), &log)], Default::default())
            .await;
    let error = hub.call_tool("docs", "echo", json!({"text": "x"}), Some(Duration::from_millis(300))).await.err();
    assert!(matches!(error, Some(McpError::Timeout { run_deadline: true, .. })), "{error:?}");
    hub.shutdown().await;
}

#[tokio::test]
async fn garbage_on_stdout_is_bounded_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let mut server = scripted_spec(&script_with(dir.path(), "[faults]\ngarbage_on_call = [1]"), &log);
    server.request_timeout = Duration::from_secs(1);
    let hub = start(vec![server], Default::default()).await;
    let error = echo(&hub, "garbage").await.err();
    assert_eq!(error.map(|e| e.to_string()).as_deref(), Some("mcp: docs did not answer tools/call within 1s"));
    assert_eq!(echoed(&echo(&hub, "next").await.unwrap_or_else(|e| panic!("{e}"))), "Echo: next");
    hub.shutdown().await;
}

#[tokio::test]
async fn streamable_http_faults_are_bounded_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let script =
        write(dir.path(), "http.toml", &format!("{SCRIPT}\n[faults]\nhang_on_call = [1]\ngarbage_on_call = [2]"));
    let server = scripted_http(&script, Some(&log)).await;
    let mut http_spec = spec("docs", http(&server.url), &["echo", "secret_tool_not"], &["docs://*"]);
    http_spec.request_timeout = Duration::from_secs(1);
    let hub = start(vec![http_spec], Default::default()).await;
    assert_eq!(hub.protocol_version("docs").ok().flatten().as_deref(), Some("2025-06-18"));
    let hang = echo(&hub, "hang").await.err().map(|e| e.to_string());
    assert_eq!(hang.as_deref(), Some("mcp: docs did not answer tools/call within 1s"));
    let garbage = echo(&hub, "garbage").await.err();
    assert!(
        matches!(&garbage, Some(McpError::Transport { .. } | McpError::Timeout { .. })),
        "garbage over HTTP: {garbage:?}"
    );
    let text = garbage.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("mcp: docs ") && text.chars().count() < 700, "{text}");
    let output = echo(&hub, "next").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(echoed(&output), "Echo: next");
    let read = hub.read_resource("docs", "docs://a", None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read.contents[0]["text"], "hello");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_lost_http_server_is_reconnected_on_the_next_call() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = write(dir.path(), "http.toml", &format!("{SCRIPT}\n[faults]\ncrash_on_call = [2]"));
    let first = scripted_http(&script, None).await;
    let mut http_spec = spec("docs", http(&first.url), &["echo"], &[]);
    http_spec.request_timeout = Duration::from_secs(2);
    let audit = Arc::new(CollectingAudit::default());
    let hub = start(vec![http_spec], options(&audit)).await;
    assert_eq!(echoed(&echo(&hub, "one").await.unwrap_or_else(|e| panic!("{e}"))), "Echo: one");
    let lost = echo(&hub, "two").await.err();
    let text = lost.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("mcp: docs "), "{text}");
    // A new server process on the same address knows nothing of the old session.
    let address = first.url.trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
    drop(first);
    let second = crate::harness::scripted_http_at(&script, &address).await;
    let output = echo(&hub, "three").await.unwrap_or_else(|e| panic!("after the restart: {e}"));
    assert_eq!(echoed(&output), "Echo: three");
    drop(second);
    hub.shutdown().await;
}

/// Hands out `token-1`, `token-2`, ... : a secret that rotates on every resolve.
struct RotatingSecret(std::sync::atomic::AtomicU32);

impl agentd_mcp::SecretResolver for RotatingSecret {
    fn resolve<'a>(&'a self, _name: &'a str) -> agentd_mcp::SecretFuture<'a> {
        let next = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Box::pin(async move { Ok(format!("token-{next}")) })
    }
}

#[tokio::test]
async fn header_secrets_are_resolved_on_every_request() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let script = write(dir.path(), "http.toml", &format!("log_headers = [\"authorization\"]\n{SCRIPT}"));
    let server = scripted_http(&script, Some(&log)).await;
    let mut transport = http(&server.url);
    if let agentd_mcp::TransportSpec::Http { headers, .. } = &mut transport {
        headers.insert("Authorization".into(), "Bearer {{secret:TOKEN}}".into());
    }
    let audit = Arc::new(CollectingAudit::default());
    let secrets = Arc::new(RotatingSecret(std::sync::atomic::AtomicU32::new(0)));
    let options = agentd_mcp::HubOptions { secrets, ..options(&audit) };
    let hub = start(vec![spec("docs", transport, &["echo"], &[])], options).await;
    echo(&hub, "one").await.unwrap_or_else(|e| panic!("{e}"));
    echo(&hub, "two").await.unwrap_or_else(|e| panic!("{e}"));
    hub.shutdown().await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let tokens: Vec<String> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["method"] == "tools/call")
        .filter_map(|entry| entry["headers"]["authorization"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(tokens.len(), 2, "{text}");
    assert!(tokens.iter().all(|token| token.starts_with("Bearer token-")), "{tokens:?}");
    assert_ne!(tokens[0], tokens[1], "the header was not resolved again");
}

#[tokio::test]
async fn tool_pins_are_checked_at_startup() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let script = script_with(dir.path(), "");
    let hub = start(vec![scripted_spec(&script, &log)], Default::default()).await;
    let echo_tool = hub
        .tools("docs")
        .unwrap_or_default()
        .into_iter()
        .find(|tool| tool["name"] == "echo")
        .unwrap_or_else(|| panic!("echo not listed"));
    hub.shutdown().await;
    let good = tool_digest(&echo_tool);

    let mut pinned = scripted_spec(&script, &log);
    pinned.tool_pins.insert("echo".into(), good.clone());
    let hub = start(vec![pinned], Default::default()).await;
    assert!(echo(&hub, "pinned").await.is_ok());
    hub.shutdown().await;

    let bad = format!("sha256:{}", "a".repeat(64));
    let mut mismatched = scripted_spec(&script, &log);
    mismatched.tool_pins.insert("echo".into(), bad.clone());
    let error = McpHub::start(vec![mismatched], Default::default()).await.err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(format!("mcp server `docs`: tool `echo` does not match its pin (expected {bad}, got {good})").as_str())
    );
}

#[tokio::test]
async fn startup_failures_name_the_server() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let missing = spec("gone", stdio(&["agentd-no-such-mcp-server"]), &[], &[]);
    let error = McpHub::start(vec![missing], Default::default()).await.err().map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("mcp server `gone`: command `agentd-no-such-mcp-server` not found in PATH"));

    let old_script = write(dir.path(), "old.toml", &format!("protocol_version = \"1999-01-01\"\n{SCRIPT}"));
    let error = McpHub::start(vec![scripted_spec(&old_script.display().to_string(), &log)], Default::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("mcp server `docs`: unsupported MCP protocol version 1999-01-01"));

    let exits = spec("quits", stdio(&["sh", "-c", "exit 4"]), &[], &[]);
    let error = McpHub::start(vec![exits], Default::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.starts_with("mcp server `quits`: "), "{error}");

    let a = spec("twin", stdio(&["x"]), &[], &[]);
    let error = McpHub::start(vec![a.clone(), a], Default::default()).await.err().map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("mcp server `twin`: duplicate server name"));
}

#[tokio::test]
async fn node_references_and_allowlists_are_checked_against_the_listed_tools() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let audit = Arc::new(CollectingAudit::default());
    let log_text = log.display().to_string();
    let script = script_with(dir.path(), "");
    let server =
        spec("docs", stdio(&[&scripted_binary(), &script, "--call-log", &log_text]), &["echo", "ghost", "e*"], &[]);
    let hub = start(vec![server], options(&audit)).await;
    let allowlist = hub.allowlist_warnings();
    assert_eq!(allowlist.len(), 1);
    assert_eq!(allowlist[0].event, "mcp.allowlist_unknown_tool");
    assert_eq!(allowlist[0].fields, json!({"server": "docs", "tool": "ghost"}));
    let references = [
        ToolReference { node_id: "a".into(), server: None, tool: "echo".into() },
        ToolReference { node_id: "b".into(), server: Some("docs".into()), tool: "nope".into() },
        ToolReference { node_id: "c".into(), server: Some("docs".into()), tool: "pid".into() },
        ToolReference { node_id: "d".into(), server: Some("unknown".into()), tool: "pid".into() },
    ];
    let warnings = hub.check_references(&references);
    let events: Vec<(&str, Value)> = warnings.iter().map(|w| (w.event, w.fields.clone())).collect();
    assert_eq!(
        events,
        vec![
            ("mcp.tool_not_offered", json!({"server": "docs", "tool": "nope", "node_id": "b"})),
            ("mcp.tool_not_allowed", json!({"server": "docs", "tool": "pid", "node_id": "c"})),
        ]
    );
    let names = audit.names();
    for event in ["mcp.server_started", "mcp.allowlist_unknown_tool", "mcp.tool_not_offered", "mcp.tool_not_allowed"] {
        assert!(names.iter().any(|name| name == event), "{event} missing from {names:?}");
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn server_selection_follows_the_node_rules() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let hub = start(vec![scripted_spec(&script_with(dir.path(), ""), &log)], Default::default()).await;
    assert_eq!(hub.select_server(None).ok().as_deref(), Some("docs"));
    let unknown = hub.select_server(Some("x")).err().map(|e| e.to_string());
    assert_eq!(unknown.as_deref(), Some("unknown mcp server `x`; configured: [docs]"));
    let empty = McpHub::empty();
    assert!(matches!(empty.select_server(None), Err(McpError::NoServers)));
    assert!(matches!(empty.call_tool("docs", "echo", Value::Null, None).await, Err(McpError::NoServers)));
    hub.shutdown().await;
    let after = echo(&hub, "x").await.err().map(|e| e.to_string());
    assert_eq!(after.as_deref(), Some("mcp: docs is shut down"));
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn server_pid(hub: &McpHub) -> u32 {
    let output = hub.call_tool("docs", "pid", Value::Null, None).await.unwrap_or_else(|e| panic!("{e}"));
    output.content[0]["text"].as_str().and_then(|text| text.parse().ok()).unwrap_or_else(|| panic!("no pid"))
}

/// Waits (bounded) for a killed process to be reaped.
async fn gone(pid: u32) -> bool {
    for _ in 0..100 {
        if !process_exists(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn shutdown_and_drop_end_the_children() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("calls.jsonl");
    let script = script_with(dir.path(), "");
    let hub = start(vec![scripted_spec(&script, &log)], Default::default()).await;
    let pid = server_pid(&hub).await;
    assert!(process_exists(pid));
    hub.shutdown().await;
    assert!(!process_exists(pid), "the child outlived shutdown");

    let hub = start(vec![scripted_spec(&script, &log)], Default::default()).await;
    let pid = server_pid(&hub).await;
    drop(hub);
    assert!(gone(pid).await, "the child outlived the dropped hub");
}
