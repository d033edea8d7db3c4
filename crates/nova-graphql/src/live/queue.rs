//! One subscriber's bounded queue with pressure levels.
//!
//! The hub never waits for a subscriber: it offers each event with `try_send`; when the queue is
//! full the event is dropped and counted, and the subscriber's stream yields a "missed N events"
//! item before anything else, so the client knows to refetch instead of losing events silently.
//! Memory per subscriber is bounded by the capacity whatever the client does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// How full a subscriber's queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum QueuePressure {
    /// Below 75 % of the capacity.
    Normal,
    /// 75 % to 95 %.
    Warning,
    /// 95 % to 100 %.
    Critical,
    /// Events were dropped; `missedEvents` says how many.
    Overflowed,
}

impl QueuePressure {
    pub fn of(len: usize, capacity: usize) -> QueuePressure {
        let ratio = len as f64 / capacity.max(1) as f64;
        if ratio < 0.75 {
            QueuePressure::Normal
        } else if ratio < 0.95 {
            QueuePressure::Warning
        } else {
            QueuePressure::Critical
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QueuePressure::Normal => "normal",
            QueuePressure::Warning => "warning",
            QueuePressure::Critical => "critical",
            QueuePressure::Overflowed => "overflowed",
        }
    }
}

/// The hub's end of a queue.
pub(crate) struct QueueSender<T> {
    tx: mpsc::Sender<T>,
    dropped: Arc<AtomicU64>,
    capacity: usize,
    kind: &'static str,
}

/// What offering an event did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    Dropped,
    /// The subscriber is gone.
    Closed,
}

impl<T> QueueSender<T> {
    pub(crate) fn offer(&self, item: T) -> Offer {
        match self.tx.try_send(item) {
            Ok(()) => {
                let len = self.capacity - self.tx.capacity();
                metrics::histogram!("subscription_queue_fill_ratio", "kind" => self.kind)
                    .record(len as f64 / self.capacity.max(1) as f64);
                let level = QueuePressure::of(len, self.capacity);
                if level != QueuePressure::Normal {
                    metrics::counter!("subscription_queue_pressure_total", "kind" => self.kind, "level" => level.label()).increment(1);
                }
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("subscription_events_dropped_total", "kind" => self.kind)
                    .increment(1);
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

/// The subscriber's end.
pub(crate) struct QueueReceiver<T> {
    rx: mpsc::Receiver<T>,
    dropped: Arc<AtomicU64>,
    capacity: usize,
}

/// One item a subscriber receives.
pub(crate) enum Received<T> {
    Event(T, QueuePressure),
    Missed(u64),
}

impl<T> QueueReceiver<T> {
    /// The next item: a "missed" marker first if events were dropped since the last item.
    pub(crate) async fn next(&mut self) -> Option<Received<T>> {
        let missed = self.dropped.swap(0, Ordering::Relaxed);
        if missed > 0 {
            return Some(Received::Missed(missed));
        }
        let item = self.rx.recv().await?;
        let pressure = QueuePressure::of(self.rx.len() + 1, self.capacity);
        // Drops that happened while we waited are reported before the next event.
        Some(Received::Event(item, pressure))
    }
}

pub(crate) fn bounded<T>(
    capacity: usize,
    kind: &'static str,
) -> (QueueSender<T>, QueueReceiver<T>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        QueueSender {
            tx,
            dropped: dropped.clone(),
            capacity,
            kind,
        },
        QueueReceiver {
            rx,
            dropped,
            capacity,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_levels_follow_the_thresholds() {
        assert_eq!(QueuePressure::of(0, 100), QueuePressure::Normal);
        assert_eq!(QueuePressure::of(74, 100), QueuePressure::Normal);
        assert_eq!(QueuePressure::of(75, 100), QueuePressure::Warning);
        assert_eq!(QueuePressure::of(94, 100), QueuePressure::Warning);
        assert_eq!(QueuePressure::of(95, 100), QueuePressure::Critical);
        assert_eq!(QueuePressure::of(100, 100), QueuePressure::Critical);
    }

    #[tokio::test]
    async fn a_full_queue_drops_counts_and_reports_what_was_missed() {
        let (tx, mut rx) = bounded::<u32>(4, "test");
        for i in 0..10 {
            let offer = tx.offer(i);
            assert_eq!(offer, if i < 4 { Offer::Queued } else { Offer::Dropped });
        }
        assert!(matches!(rx.next().await, Some(Received::Missed(6))));
        let mut got = Vec::new();
        for _ in 0..4 {
            match rx.next().await {
                Some(Received::Event(i, _)) => got.push(i),
                _ => panic!("expected an event"),
            }
        }
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(tx.offer(99), Offer::Queued);
        assert!(matches!(
            rx.next().await,
            Some(Received::Event(99, QueuePressure::Normal))
        ));
        drop(rx);
        assert_eq!(tx.offer(100), Offer::Closed);
    }
}
