//! The four HTTP providers (06 §3): one file per wire format, each a pair of pure functions
//! (`body` builds the request JSON, `parse` reads the answer) so they can be tested without a
//! network. [`ProviderClient`] adds authentication, headers and the HTTP exchange.

mod anthropic;
mod gemini;
mod openai;

use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::config::{ExtraHeader, Provider, Settings};
use crate::http::{self, Post};
use crate::retry::Failure;
use crate::secrets::{self, Scrubber, SecretSource};
use crate::types::{CompletionRequest, Message, Role, Usage};

/// Output cap when neither the request nor the backend sets one (06 §3).
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// What a provider answered, before the registry adds the backend name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub text: String,
    pub usage: Usage,
    /// The model the provider says answered, if it says.
    pub model: Option<String>,
}

/// A configured HTTP provider backend.
pub(crate) struct ProviderClient {
    pub provider: Provider,
    pub model: String,
    pub endpoint: Url,
    pub api_key_env: Option<String>,
    pub headers: Vec<ExtraHeader>,
    pub max_tokens: Option<u32>,
    pub client: reqwest::Client,
}

impl ProviderClient {
    /// Builds the client of one provider backend.
    pub(crate) fn new(
        provider: Provider,
        model: String,
        endpoint: Url,
        api_key_env: Option<String>,
        headers: Vec<ExtraHeader>,
        settings: &Settings,
    ) -> Result<ProviderClient, String> {
        let client = http::client(settings)?;
        Ok(ProviderClient { provider, model, endpoint, api_key_env, headers, max_tokens: settings.max_tokens, client })
    }

    /// One HTTP exchange; the caller retries.
    pub(crate) async fn attempt(
        &self,
        request: &CompletionRequest,
        secrets: &dyn SecretSource,
    ) -> Result<Answer, Failure> {
        let label = self.provider.as_str();
        let mut scrubber = Scrubber::default();
        let headers =
            self.headers(secrets, &mut scrubber).map_err(|reason| Failure::fatal(format!("{label}: {reason}")))?;
        let max_tokens = request.max_tokens.or(self.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS);
        let body = match self.provider {
            Provider::Anthropic => anthropic::body(&self.model, request, max_tokens),
            Provider::OpenAi => openai::body(&self.model, request, "max_completion_tokens", max_tokens),
            Provider::OpenAiCompatible => openai::body(&self.model, request, "max_tokens", max_tokens),
            Provider::Gemini => gemini::body(request, max_tokens),
        };
        let post = Post {
            client: &self.client,
            url: &self.endpoint,
            headers,
            body: body.to_string().into_bytes(),
            cap: http::PROVIDER_BODY_CAP,
            label,
            scrubber: &scrubber,
        };
        let bytes = match post.send().await? {
            Ok(bytes) => bytes,
            Err(reply) => {
                return Err(Failure {
                    detail: format!("{label} returned {}: {}", reply.status, reply.excerpt),
                    status: Some(reply.status),
                    retry: reply.retry,
                });
            }
        };
        self.parse(&bytes).map_err(|detail| Failure::fatal(http::excerpt(&scrubber.scrub(&detail))))
    }

    /// [`ProviderClient::parse`] for the property tests.
    #[cfg(test)]
    pub(crate) fn parse_for_tests(&self, bytes: &[u8]) -> Result<Answer, String> {
        self.parse(bytes)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Answer, String> {
        let label = self.provider.as_str();
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("{label} response is not JSON: {e}"))?;
        match self.provider {
            Provider::Anthropic => anthropic::parse(&value),
            Provider::OpenAi | Provider::OpenAiCompatible => openai::parse(label, &value),
            Provider::Gemini => gemini::parse(&value),
        }
    }

    /// Extra headers, then the key and the provider's fixed headers (which win).
    fn headers(&self, secrets: &dyn SecretSource, scrubber: &mut Scrubber) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::new();
        for header in &self.headers {
            let value = header.value.render(secrets, scrubber)?;
            http::insert(&mut map, &header.name, &value).map_err(|f| f.detail)?;
        }
        let key = match &self.api_key_env {
            Some(name) => Some(secrets::resolve(secrets, name)?),
            None => None,
        };
        if let Some(key) = &key {
            scrubber.add(key.clone());
            let (name, value) = match self.provider {
                Provider::Anthropic => ("x-api-key", key.clone()),
                Provider::Gemini => ("x-goog-api-key", key.clone()),
                Provider::OpenAi | Provider::OpenAiCompatible => ("authorization", format!("Bearer {key}")),
            };
            http::insert(&mut map, name, &value).map_err(|_| {
                format!(
                    "the key in secret `{}` is not valid header text",
                    self.api_key_env.as_deref().unwrap_or_default()
                )
            })?;
        }
        if self.provider == Provider::Anthropic {
            http::insert(&mut map, "anthropic-version", "2023-06-01").map_err(|f| f.detail)?;
        }
        Ok(map)
    }
}

/// System messages joined with a blank line, and the other turns in order.
pub(crate) fn split_system(messages: &[Message]) -> (Option<String>, Vec<&Message>) {
    let system: Vec<&str> = messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    let turns = messages.iter().filter(|m| m.role != Role::System).collect();
    let system = if system.is_empty() { None } else { Some(system.join("\n\n")) };
    (system, turns)
}

/// A usage number, 0 when missing or not a non-negative integer.
pub(crate) fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Adds `temperature` when the request carries one.
pub(crate) fn put_temperature(object: &mut serde_json::Map<String, Value>, request: &CompletionRequest) {
    if let Some(t) = request.temperature {
        object.insert("temperature".into(), Value::from(t));
    }
}
