//! The outbox and processed-event records on Postgres, where relays on several nodes drain the
//! same outbox.
//!
//! A relay claims the oldest unsent rows with `FOR UPDATE SKIP LOCKED` (so two relays never
//! publish the same row, and neither waits for the other), and keeps per-key order: a claimed
//! row is published only if every earlier unsent row of its key is in the same claim; rows
//! behind another relay's claim wait for the next round.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use nova_core::{now_millis, Id, UnixMillis};
use nova_events::{Backlog, EventRecord, OutboxStore, ProcessedEvents, Publisher};

use super::PgStore;
use crate::error::DbContext as _;
use crate::rows::{record_from_row, OutboxRow};

/// The relay's claim: `$1` limit. Uses the partial index `outbox_unsent` (checked in
/// `plans.rs`), so its cost follows the unsent rows, not the table's history.
pub(super) const CLAIM_SQL: &str = "SELECT id, topic, key, payload, created_at FROM outbox \
     WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";

/// The unsent rows of the claimed keys up to the claim's last id: `$1` keys, `$2` last id.
pub(super) const KEY_ORDER_SQL: &str =
    "SELECT key, id FROM outbox WHERE sent_at IS NULL AND key = ANY($1) AND id <= $2";

/// The backlog gauge's count; also on `outbox_unsent`.
pub(super) const BACKLOG_SQL: &str =
    "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL";

/// Writes an event to the outbox inside the caller's transaction.
pub(crate) async fn write_event(
    conn: &mut sqlx::PgConnection,
    event: &EventRecord,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, topic, key, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id.0)
    .bind(event.topic.name())
    .bind(event.key.0)
    .bind(&event.payload)
    .bind(event.created_at)
    .execute(conn)
    .await
    .context("write outbox event")?;
    Ok(())
}

/// Writes events to the outbox inside the caller's transaction, in one statement.
pub(crate) async fn write_events(
    conn: &mut sqlx::PgConnection,
    events: &[EventRecord],
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id.0).collect();
    let topics: Vec<&str> = events.iter().map(|e| e.topic.name()).collect();
    let keys: Vec<i64> = events.iter().map(|e| e.key.0).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let created: Vec<i64> = events.iter().map(|e| e.created_at).collect();
    sqlx::query(
        "INSERT INTO outbox (id, topic, key, payload, created_at) \
         SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::bytea[], $5::int8[])",
    )
    .bind(&ids)
    .bind(&topics)
    .bind(&keys)
    .bind(&payloads)
    .bind(&created)
    .execute(conn)
    .await
    .context("write outbox events")?;
    Ok(())
}

/// The claimed rows that may go out now: for each key, the claimed rows that come before its
/// first unsent row claimed by someone else (or not claimed at all).
fn publishable(claimed: Vec<EventRecord>, unsent_of_keys: &[(i64, i64)]) -> Vec<EventRecord> {
    let mine: HashSet<i64> = claimed.iter().map(|r| r.id.0).collect();
    let mut first_foreign: HashMap<i64, i64> = HashMap::new();
    for &(key, id) in unsent_of_keys {
        if !mine.contains(&id) {
            let entry = first_foreign.entry(key).or_insert(id);
            *entry = (*entry).min(id);
        }
    }
    claimed
        .into_iter()
        .filter(|r| first_foreign.get(&r.key.0).is_none_or(|&f| r.id.0 < f))
        .collect()
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn relay_batch(&self, limit: usize, publisher: &dyn Publisher) -> anyhow::Result<usize> {
        let mut tx = self.gate.begin().await.context("begin relay batch")?;
        let rows: Vec<OutboxRow> = sqlx::query_as(CLAIM_SQL)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .context("claim outbox rows")?;
        if rows.is_empty() {
            return Ok(0);
        }
        let claimed = rows
            .into_iter()
            .map(record_from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let keys: Vec<i64> = claimed
            .iter()
            .map(|r| r.key.0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let last = claimed.iter().map(|r| r.id.0).max().unwrap_or(0);
        // A plain read sees rows other relays hold locked: those are the ones to wait behind.
        let unsent_of_keys: Vec<(i64, i64)> = sqlx::query_as(KEY_ORDER_SQL)
            .bind(&keys)
            .bind(last)
            .fetch_all(&mut *tx)
            .await
            .context("check per-key order")?;
        let batch = publishable(claimed, &unsent_of_keys);
        if batch.is_empty() {
            return Ok(0);
        }
        publisher.publish(&batch).await?;
        let ids: Vec<i64> = batch.iter().map(|r| r.id.0).collect();
        sqlx::query("UPDATE outbox SET sent_at = $1 WHERE id = ANY($2)")
            .bind(now_millis())
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .context("mark outbox rows sent")?;
        tx.commit().await.context("commit relay batch")?;
        Ok(batch.len())
    }

    async fn backlog(&self) -> anyhow::Result<Backlog> {
        let (unsent, oldest): (i64, Option<i64>) = sqlx::query_as(BACKLOG_SQL)
            .fetch_one(&mut *self.gate.acquire().await?)
            .await
            .context("outbox backlog")?;
        Ok(Backlog {
            unsent: u64::try_from(unsent).unwrap_or(0),
            oldest_created_at: oldest,
        })
    }

    async fn append(&self, events: &[EventRecord]) -> anyhow::Result<()> {
        let mut tx = self.gate.begin().await.context("begin append events")?;
        for event in events {
            write_event(&mut tx, event).await?;
        }
        tx.commit().await.context("commit append events")?;
        self.outbox_signal.notify_one();
        Ok(())
    }

    async fn prune_sent(&self, before: UnixMillis) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(before)
            .execute(&mut *self.gate.acquire().await?)
            .await
            .context("prune outbox")?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl ProcessedEvents for PgStore {
    async fn mark_processed(&self, consumer: &str, event_id: Id) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id.0)
        .bind(now_millis())
        .execute(&mut *self.gate.acquire().await?)
        .await
        .context("record processed event")?;
        Ok(done.rows_affected() == 1)
    }

    async fn prune_processed(&self, before: UnixMillis) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM processed_events WHERE processed_at < $1")
            .bind(before)
            .execute(&mut *self.gate.acquire().await?)
            .await
            .context("prune processed events")?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, key: i64) -> EventRecord {
        EventRecord {
            id: Id(id),
            topic: nova_events::Topic::Feed,
            key: Id(key),
            payload: Vec::new(),
            created_at: 0,
        }
    }

    #[test]
    fn keeps_per_key_order_behind_foreign_claims() {
        // Key 1: rows 1 (foreign) and 3 (mine) → 3 waits. Key 2: rows 2, 4 mine → both go.
        // Key 5: row 5 mine, row 6 foreign but later → 5 goes.
        let claimed = vec![rec(2, 2), rec(3, 1), rec(4, 2), rec(5, 5)];
        let unsent = [(1, 1), (1, 3), (2, 2), (2, 4), (5, 5), (5, 6)];
        let ids: Vec<i64> = publishable(claimed, &unsent)
            .iter()
            .map(|r| r.id.0)
            .collect();
        assert_eq!(ids, vec![2, 4, 5]);
    }
}
