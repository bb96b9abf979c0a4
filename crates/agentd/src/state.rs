//! State-dir commands (01 §7, §9): `--list-checkpoints`, `agentd runs`, `reject`, and the
//! helpers `--resume` / `approve` use to find and claim a checkpoint.

use std::path::PathBuf;
use std::sync::Arc;

use agentd_store::{ApprovalDecision, DecisionVia, OpenOptions, RunFilter, SqliteStore, Store, Verdict};
use serde_json::{Value, json};

use crate::app::{EXIT_OK, EXIT_SEMANTIC, EXIT_USAGE};
use crate::flags::Settings;
use crate::output::{self, note};

/// The state dir as given (`--state-dir`, `AGENTD_STATE_DIR`, default `./.agentd`).
pub fn state_dir(settings: &Settings) -> PathBuf {
    settings.value("state-dir").map_or_else(|| PathBuf::from("./.agentd"), PathBuf::from)
}

/// Checks `--store` / `AGENTD_STORE`: only the embedded SQLite store exists in this build.
pub fn check_store_selection(settings: &Settings) -> Result<(), i32> {
    match settings.text("store").as_deref() {
        None | Some("sqlite") => Ok(()),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            note("the PostgreSQL fleet store is not available in this build yet; use the embedded store (--state-dir)");
            Err(EXIT_SEMANTIC)
        }
        Some(other) => {
            note(format_args!(
                "--store `{}`: only `sqlite` (the state dir's state.db) is available in this build",
                other.split('@').next_back().unwrap_or(other)
            ));
            Err(EXIT_USAGE)
        }
    }
}

/// Store options: commits are atomic and survive a crash of the process (WAL with
/// `synchronous = NORMAL`); power-loss durability (an fsync per commit) is the opt-in mode, because
/// an fsync per progress checkpoint would cost milliseconds per node.
fn options(durability: agentd_store::Durability) -> OpenOptions {
    let mut options = OpenOptions::default();
    options.durability = durability;
    options
}

/// `--durability normal|fsync` (extension); anything else is a usage error.
pub fn durability(settings: &Settings) -> Result<agentd_store::Durability, i32> {
    match settings.text("durability").as_deref() {
        None | Some("normal") => Ok(agentd_store::Durability::Fast),
        Some("fsync") => Ok(agentd_store::Durability::Full),
        Some(other) => {
            Err(output::usage(format_args!("invalid value `{other}` for `--durability`: expected normal or fsync")))
        }
    }
}

/// Opens (creating) the store of a state dir.
pub fn open(dir: &std::path::Path, durability: agentd_store::Durability) -> Result<Arc<dyn Store>, String> {
    SqliteStore::open(dir, options(durability)).map(|s| Arc::new(s) as Arc<dyn Store>).map_err(|e| e.to_string())
}

/// Opens an existing store without creating anything; `Ok(None)` when there is none yet.
pub fn open_existing(settings: &Settings) -> Result<Option<Arc<dyn Store>>, i32> {
    check_store_selection(settings)?;
    let durability = durability(settings)?;
    let dir = state_dir(settings);
    match SqliteStore::open_existing(&dir, options(durability)) {
        Ok(store) => Ok(store.map(|s| Arc::new(s) as Arc<dyn Store>)),
        Err(e) => {
            note(e);
            Err(EXIT_SEMANTIC)
        }
    }
}

/// Who made a decision: the OS user (01 §2.10).
pub fn actor() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".to_string())
}

/// `--list-checkpoints` (01 §7.3).
pub fn list_checkpoints(settings: &Settings) -> i32 {
    let dir = state_dir(settings);
    let store = match open_existing(settings) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let summaries = match store.map(|s| s.checkpoint_summaries()).transpose() {
        Ok(list) => list.unwrap_or_default(),
        Err(e) => {
            note(e);
            return EXIT_SEMANTIC;
        }
    };
    if summaries.is_empty() {
        output::stdout(&format!("no checkpoints in {}\n", dir.display()));
        return EXIT_OK;
    }
    let mut text = String::new();
    for cp in summaries {
        let state = if cp.awaiting_approval { "paused" } else { "recoverable" };
        text.push_str(&format!(
            "{}  {state:<11}  workflow={}  resume_node={}\n",
            cp.run_id,
            cp.workflow,
            cp.resume_node.as_deref().unwrap_or("-")
        ));
    }
    output::stdout(&text);
    EXIT_OK
}

/// `agentd runs [list|show ID]` (01 §9.3).
pub fn runs(settings: &Settings, action: &[String]) -> i32 {
    let dir = state_dir(settings);
    let store = match open_existing(settings) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match action.first().map(String::as_str) {
        None | Some("list") => {
            let limit = match settings.number("limit", 20) {
                Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
                Err(e) => return output::usage(e),
            };
            let status = settings.text("status");
            if let Some(s) = &status
                && !["completed", "failed", "timed_out", "paused", "errored", "queued", "running"].contains(&s.as_str())
            {
                return output::usage(format_args!("invalid value `{s}` for `--status`"));
            }
            let since = settings.text("since");
            if let Some(since) = &since
                && since.parse::<jiff::Timestamp>().is_err()
            {
                return output::usage(format_args!(
                    "invalid value `{since}` for `--since`: expected an RFC 3339 instant"
                ));
            }
            let filter = RunFilter { status, workflow: settings.text("workflow"), since, limit };
            let rows = match store.map(|s| s.runs(&filter)).transpose() {
                Ok(rows) => rows.unwrap_or_default(),
                Err(e) => {
                    note(e);
                    return EXIT_SEMANTIC;
                }
            };
            if settings.switch("json") {
                /// One row of `agentd runs --json`, fields in the order of 01 §9.3.
                #[derive(serde::Serialize)]
                struct Row<'a> {
                    execution_id: &'a str,
                    workflow: &'a str,
                    start_node: &'a str,
                    status: &'a str,
                    last_node: Option<&'a str>,
                    started_at: &'a str,
                    wall_ms: u64,
                }
                let list: Vec<Row<'_>> = rows
                    .iter()
                    .map(|r| Row {
                        execution_id: &r.execution_id,
                        workflow: &r.workflow,
                        start_node: &r.start_node,
                        status: &r.status,
                        last_node: r.last_node.as_deref(),
                        started_at: &r.started_at,
                        wall_ms: r.wall_ms,
                    })
                    .collect();
                output::json(&list);
            } else if rows.is_empty() {
                output::stdout(&format!("no runs in {}\n", dir.display()));
            } else {
                let mut text = String::new();
                for r in rows {
                    let started = r.started_at.get(..19).map_or(r.started_at.clone(), |s| format!("{s}Z"));
                    text.push_str(&format!(
                        "{}  {:<9}  workflow={}  start={}  started={started}  {} ms\n",
                        r.execution_id, r.status, r.workflow, r.start_node, r.wall_ms
                    ));
                }
                output::stdout(&text);
            }
            EXIT_OK
        }
        Some("show") => {
            let Some(id) = action.get(1) else { return output::usage("`agentd runs show` needs a RUN_ID") };
            let row = match store.map(|s| s.run(id)).transpose() {
                Ok(row) => row.flatten(),
                Err(e) => {
                    note(e);
                    return EXIT_SEMANTIC;
                }
            };
            let Some(row) = row else {
                note(format_args!("no run {id} in {}", dir.display()));
                return EXIT_USAGE;
            };
            if settings.switch("json") {
                output::json(&row.record);
            } else {
                output::stdout(&crate::inspect::render(&row.record));
            }
            EXIT_OK
        }
        Some(other) => output::usage(format_args!("unknown `agentd runs` action `{other}` (expected list or show)")),
    }
}

/// `agentd reject RUN_ID [--reason]` (01 §9.5).
pub fn reject(settings: &Settings, run_id: &str) -> i32 {
    let dir = state_dir(settings);
    let store = match open_existing(settings) {
        Ok(Some(s)) => s,
        Ok(None) => {
            note(format_args!("no checkpoint for run {run_id} in {}", dir.display()));
            return EXIT_USAGE;
        }
        Err(code) => return code,
    };
    let checkpoint = match store.checkpoint(run_id) {
        Ok(Some(cp)) => cp,
        Ok(None) => {
            note(format_args!("no checkpoint for run {run_id} in {}", dir.display()));
            return EXIT_USAGE;
        }
        Err(e) => {
            note(e);
            return EXIT_SEMANTIC;
        }
    };
    if !checkpoint.awaiting_approval {
        note(format_args!("run {run_id} is not awaiting approval"));
        return EXIT_USAGE;
    }
    let given = settings.text("reason");
    let reason = given.as_ref().map_or_else(|| "rejected by operator".to_string(), |r| format!("rejected: {r}"));
    let decision = ApprovalDecision {
        decision: Verdict::Rejected,
        via: DecisionVia::Reject,
        note: given.clone(),
        actor: actor(),
        decided_at: agentd_engine::timestamp(jiff::Timestamp::now()),
    };
    if let Err(e) = store.decide_approval(run_id, &decision) {
        note(e);
        return EXIT_SEMANTIC;
    }
    if let Err(e) = store.delete_checkpoint(run_id) {
        note(e);
        return EXIT_SEMANTIC;
    }
    // Finalise the history row: failed, with the rejection as its reason (best effort).
    if let Ok(Some(mut row)) = store.run(run_id) {
        row.status = "failed".to_string();
        row.last_node = Some(checkpoint.paused_at.clone());
        row.finished_at = Some(agentd_engine::timestamp(jiff::Timestamp::now()));
        if let Value::Object(record) = &mut row.record {
            record.insert("status".into(), json!("failed"));
            record.insert("last_node".into(), json!(checkpoint.paused_at));
            record.insert("detail".into(), json!({"reason": reason}));
        }
        let _ = store.upsert_run(&row);
    }
    tracing::info!(target: "agentd::audit", event = "approval.rejected", run_id, reason = %reason);
    #[derive(serde::Serialize)]
    struct Rejected<'a> {
        status: &'a str,
        reason: &'a str,
        last_node: &'a str,
    }
    output::json(&Rejected { status: "failed", reason: &reason, last_node: &checkpoint.paused_at });
    EXIT_OK
}
