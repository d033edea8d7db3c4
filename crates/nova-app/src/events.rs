//! Wiring of the event path: the outbox of the chosen storage, the bus chosen by `events.bus`,
//! the consumers, and the relay between them. With `bus = "kafka"` the relay publishes to Kafka
//! and this node's consumers run as Kafka consumer loops (`nova-kafka`, docs/events-kafka.md).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nova_bus::{Consumer, DedupSettings, InProcessBus, Relay, RelaySettings};
use nova_events::{EventHandler, OutboxStore, ProcessedEvents, Publisher};
use nova_kafka::{KafkaBus, KafkaSettings};

use crate::app::Storage;
use crate::settings::{BusKind, EventsSettings};

fn outbox_of(storage: &Storage) -> (Arc<dyn OutboxStore>, Arc<dyn ProcessedEvents>) {
    match storage {
        Storage::Sqlite(store) => (Arc::new(store.clone()), Arc::new(store.clone())),
        Storage::Postgres(store) => (Arc::new(store.clone()), Arc::new(store.clone())),
    }
}

fn signal_of(storage: &Storage) -> Arc<tokio::sync::Notify> {
    match storage {
        Storage::Sqlite(store) => store.outbox_signal(),
        Storage::Postgres(store) => store.outbox_signal(),
    }
}

/// The relay (and, for Kafka, the consumer loops) for this node, not yet running.
pub struct EventRuntime {
    pub relay: Relay,
    /// The Kafka consumer loops, when `bus = "kafka"`.
    pub kafka: Option<nova_kafka::KafkaBus>,
}

/// The running event path of a serving node.
pub struct RunningEvents {
    stop: tokio::sync::watch::Sender<bool>,
    relay: tokio::task::JoinHandle<()>,
    kafka: Option<nova_kafka::RunningBus>,
}

impl EventRuntime {
    /// Starts the consumer loops (Kafka) and the relay.
    pub fn start(self) -> RunningEvents {
        let kafka = self.kafka.map(nova_kafka::KafkaBus::start);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped));
        RunningEvents { stop, relay, kafka }
    }
}

impl RunningEvents {
    /// Stops the relay (a batch in flight finishes, or is published again after a restart:
    /// consumers dedup), then the consumer loops (each commits what it applied).
    pub async fn stop(self, timeout: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(timeout, self.relay).await.is_err() {
            tracing::warn!("outbox relay did not stop within {timeout:?}");
        }
        if let Some(kafka) = self.kafka {
            kafka.stop(timeout).await;
        }
    }
}

pub fn build(
    settings: &EventsSettings,
    storage: &Storage,
    handlers: Vec<Arc<dyn EventHandler>>,
    node_id: u16,
) -> anyhow::Result<EventRuntime> {
    let dedup = DedupSettings {
        max_entries: settings.dedup_max_entries,
        ttl: Duration::from_secs(settings.dedup_ttl_secs),
    };
    let consumers: Vec<Arc<Consumer>> = handlers
        .into_iter()
        .map(|h| Arc::new(Consumer::new(h, dedup)))
        .collect();
    let (publisher, kafka): (Arc<dyn Publisher>, _) = match settings.bus {
        BusKind::InProcess => (Arc::new(InProcessBus::new(consumers)), None),
        BusKind::Kafka => {
            let kafka = KafkaSettings::new(
                settings.kafka_brokers.clone(),
                settings.kafka_prefix.clone(),
                node_id,
            );
            let bus = KafkaBus::new(kafka, consumers).context("kafka bus")?;
            (
                Arc::new(bus.publisher().context("kafka producer")?),
                Some(bus),
            )
        }
    };
    let (outbox, processed) = outbox_of(storage);
    Ok(EventRuntime {
        relay: Relay {
            outbox,
            processed,
            publisher,
            signal: signal_of(storage),
            settings: RelaySettings {
                batch_size: settings.relay_batch_size,
                poll_interval: Duration::from_millis(settings.relay_poll_ms),
                max_backoff: Duration::from_secs(5),
                retention: Duration::from_secs(settings.retention_secs),
                crash_after_publish: settings.crash_after_publish,
                ..RelaySettings::default()
            },
        },
        kafka,
    })
}
