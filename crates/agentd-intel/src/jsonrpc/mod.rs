//! The JSON-RPC 2.0 `complete` protocol (06 §4): the envelope shared by the Unix-socket and
//! HTTP transports, and the strict reading of answers (ids must match, errors are final).

mod http;
mod unix;

pub(crate) use self::http::HttpRpc;
pub(crate) use self::unix::UnixRpc;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::http::excerpt;
use crate::providers::{Answer, count};
use crate::retry::Failure;
use crate::types::{CompletionRequest, Usage};

/// Request ids: per client, starting at 1, +1 per request, never 0.
#[derive(Debug)]
pub(crate) struct Ids(AtomicU64);

impl Ids {
    pub(crate) fn new() -> Ids {
        Ids(AtomicU64::new(1))
    }

    pub(crate) fn next(&self) -> u64 {
        // Wrapping past u64::MAX would reach 0; skip it so the "never 0" rule holds.
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        if id == 0 { self.0.fetch_add(1, Ordering::Relaxed) } else { id }
    }
}

/// The `complete` request. `model` is the TOML backend's `model`, else the model class.
pub(crate) fn request(id: u64, model: &str, request: &CompletionRequest, max_tokens: Option<u32>) -> Value {
    let messages: Vec<Value> =
        request.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect();
    let mut params = serde_json::Map::new();
    params.insert("model".into(), json!(model));
    params.insert("messages".into(), Value::Array(messages));
    if let Some(max) = request.max_tokens.or(max_tokens) {
        params.insert("max_tokens".into(), json!(max));
    }
    if let Some(t) = request.temperature {
        params.insert("temperature".into(), json!(t));
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "complete", "params": Value::Object(params)})
}

/// Reads one response to request `id`. Every problem is final: a server that answers wrongly
/// will answer wrongly again.
pub(crate) fn parse_response(bytes: &[u8], id: u64) -> Result<Answer, Failure> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Failure::fatal(format!("intelligence response is not valid JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| Failure::fatal("intelligence response is not a JSON object"))?;
    let response_id = object.get("id").unwrap_or(&Value::Null);
    let expected = Value::from(id);
    let mismatch =
        || Failure::fatal(excerpt(&format!("intelligence response id {response_id} does not match request id {id}")));
    if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
        if !response_id.is_null() && *response_id != expected {
            return Err(mismatch());
        }
        return Err(Failure::fatal(excerpt(&backend_error(error))));
    }
    if *response_id != expected {
        return Err(mismatch());
    }
    let result = object
        .get("result")
        .filter(|r| !r.is_null())
        .ok_or_else(|| Failure::fatal("intelligence response contained neither result nor error"))?;
    let content = result
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::fatal("intelligence response result.content must be a string"))?;
    let usage = result.get("usage").cloned().unwrap_or(Value::Null);
    Ok(Answer {
        text: content.to_string(),
        usage: Usage {
            prompt_tokens: count(&usage, "prompt_tokens"),
            completion_tokens: count(&usage, "completion_tokens"),
        },
        model: None,
    })
}

/// `backend error <code>: <message>`.
fn backend_error(error: &Value) -> String {
    let code = match error.get("code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
        None => "<none>".into(),
    };
    let message = match error.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    format!("backend error {code}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Answer, String> {
        parse_response(text.as_bytes(), 7).map_err(|f| f.detail)
    }

    #[test]
    fn request_envelope() {
        let req = CompletionRequest { temperature: Some(0.2), ..CompletionRequest::prompt("hi") };
        assert_eq!(
            request(7, "fast", &req, Some(1024)),
            json!({"jsonrpc": "2.0", "id": 7, "method": "complete",
                   "params": {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1024, "temperature": 0.2}})
        );
        let bare = request(1, "fast", &CompletionRequest::prompt("x"), None);
        assert!(bare["params"].get("max_tokens").is_none());
    }

    #[test]
    fn response_rules_of_06_4_1() {
        let ok = parse(r#"{"jsonrpc":"2.0","id":7,"result":{"content":"c","usage":{"prompt_tokens":10}}}"#).unwrap();
        assert_eq!((ok.text.as_str(), ok.usage.prompt_tokens, ok.usage.completion_tokens), ("c", 10, 0));
        assert_eq!(
            parse(r#"{"id":7,"error":{"code":-32000,"message":"upstream overloaded"}}"#).unwrap_err(),
            "backend error -32000: upstream overloaded"
        );
        assert!(parse(r#"{"id":null,"error":{"code":1,"message":"m"}}"#).unwrap_err().starts_with("backend error 1"));
        assert_eq!(
            parse(r#"{"id":8,"result":{"content":"c"}}"#).unwrap_err(),
            "intelligence response id 8 does not match request id 7"
        );
        assert_eq!(
            parse(r#"{"id":null,"result":{"content":"c"}}"#).unwrap_err(),
            "intelligence response id null does not match request id 7"
        );
        assert_eq!(parse(r#"{"id":7}"#).unwrap_err(), "intelligence response contained neither result nor error");
        assert_eq!(
            parse(r#"{"id":7,"result":{"content":5}}"#).unwrap_err(),
            "intelligence response result.content must be a string"
        );
        assert!(parse("[1]").unwrap_err().contains("not a JSON object"));
        assert!(parse("{").unwrap_err().starts_with("intelligence response is not valid JSON"));
    }

    #[test]
    fn ids_start_at_one() {
        let ids = Ids::new();
        assert_eq!((ids.next(), ids.next()), (1, 2));
    }
}
