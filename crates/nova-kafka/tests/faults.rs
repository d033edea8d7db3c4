//! Fault F2 against a broker of the test's own (`TEST_TANSU_BIN`): paused with SIGSTOP
//! while publishing (the producer waits and retries; nothing acknowledged is lost), and killed
//! with SIGKILL then restarted (the relay fails, keeps the rows unsent, and publishes them once
//! the broker is back). Skipped without `TEST_KAFKA_BROKERS`.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::OwnBroker;
use nova_bus::{Relay, RelaySettings};
use nova_core::{Id, UnixMillis};
use nova_events::{Backlog, EventRecord, OutboxStore, ProcessedEvents, Publisher, Topic};
use nova_kafka::{headers, KafkaPublisher};

fn ids_on_topic(brokers: &str, topic: &str, expected: usize) -> HashSet<String> {
    common::read_topic(brokers, topic, expected, Duration::from_secs(30))
        .iter()
        .filter_map(|m| common::header(m, headers::EVENT_ID))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_broker_paused_10s_while_publishing_loses_no_acknowledged_event() {
    if common::brokers("f2_broker_paused").is_none() {
        return;
    }
    let Some(broker) = OwnBroker::start("f2_broker_paused") else {
        return;
    };
    let mut settings = common::settings(&broker.brokers());
    settings.message_timeout = Duration::from_secs(60);
    let publisher = KafkaPublisher::new(&settings).expect("publisher");

    let started = Instant::now();
    let mut acked: Vec<Id> = Vec::new();
    let mut failures = 0;
    let mut slowest = Duration::ZERO;
    let mut acked_after_resume = 0;
    let (mut paused, mut resumed) = (false, false);
    let mut next = 10_000;
    while started.elapsed() < Duration::from_secs(16) {
        if !paused && started.elapsed() >= Duration::from_secs(2) {
            broker.signal("STOP");
            paused = true;
        }
        let batch: Vec<_> = (0..10)
            .map(|i| common::followed(next + i, 1 + i % 4))
            .collect();
        next += 10;
        let records = common::records(&batch);
        // Like the relay: a failed batch is published again until it is acknowledged.
        loop {
            let pausing = tokio::spawn({
                let publisher = publisher.clone();
                let records = records.clone();
                async move {
                    let t = Instant::now();
                    (publisher.publish(&records).await, t.elapsed())
                }
            });
            // Resume the broker 10 s after pausing it, even while a publish is waiting.
            let resume_at = Duration::from_secs(12);
            if paused && !resumed {
                let left = resume_at.saturating_sub(started.elapsed());
                tokio::time::sleep(left).await;
                broker.signal("CONT");
                resumed = true;
            }
            let (result, took) = pausing.await.expect("publish task");
            slowest = slowest.max(took);
            match result {
                Ok(()) => break,
                Err(error) => {
                    failures += 1;
                    eprintln!("publish failed (retrying): {error:#}");
                    assert!(failures < 20, "publisher does not recover");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if resumed {
            acked_after_resume += 1;
        }
        acked.extend(batch.iter().map(|e| e.id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "the broker was paused and resumed");
    assert!(
        slowest >= Duration::from_secs(5),
        "a publish waited through the pause ({slowest:?})"
    );
    assert!(acked_after_resume >= 2, "publishing recovered by itself");
    let on_topic = ids_on_topic(
        &broker.brokers(),
        &settings.topic_name(Topic::Feed),
        acked.len(),
    );
    let lost: Vec<_> = acked
        .iter()
        .filter(|id| !on_topic.contains(&id.to_string()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    println!(
        "f2 pause: {} events acknowledged, {failures} failed attempts, slowest publish {slowest:?}",
        acked.len()
    );
}

/// An in-memory outbox: rows are marked sent only when the publisher returned Ok.
#[derive(Default)]
struct MemoryOutbox {
    rows: Mutex<Vec<(EventRecord, bool)>>,
    failed_batches: Mutex<u32>,
}

impl MemoryOutbox {
    fn push(&self, record: EventRecord) {
        self.rows.lock().expect("rows").push((record, false));
    }
    fn sent(&self) -> HashMap<Id, bool> {
        self.rows
            .lock()
            .expect("rows")
            .iter()
            .map(|(r, sent)| (r.id, *sent))
            .collect()
    }
}

#[async_trait]
impl OutboxStore for MemoryOutbox {
    async fn relay_batch(&self, limit: usize, publisher: &dyn Publisher) -> anyhow::Result<usize> {
        let batch: Vec<EventRecord> = self
            .rows
            .lock()
            .expect("rows")
            .iter()
            .filter(|(_, sent)| !sent)
            .take(limit)
            .map(|(r, _)| r.clone())
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(error) = publisher.publish(&batch).await {
            *self.failed_batches.lock().expect("failed") += 1;
            eprintln!("relay batch failed: {error:#}");
            return Err(error);
        }
        let ids: HashSet<Id> = batch.iter().map(|r| r.id).collect();
        for (record, sent) in self.rows.lock().expect("rows").iter_mut() {
            if ids.contains(&record.id) {
                *sent = true;
            }
        }
        Ok(batch.len())
    }
    async fn backlog(&self) -> anyhow::Result<Backlog> {
        Ok(Backlog::default())
    }
    async fn append(&self, events: &[EventRecord]) -> anyhow::Result<()> {
        for event in events {
            self.push(event.clone());
        }
        Ok(())
    }
    async fn prune_sent(&self, _before: UnixMillis) -> anyhow::Result<u64> {
        Ok(0)
    }
}

#[async_trait]
impl ProcessedEvents for MemoryOutbox {
    async fn mark_processed(&self, _consumer: &str, _event_id: Id) -> anyhow::Result<bool> {
        Ok(true)
    }
    async fn prune_processed(&self, _before: UnixMillis) -> anyhow::Result<u64> {
        Ok(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_broker_killed_and_restarted_the_relay_keeps_rows_unsent_until_acknowledged() {
    if common::brokers("f2_broker_killed").is_none() {
        return;
    }
    let Some(mut broker) = OwnBroker::start("f2_broker_killed") else {
        return;
    };
    let mut settings = common::settings(&broker.brokers());
    settings.message_timeout = Duration::from_secs(2);
    let publisher = Arc::new(KafkaPublisher::new(&settings).expect("publisher"));
    let outbox = Arc::new(MemoryOutbox::default());
    let signal = Arc::new(tokio::sync::Notify::new());
    let relay = Relay {
        outbox: outbox.clone(),
        processed: outbox.clone(),
        publisher,
        signal: signal.clone(),
        settings: RelaySettings {
            batch_size: 50,
            poll_interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..RelaySettings::default()
        },
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(relay.run(stopped));

    let before: Vec<_> = (0..5).map(|i| common::followed(20_000 + i, 1)).collect();
    for e in &before {
        outbox.push(e.record());
    }
    signal.notify_one();
    common::wait_until(
        Duration::from_secs(30),
        "rows sent while the broker is up",
        || outbox.sent().values().all(|s| *s),
    )
    .await;

    broker.kill();
    let during: Vec<_> = (0..5).map(|i| common::followed(20_100 + i, 2)).collect();
    for e in &during {
        outbox.push(e.record());
    }
    signal.notify_one();
    common::wait_until(
        Duration::from_secs(30),
        "failed publishes while down",
        || *outbox.failed_batches.lock().expect("failed") >= 1,
    )
    .await;
    let sent = outbox.sent();
    assert!(
        during.iter().all(|e| !sent[&e.id]),
        "nothing is marked sent while the broker is down"
    );

    broker.restart();
    common::wait_until(
        Duration::from_secs(60),
        "rows sent after the restart",
        || outbox.sent().values().all(|s| *s),
    )
    .await;
    // The restarted broker kept nothing (memory storage); what the relay marked sent since
    // must all be there.
    let on_topic = ids_on_topic(
        &broker.brokers(),
        &settings.topic_name(Topic::Feed),
        during.len(),
    );
    for e in &during {
        assert!(
            on_topic.contains(&e.id.to_string()),
            "event {} marked sent but not on the broker",
            e.id
        );
    }
    let _ = stop.send(true);
    relay.await.expect("relay stops");
}
