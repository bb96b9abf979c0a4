//! Routing, built-ins, framing safety, limits, replies, drain and reload.

use std::time::Duration;

use agentd_serve::ServeExit;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, ECHO, Setup, client, seen_trigger, start, start_in};

fn routes(name: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\n{ECHO}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/hook\"\nstart_node = \"main\"\n{extra}"
    )
}

/// Sends raw bytes and returns everything the server answers until it closes (or 5 s pass).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = start(&routes("routing", "")).await;
    let http = client();
    let response = http.get(server.url("/nope")).send().await.expect("send");
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"error": "Not Found", "path": "/nope"}));
    let response = http.get(server.url("/hook")).send().await.expect("send");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"error": "Method Not Allowed", "path": "/hook"}));
    // Method matching is case-insensitive on the declared side; the query string is ignored.
    let response = http.post(server.url("/hook?x=1")).json(&json!({"a": 1})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-agentd-execution-id"));
    assert_eq!(response.headers()["connection"], "keep-alive");
    let body: Value = response.json().await.expect("json");
    assert_eq!(seen_trigger(&body)["kind"], "http");
    assert_eq!(seen_trigger(&body)["a"], 1);
    assert_eq!(seen_trigger(&body)["principal"], json!({"kind": "anonymous", "name": ""}));
    assert_eq!(server.stop().await, ServeExit::Drained);
}

#[tokio::test]
async fn healthz_readyz_and_head() {
    let server = start(&routes("health_wf", "")).await;
    let http = client();
    let response = http.get(server.url("/healthz")).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"status": "ok", "workflow": "health_wf"}));
    let response = http.head(server.url("/healthz")).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let response = http.get(server.url("/readyz")).send().await.expect("send");
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"status": "ready"}));
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_histograms() {
    let server = start(&routes("metrics_wf", "")).await;
    let http = client();
    for _ in 0..3 {
        http.post(server.url("/hook")).json(&json!({})).send().await.expect("send");
    }
    http.get(server.url("/nope")).send().await.expect("send");
    let response = http.get(server.url("/metrics")).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = response.text().await.expect("text");
    assert!(text.contains("# HELP agentd_http_requests_total"), "{text}");
    assert!(text.contains("# TYPE agentd_http_request_duration_seconds histogram"), "{text}");
    assert!(text.contains(r#"agentd_http_request_duration_seconds_bucket{workflow="metrics_wf",method="POST",route="/hook",le="0.001"}"#), "{text}");
    assert!(text.contains(r#"le="300"}"#), "{text}");
    assert!(
        text.contains(
            r#"agentd_http_requests_total{workflow="metrics_wf",method="POST",route="/hook",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404"}"#), "{text}");
    assert!(text.contains("agentd_workflow_starts_total{workflow=\"metrics_wf\"} 3"), "{text}");
    promtool_check(&text);
    server.stop().await;
}

/// Runs `promtool check metrics` when the deps script installed it.
fn promtool_check(text: &str) {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-deps/promtool/usr/bin/promtool");
    assert!(
        root.exists(),
        "promtool missing at {}: run scripts/deps/30-oidc-mock.sh (it also installs promtool)",
        root.display()
    );
    let mut child = std::process::Command::new(&root)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("promtool output");
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let server = start(&routes("limited", "rate_limit = { capacity = 2, per_second = 0.5 }")).await;
    let http = client();
    for _ in 0..2 {
        let response = http.post(server.url("/hook")).json(&json!({})).send().await.expect("send");
        assert_eq!(response.status(), 200);
    }
    let response = http.post(server.url("/hook")).json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("number");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "rate limited");
    assert!(body["retry_after_ms"].as_u64().expect("ms") > 0);
    // Built-ins are never limited.
    assert_eq!(http.get(server.url("/healthz")).send().await.expect("send").status(), 200);
    assert!(server.events().contains(&"http.rate_limited".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn body_caps_refuse_declared_and_chunked_bodies() {
    let server = start(&routes("capped", "max_body_bytes = 16")).await;
    let http = client();
    let response = http.post(server.url("/hook")).body("x".repeat(17)).send().await.expect("send");
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"error": "body exceeds server cap", "cap_bytes": 16})
    );
    let chunked = b"POST /hook HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"a\":\"1234567890\r\n10\r\n1234567890123456\r\n0\r\n\r\n";
    let answer = raw(server.addr, chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_refused_without_harming_others() {
    let text = format!("{}\n[server]\nheader_timeout_secs = 1\nmax_header_bytes = 8192\n", routes("framing", ""));
    let server = start(&text).await;
    // A slowloris connection that never finishes its head.
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"POST /hook HTTP/1.1\r\nhost: x\r\n").await.expect("write");
    // Meanwhile a good request succeeds.
    let good = client().post(server.url("/hook")).json(&json!({"ok": true})).send().await.expect("send");
    assert_eq!(good.status(), 200);
    // The slow connection is closed once the head timeout passes.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "slowloris connection still open");

    let oversize = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(20_000));
    let answer = raw(server.addr, oversize.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let bad_chunk = b"POST /hook HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
    let answer = raw(server.addr, bad_chunk).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let both = b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n{}  ";
    let answer = raw(server.addr, both).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // Content-Length with Transfer-Encoding: hyper decodes the body as chunked (RFC 9112 §6.3)
    // and closes the connection after the answer, so a smuggled second request is never read.
    let smuggled = b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 40\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let answer = raw(server.addr, smuggled).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(answer.contains("close"), "{answer}");

    let folded = b"POST /hook HTTP/1.1\r\nhost: x\r\nx-a: b\r\n  folded\r\ncontent-length: 2\r\n\r\n{}";
    let answer = raw(server.addr, folded).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let bad_line = b"NOT A REQUEST\r\n\r\n";
    let answer = raw(server.addr, bad_line).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let good = client().post(server.url("/hook")).json(&json!({"ok": true})).send().await.expect("send");
    assert_eq!(good.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn respond_node_and_outcome_statuses() {
    let text = r#"
name = "replies"
[[start_nodes]]
name = "ok"
source = "http"
entry_node = "answer"
[[start_nodes]]
name = "bad"
source = "http"
entry_node = "boom"
[[start_nodes]]
name = "broken"
source = "http"
entry_node = "missing_input"

[[nodes]]
id = "answer"
type = "respond"
status = 201
content_type = "text/plain"
body_template = "hello {{name}}"
input_from = "trigger"

[[nodes]]
id = "boom"
type = "fail"
reason = "nope"

[[nodes]]
id = "missing_input"
type = "parse_json"
input_from = "trigger.absent"

[[http_routes]]
method = "POST"
path = "/ok"
start_node = "ok"
[[http_routes]]
method = "POST"
path = "/bad"
start_node = "bad"
[[http_routes]]
method = "POST"
path = "/broken"
start_node = "broken"
"#;
    let server = start(text).await;
    let http = client();
    let response = http.post(server.url("/ok")).json(&json!({"name": "ada"})).send().await.expect("send");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.expect("text"), "hello ada");
    let response = http.post(server.url("/bad")).send().await.expect("send");
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"status": "failed", "reason": "nope", "last_node": "boom"}));
    let response = http.post(server.url("/broken")).send().await.expect("send");
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["connection"], "close");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "errored");
    server.stop().await;
}

#[tokio::test]
async fn drain_finishes_in_flight_runs_and_refuses_new_work() {
    let server = start_in(
        |_| {
            format!("name = \"drain_wf\"\n{}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/slow\"\nstart_node = \"main\"\n", support::waiting_graph())
        },
        Setup::default(),
    )
    .await
    .expect("start");
    let gate = support::gate_path(server.dir.path());
    let http = client();
    let slow = {
        let request = http.post(server.url("/slow")).json(&support::waiting_body(&gate, json!({})));
        tokio::spawn(async move { request.send().await })
    };
    let watched = server.server.clone();
    support::eventually(|| watched.in_flight() == 1).await;
    let addr = server.addr;
    server.shutdown.cancel();
    // The listener closes at once.
    support::eventually(|| std::net::TcpStream::connect(addr).is_err()).await;
    std::fs::write(&gate, b"").expect("open the gate");
    let response = slow.await.expect("task").expect("answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["connection"], "close");
    let mut server = server;
    let exit = server.run.take().expect("run").await.expect("exit");
    assert_eq!(exit, ServeExit::Drained);
}

#[tokio::test]
async fn drain_timeout_abandons_runs() {
    let setup = Setup { drain_timeout: Duration::from_secs(1), ..Setup::default() };
    let server = start_in(
        |_| {
            format!("name = \"drain_to\"\n{}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/slow\"\nstart_node = \"main\"\n", support::waiting_graph())
        },
        setup,
    )
    .await
    .expect("start");
    let gate = support::gate_path(server.dir.path());
    let request = client().post(server.url("/slow")).json(&support::waiting_body(&gate, json!({})));
    let _slow = tokio::spawn(async move { request.send().await });
    let watched = server.server.clone();
    support::eventually(|| watched.in_flight() == 1).await;
    // Keep the temp dir alive past the drain so the abandoned run can be released.
    let keep = tempfile::tempdir().expect("dir");
    let moved_gate = keep.path().join("released");
    let exit = server.stop().await;
    assert_eq!(exit, ServeExit::DrainTimedOut { in_flight: 1 });
    assert_eq!(exit.exit_code(), 5);
    let _ = (moved_gate, gate);
}

#[tokio::test]
async fn reload_swaps_routes_and_keeps_old_config_on_failure() {
    let server = start(&routes("reload_wf", "")).await;
    let http = client();
    assert_eq!(http.post(server.url("/hook")).json(&json!({})).send().await.expect("send").status(), 200);
    let dir = server.dir.path();
    let audit = server.audit.clone();
    let next_text = format!(
        "name = \"reload_wf\"\n{ECHO}\n[[http_routes]]\nmethod = \"PUT\"\npath = \"/v2\"\nstart_node = \"main\"\n"
    );
    let next = support::workflow(&next_text, dir);
    let report = server.server.reload(next.clone(), support::engine(&next, audit.clone(), dir)).await.expect("reload");
    assert_eq!(report.route_count, 1);
    assert_eq!(http.post(server.url("/hook")).send().await.expect("send").status(), 404);
    assert_eq!(http.put(server.url("/v2")).json(&json!({})).send().await.expect("send").status(), 200);
    // A reload that cannot be applied keeps the current routes.
    let bad_text = format!(
        "name = \"reload_wf\"\n{ECHO}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/bad\"\nstart_node = \"main\"\nexpose_headers = [\"Authorization\"]\n"
    );
    let bad = support::workflow(&bad_text, dir);
    assert!(server.server.reload(bad.clone(), support::engine(&bad, audit.clone(), dir)).await.is_err());
    assert_eq!(http.put(server.url("/v2")).json(&json!({})).send().await.expect("send").status(), 200);
    let renamed = support::workflow(&next_text.replace("reload_wf", "other"), dir);
    let error =
        server.server.reload(renamed.clone(), support::engine(&renamed, audit, dir)).await.expect_err("refused");
    assert!(error.to_string().contains("name changed"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn http2_prior_knowledge_on_plaintext() {
    let server = start(&routes("h2c", "")).await;
    let http = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().expect("client");
    let response = http.post(server.url("/hook")).json(&json!({"v": 2})).send().await.expect("send");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("connection"));
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_close_and_drain_closes_idle_ones() {
    let text = format!("{}\n[server]\nidle_timeout_secs = 1\n", routes("idle_wf", ""));
    let server = start(&text).await;
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "idle connection still open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // An idle keep-alive connection does not hold up the drain.
    let mut parked = TcpStream::connect(server.addr).await.expect("connect");
    parked.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let mut first = [0u8; 12];
    parked.read_exact(&mut first).await.expect("answer");
    assert_eq!(server.stop().await, ServeExit::Drained);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), parked.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "parked connection still open after drain");
}
