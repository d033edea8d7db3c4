//! Ports of the event path: the outbox a relay drains, the publisher it drains into, and the
//! handlers that consume events.

use async_trait::async_trait;
use nova_core::{Id, UnixMillis};

use crate::{Envelope, EventRecord, Topic};

/// Publishes a batch of outbox rows. Returns only once every row is accepted by the bus (for
/// the in-process bus: once every durable consumer applied it); an error means "retry the
/// batch", which consumers absorb through idempotency.
#[async_trait]
pub trait Publisher: Send + Sync {
    async fn publish(&self, batch: &[EventRecord]) -> anyhow::Result<()>;
}

/// Unsent outbox rows and how old the oldest is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub unsent: u64,
    pub oldest_created_at: Option<UnixMillis>,
}

/// The outbox table, seen from the relay.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` unsent rows (oldest first, never two relays the same row, never a
    /// row ahead of an earlier unsent row of the same key), hands them to `publisher` and marks
    /// them sent if it succeeded. Returns how many rows were published.
    async fn relay_batch(&self, limit: usize, publisher: &dyn Publisher) -> anyhow::Result<usize>;
    async fn backlog(&self) -> anyhow::Result<Backlog>;
    /// Writes events with no change of their own (replays, tools, tests) in one transaction.
    async fn append(&self, events: &[EventRecord]) -> anyhow::Result<()>;
    /// Deletes rows sent before `before`; returns how many.
    async fn prune_sent(&self, before: UnixMillis) -> anyhow::Result<u64>;
}

/// Durable "consumer X applied event Y" records, for effects with no natural idempotency.
/// Handlers that write an effect usually record this in the effect's own transaction instead.
#[async_trait]
pub trait ProcessedEvents: Send + Sync {
    /// Records the event as processed by `consumer`; false if it already was.
    async fn mark_processed(&self, consumer: &str, event_id: Id) -> anyhow::Result<bool>;
    /// Deletes records older than `before`; returns how many.
    async fn prune_processed(&self, before: UnixMillis) -> anyhow::Result<u64>;
}

/// How a handler's deliveries are shared across nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    /// Its effect is stored: one node in the cluster applies each event (one consumer group),
    /// and offsets are committed only after the effect.
    Durable,
    /// Its effect is in this node's memory (live subscribers, caches): every node sees every
    /// event, from the time it started.
    Live,
}

/// What a handler did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Applied,
    /// Its durable record shows it was applied before: no second effect.
    AlreadyApplied,
    /// Not an event this handler acts on.
    Ignored,
}

#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Stable name, used for consumer groups, durable records and metric labels.
    fn name(&self) -> &'static str;
    fn topics(&self) -> &'static [Topic];
    fn kind(&self) -> HandlerKind;
    /// Applies the event. An error means "deliver again later".
    async fn handle(&self, event: &Envelope) -> anyhow::Result<Handled>;
    /// Applies a batch of events, in order, returning one outcome per event (same order and
    /// length). Buses hand over what they have at once (a relay batch, the messages a Kafka
    /// consumer has fetched), so a handler whose effect is stored can write the whole batch in
    /// one transaction instead of one per event. The batch may contain an event twice or an
    /// event applied before: each must still have its effect once. An error means "deliver the
    /// whole batch again later" (some events may have been applied; idempotency absorbs them).
    ///
    /// The default applies the events one by one with [`EventHandler::handle`].
    async fn handle_batch(&self, events: &[Envelope]) -> anyhow::Result<Vec<Handled>> {
        let mut handled = Vec::with_capacity(events.len());
        for event in events {
            handled.push(self.handle(event).await?);
        }
        Ok(handled)
    }
}
