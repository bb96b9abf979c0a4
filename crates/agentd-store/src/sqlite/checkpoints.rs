//! Checkpoints (02-data.md §6.2): one `checkpoints` row of scalars per run, its write-once
//! documents (trigger input, plan) in `checkpoint_documents`, its node outputs in
//! `checkpoint_outputs` and its trace in `checkpoint_trace`, so that a progress write touches only
//! the rows that changed.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde_json::{Map, Value};

use super::convert::{
    decode, decode_optional, decode_word, encode, encode_optional, format_timestamp, from_sql_integer, to_sql_integer,
};
use super::{Attempt, Fail};
use crate::error::Error;
use crate::owner::owner_is_dead;
use crate::types::{BudgetUsed, Checkpoint, CheckpointKind, CheckpointSummary, Claim, ProgressUpdate};

/// The scalar columns, in the order `read_head` expects.
const HEAD_COLUMNS: &str = "checkpoints.run_id, workflow, start_node, trigger_kind, trigger_input, paused_at,
    resume_node, reason, awaiting_approval, kind, plan, workflow_path, workflow_sha256, loop_counts, steps,
    http_response, budget_llm_tokens, budget_fs_write_bytes, cost, created_at, updated_at";

/// The tables the head is read from.
const HEAD_TABLES: &str = "checkpoints JOIN checkpoint_documents USING (run_id)";

/// Writes a whole checkpoint: the scalars (keeping any claim), then all outputs and trace entries.
pub(super) fn put(transaction: &Transaction<'_>, checkpoint: &Checkpoint) -> Attempt<()> {
    let trace_len = to_sql_integer(checkpoint.trace.len() as u64, "trace length")?;
    transaction
        .prepare_cached(
            "INSERT INTO checkpoints (run_id, workflow, start_node, trigger_kind, paused_at, resume_node, reason,
                 awaiting_approval, kind, workflow_path, workflow_sha256, loop_counts, steps, http_response,
                 budget_llm_tokens, budget_fs_write_bytes, cost, created_at, updated_at, trace_len)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
             ON CONFLICT (run_id) DO UPDATE SET
                 workflow = excluded.workflow, start_node = excluded.start_node,
                 trigger_kind = excluded.trigger_kind, paused_at = excluded.paused_at,
                 resume_node = excluded.resume_node, reason = excluded.reason,
                 awaiting_approval = excluded.awaiting_approval, kind = excluded.kind,
                 workflow_path = excluded.workflow_path, workflow_sha256 = excluded.workflow_sha256,
                 loop_counts = excluded.loop_counts, steps = excluded.steps,
                 http_response = excluded.http_response, budget_llm_tokens = excluded.budget_llm_tokens,
                 budget_fs_write_bytes = excluded.budget_fs_write_bytes, cost = excluded.cost,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 trace_len = excluded.trace_len",
        )?
        .execute(params![
            checkpoint.run_id,
            checkpoint.workflow,
            checkpoint.start_node,
            checkpoint.trigger_kind,
            checkpoint.paused_at,
            checkpoint.resume_node,
            checkpoint.reason,
            checkpoint.awaiting_approval,
            checkpoint.kind.as_str(),
            checkpoint.workflow_path,
            checkpoint.workflow_sha256,
            encode(&checkpoint.loop_counts, "loop counts")?,
            to_sql_integer(checkpoint.steps, "steps")?,
            encode_optional(checkpoint.http_response.as_ref(), "http response")?,
            to_sql_integer(checkpoint.budget_used.llm_tokens, "budget llm_tokens")?,
            to_sql_integer(checkpoint.budget_used.fs_write_bytes, "budget fs_write_bytes")?,
            encode(&checkpoint.cost, "cost")?,
            checkpoint.created_at,
            checkpoint.updated_at,
            trace_len,
        ])?;
    transaction
        .prepare_cached(
            "INSERT INTO checkpoint_documents (run_id, trigger_input, plan) VALUES (?1, ?2, ?3)
             ON CONFLICT (run_id) DO UPDATE SET trigger_input = excluded.trigger_input, plan = excluded.plan",
        )?
        .execute(params![
            checkpoint.run_id,
            encode(&checkpoint.trigger_input, "trigger input")?,
            encode_optional(checkpoint.plan.as_ref(), "plan")?,
        ])?;
    transaction.prepare_cached("DELETE FROM checkpoint_outputs WHERE run_id = ?1")?.execute([&checkpoint.run_id])?;
    transaction.prepare_cached("DELETE FROM checkpoint_trace WHERE run_id = ?1")?.execute([&checkpoint.run_id])?;
    write_outputs(transaction, &checkpoint.run_id, &checkpoint.node_outputs)?;
    write_trace(transaction, &checkpoint.run_id, 0, &checkpoint.trace)?;
    Ok(())
}

fn write_outputs(transaction: &Transaction<'_>, run_id: &str, outputs: &Map<String, Value>) -> Attempt<()> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO checkpoint_outputs (run_id, node_id, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id, node_id) DO UPDATE SET value = excluded.value",
    )?;
    for (node_id, value) in outputs {
        statement.execute(params![run_id, node_id, encode(value, "node output")?])?;
    }
    Ok(())
}

fn write_trace(transaction: &Transaction<'_>, run_id: &str, from: u64, entries: &[Value]) -> Attempt<()> {
    let mut statement =
        transaction.prepare_cached("INSERT INTO checkpoint_trace (run_id, seq, entry) VALUES (?1, ?2, ?3)")?;
    let mut seq = to_sql_integer(from, "trace index")?;
    for entry in entries {
        statement.execute(params![run_id, seq, encode(entry, "trace entry")?])?;
        seq = seq.checked_add(1).ok_or_else(|| {
            Fail::Store(Error::InvalidInput { what: "trace index", detail: "beyond the 64-bit range".to_owned() })
        })?;
    }
    Ok(())
}

/// Applies an incremental progress write (see [`ProgressUpdate`]).
pub(super) fn append_progress(transaction: &Transaction<'_>, progress: &ProgressUpdate) -> Attempt<()> {
    let stored: Option<i64> = transaction
        .prepare_cached("SELECT trace_len FROM checkpoints WHERE run_id = ?1")?
        .query_row([&progress.run_id], |row| row.get(0))
        .optional()?;
    let Some(stored) = stored else {
        return Err(Fail::Store(Error::NoCheckpoint { run_id: progress.run_id.clone() }));
    };
    let stored = from_sql_integer(stored, "trace length")?;
    if progress.trace_from > stored {
        return Err(Fail::Store(Error::TraceGap {
            run_id: progress.run_id.clone(),
            from: progress.trace_from,
            stored,
        }));
    }
    let from = to_sql_integer(progress.trace_from, "trace index")?;
    if progress.trace_from < stored {
        transaction
            .prepare_cached("DELETE FROM checkpoint_trace WHERE run_id = ?1 AND seq >= ?2")?
            .execute(params![progress.run_id, from])?;
    }
    write_trace(transaction, &progress.run_id, progress.trace_from, &progress.new_trace)?;
    write_outputs(transaction, &progress.run_id, &progress.changed_outputs)?;
    let trace_len = progress.trace_from.checked_add(progress.new_trace.len() as u64).ok_or_else(|| {
        Fail::Store(Error::InvalidInput { what: "trace index", detail: "beyond the 64-bit range".to_owned() })
    })?;
    transaction
        .prepare_cached(
            "UPDATE checkpoints SET paused_at = ?2, resume_node = ?3, reason = ?4, awaiting_approval = ?5,
                 loop_counts = ?6, steps = ?7, http_response = ?8, budget_llm_tokens = ?9,
                 budget_fs_write_bytes = ?10, cost = ?11, updated_at = ?12, trace_len = ?13
             WHERE run_id = ?1",
        )?
        .execute(params![
            progress.run_id,
            progress.paused_at,
            progress.resume_node,
            progress.reason,
            progress.awaiting_approval,
            encode(&progress.loop_counts, "loop counts")?,
            to_sql_integer(progress.steps, "steps")?,
            encode_optional(progress.http_response.as_ref(), "http response")?,
            to_sql_integer(progress.budget_used.llm_tokens, "budget llm_tokens")?,
            to_sql_integer(progress.budget_used.fs_write_bytes, "budget fs_write_bytes")?,
            encode(&progress.cost, "cost")?,
            progress.updated_at,
            to_sql_integer(trace_len, "trace length")?,
        ])?;
    Ok(())
}

/// The scalar columns of one row, as read by `SELECT HEAD_COLUMNS`.
struct Head {
    run_id: String,
    workflow: String,
    start_node: String,
    trigger_kind: String,
    trigger_input: String,
    paused_at: String,
    resume_node: Option<String>,
    reason: Option<String>,
    awaiting_approval: bool,
    kind: String,
    plan: Option<String>,
    workflow_path: Option<String>,
    workflow_sha256: Option<String>,
    loop_counts: String,
    steps: i64,
    http_response: Option<String>,
    budget_llm_tokens: i64,
    budget_fs_write_bytes: i64,
    cost: String,
    created_at: String,
    updated_at: String,
}

fn read_head(row: &Row<'_>) -> rusqlite::Result<Head> {
    Ok(Head {
        run_id: row.get(0)?,
        workflow: row.get(1)?,
        start_node: row.get(2)?,
        trigger_kind: row.get(3)?,
        trigger_input: row.get(4)?,
        paused_at: row.get(5)?,
        resume_node: row.get(6)?,
        reason: row.get(7)?,
        awaiting_approval: row.get(8)?,
        kind: row.get(9)?,
        plan: row.get(10)?,
        workflow_path: row.get(11)?,
        workflow_sha256: row.get(12)?,
        loop_counts: row.get(13)?,
        steps: row.get(14)?,
        http_response: row.get(15)?,
        budget_llm_tokens: row.get(16)?,
        budget_fs_write_bytes: row.get(17)?,
        cost: row.get(18)?,
        created_at: row.get(19)?,
        updated_at: row.get(20)?,
    })
}

/// Decodes a head and attaches the run's outputs and trace.
fn assemble(transaction: &Transaction<'_>, head: Head) -> Attempt<Checkpoint> {
    let mut node_outputs = Map::new();
    {
        let mut statement = transaction
            .prepare_cached("SELECT node_id, value FROM checkpoint_outputs WHERE run_id = ?1 ORDER BY node_id")?;
        let mut rows = statement.query([&head.run_id])?;
        while let Some(row) = rows.next()? {
            let node_id: String = row.get(0)?;
            let text: String = row.get(1)?;
            let value = decode(&text, "node output")?;
            node_outputs.insert(node_id, value);
        }
    }
    let mut trace = Vec::new();
    {
        let mut statement =
            transaction.prepare_cached("SELECT entry FROM checkpoint_trace WHERE run_id = ?1 ORDER BY seq")?;
        let mut rows = statement.query([&head.run_id])?;
        while let Some(row) = rows.next()? {
            let text: String = row.get(0)?;
            trace.push(decode(&text, "trace entry")?);
        }
    }
    let loop_counts: BTreeMap<String, u32> = decode(&head.loop_counts, "loop counts")?;
    Ok(Checkpoint {
        trigger_input: decode(&head.trigger_input, "trigger input")?,
        node_outputs,
        kind: decode_word(&head.kind, "checkpoint kind", CheckpointKind::parse)?,
        plan: decode_optional(head.plan, "plan")?,
        loop_counts,
        steps: from_sql_integer(head.steps, "steps")?,
        trace,
        http_response: decode_optional(head.http_response, "http response")?,
        budget_used: BudgetUsed {
            llm_tokens: from_sql_integer(head.budget_llm_tokens, "budget llm_tokens")?,
            fs_write_bytes: from_sql_integer(head.budget_fs_write_bytes, "budget fs_write_bytes")?,
        },
        cost: decode(&head.cost, "cost")?,
        run_id: head.run_id,
        workflow: head.workflow,
        start_node: head.start_node,
        trigger_kind: head.trigger_kind,
        paused_at: head.paused_at,
        resume_node: head.resume_node,
        reason: head.reason,
        awaiting_approval: head.awaiting_approval,
        workflow_path: head.workflow_path,
        workflow_sha256: head.workflow_sha256,
        created_at: head.created_at,
        updated_at: head.updated_at,
    })
}

/// One run's checkpoint, reassembled.
pub(super) fn get(transaction: &Transaction<'_>, run_id: &str) -> Attempt<Option<Checkpoint>> {
    let head = transaction
        .prepare_cached(&format!("SELECT {HEAD_COLUMNS} FROM {HEAD_TABLES} WHERE checkpoints.run_id = ?1"))?
        .query_row([run_id], read_head)
        .optional()?;
    head.map(|head| assemble(transaction, head)).transpose()
}

/// Every checkpoint, ascending run id.
pub(super) fn list(transaction: &Transaction<'_>) -> Attempt<Vec<Checkpoint>> {
    let heads = {
        let mut statement = transaction
            .prepare_cached(&format!("SELECT {HEAD_COLUMNS} FROM {HEAD_TABLES} ORDER BY checkpoints.run_id"))?;
        statement.query_map([], read_head)?.collect::<rusqlite::Result<Vec<Head>>>()?
    };
    heads.into_iter().map(|head| assemble(transaction, head)).collect()
}

/// Every checkpoint's summary, ascending run id.
pub(super) fn summaries(transaction: &Transaction<'_>) -> Attempt<Vec<CheckpointSummary>> {
    let mut statement = transaction.prepare_cached(
        "SELECT run_id, workflow, kind, paused_at, resume_node, awaiting_approval, updated_at, claimed_by
         FROM checkpoints ORDER BY run_id",
    )?;
    let mut rows = statement.query([])?;
    let mut summaries = Vec::new();
    while let Some(row) = rows.next()? {
        let kind: String = row.get(2)?;
        summaries.push(CheckpointSummary {
            run_id: row.get(0)?,
            workflow: row.get(1)?,
            kind: decode_word(&kind, "checkpoint kind", CheckpointKind::parse)?,
            paused_at: row.get(3)?,
            resume_node: row.get(4)?,
            awaiting_approval: row.get(5)?,
            updated_at: row.get(6)?,
            claimed_by: row.get(7)?,
        });
    }
    Ok(summaries)
}

/// Deletes a run's checkpoint rows; returns whether it had one.
pub(super) fn delete(transaction: &Transaction<'_>, run_id: &str) -> Attempt<bool> {
    transaction.prepare_cached("DELETE FROM step_journal WHERE run_id = ?1")?.execute([run_id])?;
    transaction.prepare_cached("DELETE FROM checkpoint_outputs WHERE run_id = ?1")?.execute([run_id])?;
    transaction.prepare_cached("DELETE FROM checkpoint_trace WHERE run_id = ?1")?.execute([run_id])?;
    transaction.prepare_cached("DELETE FROM checkpoint_documents WHERE run_id = ?1")?.execute([run_id])?;
    let deleted = transaction.prepare_cached("DELETE FROM checkpoints WHERE run_id = ?1")?.execute([run_id])?;
    Ok(deleted > 0)
}

/// Whether a claim made at `claimed_at` by `holder` may be taken over at `now`.
fn claim_is_stale(holder: &str, claimed_at: Option<&str>, stale_after: Duration, now: jiff::Timestamp) -> bool {
    if owner_is_dead(holder) {
        return true;
    }
    // A claim time that does not parse cannot prove the claim is fresh; treat it as stale rather
    // than lock the run forever.
    let Some(claimed_at) = claimed_at.and_then(|text| text.parse::<jiff::Timestamp>().ok()) else {
        return true;
    };
    let age_ms = now.as_millisecond().saturating_sub(claimed_at.as_millisecond());
    age_ms >= super::convert::duration_millis(stale_after)
}

/// Claims a run for `owner`, atomically (the caller's transaction holds the write lock).
pub(super) fn claim(
    transaction: &Transaction<'_>,
    run_id: &str,
    owner: &str,
    stale_after: Duration,
    now: jiff::Timestamp,
) -> Attempt<Claim> {
    let current: Option<(Option<String>, Option<String>)> = transaction
        .prepare_cached("SELECT claimed_by, claimed_at FROM checkpoints WHERE run_id = ?1")?
        .query_row([run_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((holder, claimed_at)) = current else { return Ok(Claim::NotFound) };
    if let Some(holder) = holder
        && !claim_is_stale(&holder, claimed_at.as_deref(), stale_after, now)
    {
        return Ok(Claim::AlreadyClaimed { by: holder });
    }
    transaction
        .prepare_cached("UPDATE checkpoints SET claimed_by = ?2, claimed_at = ?3 WHERE run_id = ?1")?
        .execute(params![run_id, owner, format_timestamp(now)])?;
    Ok(Claim::Claimed)
}

/// Drops `owner`'s claim on a run.
pub(super) fn release(transaction: &Transaction<'_>, run_id: &str, owner: &str) -> Attempt<()> {
    transaction
        .prepare_cached(
            "UPDATE checkpoints SET claimed_by = NULL, claimed_at = NULL WHERE run_id = ?1 AND claimed_by = ?2",
        )?
        .execute([run_id, owner])?;
    Ok(())
}

/// Records one journal entry (replacing an earlier one with the same key).
pub(super) fn journal_put(transaction: &Transaction<'_>, run_id: &str, key: &str, value: &str) -> Attempt<()> {
    transaction
        .prepare_cached("INSERT OR REPLACE INTO step_journal (run_id, key, value) VALUES (?1, ?2, ?3)")?
        .execute([run_id, key, value])?;
    Ok(())
}

/// Journal entries of a run whose key starts with `prefix`, as raw JSON text.
pub(super) fn journal(transaction: &Transaction<'_>, run_id: &str, prefix: &str) -> Attempt<Vec<(String, String)>> {
    let mut statement = transaction
        .prepare_cached("SELECT key, value FROM step_journal WHERE run_id = ?1 AND substr(key, 1, ?3) = ?2")?;
    let length = i64::try_from(prefix.len()).unwrap_or(i64::MAX);
    let rows = statement.query_map(rusqlite::params![run_id, prefix, length], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<(String, String)>>>()?)
}
