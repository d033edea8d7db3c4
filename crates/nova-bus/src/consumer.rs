//! One event handler behind its idempotency guard.
//!
//! Every bus delivers at least once (a relay may crash between publishing and marking a row
//! sent; a Kafka consumer between its effect and its offset commit). The guard is two layers:
//! a bounded in-memory window of recently applied event ids (entries and TTL configurable, so
//! memory does not grow with the event rate) that absorbs most duplicates without touching
//! storage, and the handler's own durable record for effects that must never repeat, which
//! catches duplicates older than the window or arriving after a restart.

use std::sync::Arc;
use std::time::Duration;

use nova_events::{Envelope, EventHandler, Handled, HandlerKind, Topic};

#[derive(Debug, Clone, Copy)]
pub struct DedupSettings {
    pub max_entries: u64,
    pub ttl: Duration,
}

impl Default for DedupSettings {
    fn default() -> Self {
        DedupSettings {
            max_entries: 100_000,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Processed,
    /// Seen before (in the window, or by the handler's durable record): no second effect.
    Deduplicated,
    Ignored,
}

pub struct Consumer {
    handler: Arc<dyn EventHandler>,
    seen: moka::sync::Cache<i64, ()>,
}

impl Consumer {
    pub fn new(handler: Arc<dyn EventHandler>, dedup: DedupSettings) -> Self {
        Consumer {
            handler,
            seen: moka::sync::Cache::builder()
                .max_capacity(dedup.max_entries)
                .time_to_live(dedup.ttl)
                .build(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.handler.name()
    }

    pub fn kind(&self) -> HandlerKind {
        self.handler.kind()
    }

    pub fn wants(&self, topic: Topic) -> bool {
        self.handler.topics().contains(&topic)
    }

    pub fn topics(&self) -> &'static [Topic] {
        self.handler.topics()
    }

    /// Entries in the in-memory window (bounded by `max_entries`).
    pub fn window_len(&self) -> u64 {
        self.seen.run_pending_tasks();
        self.seen.entry_count()
    }

    /// Applies the event unless it was applied before. An error means "deliver again later".
    pub async fn deliver(&self, event: &Envelope) -> anyhow::Result<Delivery> {
        let name = self.handler.name();
        if self.seen.contains_key(&event.id.0) {
            metrics::counter!("kafka_event_deduplicated_total", "consumer" => name).increment(1);
            return Ok(Delivery::Deduplicated);
        }
        let started = std::time::Instant::now();
        let handled = match self.handler.handle(event).await {
            Ok(handled) => handled,
            Err(error) => {
                metrics::counter!("event_handler_failures_total", "consumer" => name).increment(1);
                return Err(error.context(format!("consumer {name}")));
            }
        };
        self.seen.insert(event.id.0, ());
        metrics::histogram!("event_handle_seconds", "consumer" => name)
            .record(started.elapsed().as_secs_f64());
        Ok(match handled {
            Handled::Applied => {
                metrics::counter!("event_processed_total", "consumer" => name).increment(1);
                Delivery::Processed
            }
            Handled::AlreadyApplied => {
                metrics::counter!("kafka_event_deduplicated_total", "consumer" => name)
                    .increment(1);
                Delivery::Deduplicated
            }
            Handled::Ignored => Delivery::Ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use nova_core::Id;
    use nova_events::DomainEvent;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting(AtomicU32);

    #[async_trait]
    impl EventHandler for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn topics(&self) -> &'static [Topic] {
            &[Topic::Feed]
        }
        fn kind(&self) -> HandlerKind {
            HandlerKind::Durable
        }
        async fn handle(&self, _event: &Envelope) -> anyhow::Result<Handled> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Handled::Applied)
        }
    }

    fn event(id: i64) -> Envelope {
        Envelope::new(
            Id(id),
            0,
            DomainEvent::UserFollowed {
                follower_id: Id(1),
                followee_id: Id(2),
            },
        )
    }

    #[tokio::test]
    async fn duplicates_inside_the_window_have_no_second_effect_and_memory_stays_bounded() {
        let handler = Arc::new(Counting(AtomicU32::new(0)));
        let consumer = Consumer::new(
            handler.clone(),
            DedupSettings {
                max_entries: 100,
                ttl: Duration::from_secs(60),
            },
        );
        assert_eq!(
            consumer.deliver(&event(1)).await.ok(),
            Some(Delivery::Processed)
        );
        assert_eq!(
            consumer.deliver(&event(1)).await.ok(),
            Some(Delivery::Deduplicated)
        );
        assert_eq!(handler.0.load(Ordering::SeqCst), 1);
        for id in 2..2_000 {
            consumer.deliver(&event(id)).await.expect("deliver");
        }
        assert!(
            consumer.window_len() <= 100,
            "window {}",
            consumer.window_len()
        );
    }
}
