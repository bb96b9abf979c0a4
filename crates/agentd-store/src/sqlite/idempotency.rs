//! Idempotency rows of HTTP deliveries (07-triggers-server.md §8): the state machine of steps 1–7,
//! each step one transaction.
//!
//! Times are stored as Unix milliseconds (`*_at_ms` columns) so that TTL and staleness checks are
//! integer comparisons; `now` always comes from the caller.

use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction, params};

use super::Attempt;
use super::Fail;
use super::convert::duration_millis;
use crate::types::{IdempotencyBegin, IdempotencyScope, StoredReply};

const KEY: &str = "workflow = ?1 AND method = ?2 AND path = ?3 AND key_sha256 = ?4";

/// What `begin` needs of an existing row.
struct Existing {
    state: String,
    started_at_ms: i64,
    status: Option<i64>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    stored_at_ms: Option<i64>,
    execution_id: Option<String>,
}

/// Steps 1–4: replay, conflict, or proceed as the owner of a `pending` row.
pub(super) fn begin(
    transaction: &Transaction<'_>,
    scope: &IdempotencyScope,
    owner: &str,
    now: jiff::Timestamp,
    ttl: Duration,
    stale_after: Duration,
) -> Attempt<IdempotencyBegin> {
    let now_ms = now.as_millisecond();
    let existing = transaction
        .prepare_cached(&format!(
            "SELECT state, started_at_ms, status, content_type, body, stored_at_ms, execution_id
             FROM idempotency WHERE {KEY}"
        ))?
        .query_row(params![scope.workflow, scope.method, scope.path, scope.key_sha256], |row| {
            Ok(Existing {
                state: row.get(0)?,
                started_at_ms: row.get(1)?,
                status: row.get(2)?,
                content_type: row.get(3)?,
                body: row.get(4)?,
                stored_at_ms: row.get(5)?,
                execution_id: row.get(6)?,
            })
        })
        .optional()?;
    let mut took_over = false;
    if let Some(existing) = existing {
        if existing.state == "done" {
            let stored_at_ms = existing.stored_at_ms.unwrap_or(i64::MIN);
            let fresh = !ttl.is_zero() && now_ms.saturating_sub(stored_at_ms) <= duration_millis(ttl);
            if fresh {
                return Ok(IdempotencyBegin::Replay(replay(existing)?));
            }
            // Step 2: expired; forget it and continue as if there were no row.
            delete(transaction, scope)?;
        } else {
            // Step 3: a pending row is in flight unless it is stale.
            if now_ms.saturating_sub(existing.started_at_ms) < duration_millis(stale_after) {
                return Ok(IdempotencyBegin::Conflict);
            }
            delete(transaction, scope)?;
            took_over = true;
        }
    }
    // Step 4 (or the take-over of step 3): this delivery owns the pending row.
    transaction
        .prepare_cached(
            "INSERT INTO idempotency (workflow, method, path, key_sha256, key_preview, state, owner, started_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
        )?
        .execute(params![
            scope.workflow,
            scope.method,
            scope.path,
            scope.key_sha256,
            scope.key_preview,
            owner,
            now_ms
        ])?;
    Ok(IdempotencyBegin::Proceed { took_over })
}

fn replay(existing: Existing) -> Attempt<StoredReply> {
    let status = existing
        .status
        .and_then(|status| u16::try_from(status).ok())
        .ok_or_else(|| Fail::Decode("stored idempotent reply has no valid HTTP status".to_owned()))?;
    Ok(StoredReply {
        status,
        content_type: existing.content_type.unwrap_or_default(),
        body: existing.body.unwrap_or_default(),
        execution_id: existing.execution_id.unwrap_or_default(),
    })
}

fn delete(transaction: &Transaction<'_>, scope: &IdempotencyScope) -> Attempt<usize> {
    Ok(transaction.prepare_cached(&format!("DELETE FROM idempotency WHERE {KEY}"))?.execute(params![
        scope.workflow,
        scope.method,
        scope.path,
        scope.key_sha256
    ])?)
}

/// Step 5: the owner's pending row becomes `done` with the reply sent.
pub(super) fn complete(
    transaction: &Transaction<'_>,
    scope: &IdempotencyScope,
    owner: &str,
    reply: &StoredReply,
    now: jiff::Timestamp,
    ttl: Duration,
) -> Attempt<bool> {
    if ttl.is_zero() {
        // TTL 0 keeps nothing for replay; the in-flight marker has done its job.
        return abandon(transaction, scope, owner);
    }
    let now_ms = now.as_millisecond();
    let changed = transaction
        .prepare_cached(&format!(
            "UPDATE idempotency SET state = 'done', status = ?6, content_type = ?7, body = ?8, execution_id = ?9,
                 stored_at_ms = ?10, expires_at_ms = ?11
             WHERE {KEY} AND state = 'pending' AND owner = ?5"
        ))?
        .execute(params![
            scope.workflow,
            scope.method,
            scope.path,
            scope.key_sha256,
            owner,
            i64::from(reply.status),
            reply.content_type,
            reply.body,
            reply.execution_id,
            now_ms,
            now_ms.saturating_add(duration_millis(ttl)),
        ])?;
    Ok(changed > 0)
}

/// Step 6: the owner's pending row is deleted.
pub(super) fn abandon(transaction: &Transaction<'_>, scope: &IdempotencyScope, owner: &str) -> Attempt<bool> {
    let deleted = transaction
        .prepare_cached(&format!("DELETE FROM idempotency WHERE {KEY} AND state = 'pending' AND owner = ?5"))?
        .execute(params![scope.workflow, scope.method, scope.path, scope.key_sha256, owner])?;
    Ok(deleted > 0)
}

/// Deletes expired `done` rows and long-dead `pending` rows.
pub(super) fn purge_expired(
    transaction: &Transaction<'_>,
    now: jiff::Timestamp,
    pending_max_age: Duration,
) -> Attempt<usize> {
    let now_ms = now.as_millisecond();
    let done = transaction
        .prepare_cached("DELETE FROM idempotency WHERE state = 'done' AND expires_at_ms <= ?1")?
        .execute([now_ms])?;
    let pending = transaction
        .prepare_cached("DELETE FROM idempotency WHERE state = 'pending' AND started_at_ms <= ?1")?
        .execute([now_ms.saturating_sub(duration_millis(pending_max_age))])?;
    Ok(done + pending)
}
