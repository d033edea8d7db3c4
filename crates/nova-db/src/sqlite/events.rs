//! The outbox and processed-event records on SQLite.
//!
//! One process owns an SQLite file, so one relay drains the outbox: it reads unsent rows in id
//! order through the read pool, publishes them and marks them sent through the writer.

use async_trait::async_trait;
use nova_core::{now_millis, Id, UnixMillis};
use nova_events::{Backlog, EventRecord, OutboxStore, ProcessedEvents, Publisher};

use super::SqliteStore;
use crate::error::DbContext as _;
use crate::rows::{record_from_row, OutboxRow};

/// Writes an event to the outbox inside the caller's transaction.
pub(crate) async fn write_event(
    conn: &mut sqlx::SqliteConnection,
    event: &EventRecord,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, topic, key, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
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

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn relay_batch(&self, limit: usize, publisher: &dyn Publisher) -> anyhow::Result<usize> {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, topic, key, payload, created_at FROM outbox WHERE sent_at IS NULL \
             ORDER BY id LIMIT ?1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("claim outbox rows")?;
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = rows
            .into_iter()
            .map(record_from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        publisher.publish(&batch).await?;
        let ids: Vec<Id> = batch.iter().map(|r| r.id).collect();
        sqlx::query("UPDATE outbox SET sent_at = ?1 WHERE id IN (SELECT value FROM json_each(?2))")
            .bind(now_millis())
            .bind(super::ids_json(&ids))
            .execute(&mut *self.writer.acquire().await?)
            .await
            .context("mark outbox rows sent")?;
        Ok(batch.len())
    }

    async fn backlog(&self) -> anyhow::Result<Backlog> {
        let (unsent, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&mut *self.reader.acquire().await?)
                .await
                .context("outbox backlog")?;
        Ok(Backlog {
            unsent: u64::try_from(unsent).unwrap_or(0),
            oldest_created_at: oldest,
        })
    }

    async fn append(&self, events: &[EventRecord]) -> anyhow::Result<()> {
        let mut tx = self.writer.begin().await.context("begin append events")?;
        for event in events {
            write_event(&mut tx, event).await?;
        }
        tx.commit().await.context("commit append events")?;
        self.outbox_signal.notify_one();
        Ok(())
    }

    async fn prune_sent(&self, before: UnixMillis) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?1")
            .bind(before)
            .execute(&mut *self.writer.acquire().await?)
            .await
            .context("prune outbox")?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl ProcessedEvents for SqliteStore {
    async fn mark_processed(&self, consumer: &str, event_id: Id) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id.0)
        .bind(now_millis())
        .execute(&mut *self.writer.acquire().await?)
        .await
        .context("record processed event")?;
        Ok(done.rows_affected() == 1)
    }

    async fn prune_processed(&self, before: UnixMillis) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM processed_events WHERE processed_at < ?1")
            .bind(before)
            .execute(&mut *self.writer.acquire().await?)
            .await
            .context("prune processed events")?;
        Ok(done.rows_affected())
    }
}
