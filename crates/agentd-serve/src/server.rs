//! The serve-mode process: listener, connections, drain and reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use agentd_engine::Engine;
use agentd_engine::audit::{AuditSink, Level, TracingAudit};
use agentd_store::Store;
use agentd_workflow::Workflow;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthBindings, AuthRef, PeerCertificate};
use crate::error::{Error, Result};
use crate::handler::{self, ConnInfo};
use crate::routes::RouteTable;
use crate::secrets::{EnvSecrets, SecretLookup};
use crate::state::{Limits, Live, Shared};
use crate::tls::{self, ClientAuth};
use crate::triggers::Triggers;

/// TLS handshakes must finish within this window (07 §5).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`Server::start`] needs.
pub struct ServeConfig {
    /// The validated workflow.
    pub workflow: Arc<Workflow>,
    /// Its engine (built with the CLI's durable options, audit sink and working directory).
    pub engine: Arc<Engine>,
    /// The state store; required when any route declares `idempotency_key`.
    pub store: Option<Arc<dyn Store>>,
    /// Listen address; `None` opens no listener (scheduled triggers only).
    pub bind: Option<SocketAddr>,
    /// `--drain-timeout-secs` (at least 1 s).
    pub drain_timeout: Duration,
    /// Effective per-run timeout (01 §2.1).
    pub run_timeout: Duration,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Directory that relative paths in the workflow (TLS files, JWKS files, schema files,
    /// fs_watch paths) are resolved against: the workflow file's directory.
    pub base_dir: PathBuf,
    /// Secret lookup for auth bindings.
    pub secrets: Arc<dyn SecretLookup>,
    /// Audit sink (usually the engine's).
    pub audit: Arc<dyn AuditSink>,
}

impl ServeConfig {
    /// A configuration with defaults: listen on `127.0.0.1:8080` when the workflow has routes,
    /// 30 s drain, 120 s runs, environment secrets, tracing audit, the current directory.
    pub fn new(workflow: Arc<Workflow>, engine: Arc<Engine>) -> ServeConfig {
        let bind = (!workflow.environment.http_routes.is_empty()).then(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        ServeConfig {
            workflow,
            engine,
            store: None,
            bind,
            drain_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(120),
            dry_run: false,
            base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            secrets: Arc::new(EnvSecrets),
            audit: Arc::new(TracingAudit),
        }
    }
}

/// How serve mode ended (01 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeExit {
    /// Every in-flight run finished within the drain window: exit 0.
    Drained,
    /// The drain window expired with runs still in flight: exit 5.
    DrainTimedOut {
        /// Runs abandoned.
        in_flight: usize,
    },
}

impl ServeExit {
    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            ServeExit::Drained => 0,
            ServeExit::DrainTimedOut { .. } => 5,
        }
    }
}

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Routes in the new configuration.
    pub route_count: usize,
    /// Rate-limit buckets in the new configuration.
    pub rate_limit_buckets: usize,
    /// Triggers kept running.
    pub triggers_kept: usize,
    /// Triggers started.
    pub triggers_started: usize,
    /// Triggers stopped.
    pub triggers_stopped: usize,
    /// Whether new TLS material was loaded.
    pub tls_reloaded: bool,
}

/// TLS state of the listener.
struct TlsState {
    current: RwLock<Arc<rustls::ServerConfig>>,
    client_auth: RwLock<ClientAuth>,
}

/// A running serve-mode instance. Cheap to share: the CLI keeps one to call [`Server::reload`]
/// while [`Server::run`] drives it.
pub struct Server {
    shared: Arc<Shared>,
    tls: Option<Arc<TlsState>>,
    listener: Mutex<Option<TcpListener>>,
    local_addr: Option<SocketAddr>,
    drain_timeout: Duration,
    triggers: tokio::sync::Mutex<Triggers>,
    reload_lock: tokio::sync::Mutex<()>,
}

/// Starts serve mode and drives it until `shutdown` fires, then drains.
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> Result<ServeExit> {
    let server = Server::start(config).await?;
    Ok(server.run(shutdown).await)
}

impl Server {
    /// Performs every startup step of 07 §1 (bind, TLS, auth bindings incl. JWKS, routes,
    /// store presence for idempotent routes, triggers) and begins accepting connections.
    pub async fn start(config: ServeConfig) -> Result<Server> {
        crate::metrics::install();
        let workflow = config.workflow.clone();
        let limits = Limits::from_workflow(&workflow);
        let tls_config = workflow.environment.server.as_ref().and_then(|s| s.tls.clone());
        let tls = match &tls_config {
            Some(tls_config) => {
                let material = tls::load(tls_config, &config.base_dir)?;
                Some(Arc::new(TlsState {
                    current: RwLock::new(material.config),
                    client_auth: RwLock::new(material.client_auth),
                }))
            }
            None => None,
        };
        let client_auth = tls.as_ref().map_or(ClientAuth::None, |t| read_lock(&t.client_auth));
        let live = build_live(&config, &workflow, config.engine.clone(), &limits, client_auth, None).await?;
        if live.routes.routes().any(|r| r.idempotency.is_some()) && config.store.is_none() {
            return Err(Error::Route("a route declares idempotency_key but no state store is available".into()));
        }
        let shared = Arc::new(Shared {
            workflow_name: workflow.name.clone(),
            live: RwLock::new(live.clone()),
            limits,
            store: config.store.clone(),
            secrets: config.secrets.clone(),
            audit: config.audit.clone(),
            run_timeout: config.run_timeout,
            dry_run: config.dry_run,
            base_dir: config.base_dir.clone(),
            draining: Default::default(),
            drain: CancellationToken::new(),
            in_flight: Default::default(),
            owner: agentd_store::process_owner(),
        });
        let (listener, local_addr) = match config.bind {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
                let local = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
                (Some(listener), Some(local))
            }
            None => (None, None),
        };
        let triggers = Triggers::start(&shared, &workflow, &live.engine)?;
        purge_idempotency(&shared);
        live.auth.start_refresh();
        let started = jiff::Timestamp::now().as_second() as f64;
        metrics::gauge!("agentd_process_start_time_seconds", "workflow" => workflow.name.clone()).set(started);
        metrics::gauge!(
            "agentd_build_info",
            "workflow" => workflow.name.clone(),
            "version" => env!("CARGO_PKG_VERSION")
        )
        .set(1.0);
        Ok(Server {
            shared,
            tls,
            listener: Mutex::new(listener),
            local_addr,
            drain_timeout: config.drain_timeout.max(Duration::from_secs(1)),
            triggers: tokio::sync::Mutex::new(triggers),
            reload_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Whether the listener speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` fires, then drains (01 §6.3): stop accepting, stop triggers,
    /// close idle connections, wait for in-flight runs up to the drain timeout.
    pub async fn run(&self, shutdown: CancellationToken) -> ServeExit {
        let listener = self.listener.lock().ok().and_then(|mut l| l.take());
        let connections = Arc::new(Semaphore::new(self.shared.limits.max_connections));
        let accept = listener.map(|listener| {
            let shared = self.shared.clone();
            let tls = self.tls.clone();
            let connections = connections.clone();
            tokio::spawn(accept_loop(shared, tls, listener, connections))
        });
        shutdown.cancelled().await;
        self.shared.draining.store(true, Ordering::Release);
        self.shared.drain.cancel();
        if let Some(accept) = accept {
            accept.abort();
        }
        self.triggers.lock().await.stop_all();
        self.shared.live().auth.shutdown();
        let deadline = Instant::now() + self.drain_timeout;
        let drained = tokio::time::timeout(self.drain_timeout, self.shared.in_flight.wait_idle()).await.is_ok();
        if !drained {
            let in_flight = self.shared.in_flight.get();
            self.shared.audit(Level::Warn, "http.drain_deadline_exceeded", json!({"in_flight": in_flight}));
            return ServeExit::DrainTimedOut { in_flight };
        }
        // Let the connections write their last responses.
        let max = self.shared.limits.max_connections as u32;
        let remaining = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        let _ = tokio::time::timeout(remaining, connections.acquire_many(max)).await;
        ServeExit::Drained
    }

    /// Swaps in a new workflow and engine (07 §11 stages `tls`, `auth`, `workflow`,
    /// `triggers`). Everything is built first; on any error the old configuration stays in
    /// effect. In-flight runs finish on the engine they started with.
    pub async fn reload(&self, workflow: Arc<Workflow>, engine: Arc<Engine>) -> Result<ReloadReport> {
        let _serial = self.reload_lock.lock().await;
        let result = self.reload_locked(workflow, engine).await;
        let outcome = if result.is_ok() { "succeeded" } else { "failed" };
        metrics::counter!("agentd_reloads_total", "workflow" => self.shared.workflow_name.clone(), "result" => outcome)
            .increment(1);
        match &result {
            Ok(report) => self.shared.audit(
                Level::Info,
                "reload.routes",
                json!({"route_count": report.route_count, "rate_limit_buckets": report.rate_limit_buckets}),
            ),
            Err(error) => self.shared.audit(Level::Warn, "reload.failed", json!({"reason": error.to_string()})),
        }
        result
    }

    async fn reload_locked(&self, workflow: Arc<Workflow>, engine: Arc<Engine>) -> Result<ReloadReport> {
        if workflow.name != self.shared.workflow_name {
            return Err(Error::Reload(format!(
                "the workflow name changed from `{}` to `{}`",
                self.shared.workflow_name, workflow.name
            )));
        }
        let tls_config = workflow.environment.server.as_ref().and_then(|s| s.tls.clone());
        if tls_config.is_some() != self.tls.is_some() {
            return Err(Error::Reload("switching between TLS and plaintext needs a restart".into()));
        }
        let material = match &tls_config {
            Some(tls_config) => Some(tls::load(tls_config, &self.shared.base_dir)?),
            None => None,
        };
        let client_auth = material.as_ref().map_or(ClientAuth::None, |m| m.client_auth);
        let previous = self.shared.live();
        let options = BuildOptions {
            base_dir: &self.shared.base_dir,
            secrets: self.shared.secrets.clone(),
            audit: self.shared.audit.clone(),
            limits: &self.shared.limits,
        };
        let live = build_live_with(&options, &workflow, engine, client_auth, Some(&previous.routes)).await?;
        if live.routes.routes().any(|r| r.idempotency.is_some()) && self.shared.store.is_none() {
            return Err(Error::Route("a route declares idempotency_key but no state store is available".into()));
        }
        let (kept, started, stopped) = self.triggers.lock().await.reload(&self.shared, &workflow, &live.engine);
        if let (Some(state), Some(material)) = (&self.tls, material) {
            write_lock(&state.current, material.config);
            write_lock(&state.client_auth, material.client_auth);
        }
        live.auth.start_refresh();
        let report = ReloadReport {
            route_count: live.routes.len(),
            rate_limit_buckets: live.routes.routes().filter(|r| r.limiter.is_some()).count(),
            triggers_kept: kept,
            triggers_started: started,
            triggers_stopped: stopped,
            tls_reloaded: self.tls.is_some(),
        };
        let old = self.shared.swap(live);
        old.auth.shutdown();
        if self.tls.is_some() {
            self.shared.audit(Level::Info, "reload.tls", json!({"tls_active": true}));
        }
        self.shared.audit(Level::Info, "reload.auth", json!({}));
        self.shared.audit(
            Level::Info,
            "reload.workflow",
            json!({"nodes": workflow.nodes.len(), "edges": workflow.edges.len()}),
        );
        Ok(report)
    }

    /// Runs (HTTP and scheduled) currently in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.get()
    }
}

fn read_lock<T: Copy>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(value) => *value,
        Err(poisoned) => *poisoned.into_inner(),
    }
}

fn write_lock<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut slot) => *slot = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

/// Deletes expired idempotency rows at startup and every 10 minutes (07 §8).
fn purge_idempotency(shared: &Arc<Shared>) {
    let Some(store) = shared.store.clone() else { return };
    let pending_max_age = (shared.run_timeout * 2).max(Duration::from_secs(60)) * 10;
    let stop = shared.drain.clone();
    tokio::spawn(async move {
        loop {
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                store.idempotency_purge_expired(jiff::Timestamp::now(), pending_max_age)
            })
            .await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
        }
    });
}

struct BuildOptions<'a> {
    base_dir: &'a std::path::Path,
    secrets: Arc<dyn SecretLookup>,
    audit: Arc<dyn AuditSink>,
    limits: &'a Limits,
}

async fn build_live(
    config: &ServeConfig,
    workflow: &Arc<Workflow>,
    engine: Arc<Engine>,
    limits: &Limits,
    client_auth: ClientAuth,
    previous: Option<&RouteTable>,
) -> Result<Arc<Live>> {
    let options = BuildOptions {
        base_dir: &config.base_dir,
        secrets: config.secrets.clone(),
        audit: config.audit.clone(),
        limits,
    };
    build_live_with(&options, workflow, engine, client_auth, previous).await
}

async fn build_live_with(
    options: &BuildOptions<'_>,
    workflow: &Arc<Workflow>,
    engine: Arc<Engine>,
    client_auth: ClientAuth,
    previous: Option<&RouteTable>,
) -> Result<Arc<Live>> {
    let environment = &workflow.environment;
    let auth = AuthBindings::build(
        environment.auth.as_ref(),
        options.base_dir,
        options.secrets.clone(),
        options.audit.clone(),
    )
    .await?;
    let routes = RouteTable::build(workflow, &auth, options.base_dir, options.limits.max_body_bytes, previous);
    let routes = match routes {
        Ok(routes) => routes,
        Err(error) => {
            auth.shutdown();
            return Err(error);
        }
    };
    let metrics_auth = match environment.server.as_ref().and_then(|s| s.metrics_auth.as_ref()) {
        Some(reference) => Some(
            AuthRef::parse(Some(reference.get_ref()))
                .filter(|r| auth.resolves(r))
                .ok_or_else(|| Error::Auth("[server].metrics_auth does not name a declared binding".into()))?,
        ),
        None => None,
    };
    let needs_mtls = routes.routes().any(|r| r.auth == AuthRef::Mtls) || metrics_auth == Some(AuthRef::Mtls);
    if needs_mtls && client_auth == ClientAuth::None {
        return Err(Error::Auth("an mtls route needs [server.tls.client_auth] with mode required or optional".into()));
    }
    Ok(Arc::new(Live { engine, routes, auth: Arc::new(auth), metrics_auth }))
}

async fn accept_loop(
    shared: Arc<Shared>,
    tls: Option<Arc<TlsState>>,
    listener: TcpListener,
    connections: Arc<Semaphore>,
) {
    let builder = Arc::new(connection_builder(&shared.limits));
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(error = %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let workflow = shared.workflow_name.clone();
            metrics::gauge!("agentd_http_open_connections", "workflow" => workflow.clone()).increment(1.0);
            match tls {
                Some(tls) => serve_tls(shared, &builder, tls, stream, peer).await,
                None => {
                    serve_connection(shared, &builder, TokioIo::new(stream), ConnInfo { peer, client_cert: None }).await
                }
            }
            metrics::gauge!("agentd_http_open_connections", "workflow" => workflow).decrement(1.0);
            drop(permit);
        });
    }
}

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_timeout)
        // hyper refuses read buffers below 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder.http2().timer(TokioTimer::new()).max_header_list_size(limits.max_header_bytes as u32);
    builder
}

async fn serve_tls(
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    tls: Arc<TlsState>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let config = match tls.current.read() {
        Ok(config) => config.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            shared.audit(
                Level::Warn,
                "tls.handshake_failed",
                json!({"peer": peer.to_string(), "reason": error.to_string()}),
            );
            return;
        }
        Err(_) => {
            shared.audit(Level::Warn, "tls.handshake_failed", json!({"peer": peer.to_string(), "reason": "timed out"}));
            return;
        }
    };
    let client_cert =
        stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|leaf| PeerCertificate::from_der(leaf));
    serve_connection(shared, builder, TokioIo::new(stream), ConnInfo { peer, client_cert }).await;
}

async fn serve_connection<I>(
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    io: TokioIo<I>,
    info: ConnInfo,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let info = Arc::new(info);
    let drain = shared.drain.clone();
    let idle_timeout = shared.limits.idle_timeout;
    let activity = Arc::new(Activity::new());
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let busy = tracked.begin();
        let answer = handler::handle(shared.clone(), info.clone(), request);
        async move {
            let response = answer.await;
            drop(busy);
            response
        }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut watchdog =
        tokio::time::interval((idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = drain.cancelled() => break,
            _ = watchdog.tick() => if activity.idle_for() >= idle_timeout { break },
        }
    }
    // HTTP/1.1: an idle connection closes at once, a busy one after its response; HTTP/2: GOAWAY.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Requests in progress on one connection and when the last one ended, for the idle
/// keep-alive timeout (07 §2): a connection is idle only while no request is in progress.
struct Activity {
    origin: Instant,
    active: std::sync::atomic::AtomicUsize,
    last_end_ms: std::sync::atomic::AtomicU64,
}

/// Marks a request in progress until dropped (also when hyper drops the request future).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end_ms.store(elapsed, Ordering::Release);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity { origin: Instant::now(), active: Default::default(), last_end_ms: Default::default() }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// How long the connection has had no request in progress (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        self.origin.elapsed().saturating_sub(last)
    }
}
