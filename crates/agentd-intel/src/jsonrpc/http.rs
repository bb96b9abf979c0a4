//! JSON-RPC over HTTP (06 §4.3): the request is the POST body, the answer the response body
//! (any framing reqwest understands: Content-Length or chunked), capped at 4 MiB.

use reqwest::header::HeaderMap;
use url::Url;

use super::{Ids, parse_response, request};
use crate::config::{Bearer, ExtraHeader};
use crate::http::{self, Post};
use crate::providers::Answer;
use crate::retry::Failure;
use crate::secrets::{self, Scrubber, SecretSource};
use crate::types::CompletionRequest;

/// An HTTP JSON-RPC backend.
pub(crate) struct HttpRpc {
    pub url: Url,
    pub model: Option<String>,
    pub bearer: Bearer,
    pub headers: Vec<ExtraHeader>,
    pub max_tokens: Option<u32>,
    pub client: reqwest::Client,
    pub ids: Ids,
}

impl HttpRpc {
    /// One POST.
    pub(crate) async fn attempt(
        &self,
        completion: &CompletionRequest,
        secrets: &dyn SecretSource,
    ) -> Result<Answer, Failure> {
        let id = self.ids.next();
        let model = self.model.as_deref().unwrap_or(completion.model_class.as_str());
        let body = request(id, model, completion, self.max_tokens).to_string().into_bytes();
        let mut scrubber = Scrubber::default();
        let headers =
            self.headers(secrets, &mut scrubber).map_err(|reason| Failure::fatal(format!("http: {reason}")))?;
        let post = Post {
            client: &self.client,
            url: &self.url,
            headers,
            body,
            cap: http::RPC_BODY_CAP,
            label: "http",
            scrubber: &scrubber,
        };
        match post.send().await? {
            Ok(bytes) => parse_response(&bytes, id).map_err(|f| Failure { detail: scrubber.scrub(&f.detail), ..f }),
            Err(reply) => Err(Failure {
                detail: format!("upstream returned HTTP {}", reply.status),
                status: Some(reply.status),
                retry: reply.retry,
            }),
        }
    }

    fn headers(&self, secrets: &dyn SecretSource, scrubber: &mut Scrubber) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::new();
        for header in &self.headers {
            let value = header.value.render(secrets, scrubber)?;
            http::insert(&mut map, &header.name, &value).map_err(|f| f.detail)?;
        }
        let token = match &self.bearer {
            Bearer::None => None,
            Bearer::Fixed(token) => Some(token.clone()),
            Bearer::Secret(name) => Some(secrets::resolve(secrets, name)?),
        };
        if let Some(token) = token {
            scrubber.add(token.clone());
            http::insert(&mut map, "authorization", &format!("Bearer {token}"))
                .map_err(|_| "the bearer token is not valid header text".to_string())?;
        }
        Ok(map)
    }
}
