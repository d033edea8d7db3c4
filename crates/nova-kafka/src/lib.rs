//! The Kafka bus (documented in `docs/events-kafka.md`): the outbox relay publishes through
//! [`KafkaPublisher`] (idempotent producer, `acks=all`, returns once every message of a batch
//! is acknowledged) and [`KafkaBus`] runs one consumer loop per `nova_bus::Consumer`.
//!
//! Topics are `{prefix}feed.events`, `{prefix}messaging.events` and
//! `{prefix}notification.events`, keyed by the envelope key (decimal id) so events of one key
//! stay ordered in one partition. Durable handlers share a consumer group per handler
//! (`{prefix}nova-{handler}`): one node applies each event, and a message's offset is stored
//! for commit only after its effect. Live handlers get a group per node and start
//! (`{prefix}nova-live-{node}-{suffix}`, newest events only), so every node sees every event.
//! Messages that do not decode (or carry an unknown version) go to `{topic}.dlq` with the
//! error in a header, are counted, and consumption goes on.

mod admin;
mod consumer;
mod publisher;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nova_bus::Consumer;
use nova_events::Topic;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::Topics;
pub use publisher::KafkaPublisher;

/// Header names Nova writes on every message (and on dead letters).
pub mod headers {
    pub const EVENT_ID: &str = "nova-event-id";
    pub const EVENT_TYPE: &str = "nova-event-type";
    pub const EVENT_VERSION: &str = "nova-event-version";
    /// On dead letters: why the message could not be consumed.
    pub const DLQ_ERROR: &str = "nova-dlq-error";
    pub const DLQ_CONSUMER: &str = "nova-dlq-consumer";
    pub const DLQ_SOURCE: &str = "nova-dlq-source";
}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port,...`.
    pub brokers: String,
    /// Prefix of every topic and consumer group name.
    pub prefix: String,
    /// This node's id: part of the live handlers' group names.
    pub node_id: u16,
    /// Partitions of topics Nova creates.
    pub partitions: i32,
    /// Replication factor of topics Nova creates.
    pub replication: i32,
    /// How long the producer keeps retrying one message before the batch fails (and the relay
    /// retries it later).
    pub message_timeout: Duration,
    /// How often stored offsets are committed.
    pub commit_interval: Duration,
    /// Longest wait between two attempts to deliver an event whose handler failed.
    pub max_retry_backoff: Duration,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>, prefix: impl Into<String>, node_id: u16) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            prefix: prefix.into(),
            node_id,
            partitions: 3,
            replication: 1,
            message_timeout: Duration::from_secs(30),
            commit_interval: Duration::from_secs(1),
            max_retry_backoff: Duration::from_secs(5),
        }
    }

    /// `{prefix}{topic}`.
    pub fn topic_name(&self, topic: Topic) -> String {
        format!("{}{}", self.prefix, topic.name())
    }

    /// `{prefix}{topic}.dlq`.
    pub fn dead_letter_topic(&self, topic: Topic) -> String {
        format!("{}{}.dlq", self.prefix, topic.name())
    }

    /// The consumer group of a durable handler.
    pub fn durable_group(&self, handler: &str) -> String {
        format!("{}nova-{handler}", self.prefix)
    }
}

/// Counters of this bus since it started (the same events are also exported as metrics).
#[derive(Debug, Default)]
pub struct BusStats {
    /// Messages handed to a consumer (including redeliveries).
    pub received: AtomicU64,
    /// Deliveries whose handler failed (each retried).
    pub handler_failures: AtomicU64,
    /// Messages parked on a dead-letter topic.
    pub dead_lettered: AtomicU64,
}

impl BusStats {
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    pub fn handler_failures(&self) -> u64 {
        self.handler_failures.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
}

/// The consumer side of the Kafka bus for one node, not yet running.
pub struct KafkaBus {
    settings: KafkaSettings,
    consumers: Vec<Arc<Consumer>>,
    topics: Arc<Topics>,
    dead_letters: KafkaPublisher,
    stats: Arc<BusStats>,
}

/// The running consumer loops.
pub struct RunningBus {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<BusStats>,
}

impl KafkaBus {
    pub fn new(settings: KafkaSettings, consumers: Vec<Arc<Consumer>>) -> anyhow::Result<Self> {
        let topics = Arc::new(Topics::new(&settings)?);
        let dead_letters = KafkaPublisher::with_topics(&settings, topics.clone())?;
        Ok(KafkaBus {
            settings,
            consumers,
            topics,
            dead_letters,
            stats: Arc::new(BusStats::default()),
        })
    }

    /// The publisher the relay drains the outbox into (shares this bus's topic creation).
    pub fn publisher(&self) -> anyhow::Result<KafkaPublisher> {
        KafkaPublisher::with_topics(&self.settings, self.topics.clone())
    }

    pub fn stats(&self) -> Arc<BusStats> {
        self.stats.clone()
    }

    /// Spawns one consumer loop per consumer. Each first makes sure its topics exist (retrying
    /// while the broker is unreachable), then joins its group.
    pub fn start(self) -> RunningBus {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(consumer::Shared {
            settings: self.settings,
            topics: self.topics,
            dead_letters: self.dead_letters,
            stats: self.stats.clone(),
        });
        let tasks = self
            .consumers
            .into_iter()
            .map(|c| tokio::spawn(consumer::run(shared.clone(), c, stopped.clone())))
            .collect();
        RunningBus {
            stop,
            tasks,
            stats: self.stats,
        }
    }
}

impl RunningBus {
    pub fn stats(&self) -> Arc<BusStats> {
        self.stats.clone()
    }

    /// Asks every loop to stop (a delivery in progress finishes and its offset is committed)
    /// and waits up to `timeout` for them.
    pub async fn stop(self, timeout: Duration) {
        let _ = self.stop.send(true);
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "kafka consumers did not stop in time"
            );
        }
    }

    /// Kills the loops where they are, storing no further offsets (a crash, for fault tests),
    /// and waits until their consumers are dropped.
    pub async fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
        futures::future::join_all(self.tasks).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let settings = KafkaSettings::new("127.0.0.1:9092", "staging.", 7);
        assert_eq!(settings.topic_name(Topic::Feed), "staging.feed.events");
        assert_eq!(
            settings.dead_letter_topic(Topic::Messaging),
            "staging.messaging.events.dlq"
        );
        assert_eq!(
            settings.durable_group("notifications"),
            "staging.nova-notifications"
        );
        assert_eq!(settings.partitions, 3);
    }
}
