//! Run history (`runs`) and the approval queue (`approvals`), 02-data.md §7.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::convert::{decode, decode_optional, decode_word, encode, encode_optional, format_timestamp};
use super::convert::{from_sql_integer, to_sql_integer};
use super::{Attempt, Fail};
use crate::error::Error;
use crate::types::{
    Approval, ApprovalDecision, ApprovalRequest, ApprovalState, CheckpointKind, Decided, DecisionVia,
    FINISHED_STATUSES, RUN_STATUSES, RunFilter, RunRow, Verdict,
};

/// `status IN (...)` for the finished statuses, built from [`FINISHED_STATUSES`].
fn finished_list() -> String {
    FINISHED_STATUSES.iter().map(|status| format!("'{status}'")).collect::<Vec<_>>().join(", ")
}

fn check_status(status: &str) -> Attempt<()> {
    if RUN_STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(Fail::Store(Error::InvalidInput {
            what: "run status",
            detail: format!("`{status}` is not one of {}", RUN_STATUSES.join(", ")),
        }))
    }
}

/// Inserts or replaces a history row.
pub(super) fn upsert_run(transaction: &Transaction<'_>, row: &RunRow) -> Attempt<()> {
    check_status(&row.status)?;
    transaction
        .prepare_cached(
            "INSERT INTO runs (execution_id, workflow, start_node, status, last_node, started_at, finished_at,
                 wall_ms, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (execution_id) DO UPDATE SET
                 workflow = excluded.workflow, start_node = excluded.start_node, status = excluded.status,
                 last_node = excluded.last_node, started_at = excluded.started_at,
                 finished_at = excluded.finished_at, wall_ms = excluded.wall_ms, record = excluded.record",
        )?
        .execute(params![
            row.execution_id,
            row.workflow,
            row.start_node,
            row.status,
            row.last_node,
            row.started_at,
            row.finished_at,
            to_sql_integer(row.wall_ms, "wall_ms")?,
            match &row.record_text {
                Some(text) => text.clone(),
                None => encode(&row.record, "run record")?,
            },
        ])?;
    Ok(())
}

/// Deletes finished rows beyond the newest `keep_finished`, with their approvals.
pub(super) fn prune_runs(transaction: &Transaction<'_>, keep_finished: usize) -> Attempt<usize> {
    let keep = i64::try_from(keep_finished).unwrap_or(i64::MAX);
    let doomed = format!(
        "SELECT execution_id FROM runs WHERE status IN ({})
         ORDER BY started_at DESC, execution_id DESC LIMIT -1 OFFSET ?1",
        finished_list()
    );
    transaction.prepare_cached(&format!("DELETE FROM approvals WHERE execution_id IN ({doomed})"))?.execute([keep])?;
    let deleted =
        transaction.prepare_cached(&format!("DELETE FROM runs WHERE execution_id IN ({doomed})"))?.execute([keep])?;
    Ok(deleted)
}

const RUN_COLUMNS: &str =
    "execution_id, workflow, start_node, status, last_node, started_at, finished_at, wall_ms, record";

/// A history row as read by `SELECT RUN_COLUMNS`, before its JSON is decoded.
type RawRun = (String, String, String, String, Option<String>, String, Option<String>, i64, String);

fn read_run(row: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn decode_run(raw: RawRun) -> Attempt<RunRow> {
    let (execution_id, workflow, start_node, status, last_node, started_at, finished_at, wall_ms, record) = raw;
    Ok(RunRow {
        execution_id,
        workflow,
        start_node,
        status,
        last_node,
        started_at,
        finished_at,
        wall_ms: from_sql_integer(wall_ms, "wall_ms")?,
        record: decode(&record, "run record")?,
        record_text: None,
    })
}

/// History rows matching `filter`, newest first.
pub(super) fn runs(transaction: &Transaction<'_>, filter: &RunFilter) -> Attempt<Vec<RunRow>> {
    let since = match &filter.since {
        None => None,
        Some(text) => {
            let at: jiff::Timestamp = text.parse().map_err(|error| {
                Fail::Store(Error::InvalidInput { what: "since", detail: format!("`{text}`: {error}") })
            })?;
            // Stored times share this format, so text order is time order.
            Some(format_timestamp(at))
        }
    };
    let limit = if filter.limit == 0 { -1 } else { i64::try_from(filter.limit).unwrap_or(i64::MAX) };
    let mut statement = transaction.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow = ?2) AND (?3 IS NULL OR started_at >= ?3)
         ORDER BY started_at DESC, execution_id DESC LIMIT ?4"
    ))?;
    let raws = statement
        .query_map(params![filter.status, filter.workflow, since, limit], read_run)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(decode_run).collect()
}

/// One history row.
pub(super) fn run(transaction: &Transaction<'_>, execution_id: &str) -> Attempt<Option<RunRow>> {
    let raw = transaction
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE execution_id = ?1"))?
        .query_row([execution_id], read_run)
        .optional()?;
    raw.map(decode_run).transpose()
}

/// Whether any table knows the id.
pub(super) fn execution_id_exists(transaction: &Transaction<'_>, execution_id: &str) -> Attempt<bool> {
    let exists = transaction
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM checkpoints WHERE run_id = ?1)
                 OR EXISTS (SELECT 1 FROM runs WHERE execution_id = ?1)
                 OR EXISTS (SELECT 1 FROM approvals WHERE execution_id = ?1)",
        )?
        .query_row([execution_id], |row| row.get(0))?;
    Ok(exists)
}

/// Queues a pending approval, replacing an earlier entry of the run.
pub(super) fn request_approval(transaction: &Transaction<'_>, request: &ApprovalRequest) -> Attempt<()> {
    transaction
        .prepare_cached(
            "INSERT INTO approvals (execution_id, workflow, kind, pause_node, reason, requested_at,
                 trigger_principal, state, decision, via, note, actor, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', NULL, NULL, NULL, NULL, NULL)
             ON CONFLICT (execution_id) DO UPDATE SET
                 workflow = excluded.workflow, kind = excluded.kind, pause_node = excluded.pause_node,
                 reason = excluded.reason, requested_at = excluded.requested_at,
                 trigger_principal = excluded.trigger_principal, state = 'pending', decision = NULL, via = NULL,
                 note = NULL, actor = NULL, decided_at = NULL",
        )?
        .execute(params![
            request.execution_id,
            request.workflow,
            request.kind.as_str(),
            request.pause_node,
            request.reason,
            request.requested_at,
            encode_optional(request.trigger_principal.as_ref(), "trigger principal")?,
        ])?;
    Ok(())
}

/// Records a decision unless one was committed first.
pub(super) fn decide_approval(
    transaction: &Transaction<'_>,
    execution_id: &str,
    decision: &ApprovalDecision,
) -> Attempt<Decided> {
    let changed = transaction
        .prepare_cached(
            "UPDATE approvals SET state = 'decided', decision = ?2, via = ?3, note = ?4, actor = ?5, decided_at = ?6
             WHERE execution_id = ?1 AND state = 'pending'",
        )?
        .execute(params![
            execution_id,
            decision.decision.as_str(),
            decision.via.as_str(),
            decision.note,
            decision.actor,
            decision.decided_at,
        ])?;
    if changed > 0 {
        return Ok(Decided::Recorded);
    }
    Ok(match approval(transaction, execution_id)? {
        Some(existing) => Decided::AlreadyDecided(Box::new(existing)),
        None => Decided::NoApproval,
    })
}

const APPROVAL_COLUMNS: &str = "execution_id, workflow, kind, pause_node, reason, requested_at, trigger_principal,
    state, decision, via, note, actor, decided_at";

/// The text columns of an approval row, before the words and JSON are decoded.
struct RawApproval {
    execution_id: String,
    workflow: String,
    kind: String,
    pause_node: String,
    reason: Option<String>,
    requested_at: String,
    trigger_principal: Option<String>,
    state: String,
    decision: Option<String>,
    via: Option<String>,
    note: Option<String>,
    actor: Option<String>,
    decided_at: Option<String>,
}

fn read_approval(row: &Row<'_>) -> rusqlite::Result<RawApproval> {
    Ok(RawApproval {
        execution_id: row.get(0)?,
        workflow: row.get(1)?,
        kind: row.get(2)?,
        pause_node: row.get(3)?,
        reason: row.get(4)?,
        requested_at: row.get(5)?,
        trigger_principal: row.get(6)?,
        state: row.get(7)?,
        decision: row.get(8)?,
        via: row.get(9)?,
        note: row.get(10)?,
        actor: row.get(11)?,
        decided_at: row.get(12)?,
    })
}

fn decode_approval(raw: RawApproval) -> Attempt<Approval> {
    Ok(Approval {
        kind: decode_word(&raw.kind, "approval kind", CheckpointKind::parse)?,
        trigger_principal: decode_optional(raw.trigger_principal, "trigger principal")?,
        state: decode_word(&raw.state, "approval state", ApprovalState::parse)?,
        decision: raw.decision.map(|word| decode_word(&word, "approval decision", Verdict::parse)).transpose()?,
        via: raw.via.map(|word| decode_word(&word, "approval via", DecisionVia::parse)).transpose()?,
        execution_id: raw.execution_id,
        workflow: raw.workflow,
        pause_node: raw.pause_node,
        reason: raw.reason,
        requested_at: raw.requested_at,
        note: raw.note,
        actor: raw.actor,
        decided_at: raw.decided_at,
    })
}

/// One approval.
pub(super) fn approval(transaction: &Transaction<'_>, execution_id: &str) -> Attempt<Option<Approval>> {
    let raw = transaction
        .prepare_cached(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE execution_id = ?1"))?
        .query_row([execution_id], read_approval)
        .optional()?;
    raw.map(decode_approval).transpose()
}

/// Approvals in one state (or all), oldest request first.
pub(super) fn approvals(transaction: &Transaction<'_>, state: Option<ApprovalState>) -> Attempt<Vec<Approval>> {
    let mut statement = transaction.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (?1 IS NULL OR state = ?1)
         ORDER BY requested_at, execution_id"
    ))?;
    let raws = statement
        .query_map([state.map(ApprovalState::as_str)], read_approval)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(decode_approval).collect()
}
