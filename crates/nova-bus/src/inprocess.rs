//! The in-process bus, the embedded default: publishing a batch hands every event to every
//! consumer of its topic and returns once they all applied it, so the relay marks a row sent
//! only after its effects are done (the in-process equivalent of committing an offset after the
//! effect). Undecodable or unknown-version events are dead-lettered (counted and logged) and
//! skipped, so one bad row never blocks the ones behind it. Each consumer receives the batch's
//! events of its topics in one call (`Consumer::deliver_batch`).

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
        let mut events = Vec::with_capacity(batch.len());
        for record in batch {
            match Envelope::decode(&record.payload) {
                Ok(event) => events.push((record.topic, event)),
                Err(error) => {
                    metrics::counter!("event_dead_lettered_total", "topic" => record.topic.name())
                        .increment(1);
                    tracing::error!(event_id = %record.id, topic = record.topic.name(), %error, "dead-lettered event");
                }
            }
        }
        // Each consumer gets its events of the batch in one call (in outbox order), so a
        // durable one can apply them in one transaction; per-key order holds within it.
        let mut wanted = Vec::with_capacity(events.len());
        for consumer in &self.consumers {
            wanted.clear();
            wanted.extend(
                events
                    .iter()
                    .filter(|(topic, _)| consumer.wants(*topic))
                    .map(|(_, event)| event.clone()),
            );
            if !wanted.is_empty() {
                consumer.deliver_batch(&wanted).await?;
            }
        }
        let now = nova_core::now_millis();
        for (_, event) in &events {
            metrics::histogram!("event_publish_to_apply_seconds", "bus" => "in_process")
                .record((now - event.occurred_at).max(0) as f64 / 1000.0);
        }
        Ok(())
    }
}
