//! The in-process bus, the embedded default: publishing a batch hands every event to every
//! consumer of its topic and returns once they all applied it, so the relay marks a row sent
//! only after its effects are done (the in-process equivalent of committing an offset after the
//! effect). Undecodable or unknown-version events are dead-lettered (counted and logged) and
//! skipped, so one bad row never blocks the ones behind it.

use std::sync::Arc;

use async_trait::async_trait;
use nova_events::{Envelope, EventRecord, Publisher};

use crate::consumer::Consumer;

pub struct InProcessBus {
    consumers: Vec<Arc<Consumer>>,
}

impl InProcessBus {
    pub fn new(consumers: Vec<Arc<Consumer>>) -> Self {
        InProcessBus { consumers }
    }
}

#[async_trait]
impl Publisher for InProcessBus {
    async fn publish(&self, batch: &[EventRecord]) -> anyhow::Result<()> {
        for record in batch {
            let event = match Envelope::decode(&record.payload) {
                Ok(event) => event,
                Err(error) => {
                    metrics::counter!("event_dead_lettered_total", "topic" => record.topic.name())
                        .increment(1);
                    tracing::error!(event_id = %record.id, topic = record.topic.name(), %error, "dead-lettered event");
                    continue;
                }
            };
            for consumer in self.consumers.iter().filter(|c| c.wants(record.topic)) {
                consumer.deliver(&event).await?;
            }
            metrics::histogram!("event_publish_to_apply_seconds", "bus" => "in_process")
                .record((nova_core::now_millis() - event.occurred_at).max(0) as f64 / 1000.0);
        }
        Ok(())
    }
}
