//! One live session with a server: transport set-up, the handshake (`08` §2.3) and requests
//! with per-call timeouts (`08` §2.5), on rmcp.
//!
//! A [`Connection`] never reconnects by itself; the hub drops a dead one and builds a new one
//! (respawn for stdio, a new session for HTTP).

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientRequest, ListToolsRequest, PaginatedRequestParams, ReadResourceRequestParams, Request,
    ServerResult,
};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::Value;
use tokio::sync::Notify;

use crate::child::{ChildProcess, SpawnRequest};
use crate::config::{ServerSpec, TransportSpec};
use crate::error::{McpError, bounded};
use crate::events::Events;
use crate::hooks::{AuditEvents, Scrubber, SecretResolver};
use crate::http_client::HeaderClient;

/// The version the client offers (`08` §2.1).
pub const OFFERED_PROTOCOL_VERSION: &str = "2025-06-18";
/// The versions accepted in the server's answer.
pub const ACCEPTED_PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];
/// At most this many `tools/list` pages are followed.
const MAX_TOOL_PAGES: usize = 100;
/// Bodies and lines above this size are refused (`08` §2.2).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// How long a failed call waits for the child's exit status before reporting `unknown status`.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(2);

/// Everything a connect needs besides the spec.
#[derive(Clone)]
pub(crate) struct ConnectContext {
    pub secrets: Arc<dyn SecretResolver>,
    pub audit: Arc<dyn AuditEvents>,
    pub client_version: String,
    /// Woken on `notifications/tools/list_changed`.
    pub tools_changed: Arc<Notify>,
}

/// A live session.
pub(crate) struct Connection {
    server: String,
    service: RunningService<RoleClient, Events>,
    child: Option<ChildProcess>,
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// Whether the server announced the `tools` capability.
    pub has_tools: bool,
    /// Secret values this connection used (env values, header values).
    pub scrubber: Scrubber,
}

impl Connection {
    /// Spawns or connects, then runs `initialize` + `notifications/initialized` and checks the
    /// negotiated version. Errors are startup reasons (scrubbed).
    pub(crate) async fn open(spec: &ServerSpec, context: &ConnectContext) -> Result<Self, String> {
        let events = Events::new(&spec.name, &context.client_version, context.tools_changed.clone());
        let mut scrubber = Scrubber::default();
        let (service, child) = match &spec.transport {
            TransportSpec::Stdio { command, env, env_passthrough } => {
                let secret_env = resolve_env(env, context.secrets.as_ref(), &mut scrubber).await?;
                let request = SpawnRequest {
                    server: &spec.name,
                    command,
                    secret_env,
                    passthrough: env_passthrough,
                    audit: context.audit.clone(),
                    scrubber: scrubber.clone(),
                };
                let (child, stdout, stdin) = ChildProcess::spawn(request)?;
                let service = events.serve((stdout, stdin)).await;
                let service = match service {
                    Ok(service) => service,
                    Err(error) => return Err(handshake_failure(&error.to_string(), Some(&child), &scrubber).await),
                };
                (service, Some(child))
            }
            TransportSpec::Http { url, headers } => {
                let transport = http_transport(url, headers, context.secrets.clone(), &mut scrubber).await?;
                let service = events.serve(transport).await;
                let service =
                    service.map_err(|error| scrubber.scrub(&bounded(&format!("handshake failed: {error}"))))?;
                (service, None)
            }
        };
        let Some(info) = service.peer().peer_info() else {
            return Err("handshake failed: the server sent no initialize result".into());
        };
        let protocol_version = info.protocol_version.to_string();
        if !ACCEPTED_PROTOCOL_VERSIONS.contains(&protocol_version.as_str()) {
            return Err(format!("unsupported MCP protocol version {}", bounded(&protocol_version)));
        }
        let has_tools = info.capabilities.tools.is_some();
        Ok(Self { server: spec.name.clone(), service, child, protocol_version, has_tools, scrubber })
    }

    /// Whether the session can still carry requests.
    pub(crate) fn is_alive(&self) -> bool {
        let child_running = self.child.as_ref().is_none_or(|child| child.exit_status().is_none());
        child_running && !self.service.peer().is_transport_closed()
    }

    /// The child's exit status, once it has exited.
    pub(crate) fn exit_status(&self) -> Option<String> {
        self.child.as_ref().and_then(ChildProcess::exit_status)
    }

    /// `tools/list`, following `nextCursor` (at most 100 pages). Each tool is the JSON object
    /// rmcp decoded.
    pub(crate) async fn list_tools(&self, timeout: Duration) -> Result<Vec<Value>, McpError> {
        let mut tools = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_TOOL_PAGES {
            let params = cursor.take().map(|cursor| PaginatedRequestParams::default().with_cursor(Some(cursor)));
            let request = ClientRequest::ListToolsRequest(ListToolsRequest {
                method: Default::default(),
                params,
                extensions: Default::default(),
            });
            let result = self.request(request, "tools/list", timeout, false).await?;
            let ServerResult::ListToolsResult(page) = result else {
                return Err(self.transport_error("answered tools/list with an unexpected result"));
            };
            for tool in &page.tools {
                tools.push(serde_json::to_value(tool).unwrap_or(Value::Null));
            }
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(tools),
            }
        }
        Ok(tools)
    }

    /// `tools/call`; the result object as JSON.
    pub(crate) async fn call_tool(
        &self,
        tool: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        timeout: Duration,
        run_deadline: bool,
    ) -> Result<Value, McpError> {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Some(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let request = ClientRequest::CallToolRequest(Request::new(params));
        let result = self.request(request, "tools/call", timeout, run_deadline).await?;
        Ok(result_json(result))
    }

    /// `resources/read`; the result object as JSON.
    pub(crate) async fn read_resource(
        &self,
        uri: &str,
        timeout: Duration,
        run_deadline: bool,
    ) -> Result<Value, McpError> {
        let request = ClientRequest::ReadResourceRequest(Request::new(ReadResourceRequestParams::new(uri)));
        let result = self.request(request, "resources/read", timeout, run_deadline).await?;
        Ok(result_json(result))
    }

    /// Sends one request and waits at most `timeout`; on expiry rmcp sends
    /// `notifications/cancelled` and drops any late answer.
    async fn request(
        &self,
        request: ClientRequest,
        method: &'static str,
        timeout: Duration,
        run_deadline: bool,
    ) -> Result<ServerResult, McpError> {
        let options = PeerRequestOptions::with_timeout(timeout);
        let handle = match self.service.peer().send_request_with_option(request, options).await {
            Ok(handle) => handle,
            Err(error) => return Err(self.service_error(error, method, timeout, run_deadline).await),
        };
        match handle.await_response().await {
            Ok(result) => Ok(result),
            Err(error) => Err(self.service_error(error, method, timeout, run_deadline).await),
        }
    }

    async fn service_error(
        &self,
        error: ServiceError,
        method: &'static str,
        timeout: Duration,
        run_deadline: bool,
    ) -> McpError {
        let server = self.server.clone();
        match error {
            ServiceError::Timeout { .. } => {
                McpError::Timeout { server, method, seconds: whole_seconds(timeout), run_deadline }
            }
            ServiceError::McpError(data) => {
                McpError::Rpc { server, code: data.code.0, message: bounded(&self.scrubber.scrub(&data.message)) }
            }
            ServiceError::TransportClosed => match &self.child {
                Some(child) => {
                    let status = child.wait_exit_status(EXIT_STATUS_WAIT).await;
                    McpError::Exited { server, status: status.unwrap_or_else(|| "unknown status".into()) }
                }
                None => self.transport_error("closed the connection"),
            },
            other => self.transport_error(&format!("transport error: {other}")),
        }
    }

    fn transport_error(&self, detail: &str) -> McpError {
        McpError::Transport { server: self.server.clone(), detail: bounded(&self.scrubber.scrub(detail)) }
    }

    /// Closes the session; a stdio child gets the graceful stop sequence (`08` §1.3).
    pub(crate) async fn close(mut self) {
        // Cancelling the service drops the transport, which closes the child's stdin (for HTTP,
        // rmcp sends the session DELETE).
        let _ = self.service.close_with_timeout(Duration::from_secs(2)).await;
        if let Some(child) = self.child.take() {
            child.stop().await;
        }
    }
}

/// A seconds value for error texts: whole seconds, at least 1 when the limit was not zero.
fn whole_seconds(limit: Duration) -> u64 {
    let seconds = limit.as_secs();
    if seconds == 0 && !limit.is_zero() { 1 } else { seconds }
}

/// The JSON of a result, whatever variant rmcp's untagged decoding picked.
fn result_json(result: ServerResult) -> Value {
    match result {
        ServerResult::CallToolResult(result) => serde_json::to_value(result).unwrap_or(Value::Null),
        ServerResult::ReadResourceResult(result) => serde_json::to_value(result).unwrap_or(Value::Null),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

/// Why a stdio handshake failed: a child that already exited says so.
async fn handshake_failure(detail: &str, child: Option<&ChildProcess>, scrubber: &Scrubber) -> String {
    if let Some(status) = child.and_then(ChildProcess::exit_status) {
        return format!("exited during the handshake ({status})");
    }
    if let Some(child) = child
        && let Some(status) = child.wait_exit_status(Duration::from_millis(500)).await
    {
        return format!("exited during the handshake ({status})");
    }
    scrubber.scrub(&bounded(&format!("handshake failed: {detail}")))
}

async fn resolve_env(
    env: &std::collections::BTreeMap<String, String>,
    secrets: &dyn SecretResolver,
    scrubber: &mut Scrubber,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut resolved = std::collections::BTreeMap::new();
    for (variable, secret) in env {
        let value =
            secrets.resolve(secret).await.map_err(|reason| format!("env.{variable}: secret `{secret}`: {reason}"))?;
        scrubber.add(&value);
        resolved.insert(variable.clone(), value);
    }
    Ok(resolved)
}

/// The rmcp transport of a streamable-HTTP server; headers are rendered on every request.
async fn http_transport(
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    secrets: Arc<dyn SecretResolver>,
    scrubber: &mut Scrubber,
) -> Result<StreamableHttpClientTransport<HeaderClient>, String> {
    // Redirects are never followed (`08` §2.2).
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let client = HeaderClient::new(inner, headers, secrets)?;
    client.render_all(scrubber).await?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .max_json_response_size(MAX_MESSAGE_BYTES)
        .max_sse_event_size(MAX_MESSAGE_BYTES)
        .reinit_on_expired_session(true);
    Ok(StreamableHttpClientTransport::with_client(client, config))
}
