//! The runtime of the event path: the outbox relay, the consumers (deduplication, metrics) and
//! the in-process bus. The Kafka bus (`nova-kafka`) reuses the same consumers.

pub mod consumer;
pub mod inprocess;
pub mod relay;

pub use consumer::{Consumer, DedupSettings, Delivery};
pub use inprocess::InProcessBus;
pub use relay::{Relay, RelaySettings};
