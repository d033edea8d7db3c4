//! Wiring of the event path: the outbox of the chosen storage, the bus chosen by `events.bus`,
//! the consumers, and the relay between them.

use std::sync::Arc;
use std::time::Duration;

use nova_bus::{Consumer, DedupSettings, InProcessBus, Relay, RelaySettings};
use nova_events::{EventHandler, OutboxStore, ProcessedEvents, Publisher};

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
}

pub fn build(
    settings: &EventsSettings,
    storage: &Storage,
    handlers: Vec<Arc<dyn EventHandler>>,
) -> anyhow::Result<EventRuntime> {
    let dedup = DedupSettings {
        max_entries: settings.dedup_max_entries,
        ttl: Duration::from_secs(settings.dedup_ttl_secs),
    };
    let consumers: Vec<Arc<Consumer>> = handlers
        .into_iter()
        .map(|h| Arc::new(Consumer::new(h, dedup)))
        .collect();
    let publisher: Arc<dyn Publisher> = match settings.bus {
        BusKind::InProcess => Arc::new(InProcessBus::new(consumers)),
        BusKind::Kafka => anyhow::bail!("events.bus = \"kafka\" is not available in this build"),
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
            },
        },
    })
}
