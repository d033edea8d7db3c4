//! The outbox as relays see it: rows come out oldest first and are marked sent only after the
//! publisher accepted them (a failed publish leaves them for the next round); on Postgres,
//! several relays draining one outbox at once publish every row exactly once and keep each
//! key's order (FOR UPDATE SKIP LOCKED plus the per-key guard).
//!
//! The Postgres part runs when `TEST_DATABASE=postgres` (CI sets it).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nova_core::Id;
use nova_db::{PgStore, PostgresSettings, SqliteSettings, SqliteStore, Synchronous};
use nova_events::{DomainEvent, Envelope, EventRecord, OutboxStore, Publisher};

/// Records what it was given, in order, across every relay sharing it.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<(usize, Id, Id)>>,
    fail: std::sync::atomic::AtomicBool,
}

struct RelayPublisher {
    relay: usize,
    shared: Arc<Recorder>,
}

#[async_trait]
impl Publisher for RelayPublisher {
    async fn publish(&self, batch: &[EventRecord]) -> anyhow::Result<()> {
        if self.shared.fail.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("broker down");
        }
        // Yield so that relays interleave.
        tokio::task::yield_now().await;
        let mut log = self.shared.log.lock().expect("log");
        log.extend(batch.iter().map(|r| (self.relay, r.id, r.key)));
        Ok(())
    }
}

fn events(count: i64, keys: i64) -> Vec<EventRecord> {
    (1..=count)
        .map(|i| {
            Envelope::new(
                Id(1_000 + i),
                i,
                DomainEvent::UserFollowed {
                    follower_id: Id(1 + i % keys),
                    followee_id: Id(999),
                },
            )
            .record()
        })
        .collect()
}

async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&SqliteSettings {
        path: dir.path().join("nova.db"),
        max_read_connections: 4,
        busy_timeout_ms: 5_000,
        acquire_timeout_ms: 5_000,
        synchronous: Synchronous::Normal,
        reject_above_ratio: 1.0,
        saturation_grace_ms: 0,
    })
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    (store, dir)
}

#[tokio::test]
async fn rows_leave_oldest_first_and_only_a_successful_publish_marks_them_sent() {
    let (store, _dir) = sqlite().await;
    let all = events(25, 3);
    store.append(&all).await.expect("append");
    assert_eq!(store.backlog().await.expect("backlog").unsent, 25);

    let shared = Arc::new(Recorder::default());
    let publisher = RelayPublisher {
        relay: 0,
        shared: shared.clone(),
    };
    shared.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(store.relay_batch(10, &publisher).await.is_err());
    let backlog = store.backlog().await.expect("backlog");
    assert_eq!(backlog.unsent, 25, "a failed publish marks nothing sent");
    assert_eq!(backlog.oldest_created_at, Some(1));

    shared
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut rounds = 0;
    while store.relay_batch(10, &publisher).await.expect("relay") > 0 {
        rounds += 1;
    }
    assert_eq!(rounds, 3);
    let published: Vec<Id> = shared
        .log
        .lock()
        .expect("log")
        .iter()
        .map(|e| e.1)
        .collect();
    let expected: Vec<Id> = all.iter().map(|r| r.id).collect();
    assert_eq!(published, expected);
    assert_eq!(store.backlog().await.expect("backlog").unsent, 0);
    // Sent rows are pruned once old enough.
    assert_eq!(store.prune_sent(i64::MAX).await.expect("prune"), 25);
    store.close().await;
}

#[tokio::test]
async fn concurrent_relays_on_postgres_publish_each_row_once_in_per_key_order() {
    let Some(url) = nova_db::postgres::test_database_url("outbox") else {
        eprintln!("skipping concurrent relays: set TEST_DATABASE=postgres to run it");
        return;
    };
    PgStore::create_database_if_missing(&url)
        .await
        .expect("create database");
    let open = || async {
        PgStore::open(&PostgresSettings {
            url: url.clone(),
            max_connections: 4,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
            reject_above_ratio: 1.0,
            saturation_grace_ms: 0,
        })
        .await
        .expect("open")
    };
    let first = open().await;
    first.migrate().await.expect("migrate");
    let all = events(3_000, 40);
    for chunk in all.chunks(500) {
        first.append(chunk).await.expect("append");
    }
    let shared = Arc::new(Recorder::default());
    let mut relays = Vec::new();
    for relay in 0..3 {
        // Each relay has its own pool, as each node would.
        let store = open().await;
        let shared = shared.clone();
        relays.push(tokio::spawn(async move {
            let publisher = RelayPublisher { relay, shared };
            let mut idle = 0;
            while idle < 3 {
                let n = store.relay_batch(37, &publisher).await.expect("relay");
                idle = if n == 0 { idle + 1 } else { 0 };
                if n == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            store.close().await;
        }));
    }
    for relay in relays {
        relay.await.expect("relay task");
    }
    let log = shared.log.lock().expect("log").clone();
    let mut ids: Vec<Id> = log.iter().map(|e| e.1).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "no row published twice");
    assert_eq!(ids.len(), all.len(), "every row published");
    let mut last_per_key = std::collections::HashMap::new();
    for (_, id, key) in &log {
        if let Some(prev) = last_per_key.insert(*key, *id) {
            assert!(prev < *id, "key {key:?}: {id:?} published after {prev:?}");
        }
    }
    let relays_used: std::collections::HashSet<usize> = log.iter().map(|e| e.0).collect();
    assert!(relays_used.len() > 1, "the relays shared the work");
    assert_eq!(first.backlog().await.expect("backlog").unsent, 0);
    first.close().await;
    PgStore::drop_database(&url).await.expect("drop database");
}
