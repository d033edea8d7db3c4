//! Storage adapters: implementations of every domain store port, on rusqlite for SQLite and on
//! sqlx for Postgres.
//!
//! Invariants:
//! - `sqlx::Error` and `rusqlite::Error` never leave this crate: constraint violations become
//!   domain outcomes, the rest becomes `anyhow::Error` with context;
//! - every multi-row write (a post with its counters, a block with the follows it removes, an
//!   edit with its version) is one transaction;
//! - no query uses OFFSET: lists page by keyset on time-ordered ids.

mod error;
pub mod gate;
pub mod postgres;
mod rows;
pub mod sqlite;

pub use postgres::{PgStore, PostgresSettings};
pub use sqlite::{SqliteSettings, SqliteStore, Synchronous};
