//! The loopback HTTP stub of a trial (10 §2.7): first matching `[[http.stubs]]` entry answers,
//! every request is recorded, no match answers 404 `{"error":"no stub"}`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::scenario::StubSpec;

/// A request the stub received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body as text (lossy).
    pub body: String,
}

struct StubState {
    stubs: Mutex<Vec<StubSpec>>,
    /// Requests matched per stub, for `times`.
    matched: Mutex<Vec<u32>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running (or deliberately down) stub; stops when dropped.
pub struct Stub {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Arc<StubState>,
    stop: CancellationToken,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Stub {
    /// Binds `127.0.0.1:0` and serves no stub yet ([`Stub::configure`] adds them once their
    /// bodies know `${HTTP_STUB}`); with `down` the port is released again so that connections
    /// to it are refused.
    pub async fn start(down: bool) -> std::io::Result<Stub> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(StubState {
            stubs: Mutex::new(Vec::new()),
            matched: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        if down {
            drop(listener);
        } else {
            let app = axum::Router::new().fallback(answer).with_state(state.clone());
            let token = stop.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await;
            });
        }
        Ok(Stub { base_url: format!("http://{address}"), state, stop })
    }

    /// Sets the stubs (first match answers).
    pub fn configure(&self, stubs: Vec<StubSpec>) {
        if let (Ok(mut matched), Ok(mut current)) = (self.state.matched.lock(), self.state.stubs.lock()) {
            *matched = vec![0; stubs.len()];
            *current = stubs;
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn answer(
    State(state): State<Arc<StubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let chosen = pick(&state, &recorded);
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(recorded);
    }
    let Some(stub) = chosen else {
        return (StatusCode::NOT_FOUND, [("content-type", "application/json")], r#"{"error":"no stub"}"#)
            .into_response();
    };
    if stub.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(stub.delay_ms)).await;
    }
    let status = StatusCode::from_u16(stub.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stub.body.clone()).into_response();
    for (name, value) in &stub.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The first stub matching the request that has uses left; counts the use.
fn pick(state: &StubState, request: &Recorded) -> Option<StubSpec> {
    let mut matched = state.matched.lock().ok()?;
    let stubs = state.stubs.lock().ok()?;
    for (index, stub) in stubs.iter().enumerate() {
        let method_ok = stub.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&request.method));
        let uses_left = stub.times == 0 || matched.get(index).copied().unwrap_or(0) < stub.times;
        if method_ok && stub.path == request.path && uses_left {
            if let Some(count) = matched.get_mut(index) {
                *count += 1;
            }
            return Some(stub.clone());
        }
    }
    None
}
