//! Long-lived triggers (07 §10): cron, interval and fs_watch. Each trigger is one task whose
//! runs are serial. A fire takes the engine of the live configuration, so after a reload a kept
//! trigger starts its next run on the new configuration.

mod fswatch;
mod schedule;

use std::sync::Arc;
use std::time::Instant;

use agentd_engine::audit::Level;
use agentd_engine::{Cancel, Engine, RunRequest, RunResult};
use agentd_workflow::{TriggerConfig, Workflow};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::state::Shared;

/// A running trigger.
struct Running {
    key: String,
    stop: CancellationToken,
}

/// The triggers of the live configuration.
#[derive(Default)]
pub struct Triggers {
    running: Vec<Running>,
}

/// A stable identity of a trigger's configuration: a trigger whose key is unchanged keeps
/// running across a reload (07 §11 stage `triggers`).
fn key(trigger: &TriggerConfig) -> Option<String> {
    match trigger {
        TriggerConfig::Cron(t) => Some(format!(
            "cron\n{}\n{}\n{}",
            t.schedule.get_ref(),
            t.start_node.get_ref(),
            t.timezone.as_ref().map(|z| z.get_ref().as_str()).unwrap_or("")
        )),
        TriggerConfig::Interval(t) => Some(format!("interval\n{}\n{}", t.every.get_ref(), t.start_node.get_ref())),
        TriggerConfig::FsWatch(t) => Some(format!(
            "fs_watch\n{}\n{}\n{}\n{:?}\n{:?}",
            t.path,
            t.start_node.get_ref(),
            t.recursive,
            t.events,
            t.debounce_ms
        )),
        TriggerConfig::McpResourceUpdated(_) | TriggerConfig::Rejected { .. } => None,
    }
}

/// Starts one trigger; `Err` for startup failures (fs_watch path, events).
fn spawn(shared: &Arc<Shared>, trigger: &TriggerConfig, stop: CancellationToken) -> Result<()> {
    match trigger {
        TriggerConfig::Cron(config) => schedule::start_cron(shared.clone(), config, stop),
        TriggerConfig::Interval(config) => schedule::start_interval(shared.clone(), config, stop),
        TriggerConfig::FsWatch(config) => fswatch::start(shared.clone(), config, stop),
        TriggerConfig::McpResourceUpdated(config) => {
            shared.audit(
                Level::Warn,
                "mcp_trigger.unavailable",
                json!({"server": config.server.get_ref(), "uri": config.resource}),
            );
            Ok(())
        }
        TriggerConfig::Rejected { .. } => Ok(()),
    }
}

impl Triggers {
    /// Starts every trigger of `workflow`; the first that cannot start fails startup.
    pub fn start(shared: &Arc<Shared>, workflow: &Workflow, _engine: &Arc<Engine>) -> Result<Triggers> {
        let mut triggers = Triggers::default();
        for trigger in &workflow.environment.triggers {
            let Some(key) = key(trigger) else { continue };
            let stop = shared.drain.child_token();
            if let Err(error) = spawn(shared, trigger, stop.clone()) {
                triggers.stop_all();
                return Err(error);
            }
            triggers.running.push(Running { key, stop });
        }
        Ok(triggers)
    }

    /// Keeps unchanged triggers, stops removed ones (after their in-flight run), starts new
    /// ones; a trigger that fails to start is reported and skipped. Returns (kept, started,
    /// stopped).
    pub fn reload(
        &mut self,
        shared: &Arc<Shared>,
        workflow: &Workflow,
        _engine: &Arc<Engine>,
    ) -> (usize, usize, usize) {
        let mut remaining: Vec<Running> = std::mem::take(&mut self.running);
        let (mut kept, mut started) = (0, 0);
        for trigger in &workflow.environment.triggers {
            let Some(key) = key(trigger) else { continue };
            if let Some(position) = remaining.iter().position(|r| r.key == key) {
                self.running.push(remaining.swap_remove(position));
                kept += 1;
                continue;
            }
            let stop = shared.drain.child_token();
            match spawn(shared, trigger, stop.clone()) {
                Ok(()) => {
                    self.running.push(Running { key, stop });
                    started += 1;
                }
                Err(error) => shared.audit(
                    Level::Warn,
                    "reload.failed",
                    json!({"stage": "triggers", "reason": error.to_string()}),
                ),
            }
        }
        let stopped = remaining.len();
        for running in remaining {
            running.stop.cancel();
        }
        shared.audit(Level::Info, "reload.triggers", json!({"kept": kept, "started": started, "stopped": stopped}));
        (kept, started, stopped)
    }

    /// Stops every trigger from firing again; in-flight runs finish.
    pub fn stop_all(&mut self) {
        for running in self.running.drain(..) {
            running.stop.cancel();
        }
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_unix_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}

/// Runs `start_node` with a trigger payload (trigger kind `manual`, 07 §10), counting it in
/// flight for the drain. Returns `None` when the drain already began.
async fn fire(shared: &Arc<Shared>, type_name: &'static str, start_node: &str, payload: Value) -> Option<RunResult> {
    if shared.is_draining() {
        return None;
    }
    let _guard = shared.begin_run();
    metrics::counter!("agentd_trigger_fires_total", "workflow" => shared.workflow_name.clone(), "type" => type_name)
        .increment(1);
    let engine = shared.live().engine.clone();
    let started = Instant::now();
    let request = RunRequest {
        start: start_node.to_string(),
        input: payload,
        trigger_kind: "manual".to_string(),
        timeout: shared.run_timeout,
        dry_run: shared.dry_run,
        cancel: Cancel::default(),
        resume: None,
    };
    let result = engine.run(request).await;
    crate::metrics::record_run(&shared.workflow_name, start_node, &result, started.elapsed().as_secs_f64());
    Some(result)
}

/// The error text of an errored run, for `*.error` audit events.
fn errored_reason(result: &RunResult) -> Option<&str> {
    match &result.outcome {
        agentd_engine::Outcome::Errored { reason, .. } => Some(reason),
        _ => None,
    }
}
