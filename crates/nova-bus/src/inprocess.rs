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
            if wanted.is_empty() {
                continue;
            }
            if consumer.kind() == nova_events::HandlerKind::Live {
                // A live consumer's effect is in memory (subscriber queues): nothing to save
                // by batching, and a whole batch pushed at once could overrun small subscriber
                // queues before their sockets run. One by one, yielding to those tasks.
                for event in &wanted {
                    consumer.deliver(event).await?;
                    tokio::task::yield_now().await;
                }
            } else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DedupSettings;
    use nova_core::Id;
    use nova_events::{DomainEvent, EventHandler, Handled, HandlerKind, Topic};
    use std::sync::Mutex;

    /// Records the ids of every batch it is handed.
    struct Recorder(&'static [Topic], Mutex<Vec<Vec<i64>>>);

    #[async_trait]
    impl EventHandler for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn topics(&self) -> &'static [Topic] {
            self.0
        }
        fn kind(&self) -> HandlerKind {
            HandlerKind::Durable
        }
        async fn handle(&self, event: &Envelope) -> anyhow::Result<Handled> {
            Ok(self.handle_batch(std::slice::from_ref(event)).await?[0])
        }
        async fn handle_batch(&self, events: &[Envelope]) -> anyhow::Result<Vec<Handled>> {
            self.1
                .lock()
                .expect("calls")
                .push(events.iter().map(|e| e.id.0).collect());
            Ok(vec![Handled::Applied; events.len()])
        }
    }

    fn followed(id: i64) -> EventRecord {
        Envelope::new(
            Id(id),
            0,
            DomainEvent::UserFollowed {
                follower_id: Id(1),
                followee_id: Id(2),
            },
        )
        .record()
    }

    fn preferences(id: i64) -> EventRecord {
        Envelope::new(
            Id(id),
            0,
            DomainEvent::NotificationPreferencesChanged { user_id: Id(1) },
        )
        .record()
    }

    #[tokio::test]
    async fn each_consumer_gets_its_events_of_a_batch_in_one_call_in_order() {
        let feed = Arc::new(Recorder(&[Topic::Feed], Mutex::new(Vec::new())));
        let all = Arc::new(Recorder(&Topic::ALL, Mutex::new(Vec::new())));
        let bus = InProcessBus::new(vec![
            Arc::new(Consumer::new(feed.clone(), DedupSettings::default())),
            Arc::new(Consumer::new(all.clone(), DedupSettings::default())),
        ]);
        let mut broken = followed(3);
        broken.payload = b"not json".to_vec();
        let batch = [followed(1), preferences(2), broken, followed(4)];
        bus.publish(&batch).await.expect("publish");
        assert_eq!(*feed.1.lock().expect("feed"), [vec![1, 4]]);
        assert_eq!(
            *all.1.lock().expect("all"),
            [vec![1, 2, 4]],
            "the undecodable row is skipped, the rest delivered"
        );
    }
}
