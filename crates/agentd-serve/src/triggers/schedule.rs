//! `cron` and `interval` triggers (07 §10.1–§10.3). Fire instants come from the wall clock;
//! waiting is done in steps of at most one second on the monotonic clock, re-reading the wall
//! clock each time, so a wall-clock jump can neither double-fire nor stall a trigger long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_engine::audit::Level;
use agentd_workflow::schedule::{CronSchedule, parse_interval, parse_timezone};
use agentd_workflow::{CronTrigger, IntervalTrigger};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{errored_reason, fire, now_unix_ms};
use crate::error::{Error, Result};
use crate::state::Shared;

/// Longest single sleep while waiting for a cron instant.
const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(1);

/// Upper bound on the missed instants counted after an overrunning run.
const MAX_COUNTED_MISSES: u64 = 10_000;

pub(super) fn start_cron(shared: Arc<Shared>, config: &CronTrigger, stop: CancellationToken) -> Result<()> {
    let expression = config.schedule.get_ref().clone();
    let schedule = CronSchedule::parse(&expression).map_err(|e| Error::Trigger(e.to_string()))?;
    let zone = match &config.timezone {
        Some(name) => parse_timezone(name.get_ref()).map_err(|e| Error::Trigger(e.to_string()))?,
        None => TimeZone::system(),
    };
    let start_node = config.start_node.get_ref().clone();
    tokio::spawn(async move {
        let cron = Cron { shared, expression, schedule, zone, start_node };
        cron.run(stop).await;
    });
    Ok(())
}

struct Cron {
    shared: Arc<Shared>,
    expression: String,
    schedule: CronSchedule,
    zone: TimeZone,
    start_node: String,
}

impl Cron {
    async fn run(self, stop: CancellationToken) {
        let mut previous: Option<Timestamp> = None;
        let mut tick: u64 = 0;
        loop {
            let from = previous.map_or_else(Timestamp::now, |p| p.max(Timestamp::now()));
            let Some(next) = self.schedule.next_after(from, &self.zone) else {
                self.shared.audit(
                    Level::Warn,
                    "cron.no_next_fire",
                    json!({"start_node": self.start_node, "schedule": self.expression}),
                );
                return;
            };
            if !wait_until_wall(next, &stop).await {
                return;
            }
            tick += 1;
            self.fire(tick, next).await;
            previous = Some(next);
            self.report_missed(next);
            if stop.is_cancelled() {
                return;
            }
        }
    }

    async fn fire(&self, tick: u64, scheduled: Timestamp) {
        let payload = json!({
            "kind": "cron",
            "schedule": self.expression,
            "fired_at_unix_ms": now_unix_ms(),
            "tick": tick,
            "scheduled_at_unix_ms": scheduled.as_millisecond(),
            "timezone": self.zone.iana_name().unwrap_or("local"),
        });
        run_and_report(&self.shared, "cron", &self.start_node, tick, payload).await;
    }

    /// Instants that passed during the run are skipped (audit `cron.skipped`).
    fn report_missed(&self, fired: Timestamp) {
        let now = Timestamp::now();
        let mut missed = 0u64;
        let mut cursor = fired;
        while missed < MAX_COUNTED_MISSES {
            match self.schedule.next_after(cursor, &self.zone) {
                Some(next) if next <= now => {
                    missed += 1;
                    cursor = next;
                }
                _ => break,
            }
        }
        if missed > 0 {
            self.shared.audit(Level::Info, "cron.skipped", json!({"start_node": self.start_node, "missed": missed}));
        }
    }
}

/// Sleeps until the wall clock reaches `instant`; `false` when stopped first.
async fn wait_until_wall(instant: Timestamp, stop: &CancellationToken) -> bool {
    loop {
        let now = Timestamp::now();
        if now >= instant {
            return true;
        }
        let remaining = Duration::try_from(instant.duration_since(now)).unwrap_or(Duration::ZERO);
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(remaining.min(WALL_CLOCK_RECHECK)) => {}
        }
    }
}

pub(super) fn start_interval(shared: Arc<Shared>, config: &IntervalTrigger, stop: CancellationToken) -> Result<()> {
    let every = parse_interval(config.every.get_ref()).map_err(|e| Error::Trigger(e.to_string()))?;
    let start_node = config.start_node.get_ref().clone();
    tokio::spawn(async move { run_interval(shared, every, start_node, stop).await });
    Ok(())
}

/// Fixed rate: fire k at startup + k × every; overrun instants are skipped.
async fn run_interval(shared: Arc<Shared>, every: Duration, start_node: String, stop: CancellationToken) {
    let origin = Instant::now();
    let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
    let mut k: u32 = 1;
    let mut tick: u64 = 0;
    loop {
        let Some(due) = every.checked_mul(k).and_then(|offset| origin.checked_add(offset)) else { return };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(due.into()) => {}
        }
        tick += 1;
        let payload =
            json!({"kind": "interval", "every_ms": every_ms, "fired_at_unix_ms": now_unix_ms(), "tick": tick});
        run_and_report(&shared, "interval", &start_node, tick, payload).await;
        if stop.is_cancelled() {
            return;
        }
        let elapsed = origin.elapsed();
        let next = u32::try_from(elapsed.as_nanos() / every.as_nanos().max(1)).unwrap_or(u32::MAX).saturating_add(1);
        if next > k + 1 {
            shared.audit(Level::Info, "cron.skipped", json!({"start_node": start_node, "missed": next - k - 1}));
        }
        k = next.max(k + 1);
    }
}

/// Fires a run and emits `cron.fire` / `cron.completed` / `cron.error`.
async fn run_and_report(
    shared: &Arc<Shared>,
    kind: &'static str,
    start_node: &str,
    tick: u64,
    payload: serde_json::Value,
) {
    shared.audit(Level::Info, "cron.fire", json!({"kind": kind, "start_node": start_node, "tick": tick}));
    let started = Instant::now();
    let Some(result) = fire(shared, kind, start_node, payload).await else { return };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if let Some(reason) = errored_reason(&result) {
        shared.audit(
            Level::Warn,
            "cron.error",
            json!({"kind": kind, "start_node": start_node, "tick": tick, "reason": reason}),
        );
    }
    shared.audit(
        Level::Info,
        "cron.completed",
        json!({
            "kind": kind, "start_node": start_node, "tick": tick,
            "status": result.outcome.status(), "elapsed_ms": elapsed_ms
        }),
    );
}
