//! Nova's domain events: what happened, in a versioned envelope, and the ports that move it.
//!
//! A mutation writes its event to the outbox in the same transaction as the change
//! ([`EventRecord`], written by the storage adapter). A relay hands unsent outbox rows to a
//! [`Publisher`] (the in-process bus or Kafka) and marks them sent; consumers
//! ([`EventHandler`]) apply each event's effect at least once, and idempotency (a bounded
//! in-memory window plus durable records for effects that must never repeat) makes that
//! exactly once in effect.
//!
//! No I/O here: the runtime (relay, dispatch, buses) lives in `nova-bus` and `nova-kafka`.

pub mod envelope;
pub mod ports;

pub use envelope::{DecodeError, DomainEvent, Envelope, EventRecord, Topic, CURRENT_VERSION};
pub use ports::{
    Backlog, EventHandler, Handled, HandlerKind, OutboxStore, ProcessedEvents, Publisher,
};
