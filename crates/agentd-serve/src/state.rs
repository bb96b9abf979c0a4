//! State shared by the listener, the request handler and the triggers: the live configuration
//! (swapped atomically on reload), process-level settings, and the in-flight counter that the
//! drain waits on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use agentd_engine::Engine;
use agentd_engine::audit::{AuditSink, Level};
use agentd_store::Store;
use agentd_workflow::Workflow;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthBindings, AuthRef};
use crate::routes::RouteTable;
use crate::secrets::SecretLookup;

/// Everything that a reload swaps together (07 §11 stages `auth` and `workflow`).
pub struct Live {
    /// Its engine.
    pub engine: Arc<Engine>,
    /// Compiled routes.
    pub routes: RouteTable,
    /// Compiled auth bindings.
    pub auth: Arc<AuthBindings>,
    /// `[server].metrics_auth`.
    pub metrics_auth: Option<AuthRef>,
}

/// `[server]` limits; never reloaded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Request head cap.
    pub max_header_bytes: usize,
    /// Server-wide body cap.
    pub max_body_bytes: u64,
    /// Head read timeout.
    pub header_timeout: Duration,
    /// Idle keep-alive timeout.
    pub idle_timeout: Duration,
}

impl Limits {
    /// Reads `[server]` with the spec defaults.
    pub fn from_workflow(workflow: &Workflow) -> Limits {
        let server = workflow.environment.server.clone().unwrap_or_default();
        Limits {
            max_connections: server.max_connections.unwrap_or(1024).max(1) as usize,
            max_header_bytes: server.max_header_bytes.unwrap_or(16_384).max(1024) as usize,
            max_body_bytes: server.max_body_bytes.unwrap_or(1_048_576).max(1),
            header_timeout: Duration::from_secs(server.header_timeout_secs.unwrap_or(30).max(1)),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs.unwrap_or(30).max(1)),
        }
    }
}

/// Counts runs (and replays) that the drain must wait for.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Decrements the in-flight count when dropped.
pub struct InFlightGuard {
    owner: Arc<Shared>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        metrics::gauge!("agentd_runs_in_flight", "workflow" => self.owner.workflow_name.clone()).decrement(1.0);
        if self.owner.in_flight.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.owner.in_flight.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// The current count.
    pub fn get(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once nothing is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.get() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Process-wide serve state.
pub struct Shared {
    /// Workflow name (a reload may not change it).
    pub workflow_name: String,
    /// The configuration new requests and fires use.
    pub live: RwLock<Arc<Live>>,
    /// Listener limits.
    pub limits: Limits,
    /// State store (idempotency).
    pub store: Option<Arc<dyn Store>>,
    /// Secret lookup for auth bindings.
    pub secrets: Arc<dyn SecretLookup>,
    /// Audit sink.
    pub audit: Arc<dyn AuditSink>,
    /// Effective run timeout.
    pub run_timeout: Duration,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Directory relative configuration paths are resolved against.
    pub base_dir: PathBuf,
    /// Set once the drain began.
    pub draining: AtomicBool,
    /// Fires when the drain begins (connections shut down gracefully, triggers stop).
    pub drain: CancellationToken,
    /// Runs the drain waits for.
    pub in_flight: InFlight,
    /// `pid@host` for idempotency rows.
    pub owner: String,
}

impl Shared {
    /// The live configuration.
    pub fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the live configuration.
    pub fn swap(&self, next: Arc<Live>) -> Arc<Live> {
        match self.live.write() {
            Ok(mut live) => std::mem::replace(&mut *live, next),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), next),
        }
    }

    /// Whether the drain began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Counts one run in flight until the guard drops.
    pub fn begin_run(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("agentd_runs_in_flight", "workflow" => self.workflow_name.clone()).increment(1.0);
        InFlightGuard { owner: self.clone() }
    }

    /// Emits an audit event with the workflow name added.
    pub fn audit(&self, level: Level, event: &str, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("workflow".to_string(), Value::String(self.workflow_name.clone()));
        }
        self.audit.emit(level, event, fields);
    }
}
