//! The HTTP client of streamable-HTTP servers: rmcp's reqwest client, with the configured
//! `headers` rendered on every request (`08` §1.1: `{{secret:NAME}}` placeholders are resolved
//! per request, so a rotated secret such as an OAuth2 token is picked up without a reconnect).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use crate::hooks::{Scrubber, SecretResolver};

type Failure = StreamableHttpError<reqwest::Error>;

/// A reqwest client that adds the server's rendered headers to every request.
#[derive(Clone)]
pub(crate) struct HeaderClient {
    inner: reqwest::Client,
    templates: Arc<Vec<(HeaderName, String)>>,
    secrets: Arc<dyn SecretResolver>,
}

impl HeaderClient {
    /// A client with `templates` (header name → value template); names are checked here.
    pub(crate) fn new(
        inner: reqwest::Client,
        templates: &std::collections::BTreeMap<String, String>,
        secrets: Arc<dyn SecretResolver>,
    ) -> Result<Self, String> {
        let mut checked = Vec::new();
        for (name, template) in templates {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name `{}` is not valid", crate::error::bounded(name)))?;
            checked.push((header, template.clone()));
        }
        Ok(Self { inner, templates: Arc::new(checked), secrets })
    }

    /// Renders every header once, remembering the secret values in `scrubber` (startup check:
    /// a secret that cannot be resolved fails the server before it is contacted).
    pub(crate) async fn render_all(&self, scrubber: &mut Scrubber) -> Result<(), String> {
        for (name, template) in self.templates.iter() {
            render(name, template, self.secrets.as_ref(), Some(scrubber)).await?;
        }
        Ok(())
    }

    async fn with_headers(
        &self,
        mut headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<HashMap<HeaderName, HeaderValue>, Failure> {
        for (name, template) in self.templates.iter() {
            let value = render(name, template, self.secrets.as_ref(), None)
                .await
                .map_err(|reason| StreamableHttpError::Io(std::io::Error::other(reason)))?;
            headers.insert(name.clone(), value);
        }
        Ok(headers)
    }
}

/// One header value with its `{{secret:NAME}}` placeholders replaced; marked sensitive so it
/// never shows in debug output.
async fn render(
    name: &HeaderName,
    template: &str,
    secrets: &dyn SecretResolver,
    mut scrubber: Option<&mut Scrubber>,
) -> Result<HeaderValue, String> {
    let mut value = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let Some(secret) = after[..close].trim().strip_prefix("secret:").map(str::trim) else {
            return Err(format!("header `{name}`: only {{{{secret:NAME}}}} placeholders are allowed"));
        };
        let resolved =
            secrets.resolve(secret).await.map_err(|reason| format!("header `{name}`: secret `{secret}`: {reason}"))?;
        if let Some(scrubber) = scrubber.as_deref_mut() {
            scrubber.add(&resolved);
        }
        value.push_str(&rest[..open]);
        value.push_str(&resolved);
        rest = &after[close + 2..];
    }
    value.push_str(rest);
    let mut header = HeaderValue::from_str(&value)
        .map_err(|_| format!("header `{name}`: the value is not a valid HTTP header value"))?;
    header.set_sensitive(true);
    Ok(header)
}

impl StreamableHttpClient for HeaderClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let headers = self.with_headers(custom_headers).await?;
        self.inner.post_message(uri, message, session_id, auth_header, headers).await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let headers = self.with_headers(custom_headers).await?;
        self.inner
            .post_message_with_max_sse_event_size(uri, message, session_id, auth_header, headers, max_sse_event_size)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let headers = self.with_headers(custom_headers).await?;
        self.inner.post_message_with_response_limits(uri, message, session_id, auth_header, headers, limits).await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let headers = self.with_headers(custom_headers).await?;
        self.inner.delete_session(uri, session_id, auth_header, headers).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        let headers = self.with_headers(custom_headers).await?;
        self.inner.get_stream(uri, session_id, last_event_id, auth_header, headers).await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        let headers = self.with_headers(custom_headers).await?;
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                headers,
                max_sse_event_size,
            )
            .await
    }
}
