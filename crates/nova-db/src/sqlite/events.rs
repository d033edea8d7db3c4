//! The outbox and processed-event records on SQLite.
//!
//! One process owns an SQLite file, so one relay drains the outbox: it reads unsent rows in id
//! order through the read pool, publishes them and marks them sent through the writer. Both
//! relay queries are served by the partial index `outbox_pending` (unsent rows only), so an idle
//! node's relay does not scan the table.

use async_trait::async_trait;
use nova_core::{now_millis, Id, UnixMillis};
use nova_events::{Backlog, EventRecord, OutboxStore, ProcessedEvents, Publisher};
use rusqlite::params;

use super::{all, execute, ids_json, one, SqliteStore, Tx};
use crate::error::DbContext as _;
use crate::rows::{outbox_row_from_sqlite, record_from_row};

/// Unsent rows, oldest first (?1 = limit).
pub(crate) const CLAIM_SQL: &str = "SELECT id, topic, key, payload, created_at FROM outbox \
     WHERE sent_at IS NULL ORDER BY id LIMIT ?1";

/// How many rows wait and since when.
pub(crate) const BACKLOG_SQL: &str =
    "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL";

/// Writes an event to the outbox inside the caller's transaction.
pub(crate) fn write_event(tx: &mut Tx<'_>, event: &EventRecord) -> anyhow::Result<()> {
    execute(
        tx,
        "INSERT INTO outbox (id, topic, key, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            event.id.0,
            event.topic.name(),
            event.key.0,
            event.payload,
            event.created_at
        ],
    )
    .context("write outbox event")?;
    tx.wrote_event();
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn relay_batch(&self, limit: usize, publisher: &dyn Publisher) -> anyhow::Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read(|conn| {
                all(conn, CLAIM_SQL, [limit], outbox_row_from_sqlite).context("claim outbox rows")
            })
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = rows
            .into_iter()
            .map(record_from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        publisher.publish(&batch).await?;
        let ids: Vec<Id> = batch.iter().map(|r| r.id).collect();
        let json = ids_json(&ids);
        let now = now_millis();
        self.write(move |tx| {
            execute(
                tx,
                "UPDATE outbox SET sent_at = ?1 WHERE id IN (SELECT value FROM json_each(?2))",
                params![now, json],
            )
            .context("mark outbox rows sent")
        })
        .await?;
        Ok(batch.len())
    }

    async fn backlog(&self) -> anyhow::Result<Backlog> {
        let (unsent, oldest): (i64, Option<i64>) = self
            .read(|conn| {
                one(conn, BACKLOG_SQL, [], |row| Ok((row.get(0)?, row.get(1)?)))
                    .context("outbox backlog")
            })
            .await?;
        Ok(Backlog {
            unsent: u64::try_from(unsent).unwrap_or(0),
            oldest_created_at: oldest,
        })
    }

    async fn append(&self, events: &[EventRecord]) -> anyhow::Result<()> {
        let events = events.to_vec();
        self.write(move |tx| {
            for event in &events {
                write_event(tx, event)?;
            }
            Ok(())
        })
        .await
    }

    async fn prune_sent(&self, before: UnixMillis) -> anyhow::Result<u64> {
        let deleted = self
            .write(move |tx| {
                execute(
                    tx,
                    "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?1",
                    [before],
                )
                .context("prune outbox")
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl ProcessedEvents for SqliteStore {
    async fn mark_processed(&self, consumer: &str, event_id: Id) -> anyhow::Result<bool> {
        let consumer = consumer.to_owned();
        let inserted = self
            .write(move |tx| {
                execute(
                    tx,
                    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    params![consumer, event_id.0, now_millis()],
                )
                .context("record processed event")
            })
            .await?;
        Ok(inserted == 1)
    }

    async fn prune_processed(&self, before: UnixMillis) -> anyhow::Result<u64> {
        let deleted = self
            .write(move |tx| {
                execute(
                    tx,
                    "DELETE FROM processed_events WHERE processed_at < ?1",
                    [before],
                )
                .context("prune processed events")
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::{BACKLOG_SQL, CLAIM_SQL};

    /// The query plan of `sql`, one line per step.
    fn plan(conn: &rusqlite::Connection, sql: &str, params: impl rusqlite::Params) -> String {
        let mut statement = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        let steps: Vec<String> = statement
            .query_map(params, |row| row.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows");
        steps.join("\n")
    }

    /// An idle relay polls twice a second: both of its queries must read the partial index of
    /// unsent rows, never the whole table.
    #[tokio::test]
    async fn the_relay_queries_read_the_pending_index_not_the_table() {
        let (_dir, store, conn) = super::super::testing::migrated().await;
        for (sql, plan) in [
            (CLAIM_SQL, plan(&conn, CLAIM_SQL, [100])),
            (BACKLOG_SQL, plan(&conn, BACKLOG_SQL, [])),
        ] {
            assert!(plan.contains("INDEX outbox_pending"), "{sql}\nplan: {plan}");
            assert!(
                !plan.lines().any(|step| step.trim() == "SCAN outbox"),
                "{sql} scans the table\nplan: {plan}"
            );
        }
        assert!(
            plan(&conn, BACKLOG_SQL, []).contains("COVERING INDEX outbox_pending"),
            "the backlog is answered from the index alone"
        );
        drop(conn);
        store.close().await;
    }
}
