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
        let mut delivered = self.deliver_batch(std::slice::from_ref(event)).await?;
        delivered
            .pop()
            .ok_or_else(|| anyhow::anyhow!("consumer {}: no outcome", self.handler.name()))
    }

    /// Applies a batch of events, in order, with one call of the handler's `handle_batch`:
    /// events in the window, and repeats of an event earlier in the same batch, are left out
    /// (`Deduplicated`) before the handler sees them. Returns one outcome per event. An error
    /// means "deliver the batch again later": nothing of it enters the window, so the handler's
    /// durable record decides about the events it did apply.
    pub async fn deliver_batch(&self, events: &[Envelope]) -> anyhow::Result<Vec<Delivery>> {
        let name = self.handler.name();
        let mut outcomes: Vec<Option<Delivery>> = vec![None; events.len()];
        let mut fresh = Vec::with_capacity(events.len());
        let mut fresh_at = Vec::with_capacity(events.len());
        let mut in_batch = std::collections::HashSet::with_capacity(events.len());
        for (at, event) in events.iter().enumerate() {
            if self.seen.contains_key(&event.id.0) || !in_batch.insert(event.id.0) {
                metrics::counter!("kafka_event_deduplicated_total", "consumer" => name)
                    .increment(1);
                outcomes[at] = Some(Delivery::Deduplicated);
            } else {
                fresh.push(event.clone());
                fresh_at.push(at);
            }
        }
        if !fresh.is_empty() {
            let started = std::time::Instant::now();
            let handled = match self.handler.handle_batch(&fresh).await {
                Ok(handled) => handled,
                Err(error) => {
                    metrics::counter!("event_handler_failures_total", "consumer" => name)
                        .increment(1);
                    return Err(error.context(format!("consumer {name}")));
                }
            };
            anyhow::ensure!(
                handled.len() == fresh.len(),
                "consumer {name}: {} outcomes for {} events",
                handled.len(),
                fresh.len()
            );
            // The batch's time shared among its events, so the histogram stays per event
            // whatever the batch size.
            let per_event = started.elapsed().as_secs_f64() / fresh.len() as f64;
            metrics::histogram!("event_batch_size", "consumer" => name).record(fresh.len() as f64);
            let (mut processed, mut deduplicated) = (0_u64, 0_u64);
            for ((event, handled), at) in fresh.iter().zip(handled).zip(fresh_at) {
                self.seen.insert(event.id.0, ());
                metrics::histogram!("event_handle_seconds", "consumer" => name).record(per_event);
                outcomes[at] = Some(match handled {
                    Handled::Applied => {
                        processed += 1;
                        Delivery::Processed
                    }
                    Handled::AlreadyApplied => {
                        deduplicated += 1;
                        Delivery::Deduplicated
                    }
                    Handled::Ignored => Delivery::Ignored,
                });
            }
            metrics::counter!("event_processed_total", "consumer" => name).increment(processed);
            metrics::counter!("kafka_event_deduplicated_total", "consumer" => name)
                .increment(deduplicated);
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Delivery::Deduplicated))
            .collect())
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

    /// Records every batch it is handed; applies each id once (a durable record of its own).
    #[derive(Default)]
    struct Batches {
        calls: std::sync::Mutex<Vec<Vec<i64>>>,
        applied: std::sync::Mutex<std::collections::HashSet<i64>>,
    }

    #[async_trait]
    impl EventHandler for Batches {
        fn name(&self) -> &'static str {
            "batches"
        }
        fn topics(&self) -> &'static [Topic] {
            &[Topic::Feed]
        }
        fn kind(&self) -> HandlerKind {
            HandlerKind::Durable
        }
        async fn handle(&self, event: &Envelope) -> anyhow::Result<Handled> {
            Ok(self.handle_batch(std::slice::from_ref(event)).await?[0])
        }
        async fn handle_batch(&self, events: &[Envelope]) -> anyhow::Result<Vec<Handled>> {
            let ids: Vec<i64> = events.iter().map(|e| e.id.0).collect();
            self.calls.lock().expect("calls").push(ids.clone());
            let mut applied = self.applied.lock().expect("applied");
            Ok(ids
                .into_iter()
                .map(|id| {
                    if applied.insert(id) {
                        Handled::Applied
                    } else {
                        Handled::AlreadyApplied
                    }
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn a_batch_reaches_the_handler_once_without_window_hits_or_inner_duplicates() {
        let handler = Arc::new(Batches::default());
        let consumer = Consumer::new(handler.clone(), DedupSettings::default());
        assert_eq!(
            consumer.deliver(&event(1)).await.ok(),
            Some(Delivery::Processed)
        );
        let batch = [event(1), event(2), event(3), event(2), event(4)];
        let delivered = consumer.deliver_batch(&batch).await.expect("batch");
        assert_eq!(
            delivered,
            [
                Delivery::Deduplicated,
                Delivery::Processed,
                Delivery::Processed,
                Delivery::Deduplicated,
                Delivery::Processed,
            ]
        );
        assert_eq!(
            *handler.calls.lock().expect("calls"),
            [vec![1], vec![2, 3, 4]],
            "one handler call per batch, window hits and repeats left out"
        );
        // Delivered again (a relay retry): all in the window, the handler is not called.
        let again = consumer.deliver_batch(&batch).await.expect("again");
        assert!(
            again.iter().all(|d| *d == Delivery::Deduplicated),
            "{again:?}"
        );
        assert_eq!(handler.calls.lock().expect("calls").len(), 2);
    }

    #[tokio::test]
    async fn beyond_the_window_the_durable_record_decides() {
        let handler = Arc::new(Batches::default());
        let consumer = Consumer::new(
            handler.clone(),
            DedupSettings {
                max_entries: 100,
                ttl: Duration::from_secs(60),
            },
        );
        consumer.deliver(&event(7)).await.expect("first");
        // A restarted node: a new window, the same durable record.
        let restarted = Consumer::new(handler.clone(), DedupSettings::default());
        let delivered = restarted
            .deliver_batch(&[event(7), event(8)])
            .await
            .expect("batch");
        assert_eq!(delivered, [Delivery::Deduplicated, Delivery::Processed]);
        assert_eq!(handler.applied.lock().expect("applied").len(), 2);
    }

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
