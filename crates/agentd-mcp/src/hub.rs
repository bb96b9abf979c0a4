//! [`McpHub`]: every configured server, started at once, supervised, and called under its
//! allowlist (`08` §1–§2, `04` §6).
//!
//! Each server has one slot holding its live [`Connection`]. A call takes the connection out
//! of the slot (respawning or reconnecting a dead one, at most once per respawn interval) and
//! then runs without holding any lock, so many requests may be in flight on one server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use agentd_policy::Decision;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

use crate::config::{Allowlist, ServerSpec};
use crate::connection::{ConnectContext, Connection};
use crate::error::{McpError, StartupError};
use crate::hooks::{AuditEvents, AuditLevel, EnvironmentSecrets, SecretResolver, TracingAudit};
use crate::output::{ResourceOutput, ToolOutput, tool_arguments};
use crate::pins::{PinMismatch, check_pins};

/// The minimum time between two respawns of one server (`08` §1.3).
pub const DEFAULT_RESPAWN_INTERVAL: Duration = Duration::from_secs(5);

/// Runtime services the hub uses.
#[derive(Clone)]
pub struct HubOptions {
    /// Resolves `env` secrets and `{{secret:NAME}}` header placeholders.
    pub secrets: Arc<dyn SecretResolver>,
    /// Receives the `mcp.*` audit events.
    pub audit: Arc<dyn AuditEvents>,
    /// Minimum time between two respawns (reconnects) of one server.
    pub respawn_interval: Duration,
    /// `clientInfo.version` sent in `initialize`.
    pub client_version: String,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            secrets: Arc::new(EnvironmentSecrets),
            audit: Arc::new(TracingAudit),
            respawn_interval: DEFAULT_RESPAWN_INTERVAL,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// One `call_mcp_tool` node (or `agent_loop` tool use) to check against the listed tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolReference {
    /// The node id.
    pub node_id: String,
    /// The node's `server` field (`None` = the only configured server).
    pub server: Option<String>,
    /// The literal tool name.
    pub tool: String,
}

/// A startup finding of `08` §2.4 that is a warning, not a failure.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupWarning {
    /// The audit event: `mcp.allowlist_unknown_tool`, `mcp.tool_not_offered` or
    /// `mcp.tool_not_allowed`.
    pub event: &'static str,
    /// The event fields (`server`, `tool`, and `node_id` where a node is involved).
    pub fields: Value,
    /// A line for the operator.
    pub message: String,
}

/// The live MCP servers of a runtime.
pub struct McpHub {
    servers: BTreeMap<String, Arc<Server>>,
}

impl std::fmt::Debug for McpHub {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("McpHub").field("servers", &self.servers.keys().collect::<Vec<_>>()).finish()
    }
}

impl McpHub {
    /// Starts every server concurrently: spawn or connect, handshake, `tools/list`, pin checks,
    /// each within its `startup_timeout`. Duplicate names, spawn or handshake failures, an
    /// unsupported protocol version and pin mismatches are errors (CLI exit 2); every server
    /// already started is shut down before the error is returned. Allowlist findings are
    /// emitted as warnings and audit events and returned by [`McpHub::allowlist_warnings`].
    pub async fn start(specs: Vec<ServerSpec>, options: HubOptions) -> Result<Self, StartupError> {
        let mut names = BTreeSet::new();
        for spec in &specs {
            if !names.insert(spec.name.clone()) {
                return Err(StartupError::new(&spec.name, "duplicate server name"));
            }
        }
        let servers: Vec<Arc<Server>> = specs.into_iter().map(|spec| Server::new(spec, options.clone())).collect();
        let results = futures_util::future::join_all(servers.iter().map(|server| server.start())).await;
        let hub = Self { servers: servers.into_iter().map(|server| (server.spec.name.clone(), server)).collect() };
        if let Some(error) = results.into_iter().find_map(Result::err) {
            hub.shutdown().await;
            return Err(error);
        }
        Ok(hub)
    }

    /// An empty hub (no MCP server configured): every call fails with [`McpError::NoServers`].
    pub fn empty() -> Self {
        Self { servers: BTreeMap::new() }
    }

    /// The configured server names, sorted.
    pub fn server_names(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    /// Server selection of `04` §6: the named server, else the only one configured.
    pub fn select_server(&self, requested: Option<&str>) -> Result<String, McpError> {
        match requested {
            Some(name) if self.servers.contains_key(name) => Ok(name.to_owned()),
            Some(name) => Err(McpError::UnknownServer { name: name.to_owned(), configured: self.server_names() }),
            None if self.servers.is_empty() => Err(McpError::NoServers),
            None if self.servers.len() == 1 => Ok(self.server_names().remove(0)),
            None => Err(McpError::AmbiguousServer { configured: self.server_names() }),
        }
    }

    /// The allowlist decision for `tools/call` of `tool` (denial target `server:tool`). A tool
    /// disabled because it no longer matches its pin is denied too. The engine asks this before
    /// the dry-run short-circuit; [`McpHub::call_tool`] asks again before sending.
    pub fn check_tool(&self, server: &str, tool: &str) -> Result<Decision, McpError> {
        Ok(self.server(server)?.check_tool(tool))
    }

    /// The allowlist decision for `resources/read` of `uri` (denial target `server:uri`).
    pub fn check_resource(&self, server: &str, uri: &str) -> Result<Decision, McpError> {
        Ok(self.server(server)?.spec.allowlist.check_resource(server, uri))
    }

    /// `tools/call` on `server`: allowlist check, then the request, waiting at most
    /// min(`timeout_secs`, `deadline`) where `deadline` is the remaining run time. `arguments`
    /// must be an object or `null` (member omitted). A result with `isError: true` is an `Ok`
    /// output whose [`ToolOutput::branch_label`] is `error`.
    pub async fn call_tool(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        deadline: Option<Duration>,
    ) -> Result<ToolOutput, McpError> {
        let runtime = self.server(server)?;
        let decision = runtime.check_tool(tool);
        if !decision.allowed {
            return Err(McpError::Denied { op: "call_mcp_tool", target: format!("{server}:{tool}"), decision });
        }
        let arguments = tool_arguments(arguments).map_err(|got| McpError::InvalidArguments { got })?;
        let (timeout, run_deadline) = runtime.limit(deadline);
        let connection = runtime.connection().await?;
        let result = connection.call_tool(tool, arguments, timeout, run_deadline).await?;
        Ok(ToolOutput::from_result(server, tool, &result))
    }

    /// `resources/read` on `server`: allowlist check, then the request (timeouts as for
    /// [`McpHub::call_tool`]).
    pub async fn read_resource(
        &self,
        server: &str,
        uri: &str,
        deadline: Option<Duration>,
    ) -> Result<ResourceOutput, McpError> {
        let runtime = self.server(server)?;
        let decision = runtime.spec.allowlist.check_resource(server, uri);
        if !decision.allowed {
            return Err(McpError::Denied { op: "read_mcp_resource", target: format!("{server}:{uri}"), decision });
        }
        let (timeout, run_deadline) = runtime.limit(deadline);
        let connection = runtime.connection().await?;
        let result = connection.read_resource(uri, timeout, run_deadline).await?;
        Ok(ResourceOutput::from_result(server, uri, &result))
    }

    /// The tools `server` listed at its last (re)start or list change, as JSON objects.
    pub fn tools(&self, server: &str) -> Result<Vec<Value>, McpError> {
        Ok(self.server(server)?.tools.read().map(|tools| tools.clone()).unwrap_or_default())
    }

    /// The protocol version negotiated with `server` at its last handshake.
    pub fn protocol_version(&self, server: &str) -> Result<Option<String>, McpError> {
        Ok(self.server(server)?.protocol_version.read().ok().and_then(|version| version.clone()))
    }

    /// The wildcard-free `allow_tools` entries that a server does not list (`08` §2.4):
    /// warnings + audit `mcp.allowlist_unknown_tool`, already emitted by [`McpHub::start`].
    pub fn allowlist_warnings(&self) -> Vec<StartupWarning> {
        self.servers.values().flat_map(|server| server.unknown_allowlist_entries()).collect()
    }

    /// Checks `call_mcp_tool` nodes against the listed tools and the allowlists (`08` §2.4):
    /// a tool the server does not list → `mcp.tool_not_offered`, one the allowlist denies →
    /// `mcp.tool_not_allowed`. Both are warnings (emitted as audit events here and returned);
    /// the call itself would fail at run time. References to unknown servers are left to the
    /// validator and skipped.
    pub fn check_references(&self, references: &[ToolReference]) -> Vec<StartupWarning> {
        let mut warnings = Vec::new();
        for reference in references {
            let Ok(server) = self.select_server(reference.server.as_deref()) else { continue };
            let Some(runtime) = self.servers.get(&server) else { continue };
            warnings.extend(runtime.reference_warning(reference));
        }
        warnings
    }

    /// Stops every server: stdio children get the graceful stop sequence (close stdin, 2 s,
    /// SIGTERM, 2 s, SIGKILL), HTTP sessions are closed. Later calls fail with
    /// [`McpError::ShutDown`].
    pub async fn shutdown(&self) {
        futures_util::future::join_all(self.servers.values().map(|server| server.shutdown())).await;
    }

    fn server(&self, name: &str) -> Result<&Arc<Server>, McpError> {
        match self.servers.get(name) {
            Some(server) => Ok(server),
            None if self.servers.is_empty() => Err(McpError::NoServers),
            None => Err(McpError::UnknownServer { name: name.to_owned(), configured: self.server_names() }),
        }
    }
}

/// One server: its spec, its live connection and what it listed.
struct Server {
    spec: ServerSpec,
    options: HubOptions,
    slot: Mutex<Slot>,
    tools: RwLock<Vec<Value>>,
    protocol_version: RwLock<Option<String>>,
    /// Pinned tools that changed after startup: calls are denied.
    disabled: RwLock<BTreeSet<String>>,
    tools_changed: Arc<Notify>,
}

#[derive(Default)]
struct Slot {
    connection: Option<Arc<Connection>>,
    /// When the last respawn (reconnect) started.
    last_respawn: Option<Instant>,
    /// Why the last connection ended (exit status or connect failure).
    last_failure: Option<String>,
    shut_down: bool,
}

impl Server {
    fn new(spec: ServerSpec, options: HubOptions) -> Arc<Self> {
        let server = Arc::new(Self {
            spec,
            options,
            slot: Mutex::new(Slot::default()),
            tools: RwLock::new(Vec::new()),
            protocol_version: RwLock::new(None),
            disabled: RwLock::new(BTreeSet::new()),
            tools_changed: Arc::new(Notify::new()),
        });
        tokio::spawn(relist_on_change(Arc::downgrade(&server), server.tools_changed.clone()));
        server
    }

    fn context(&self) -> ConnectContext {
        ConnectContext {
            secrets: self.options.secrets.clone(),
            audit: self.options.audit.clone(),
            client_version: self.options.client_version.clone(),
            tools_changed: self.tools_changed.clone(),
        }
    }

    /// The first start: failures (pins included) are fatal.
    async fn start(&self) -> Result<(), StartupError> {
        let fail = |reason: String| StartupError::new(&self.spec.name, reason);
        let started = tokio::time::timeout(self.spec.startup_timeout, self.open_and_list()).await;
        let (connection, tools) = match started {
            Ok(result) => result.map_err(fail)?,
            Err(_) => {
                return Err(fail(format!(
                    "did not finish spawn, handshake and tools/list within {}s",
                    self.spec.startup_timeout.as_secs()
                )));
            }
        };
        let mismatches = check_pins(&self.spec.tool_pins, &tools);
        if let Some(mismatch) = mismatches.first() {
            connection.close().await;
            return Err(fail(mismatch.to_string()));
        }
        self.install(connection, tools).await;
        for warning in self.unknown_allowlist_entries() {
            self.warn(&warning);
        }
        Ok(())
    }

    /// Spawn/connect, handshake and `tools/list` (when the server has the tools capability).
    async fn open_and_list(&self) -> Result<(Connection, Vec<Value>), String> {
        let connection = Connection::open(&self.spec, &self.context()).await?;
        let tools = if connection.has_tools {
            match connection.list_tools(self.spec.startup_timeout).await {
                Ok(tools) => tools,
                Err(error) => {
                    let reason = format!("tools/list failed: {error}");
                    connection.close().await;
                    return Err(reason);
                }
            }
        } else {
            Vec::new()
        };
        Ok((connection, tools))
    }

    /// Stores a fresh connection and its tools, and emits `mcp.server_started`.
    async fn install(&self, connection: Connection, tools: Vec<Value>) {
        let fields = json!({
            "server": self.spec.name,
            "transport": self.spec.transport.kind(),
            "protocol_version": connection.protocol_version,
            "tools": tools.len(),
        });
        if let Ok(mut version) = self.protocol_version.write() {
            *version = Some(connection.protocol_version.clone());
        }
        if let Ok(mut listed) = self.tools.write() {
            *listed = tools;
        }
        let mut slot = self.slot.lock().await;
        slot.connection = Some(Arc::new(connection));
        drop(slot);
        self.options.audit.emit(AuditLevel::Info, "mcp.server_started", fields);
    }

    fn check_tool(&self, tool: &str) -> Decision {
        let decision = self.spec.allowlist.check_tool(&self.spec.name, tool);
        let disabled = self.disabled.read().map(|disabled| disabled.contains(tool)).unwrap_or(false);
        if decision.allowed && disabled {
            let reason = format!("tool {tool} of server {} no longer matches its pin", self.spec.name);
            return Decision::deny(agentd_policy::Family::Mcp, reason);
        }
        decision
    }

    /// min(`timeout_secs`, remaining run time), and whether the run deadline was the limit.
    fn limit(&self, deadline: Option<Duration>) -> (Duration, bool) {
        match deadline {
            Some(deadline) if deadline < self.spec.request_timeout => (deadline, true),
            _ => (self.spec.request_timeout, false),
        }
    }

    /// The live connection, respawning (reconnecting) a dead one when the respawn interval has
    /// passed since the last respawn; inside that window the last failure is returned.
    async fn connection(&self) -> Result<Arc<Connection>, McpError> {
        let mut slot = self.slot.lock().await;
        if slot.shut_down {
            return Err(McpError::ShutDown { server: self.spec.name.clone() });
        }
        if let Some(connection) = &slot.connection {
            if connection.is_alive() {
                return Ok(connection.clone());
            }
            slot.last_failure = Some(connection.exit_status().unwrap_or_else(|| "connection closed".into()));
            slot.connection = None;
        }
        let interval_open = slot.last_respawn.is_none_or(|at| at.elapsed() >= self.options.respawn_interval);
        if !interval_open {
            return Err(self.unavailable(slot.last_failure.clone()));
        }
        slot.last_respawn = Some(Instant::now());
        match self.respawn().await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                slot.connection = Some(connection.clone());
                Ok(connection)
            }
            Err(reason) => {
                slot.last_failure = Some(reason.clone());
                Err(self.unavailable(Some(reason)))
            }
        }
    }

    /// A respawn: handshake and `tools/list` again; pinned tools that changed are disabled
    /// rather than failing the server.
    async fn respawn(&self) -> Result<Connection, String> {
        tracing::info!(target: "agentd::mcp", server = %self.spec.name, "respawning MCP server");
        let opened = tokio::time::timeout(self.spec.startup_timeout, self.open_and_list()).await;
        let (connection, tools) = opened.map_err(|_| "respawn timed out".to_owned())??;
        self.apply_pins(&tools);
        let fields = json!({
            "server": self.spec.name,
            "transport": self.spec.transport.kind(),
            "protocol_version": connection.protocol_version,
            "tools": tools.len(),
        });
        if let Ok(mut listed) = self.tools.write() {
            *listed = tools;
        }
        if let Ok(mut version) = self.protocol_version.write() {
            *version = Some(connection.protocol_version.clone());
        }
        self.options.audit.emit(AuditLevel::Info, "mcp.server_started", fields);
        Ok(connection)
    }

    fn unavailable(&self, failure: Option<String>) -> McpError {
        let status = failure.unwrap_or_else(|| "unknown status".into());
        match self.spec.transport {
            crate::config::TransportSpec::Stdio { .. } => McpError::Exited { server: self.spec.name.clone(), status },
            crate::config::TransportSpec::Http { .. } => {
                McpError::Transport { server: self.spec.name.clone(), detail: format!("is unavailable: {status}") }
            }
        }
    }

    /// Disables pinned tools whose definition changed (and re-enables ones that match again).
    fn apply_pins(&self, tools: &[Value]) {
        let mismatches: Vec<PinMismatch> = check_pins(&self.spec.tool_pins, tools);
        let names: BTreeSet<String> = mismatches.iter().map(|mismatch| mismatch.tool.clone()).collect();
        if let Ok(mut disabled) = self.disabled.write() {
            for mismatch in &mismatches {
                if !disabled.contains(&mismatch.tool) {
                    tracing::error!(target: "agentd::mcp", server = %self.spec.name, reason = %mismatch, "pinned tool disabled");
                    self.options.audit.emit(
                        AuditLevel::Error,
                        "mcp.tool_pin_mismatch",
                        json!({"server": self.spec.name, "tool": mismatch.tool}),
                    );
                }
            }
            *disabled = names;
        }
    }

    /// Re-lists tools after `notifications/tools/list_changed` and re-checks pins.
    async fn relist(&self) {
        let connection = {
            let slot = self.slot.lock().await;
            slot.connection.clone()
        };
        let Some(connection) = connection else { return };
        match connection.list_tools(self.spec.request_timeout).await {
            Ok(tools) => {
                self.apply_pins(&tools);
                if let Ok(mut listed) = self.tools.write() {
                    *listed = tools;
                }
            }
            Err(error) => {
                tracing::warn!(target: "agentd::mcp", server = %self.spec.name, %error, "re-listing tools failed")
            }
        }
    }

    fn listed(&self, tool: &str) -> bool {
        self.tools
            .read()
            .map(|tools| tools.iter().any(|listed| listed.get("name").and_then(Value::as_str) == Some(tool)))
            .unwrap_or(false)
    }

    fn unknown_allowlist_entries(&self) -> Vec<StartupWarning> {
        let server = &self.spec.name;
        let Allowlist::Patterns { .. } = &self.spec.allowlist else { return Vec::new() };
        self.spec
            .allowlist
            .exact_tools()
            .into_iter()
            .filter(|tool| !self.listed(tool))
            .map(|tool| StartupWarning {
                event: "mcp.allowlist_unknown_tool",
                message: format!("mcp server `{server}`: allow_tools entry `{tool}` is not a tool the server lists"),
                fields: json!({"server": server, "tool": tool}),
            })
            .collect()
    }

    fn reference_warning(&self, reference: &ToolReference) -> Option<StartupWarning> {
        let server = &self.spec.name;
        let tool = &reference.tool;
        let node_id = &reference.node_id;
        let fields = json!({"server": server, "tool": tool, "node_id": node_id});
        let warning = if !self.listed(tool) {
            StartupWarning {
                event: "mcp.tool_not_offered",
                message: format!("node `{node_id}`: mcp server `{server}` does not list tool `{tool}`"),
                fields,
            }
        } else if !self.check_tool(tool).allowed {
            StartupWarning {
                event: "mcp.tool_not_allowed",
                message: format!(
                    "node `{node_id}`: tool `{tool}` is not allowed by allow_tools of mcp server `{server}`"
                ),
                fields,
            }
        } else {
            return None;
        };
        self.warn(&warning);
        Some(warning)
    }

    fn warn(&self, warning: &StartupWarning) {
        tracing::warn!(target: "agentd::mcp", server = %self.spec.name, "{}", warning.message);
        self.options.audit.emit(AuditLevel::Warn, warning.event, warning.fields.clone());
    }

    async fn shutdown(&self) {
        let connection = {
            let mut slot = self.slot.lock().await;
            slot.shut_down = true;
            slot.connection.take()
        };
        // Wake the re-list task so it sees the server is gone.
        self.tools_changed.notify_one();
        let Some(connection) = connection else { return };
        match Arc::try_unwrap(connection) {
            Ok(connection) => connection.close().await,
            // A call still holds the connection: dropping our handle lets the call finish; the
            // child is killed when the last handle goes.
            Err(shared) => drop(shared),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Lets the re-list task see that the server is gone.
        self.tools_changed.notify_one();
    }
}

/// Re-lists a server's tools on every `tools/list_changed`, until the server is dropped.
async fn relist_on_change(server: Weak<Server>, changed: Arc<Notify>) {
    loop {
        changed.notified().await;
        let Some(server) = server.upgrade() else { return };
        if server.slot.lock().await.shut_down {
            return;
        }
        server.relist().await;
    }
}
