//! The request pipeline of 07 §3, in its normative order: built-ins, routing, rate limit, body,
//! authentication, decoding, schema, principal, idempotency, run, reply.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_engine::audit::Level;
use agentd_engine::{Cancel, RunRequest};
use agentd_store::{IdempotencyBegin, IdempotencyScope, StoredReply};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::auth::{PeerCertificate, Presented};
use crate::body;
use crate::reply::{self, Body, RunReply};
use crate::routes::{Route, Routed};
use crate::state::{Live, Shared};

/// What the handler knows about the connection a request came on.
pub struct ConnInfo {
    /// Peer address.
    pub peer: SocketAddr,
    /// The verified client certificate, on a TLS connection that presented one.
    pub client_cert: Option<PeerCertificate>,
}

/// Labels of the request metrics.
struct Labels {
    method: String,
    route: String,
}

impl Labels {
    fn unmatched() -> Labels {
        Labels { method: "OTHER".to_string(), route: "unmatched".to_string() }
    }
}

/// Answers one request; never fails (every error is an HTTP answer).
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let version = request.version();
    let client_closes = wants_close(request.headers(), version);
    let (mut response, labels) = dispatch(&shared, &conn, request).await;
    finish_headers(&shared, version, client_closes, &mut response);
    let status = response.status().as_u16().to_string();
    let workflow = shared.workflow_name.clone();
    metrics::counter!(
        "agentd_http_requests_total",
        "workflow" => workflow.clone(),
        "method" => labels.method.clone(),
        "route" => labels.route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "agentd_http_request_duration_seconds",
        "workflow" => workflow,
        "method" => labels.method,
        "route" => labels.route
    )
    .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Whether the client asked to close after this request (`connection: close`, or HTTP/1.0
/// without `keep-alive`).
fn wants_close(headers: &HeaderMap, version: Version) -> bool {
    let tokens = headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok());
    let mut close = version == Version::HTTP_10;
    for token in tokens.flat_map(|v| v.split(',')).map(str::trim) {
        if token.eq_ignore_ascii_case("close") {
            return true;
        }
        if token.eq_ignore_ascii_case("keep-alive") {
            close = false;
        }
    }
    close
}

/// `connection` header rules of 07 §2 / §9.2 (HTTP/1.x only; HTTP/2 forbids the header).
fn finish_headers(shared: &Shared, version: Version, client_closes: bool, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    if version != Version::HTTP_11 && version != Version::HTTP_10 {
        headers.remove(header::CONNECTION);
        return;
    }
    if shared.is_draining() || client_closes {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if !headers.contains_key(header::CONNECTION) && version == Version::HTTP_11 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
}

async fn dispatch(shared: &Arc<Shared>, conn: &ConnInfo, request: Request<Incoming>) -> (Response<Body>, Labels) {
    let path = request.uri().path();
    if matches!(*request.method(), Method::GET | Method::HEAD)
        && let Some(response) = builtin(shared, conn, path, request.headers()).await
    {
        let labels = Labels { method: request.method().as_str().to_string(), route: path.to_string() };
        return (response, labels);
    }
    if shared.is_draining() {
        return (reply::error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"), Labels::unmatched());
    }
    let live = shared.live();
    let route = match live.routes.route(request.method().as_str(), path) {
        Routed::Found(route) => route.clone(),
        Routed::WrongMethod(allow) => {
            let mut response =
                reply::json(StatusCode::METHOD_NOT_ALLOWED, &json!({"error": "Method Not Allowed", "path": path}));
            response.headers_mut().insert(header::ALLOW, allow.clone());
            return (response, Labels { method: "OTHER".to_string(), route: path.to_string() });
        }
        Routed::NotFound => {
            let response = reply::json(StatusCode::NOT_FOUND, &json!({"error": "Not Found", "path": path}));
            return (response, Labels::unmatched());
        }
    };
    let labels = Labels { method: route.method.clone(), route: route.path.clone() };
    let response = route_request(shared, conn, &live, &route, request).await;
    (response, labels)
}

/// `/healthz`, `/readyz`, `/metrics` (07 §9.1); `None` for any other path.
async fn builtin(shared: &Shared, conn: &ConnInfo, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    let draining = shared.is_draining();
    match path {
        "/healthz" => {
            let (status, word) =
                if draining { (StatusCode::SERVICE_UNAVAILABLE, "draining") } else { (StatusCode::OK, "ok") };
            Some(reply::json(status, &json!({"status": word, "workflow": shared.workflow_name})))
        }
        "/readyz" => Some(if draining {
            reply::json(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "unready", "reason": "draining"}))
        } else {
            reply::json(StatusCode::OK, &json!({"status": "ready"}))
        }),
        "/metrics" => Some(metrics_endpoint(shared, conn, headers).await),
        _ => None,
    }
}

async fn metrics_endpoint(shared: &Shared, conn: &ConnInfo, headers: &HeaderMap) -> Response<Body> {
    let live = shared.live();
    if let Some(reference) = &live.metrics_auth {
        let presented = Presented { headers, body: &[], peer: conn.client_cert.as_ref() };
        if let Err(denied) = live.auth.verify(reference, &presented).await {
            return unauthorized(shared, "GET", "/metrics", reference.kind(), reference.binding(), denied);
        }
    }
    let text = crate::metrics::install().map(|h| h.render()).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

fn unauthorized(
    shared: &Shared,
    method: &str,
    path: &str,
    kind: &'static str,
    binding: &str,
    denied: crate::auth::Denied,
) -> Response<Body> {
    shared.audit(
        Level::Warn,
        "http.auth_denied",
        json!({"method": method, "path": path, "kind": kind, "binding": binding, "reason": denied.reason}),
    );
    metrics::counter!("agentd_http_auth_denials_total", "workflow" => shared.workflow_name.clone(), "kind" => kind)
        .increment(1);
    let mut response =
        reply::json(StatusCode::UNAUTHORIZED, &json!({"error": "unauthorized", "detail": denied.reason}));
    if let Some(challenge) = denied.challenge {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

/// Steps 4–13 for a matched route.
async fn route_request(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    live: &Arc<Live>,
    route: &Arc<Route>,
    request: Request<Incoming>,
) -> Response<Body> {
    if let Some((_, limiter)) = &route.limiter
        && let Err(wait) = limiter.check(conn.peer.ip())
    {
        return rate_limited(shared, route, wait);
    }
    let (parts, incoming) = request.into_parts();
    let raw = match read_body(incoming, &parts.headers, route.max_body_bytes).await {
        Ok(raw) => raw,
        Err(response) => return response,
    };
    let presented = Presented { headers: &parts.headers, body: &raw, peer: conn.client_cert.as_ref() };
    let principal = match live.auth.verify(&route.auth, &presented).await {
        Ok(principal) => principal,
        Err(denied) => {
            return unauthorized(shared, &route.method, &route.path, route.auth.kind(), route.auth.binding(), denied);
        }
    };
    let decoded = match body::decode(&parts.headers, raw.clone()).await {
        Ok((value, dropped)) => {
            for file in dropped {
                shared.audit(
                    Level::Info,
                    "http.multipart_file_dropped",
                    json!({"field": file.field, "filename": file.filename, "bytes": file.bytes}),
                );
            }
            value
        }
        Err(bad) => return reply::error(StatusCode::BAD_REQUEST, &bad.0),
    };
    if let Some(response) = check_schema(shared, route, &decoded) {
        return response;
    }
    let exposed = exposed_headers(route, &parts.headers);
    let input = body::inject(decoded, principal, exposed);
    let scope = match begin_idempotency(shared, route, &parts.headers, &raw, &input).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let guard = shared.begin_run();
    let task = tokio::spawn(run_delivery(shared.clone(), live.clone(), route.clone(), input, scope, guard));
    task.await.unwrap_or_else(|_| reply::error(StatusCode::INTERNAL_SERVER_ERROR, "run task failed"))
}

fn rate_limited(shared: &Shared, route: &Route, wait: Duration) -> Response<Body> {
    let wait_ms = wait.as_millis().max(1) as u64;
    let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
    shared.audit(
        Level::Warn,
        "http.rate_limited",
        json!({"method": route.method, "path": route.path, "retry_after_ms": wait_ms}),
    );
    metrics::counter!(
        "agentd_http_rate_limited_total",
        "workflow" => shared.workflow_name.clone(),
        "route" => route.path.clone()
    )
    .increment(1);
    let mut response =
        reply::json(StatusCode::TOO_MANY_REQUESTS, &json!({"error": "rate limited", "retry_after_ms": wait_ms}));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn too_large(cap: u64) -> Response<Body> {
    reply::closing(StatusCode::PAYLOAD_TOO_LARGE, &json!({"error": "body exceeds server cap", "cap_bytes": cap}))
}

/// Reads the body within the cap: a declared length above it is refused before reading.
async fn read_body(mut incoming: Incoming, headers: &HeaderMap, cap: u64) -> Result<Bytes, Response<Body>> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > cap) {
        return Err(too_large(cap));
    }
    let mut collected = BytesMut::with_capacity(declared.unwrap_or(0).min(cap) as usize);
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| {
            reply::closing(StatusCode::BAD_REQUEST, &json!({"error": format!("invalid request body: {e}")}))
        })?;
        if let Ok(data) = frame.into_data() {
            if collected.len() as u64 + data.len() as u64 > cap {
                return Err(too_large(cap));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

fn check_schema(shared: &Shared, route: &Route, decoded: &Value) -> Option<Response<Body>> {
    let schema = route.schema.as_ref()?;
    if schema.is_valid(decoded) {
        return None;
    }
    let details: Vec<String> =
        schema.iter_errors(decoded).take(10).map(|e| format!("{}: {e}", e.instance_path())).collect();
    shared.audit(Level::Warn, "http.input_rejected", json!({"method": route.method, "path": route.path}));
    Some(reply::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": "request body does not match input_schema", "details": details}),
    ))
}

fn exposed_headers(route: &Route, headers: &HeaderMap) -> Option<Map<String, Value>> {
    if route.expose_headers.is_empty() {
        return None;
    }
    let mut exposed = Map::new();
    for name in &route.expose_headers {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            exposed.insert(name.as_str().to_string(), Value::String(value.to_string()));
        }
    }
    Some(exposed)
}

/// The idempotency state of a delivery that runs.
pub struct Claimed {
    scope: IdempotencyScope,
    ttl: Duration,
}

fn store_unavailable() -> Response<Body> {
    let mut response = reply::error(StatusCode::SERVICE_UNAVAILABLE, "idempotency store unavailable");
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Steps 1–4 of 07 §8: `Ok(None)` when the route is not idempotent, `Ok(Some)` when this
/// delivery owns the pending row, `Err` with the answer otherwise.
async fn begin_idempotency(
    shared: &Arc<Shared>,
    route: &Route,
    headers: &HeaderMap,
    raw: &[u8],
    input: &Value,
) -> Result<Option<Claimed>, Response<Body>> {
    let Some(settings) = &route.idempotency else { return Ok(None) };
    let Some(key) = settings.source.resolve(headers, raw, input) else {
        let text = format!("idempotency key `{}` did not resolve to a scalar in the request payload", settings.spec);
        return Err(reply::error(StatusCode::BAD_REQUEST, &text));
    };
    let Some(store) = shared.store.clone() else { return Err(store_unavailable()) };
    let scope = IdempotencyScope::new(&shared.workflow_name, &route.method, &route.path, &key);
    let (ttl, owner) = (settings.ttl, shared.owner.clone());
    let stale_after = (shared.run_timeout * 2).max(Duration::from_secs(60));
    let _guard = shared.begin_run();
    let begin_scope = scope.clone();
    let began = tokio::task::spawn_blocking(move || {
        store.idempotency_begin(&begin_scope, &owner, jiff::Timestamp::now(), ttl, stale_after)
    })
    .await;
    let labels = || (shared.workflow_name.clone(), route.path.clone());
    match began {
        Ok(Ok(IdempotencyBegin::Proceed { .. })) => Ok(Some(Claimed { scope, ttl })),
        Ok(Ok(IdempotencyBegin::Replay(stored))) => {
            let (workflow, path) = labels();
            metrics::counter!("agentd_http_idempotent_replays_total", "workflow" => workflow, "route" => path)
                .increment(1);
            Err(replay(stored))
        }
        Ok(Ok(IdempotencyBegin::Conflict)) => {
            let (workflow, path) = labels();
            metrics::counter!("agentd_http_idempotency_conflicts_total", "workflow" => workflow, "route" => path)
                .increment(1);
            Err(reply::error(StatusCode::CONFLICT, "a delivery with this idempotency key is in flight"))
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "idempotency store unavailable");
            Err(store_unavailable())
        }
        Err(_) => Err(store_unavailable()),
    }
}

fn replay(stored: StoredReply) -> Response<Body> {
    let reply = RunReply {
        status: stored.status,
        content_type: Some(stored.content_type).filter(|c| !c.is_empty()),
        body: Bytes::from(stored.body),
        errored: false,
        storable: false,
    };
    let mut response = reply.into_response(&stored.execution_id);
    response.headers_mut().insert("x-agentd-idempotent-replay", HeaderValue::from_static("true"));
    response
}

/// Step 12–13 plus idempotency steps 5–6. Runs in its own task so that a client going away
/// never cancels the run (07 §7).
async fn run_delivery(
    shared: Arc<Shared>,
    live: Arc<Live>,
    route: Arc<Route>,
    input: Value,
    claimed: Option<Claimed>,
    _guard: crate::state::InFlightGuard,
) -> Response<Body> {
    let started = Instant::now();
    let request = RunRequest {
        start: route.start_node.clone(),
        input,
        trigger_kind: "http".to_string(),
        timeout: shared.run_timeout,
        dry_run: shared.dry_run,
        cancel: Cancel::default(),
        resume: None,
    };
    let result = live.engine.run(request).await;
    crate::metrics::record_run(&shared.workflow_name, &route.start_node, &result, started.elapsed().as_secs_f64());
    let execution_id = result.record.execution_id.clone();
    let reply = RunReply::from_outcome(&result.outcome);
    if let Some(claimed) = claimed {
        finish_idempotency(&shared, claimed, &reply, &execution_id).await;
    }
    reply.into_response(&execution_id)
}

/// Records a storable reply as `done` (step 5) or abandons the row (step 6).
async fn finish_idempotency(shared: &Arc<Shared>, claimed: Claimed, reply: &RunReply, execution_id: &str) {
    let Some(store) = shared.store.clone() else { return };
    let owner = shared.owner.clone();
    let stored = reply.storable.then(|| StoredReply {
        status: reply.status,
        content_type: reply.content_type.clone().unwrap_or_default(),
        body: reply.body.to_vec(),
        execution_id: execution_id.to_string(),
    });
    let Claimed { scope, ttl } = claimed;
    let outcome = tokio::task::spawn_blocking(move || match stored {
        Some(stored) => store
            .idempotency_complete(&scope, &owner, &stored, jiff::Timestamp::now(), ttl)
            .map(|_| ())
            .or_else(|error| store.idempotency_abandon(&scope, &owner).map(|_| ()).and(Err(error))),
        None => store.idempotency_abandon(&scope, &owner).map(|_| ()),
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => shared.audit(
            Level::Warn,
            "idempotency.store_failed",
            json!({"execution_id": execution_id, "reason": error.to_string()}),
        ),
        Err(_) => shared.audit(
            Level::Warn,
            "idempotency.store_failed",
            json!({"execution_id": execution_id, "reason": "store task failed"}),
        ),
    }
}
