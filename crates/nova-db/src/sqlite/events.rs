//! The outbox and processed-event records on SQLite.
//!
//! One process owns an SQLite file, so one relay drains the outbox: it reads unsent rows in id
//! order through the read pool, publishes them and marks them sent through the writer. Both
//! relay queries read the partial index `outbox_pending` (unsent rows only), so an idle node's
//! relay does not scan the table. They name it (`INDEXED BY`): statistics taken while most rows
//! were unsent (`nova-bench seed` runs ANALYZE on a full outbox) made the planner prefer
//! `SCAN outbox` once most rows were sent, and nothing analyzes again. With the index named the
//! plan no longer depends on statistics; SQLite fails the statement instead of scanning if the
//! index ever could not serve it.

use async_trait::async_trait;
use nova_core::{now_millis, Id, UnixMillis};
use nova_events::{Backlog, EventRecord, OutboxStore, ProcessedEvents, Publisher};
use rusqlite::params;

use super::{all, execute, ids_json, one, SqliteStore, Tx};
use crate::error::DbContext as _;
use crate::rows::{outbox_row_from_sqlite, record_from_row};

/// Unsent rows, oldest first (?1 = limit).
pub(crate) const CLAIM_SQL: &str = "SELECT id, topic, key, payload, created_at \
     FROM outbox INDEXED BY outbox_pending WHERE sent_at IS NULL ORDER BY id LIMIT ?1";

/// How many rows wait and since when.
pub(crate) const BACKLOG_SQL: &str = "SELECT COUNT(*), MIN(created_at) \
     FROM outbox INDEXED BY outbox_pending WHERE sent_at IS NULL";

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
    use nova_core::Id;
    use nova_events::{EventRecord, OutboxStore, Publisher};
    use nova_notifications::model::upserted_event;

    use super::{execute, BACKLOG_SQL, CLAIM_SQL};

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

    /// Records every published id.
    #[derive(Default)]
    struct Recording(std::sync::Mutex<Vec<Id>>);

    #[async_trait::async_trait]
    impl Publisher for Recording {
        async fn publish(&self, batch: &[EventRecord]) -> anyhow::Result<()> {
            self.0
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .extend(batch.iter().map(|r| r.id));
            Ok(())
        }
    }

    /// An idle relay polls every few seconds: both of its queries must read the partial index of
    /// unsent rows, never the whole table, whatever the statistics say. These are the seeded
    /// database's: ANALYZE taken while every row was unsent, then most rows sent, with which
    /// the planner scanned the table before the queries named the index.
    #[tokio::test]
    async fn the_relay_queries_read_the_pending_index_whatever_the_statistics() {
        const ROWS: i64 = 2_000;
        const UNSENT: i64 = 20;
        let (dir, store, _conn) = super::super::testing::migrated().await;
        let events: Vec<EventRecord> = (1..=ROWS)
            .map(|id| upserted_event(Id(id), id, Id(1), Id(id)))
            .collect();
        store.append(&events).await.expect("append");
        store
            .write(|tx| {
                execute(tx, "ANALYZE", [])?;
                execute(
                    tx,
                    "UPDATE outbox SET sent_at = 1 WHERE id <= ?1",
                    [ROWS - UNSENT],
                )?;
                Ok(())
            })
            .await
            .expect("analyze, then send most");

        // A connection opened now plans with those statistics, like a node started on the
        // seeded file.
        let conn = rusqlite::Connection::open_with_flags(
            dir.path().join("nova.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open");
        let stale: String = conn
            .query_row(
                "SELECT stat FROM sqlite_stat1 WHERE idx = 'outbox_pending'",
                [],
                |row| row.get(0),
            )
            .expect("statistics of the index");
        assert!(stale.starts_with(&format!("{ROWS} ")), "{stale}");
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

        // The queries themselves, through the adapter.
        let backlog = store.backlog().await.expect("backlog");
        assert_eq!(backlog.unsent, u64::try_from(UNSENT).expect("small"));
        assert_eq!(backlog.oldest_created_at, Some(ROWS - UNSENT + 1));
        let published = Recording::default();
        assert_eq!(
            store.relay_batch(100, &published).await.expect("relay"),
            usize::try_from(UNSENT).expect("small")
        );
        let ids = published.0.lock().expect("ids").clone();
        assert_eq!(ids, (ROWS - UNSENT + 1..=ROWS).map(Id).collect::<Vec<_>>());
        assert_eq!(store.backlog().await.expect("backlog").unsent, 0);
        assert_eq!(store.relay_batch(100, &published).await.expect("idle"), 0);
        drop(conn);
        store.close().await;
    }
}
