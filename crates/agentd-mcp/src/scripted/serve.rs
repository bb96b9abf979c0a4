//! The two front ends of the scripted server: newline-delimited JSON-RPC on stdin/stdout, and
//! streamable HTTP (`POST /mcp`, JSON answers, `mcp-session-id` sessions).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::responder::{Action, Responder};

/// Serves JSON-RPC over stdin/stdout until stdin closes. Each request is handled in its own
/// task, so a hanging or delayed reply does not hold up the others.
pub async fn serve_stdio(responder: Arc<Responder>) -> std::io::Result<()> {
    let output = Arc::new(tokio::sync::Mutex::new(tokio::io::stdout()));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let action = match serde_json::from_str::<Value>(&line) {
            Ok(message) => responder.handle(&message),
            Err(_) => Action::Reply {
                message: json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}}),
                delay: std::time::Duration::ZERO,
            },
        };
        tokio::spawn(perform_stdio(action, output.clone()));
    }
    Ok(())
}

async fn perform_stdio<W: AsyncWrite + Unpin>(action: Action, output: Arc<tokio::sync::Mutex<W>>) {
    let line = match action {
        Action::Nothing | Action::Hang => return,
        Action::Crash { code, delay } => {
            tokio::time::sleep(delay).await;
            std::process::exit(code);
        }
        Action::Reply { message, delay } => {
            tokio::time::sleep(delay).await;
            message.to_string()
        }
        Action::Garbage { text, delay } => {
            tokio::time::sleep(delay).await;
            text
        }
    };
    let mut output = output.lock().await;
    let _ = output.write_all(format!("{line}\n").as_bytes()).await;
    let _ = output.flush().await;
}

/// Shared state of the HTTP front end.
struct HttpState {
    responder: Arc<Responder>,
    sessions: Mutex<BTreeSet<String>>,
    next_session: AtomicU64,
}

/// Serves streamable HTTP on `listener` at `/mcp` until the process ends.
pub async fn serve_http(responder: Arc<Responder>, listener: TcpListener) -> std::io::Result<()> {
    let state =
        Arc::new(HttpState { responder, sessions: Mutex::new(BTreeSet::new()), next_session: AtomicU64::new(1) });
    let app =
        Router::new().route("/mcp", post(handle_post).get(method_not_allowed).delete(handle_delete)).with_state(state);
    axum::serve(listener, app).await
}

async fn method_not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

async fn handle_delete(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> StatusCode {
    if let Some(session) = session_of(&headers)
        && let Ok(mut sessions) = state.sessions.lock()
    {
        sessions.remove(&session);
    }
    StatusCode::OK
}

/// The `log_headers` of the script, as `{name: value}` (absent headers left out).
fn picked_headers(headers: &HeaderMap, names: &[String]) -> Option<Value> {
    if names.is_empty() {
        return None;
    }
    let picked: serde_json::Map<String, Value> = names
        .iter()
        .filter_map(|name| {
            let value = headers.get(name.as_str())?.to_str().ok()?;
            Some((name.clone(), Value::String(value.to_owned())))
        })
        .collect();
    Some(Value::Object(picked))
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers.get("mcp-session-id").and_then(|value| value.to_str().ok()).map(str::to_owned)
}

async fn handle_post(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
    if !is_initialize && let Some(session) = session_of(&headers) {
        let known = state.sessions.lock().map(|sessions| sessions.contains(&session)).unwrap_or(false);
        if !known {
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    let logged = picked_headers(&headers, state.responder.logged_headers());
    let action = state.responder.handle_with_headers(&message, logged);
    let mut response = match action {
        Action::Nothing => return StatusCode::ACCEPTED.into_response(),
        Action::Hang => std::future::pending().await,
        Action::Crash { code, delay } => {
            tokio::time::sleep(delay).await;
            std::process::exit(code);
        }
        Action::Garbage { text, delay } => {
            tokio::time::sleep(delay).await;
            ([(header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        Action::Reply { message, delay } => {
            tokio::time::sleep(delay).await;
            axum::Json(message).into_response()
        }
    };
    if is_initialize {
        let session = format!("scripted-{}-{}", std::process::id(), state.next_session.fetch_add(1, Ordering::Relaxed));
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert("mcp-session-id", value);
        }
        if let Ok(mut sessions) = state.sessions.lock() {
            sessions.insert(session);
        }
    }
    response
}
