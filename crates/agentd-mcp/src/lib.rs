//! The MCP client of agentd (`08-mcp-secrets-observability.md` §1–§2, `04-nodes.md` §6), on the
//! official rmcp SDK.
//!
//! - [`config`]: a `[[mcp_servers]]` entry or the legacy `--mcp-stdio` value checked into a
//!   [`ServerSpec`];
//! - [`hub`]: [`McpHub`] starts every server (stdio children, streamable HTTP sessions),
//!   negotiates the protocol version, lists tools, checks pins, supervises (respawn/reconnect at
//!   most once per interval) and runs `tools/call` / `resources/read` under each server's
//!   allowlist with per-call timeouts;
//! - [`output`]: the node output shapes;
//! - [`hooks`]: the secrets and audit seams the runtime plugs in;
//! - [`scripted`]: a scriptable MCP server for tests and conformance (binary
//!   `agentd-mcp-scripted`).
//!
//! Secret values (resolved `env` values and header placeholders) never appear in outputs or
//! error texts: errors are scrubbed with every value the server's connection resolved.

mod child;
pub mod config;
mod connection;
pub mod error;
mod events;
pub mod hooks;
mod http_client;
pub mod hub;
pub mod output;
pub mod pins;
pub mod scripted;

pub use config::{Allowlist, LEGACY_SERVER_NAME, ServerSpec, TransportSpec};
pub use connection::{ACCEPTED_PROTOCOL_VERSIONS, OFFERED_PROTOCOL_VERSION};
pub use error::{Category, McpError, StartupError};
pub use hooks::{
    AuditEvents, AuditLevel, CollectingAudit, EnvironmentSecrets, SecretFuture, SecretResolver, TracingAudit,
};
pub use hub::{HubOptions, McpHub, StartupWarning, ToolReference};
pub use output::{ResourceOutput, ToolOutput, dry_run_resource_output, dry_run_tool_output};
pub use pins::{PinMismatch, tool_digest};
