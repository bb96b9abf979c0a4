//! The client side of a session: answers server requests and reacts to notifications
//! (`08` §2.5).
//!
//! MCP 2025-06-18 (the version agentd speaks) has logging notifications and sampling / roots
//! requests; rmcp marks them deprecated for a later protocol revision, hence the `allow`.
#![allow(deprecated, reason = "agentd speaks MCP 2025-06-18, where logging, sampling and roots are current")]

use std::sync::Arc;

use rmcp::model::{
    ClientCapabilities, ClientConfig, ErrorCode, ErrorData, Implementation, LoggingLevel,
    LoggingMessageNotificationParam, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, RoleClient};
use tokio::sync::Notify;

use crate::error::bounded;

/// The client side of the session: answers server requests and reacts to notifications
/// (`08` §2.5).
#[derive(Clone)]
pub(crate) struct Events {
    server: String,
    client_version: String,
    tools_changed: Arc<Notify>,
}

impl Events {
    pub(crate) fn new(server: &str, client_version: &str, tools_changed: Arc<Notify>) -> Self {
        Self { server: server.to_owned(), client_version: client_version.to_owned(), tools_changed }
    }
}

/// The answer to every server request agentd does not support.
fn not_supported() -> ErrorData {
    ErrorData::new(ErrorCode(-32601), "method not supported by agentd", None)
}

impl ClientHandler for Events {
    async fn create_message(
        &self,
        _params: rmcp::model::CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, ErrorData> {
        Err(not_supported())
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, ErrorData> {
        Err(not_supported())
    }

    async fn create_elicitation(
        &self,
        _request: rmcp::model::ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, ErrorData> {
        Err(not_supported())
    }

    async fn on_custom_request(
        &self,
        _request: rmcp::model::CustomRequest,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::CustomResult, ErrorData> {
        Err(not_supported())
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let text = bounded(&params.data.to_string());
        let logger = params.logger.unwrap_or_default();
        match params.level {
            LoggingLevel::Debug => {
                tracing::debug!(target: "agentd::mcp", server = %self.server, logger, message = %text)
            }
            LoggingLevel::Info | LoggingLevel::Notice => {
                tracing::info!(target: "agentd::mcp", server = %self.server, logger, message = %text)
            }
            LoggingLevel::Warning => {
                tracing::warn!(target: "agentd::mcp", server = %self.server, logger, message = %text)
            }
            _ => tracing::error!(target: "agentd::mcp", server = %self.server, logger, message = %text),
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("agentd", self.client_version.clone()))
            .with_protocol_version(ProtocolVersion::V_2025_06_18)
    }
}
