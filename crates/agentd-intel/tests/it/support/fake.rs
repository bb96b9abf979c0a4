//! A local server that speaks one provider's documented API: it checks the path, method,
//! required headers and body shape like the real service, answers malformed requests with that
//! provider's error body and status, and otherwise plays a queue of scripted replies.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which API the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Anthropic,
    OpenAi,
    Compatible,
    Gemini,
}

impl Kind {
    /// The `provider` spelling in TOML and error texts.
    pub fn provider(self) -> &'static str {
        match self {
            Kind::Anthropic => "anthropic",
            Kind::OpenAi => "openai",
            Kind::Compatible => "openai-compatible",
            Kind::Gemini => "gemini",
        }
    }

    /// JSON path named by "response missing <path>".
    pub fn missing_path(self) -> &'static str {
        match self {
            Kind::Anthropic => "content[].text",
            Kind::OpenAi | Kind::Compatible => "choices[0].message.content",
            Kind::Gemini => "candidates[0].content.parts[].text",
        }
    }
}

/// What the next request gets (after it passed validation).
#[derive(Debug, Clone)]
pub enum Reply {
    /// A normal answer.
    Text { text: String, prompt: u64, completion: u64 },
    /// An error status with the provider's error body; optional `Retry-After`.
    Status { status: u16, retry_after: Option<String> },
    /// Any status, content type and body.
    Raw { status: u16, content_type: &'static str, body: String },
    /// A well-formed answer without text (empty content / choices / candidates).
    Empty,
    /// A 2xx body of `bytes` bytes, with Content-Length or chunked.
    Huge { bytes: usize, chunked: bool },
    /// Wait, then reply.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn text(text: &str, prompt: u64, completion: u64) -> Reply {
        Reply::Text { text: text.to_string(), prompt, completion }
    }

    pub fn status(status: u16) -> Reply {
        Reply::Status { status, retry_after: None }
    }
}

/// A request that reached the fake.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

struct Inner {
    kind: Kind,
    key: Option<String>,
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running fake provider on 127.0.0.1.
#[derive(Clone)]
pub struct FakeProvider {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

impl FakeProvider {
    /// Starts a fake that accepts `key` (`None`: keyless, only for the compatible kind).
    pub async fn start(kind: Kind, key: Option<&str>) -> FakeProvider {
        let inner = Arc::new(Inner {
            kind,
            key: key.map(String::from),
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProvider { inner, addr }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies; when the queue is empty the fake answers `"ok"`.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.replies.lock().unwrap().extend(replies);
    }

    /// Requests that passed validation and consumed a reply, plus rejected ones.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        headers: headers.clone(),
        body: parsed,
    });
    if let Err(response) = validate(&inner, &method, &uri, &headers, &body) {
        return *response;
    }
    let reply = inner.replies.lock().unwrap().pop_front().unwrap_or_else(|| Reply::text("ok", 1, 1));
    play(inner.kind, reply, &body).await
}

async fn play(kind: Kind, mut reply: Reply, body: &[u8]) -> Response {
    while let Reply::Delay(delay, next) = reply {
        tokio::time::sleep(delay).await;
        reply = *next;
    }
    let model = serde_json::from_slice::<Value>(body).ok().and_then(|b| b["model"].as_str().map(String::from));
    let model = model.unwrap_or_else(|| "gemini-test".into());
    match reply {
        Reply::Text { text, prompt, completion } => {
            json_response(200, success(kind, &model, &text, prompt, completion))
        }
        Reply::Status { status, retry_after } => {
            let mut response = error(kind, status, "scripted failure");
            if let Some(value) = retry_after {
                response.headers_mut().insert("retry-after", value.parse().unwrap());
            }
            response
        }
        Reply::Raw { status, content_type, body } => {
            (StatusCode::from_u16(status).unwrap(), [("content-type", content_type)], body).into_response()
        }
        Reply::Empty => json_response(200, empty(kind)),
        Reply::Huge { bytes, chunked } => huge(bytes, chunked),
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}

fn huge(bytes: usize, chunked: bool) -> Response {
    if !chunked {
        return (StatusCode::OK, [("content-type", "application/json")], vec![b' '; bytes]).into_response();
    }
    const CHUNK: usize = 1 << 20;
    let chunks = bytes.div_ceil(CHUNK);
    let stream = futures_util::stream::iter((0..chunks).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b' '; CHUNK]))));
    (StatusCode::OK, [("content-type", "application/json")], Body::from_stream(stream)).into_response()
}

fn json_response(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body.to_string()).into_response()
}

fn success(kind: Kind, model: &str, text: &str, prompt: u64, completion: u64) -> Value {
    match kind {
        Kind::Anthropic => json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": completion}
        }),
        Kind::OpenAi | Kind::Compatible => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        }),
        Kind::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion},
            "modelVersion": "gemini-test"
        }),
    }
}

fn empty(kind: Kind) -> Value {
    match kind {
        Kind::Anthropic => {
            json!({"id": "msg_01", "type": "message", "role": "assistant", "content": [], "usage": {"input_tokens": 3, "output_tokens": 0}})
        }
        Kind::OpenAi | Kind::Compatible => {
            json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 0}})
        }
        Kind::Gemini => json!({"candidates": [], "usageMetadata": {"promptTokenCount": 3}}),
    }
}

/// The provider's documented error body for `status`.
fn error(kind: Kind, status: u16, message: &str) -> Response {
    let body = match kind {
        Kind::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Kind::OpenAi | Kind::Compatible => {
            let code = if status == 401 { json!("invalid_api_key") } else { Value::Null };
            let kind = if status == 429 {
                "rate_limit_exceeded"
            } else if status >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Kind::Gemini => {
            let state = match status {
                400 => "INVALID_ARGUMENT",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": message, "status": state}})
        }
    };
    json_response(status, body)
}

type Check = Result<(), Box<Response>>;

fn validate(inner: &Inner, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Check {
    let kind = inner.kind;
    let expected_path = match kind {
        Kind::Anthropic => "/v1/messages",
        Kind::OpenAi | Kind::Compatible => "/v1/chat/completions",
        Kind::Gemini => "/v1beta/models/gemini-test:generateContent",
    };
    if uri.path() != expected_path {
        return Err(Box::new(error(kind, 404, &format!("no route for {}", uri.path()))));
    }
    if method != Method::POST {
        return Err(Box::new(error(kind, 405, "method not allowed")));
    }
    authenticate(inner, headers)?;
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(Box::new(error(kind, 400, "content-type must be application/json")));
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(error(kind, 400, "request body is not valid JSON")));
    };
    let problem = match kind {
        Kind::Anthropic => anthropic_body(&body),
        Kind::OpenAi => openai_body(&body, true),
        Kind::Compatible => openai_body(&body, false),
        Kind::Gemini => gemini_body(&body),
    };
    match problem {
        Some(message) => Err(Box::new(error(kind, 400, &message))),
        None => Ok(()),
    }
}

/// Checks the key; the rejection echoes the presented key, as some providers do (partially),
/// so tests can prove the client scrubs it.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Check {
    let kind = inner.kind;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let presented = match kind {
        Kind::Anthropic => {
            if header("anthropic-version").as_deref() != Some("2023-06-01") {
                return Err(Box::new(error(kind, 400, "anthropic-version: header is required")));
            }
            header("x-api-key")
        }
        Kind::OpenAi | Kind::Compatible => header("authorization").map(|v| v.trim_start_matches("Bearer ").to_string()),
        Kind::Gemini => header("x-goog-api-key"),
    };
    if presented == inner.key {
        return Ok(());
    }
    let shown = presented.unwrap_or_default();
    match kind {
        Kind::Gemini => {
            Err(Box::new(error(kind, 400, &format!("API key not valid. Please pass a valid API key. (got {shown})"))))
        }
        _ => Err(Box::new(error(kind, 401, &format!("Incorrect API key provided: {shown}")))),
    }
}

fn anthropic_body(body: &Value) -> Option<String> {
    let allowed = ["model", "max_tokens", "messages", "system", "temperature", "stop_sequences", "metadata"];
    if let Some(extra) = body.as_object()?.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Some(format!("{extra}: Extra inputs are not permitted"));
    }
    if !body["model"].is_string() {
        return Some("model: Field required".into());
    }
    if body["max_tokens"].as_u64().is_none_or(|n| n < 1) {
        return Some("max_tokens: Field required".into());
    }
    if !(body["system"].is_null() || body["system"].is_string()) {
        return Some("system: Input should be a valid string".into());
    }
    let messages = body["messages"].as_array().filter(|m| !m.is_empty());
    let Some(messages) = messages else { return Some("messages: at least one message is required".into()) };
    if messages.iter().any(|m| !matches!(m["role"].as_str(), Some("user" | "assistant")) || !m["content"].is_string()) {
        return Some("messages: roles must be user or assistant with string content".into());
    }
    temperature(body, 1.0)
}

fn openai_body(body: &Value, official: bool) -> Option<String> {
    if !body["model"].is_string() {
        return Some("you must provide a model parameter".into());
    }
    if official && body.get("max_tokens").is_some() {
        return Some("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.".into());
    }
    let cap = if official { "max_completion_tokens" } else { "max_tokens" };
    if body.get(cap).is_some_and(|v| v.as_u64().is_none_or(|n| n < 1)) {
        return Some(format!("Invalid '{cap}': expected an integer >= 1"));
    }
    let messages = body["messages"].as_array().filter(|m| !m.is_empty());
    let Some(messages) = messages else { return Some("[] is too short - 'messages'".into()) };
    if messages
        .iter()
        .any(|m| !matches!(m["role"].as_str(), Some("system" | "user" | "assistant")) || !m["content"].is_string())
    {
        return Some("Invalid value for 'messages'".into());
    }
    temperature(body, 2.0)
}

fn gemini_body(body: &Value) -> Option<String> {
    let contents = body["contents"].as_array().filter(|c| !c.is_empty());
    let Some(contents) = contents else {
        return Some("* GenerateContentRequest.contents: contents is not specified".into());
    };
    let valid_turn = |c: &Value| {
        matches!(c["role"].as_str(), Some("user" | "model"))
            && c["parts"].as_array().is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["text"].is_string()))
    };
    if !contents.iter().all(valid_turn) {
        return Some("Please use a valid role: user, model.".into());
    }
    if let Some(system) = body.get("system_instruction")
        && !system["parts"][0]["text"].is_string()
    {
        return Some("Invalid system_instruction".into());
    }
    let config = &body["generationConfig"];
    if config.get("maxOutputTokens").is_some_and(|v| v.as_u64().is_none()) {
        return Some("Invalid value at 'generation_config.max_output_tokens'".into());
    }
    if let Some(t) = config.get("temperature")
        && t.as_f64().is_none_or(|t| !(0.0..=2.0).contains(&t))
    {
        return Some("Invalid value at 'generation_config.temperature'".into());
    }
    None
}

fn temperature(body: &Value, max: f64) -> Option<String> {
    match body.get("temperature") {
        Some(t) if t.as_f64().is_none_or(|t| !(0.0..=max).contains(&t)) => {
            Some(format!("temperature: must be between 0 and {max}"))
        }
        _ => None,
    }
}
