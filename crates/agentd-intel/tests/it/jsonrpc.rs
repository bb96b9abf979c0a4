//! The JSON-RPC `complete` transports against a small Python server: framed Unix socket and
//! HTTP, strict answer checking, bounded frames and bodies.

use std::sync::Arc;
use std::time::Duration;

use agentd_intel::{Backends, CliIntel, CompletionRequest, Error, StaticSecrets};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::python::{self, PythonServer};
use crate::support::{Retries, build, deadline};

fn cli_unix(path: &std::path::Path) -> Backends {
    let cli = CliIntel { unix: Some(path.to_path_buf()), ..CliIntel::default() };
    Backends::build(&[], &cli, Arc::new(StaticSecrets::default())).expect("backends")
}

async fn unix_server() -> (tempfile::TempDir, PythonServer, Backends) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("intel.sock");
    let server = python::unix(&path).await;
    let backends = cli_unix(&path);
    (dir, server, backends)
}

async fn ask(backends: &Backends, name: &str, prompt: &str) -> Result<agentd_intel::Completion, Error> {
    ask_observed(backends, name, prompt, &Retries::default()).await
}

async fn ask_observed(
    backends: &Backends,
    name: &str,
    prompt: &str,
    retries: &Retries,
) -> Result<agentd_intel::Completion, Error> {
    let request = CompletionRequest { temperature: Some(0.5), ..CompletionRequest::prompt(prompt) };
    backends.complete_observed(name, &request, deadline(30), &CancellationToken::new(), retries).await
}

fn inspected(completion: &agentd_intel::Completion) -> Value {
    serde_json::from_str(&completion.text).expect("inspect answer is JSON")
}

#[tokio::test]
async fn unix_round_trip_with_increasing_ids() {
    let (_dir, _server, backends) = unix_server().await;
    assert_eq!(backends.names(), ["default"]);
    let first = inspected(&ask(&backends, "default", "inspect").await.expect("first"));
    assert_eq!(first["id"], 1);
    assert_eq!(first["params"]["model"], "fast");
    assert_eq!(first["params"]["messages"], serde_json::json!([{"role": "user", "content": "inspect"}]));
    assert_eq!(first["params"]["temperature"], 0.5);
    assert!(first["params"].get("max_tokens").is_none(), "unset members are omitted");
    let second = inspected(&ask(&backends, "default", "inspect").await.expect("second"));
    assert_eq!(second["id"], 2);
    let echo = ask(&backends, "default", "echo:hi there").await.expect("echo");
    assert_eq!((echo.text.as_str(), echo.usage.prompt_tokens, echo.usage.completion_tokens), ("hi there", 5, 2));
    assert_eq!(echo.model, "fast");
}

#[tokio::test]
async fn unix_toml_backend_sends_its_model_and_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    let _server = python::unix(&path).await;
    let toml = format!(
        "[[backends]]\nname = \"sock\"\nprovider = \"unix\"\npath = \"{}\"\nmodel = \"local-7b\"\nmax_tokens = 99\n",
        path.display()
    );
    let backends = build(&toml, &[]).expect("backends");
    let seen = inspected(&ask(&backends, "sock", "inspect").await.expect("answer"));
    assert_eq!(seen["params"]["model"], "local-7b");
    assert_eq!(seen["params"]["max_tokens"], 99);
}

#[tokio::test]
async fn unix_protocol_faults_are_clear_and_final() {
    let (_dir, _server, backends) = unix_server().await;
    let cases = [
        ("error", "backend error -32000: upstream overloaded"),
        ("null-id-error", "backend error -32700: parse error"),
        ("no-result", "intelligence response contained neither result nor error"),
        ("bad-content", "intelligence response result.content must be a string"),
        ("huge", "intelligence frame too large: 16777217 bytes > 16777216"),
    ];
    for (command, expected) in cases {
        let retries = Retries::default();
        let error = ask_observed(&backends, "default", command, &retries).await.expect_err(command);
        assert_eq!(error.detail(), expected, "{command}");
        assert!(retries.events().is_empty(), "{command} must not be retried");
    }
    let wrong = ask(&backends, "default", "wrong-id").await.expect_err("wrong id");
    assert!(wrong.detail().starts_with("intelligence response id "), "{wrong}");
    assert!(wrong.detail().contains("does not match request id"), "{wrong}");
    let garbage = ask(&backends, "default", "garbage").await.expect_err("garbage");
    assert!(garbage.detail().starts_with("intelligence response is not valid JSON"), "{garbage}");
    for command in ["truncated", "close"] {
        let error = ask(&backends, "default", command).await.expect_err(command);
        assert!(error.detail().starts_with("read response: "), "{command}: {error}");
    }
    // The connection-per-request server is still healthy after all that.
    assert_eq!(ask(&backends, "default", "echo:still here").await.expect("alive").text, "still here");
}

#[tokio::test]
async fn unix_missing_socket_is_retried_then_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nobody-home.sock");
    let toml =
        format!("[[backends]]\nname = \"sock\"\nprovider = \"unix\"\npath = \"{}\"\nmax_retries = 1\n", path.display());
    let backends = build(&toml, &[]).expect("an unreachable transport is not a startup error");
    let retries = Retries::default();
    let error = ask_observed(&backends, "sock", "echo:x", &retries).await.expect_err("no socket");
    assert_eq!(retries.events().len(), 1);
    assert!(error.detail().contains("nobody-home.sock: connect: "), "{error}");
}

#[tokio::test]
async fn unix_slow_server_meets_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slow.sock");
    let _server = python::unix(&path).await;
    let toml = format!(
        "[[backends]]\nname = \"sock\"\nprovider = \"unix\"\npath = \"{}\"\ntimeout_secs = 1\nmax_retries = 0\n",
        path.display()
    );
    let backends = build(&toml, &[]).expect("backends");
    let started = tokio::time::Instant::now();
    let error = ask(&backends, "sock", "slow").await.expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(error.detail(), "unix: request timed out after 1 s");
}

#[tokio::test]
async fn http_cli_transport_with_bearer_file() {
    let server = python::http(Some("tok-from-file-123")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bearer");
    std::fs::write(&file, "  tok-from-file-123\n").expect("write");
    let cli = CliIntel {
        http: Some(server.endpoint.clone()),
        http_bearer_file: Some(file),
        http_bearer_env: Some("ignored-when-a-file-is-given".into()),
        ..CliIntel::default()
    };
    let backends = Backends::build(&[], &cli, Arc::new(StaticSecrets::default())).expect("backends");
    let seen = inspected(&ask(&backends, "default", "inspect").await.expect("answer"));
    assert_eq!(seen["authorization"], "Bearer tok-from-file-123");
    assert_eq!(seen["id"], 1);
}

#[tokio::test]
async fn http_cli_bearer_from_environment_value_and_wrong_token() {
    let server = python::http(Some("env-token-456")).await;
    let cli = |token: &str| CliIntel {
        http: Some(server.endpoint.clone()),
        http_bearer_env: Some(token.to_string()),
        ..CliIntel::default()
    };
    let good = Backends::build(&[], &cli("env-token-456"), Arc::new(StaticSecrets::default())).expect("backends");
    assert_eq!(ask(&good, "default", "echo:ok").await.expect("answer").text, "ok");
    let bad = Backends::build(&[], &cli("not-the-token"), Arc::new(StaticSecrets::default())).expect("backends");
    let retries = Retries::default();
    let error = ask_observed(&bad, "default", "echo:ok", &retries).await.expect_err("401");
    assert_eq!(error.detail(), "upstream returned HTTP 401");
    assert!(retries.events().is_empty());
    assert!(!error.to_string().contains("not-the-token"));
}

#[tokio::test]
async fn unix_flag_wins_over_http_flag() {
    let (dir, _server, _) = unix_server().await;
    let cli = CliIntel {
        unix: Some(dir.path().join("intel.sock")),
        http: Some("http://127.0.0.1:1/".into()),
        ..CliIntel::default()
    };
    let backends = Backends::build(&[], &cli, Arc::new(StaticSecrets::default())).expect("backends");
    assert_eq!(ask(&backends, "default", "echo:via unix").await.expect("answer").text, "via unix");
}

#[tokio::test]
async fn http_toml_backend_with_bearer_secret_and_faults() {
    let server = python::http(Some("secret-bearer-789")).await;
    let toml = format!(
        "[[backends]]\nname = \"rpc\"\nprovider = \"http\"\nurl = \"{}\"\nbearer_env = \"RPC_TOKEN\"\nmodel = \"big\"\n",
        server.endpoint
    );
    let backends = build(&toml, &[("RPC_TOKEN", "secret-bearer-789")]).expect("backends");
    let seen = inspected(&ask(&backends, "rpc", "inspect").await.expect("answer"));
    assert_eq!(seen["params"]["model"], "big");

    let retries = Retries::default();
    let recovered = ask_observed(&backends, "rpc", "flaky", &retries).await.expect("503 is retried");
    assert_eq!(recovered.text, "recovered");
    assert_eq!(retries.events()[0].status, Some(503));
    assert_eq!(retries.events()[0].delay, Duration::ZERO, "Retry-After: 0");

    assert_eq!(ask(&backends, "rpc", "chunked").await.expect("chunked").text, "chunked ok");
    let huge = ask(&backends, "rpc", "huge").await.expect_err("huge");
    assert_eq!(huge.detail(), "http: response body exceeds 4194304 bytes");
    let error = ask(&backends, "rpc", "error").await.expect_err("rpc error");
    assert_eq!(error.detail(), "backend error -32000: upstream overloaded");
    let garbage = ask(&backends, "rpc", "garbage").await.expect_err("garbage");
    assert!(garbage.detail().starts_with("intelligence response is not valid JSON"), "{garbage}");
    let truncated = ask(&backends, "rpc", "truncated").await.expect_err("truncated");
    assert!(truncated.detail().starts_with("http: reading the response body failed"), "{truncated}");
    let teapot = ask(&backends, "rpc", "status:418").await.expect_err("418");
    assert_eq!((teapot.detail().as_str(), teapot.status()), ("upstream returned HTTP 418", Some(418)));
}

#[tokio::test]
async fn http_wrong_path_is_a_status_error() {
    let server = python::http(None).await;
    let url = server.endpoint.replace("/rpc", "/elsewhere");
    let toml = format!("[[backends]]\nname = \"rpc\"\nprovider = \"http\"\nurl = \"{url}\"\n");
    let backends = build(&toml, &[]).expect("backends");
    let error = ask(&backends, "rpc", "echo:x").await.expect_err("404");
    assert_eq!(error.detail(), "upstream returned HTTP 404");
}
