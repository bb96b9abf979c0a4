//! Interop with the reference server `@modelcontextprotocol/server-everything` (npm, installed by
//! `scripts/deps/10-mcp-servers.sh`), over stdio and streamable HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use agentd_mcp::{CollectingAudit, McpError, McpHub, SecretFuture, SecretResolver, ServerSpec, TransportSpec};
use serde_json::{Value, json};

use crate::harness::{everything_entry, everything_http, http, options, spec, start};

const TOOLS: &[&str] = &["echo", "get-env", "get-sum", "get-structured-content"];
const RESOURCES: &[&str] = &["demo://resource/**"];
const SECRET_VALUE: &str = "s3cret-value-for-mcp-tests";

/// Resolves every secret to [`SECRET_VALUE`].
struct FixedSecret;

impl SecretResolver for FixedSecret {
    fn resolve<'a>(&'a self, _name: &'a str) -> SecretFuture<'a> {
        Box::pin(async { Ok(SECRET_VALUE.to_owned()) })
    }
}

fn stdio_spec() -> ServerSpec {
    let entry = everything_entry().display().to_string();
    let transport = TransportSpec::Stdio {
        command: vec!["node".into(), entry, "stdio".into()],
        env: BTreeMap::from([("MCP_TEST_TOKEN".to_owned(), "TEST_TOKEN".to_owned())]),
        env_passthrough: vec!["CARGO_PKG_NAME".into()],
    };
    spec("everything", transport, TOOLS, RESOURCES)
}

/// List, call, read, error result and denial: the same checks for both transports.
async fn exercise(hub: &McpHub) {
    assert_eq!(hub.protocol_version("everything").ok().flatten().as_deref(), Some("2025-06-18"));
    let tools = hub.tools("everything").unwrap_or_default();
    let names: Vec<&str> = tools.iter().filter_map(|tool| tool["name"].as_str()).collect();
    assert!(names.len() >= 10 && names.contains(&"echo") && names.contains(&"get-sum"), "{names:?}");

    let echo = hub.call_tool("everything", "echo", json!({"message": "hi"}), None).await;
    let echo = echo.unwrap_or_else(|e| panic!("echo: {e}"));
    assert_eq!(echo.content, json!([{"type": "text", "text": "Echo: hi"}]));
    assert!(!echo.is_error);
    assert_eq!(echo.to_value()["structured"], Value::Null);

    let structured = hub.call_tool("everything", "get-sum", json!({"a": 2, "b": 3}), None).await;
    let structured = structured.unwrap_or_else(|e| panic!("get-sum: {e}"));
    assert!(structured.content[0]["text"].as_str().unwrap_or_default().contains('5'), "{:?}", structured.content);

    let read = hub.read_resource("everything", "demo://resource/dynamic/text/1", None).await;
    let read = read.unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(read.contents[0]["uri"], "demo://resource/dynamic/text/1");
    assert_eq!(read.to_value()["server"], "everything");

    // Arguments the tool's schema rejects: the server answers with an error (an `isError`
    // result or a JSON-RPC error, depending on the SDK version); either way a clear outcome.
    match hub.call_tool("everything", "echo", json!({"wrong": 1}), None).await {
        Ok(output) => {
            assert!(output.is_error, "{:?}", output.to_value());
            assert_eq!(output.branch_label(), Some("error"));
        }
        Err(error) => assert!(matches!(error, McpError::Rpc { .. }), "{error}"),
    }

    let denied = hub.call_tool("everything", "get-tiny-image", json!({}), None).await.err();
    assert_eq!(
        denied.map(|e| e.to_string()).as_deref(),
        Some(
            "policy violation: call_mcp_tool denied on everything:get-tiny-image: tool get-tiny-image not in allow_tools of server everything"
        )
    );
    let denied = hub.read_resource("everything", "file:///etc/passwd", None).await.err();
    assert!(matches!(denied, Some(McpError::Denied { .. })), "{denied:?}");
}

#[tokio::test]
async fn stdio_interop_with_server_everything() {
    let audit = Arc::new(CollectingAudit::default());
    let options = agentd_mcp::HubOptions { secrets: Arc::new(FixedSecret), ..options(&audit) };
    let hub = start(vec![stdio_spec()], options).await;
    exercise(&hub).await;

    // The child sees the basic variables, the passthrough one and the secret; nothing else.
    let environment = hub.call_tool("everything", "get-env", json!({}), None).await;
    let environment = environment.unwrap_or_else(|e| panic!("get-env: {e}"));
    let text = environment.content[0]["text"].as_str().unwrap_or_default();
    let variables: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(variables.get("MCP_TEST_TOKEN"), Some(&json!(SECRET_VALUE)));
    assert_eq!(variables.get("CARGO_PKG_NAME"), Some(&json!("agentd-mcp")));
    assert!(variables.contains_key("PATH"));
    assert!(!variables.contains_key("CARGO_MANIFEST_DIR"), "the runtime environment leaked: {variables:?}");

    let started = audit.events().into_iter().find(|(_, name, _)| name == "mcp.server_started");
    let fields = started.map(|(_, _, fields)| fields).unwrap_or(Value::Null);
    assert_eq!(fields["transport"], "stdio");
    assert_eq!(fields["protocol_version"], "2025-06-18");
    assert!(fields["tools"].as_u64().unwrap_or(0) >= 10, "{fields}");
    hub.shutdown().await;
}

#[tokio::test]
async fn streamable_http_interop_with_server_everything() {
    let server = everything_http().await;
    let mut transport = http(&server.url);
    if let TransportSpec::Http { headers, .. } = &mut transport {
        headers.insert("Authorization".into(), "Bearer {{secret:TOKEN}}".into());
    }
    let audit = Arc::new(CollectingAudit::default());
    let options = agentd_mcp::HubOptions { secrets: Arc::new(FixedSecret), ..options(&audit) };
    let hub = start(vec![spec("everything", transport, TOOLS, RESOURCES)], options).await;
    exercise(&hub).await;
    let started = audit.events().into_iter().find(|(_, name, _)| name == "mcp.server_started");
    assert_eq!(started.map(|(_, _, fields)| fields["transport"].clone()), Some(json!("streamable_http")));
    hub.shutdown().await;
}

#[tokio::test]
async fn secret_header_values_never_reach_error_texts() {
    // Nothing listens on this port: the connect fails, and the error must not quote the header.
    let url = format!("http://127.0.0.1:{}/mcp", crate::harness::free_port());
    let mut transport = http(&url);
    if let TransportSpec::Http { headers, .. } = &mut transport {
        headers.insert("Authorization".into(), "Bearer {{secret:TOKEN}}".into());
    }
    let mut server = spec("docs", transport, &["*"], &[]);
    server.startup_timeout = std::time::Duration::from_secs(10);
    let options = agentd_mcp::HubOptions { secrets: Arc::new(FixedSecret), ..Default::default() };
    let error = McpHub::start(vec![server.clone()], options).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.starts_with("mcp server `docs`: "), "{error}");
    assert!(!error.contains(SECRET_VALUE), "{error}");
    assert!(!format!("{server:?}").contains(SECRET_VALUE));
}
