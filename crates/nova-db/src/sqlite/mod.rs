//! SQLite adapter, the embedded default.
//!
//! One writer connection and a pool of read-only connections: SQLite allows a single writer at a
//! time, so funnelling writes through one connection turns lock contention ("database is
//! locked") into a short in-process queue, while WAL lets readers proceed during writes.

mod events;
mod graph;
pub(crate) mod messaging;
pub(crate) mod notifications;
mod posts;
mod users;

use crate::gate::PoolGate;

use std::path::PathBuf;
use std::sync::Arc;

use std::str::FromStr as _;
use std::time::Duration;
use tokio::sync::Notify;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit: survives power loss, not only process crashes.
    Full,
    /// fsync at checkpoints: survives process crashes (kill -9), may lose the last commits on power loss.
    Normal,
}

#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub path: PathBuf,
    pub max_read_connections: u32,
    pub busy_timeout_ms: u64,
    pub acquire_timeout_ms: u64,
    pub synchronous: Synchronous,
    /// Above this fraction of read connections in use, new reads are rejected at once.
    pub reject_above_ratio: f64,
    /// How long the read pool may stay above that fraction before rejection starts.
    pub saturation_grace_ms: u64,
}

/// Implements every store port on one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    /// The single writer connection: writes queue here for at most the acquire timeout, which
    /// is the "wait briefly" that replaces SQLite's "database is locked".
    writer: PoolGate<Sqlite>,
    reader: PoolGate<Sqlite>,
    /// Woken after every commit that wrote to the outbox, so the relay publishes at once.
    outbox_signal: Arc<Notify>,
}

impl SqliteStore {
    /// Notified after every commit that wrote an event to the outbox.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// Opens (creating if missing) the database file. Does not migrate.
    pub async fn open(settings: &SqliteSettings) -> anyhow::Result<Self> {
        if let Some(parent) = settings.path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("create {}", parent.display()))?;
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .context("sqlite options")?
            .filename(&settings.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_millis(settings.busy_timeout_ms))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let acquire = Duration::from_millis(settings.acquire_timeout_ms);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("open sqlite database {}", settings.path.display()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.max_read_connections.max(1))
            .acquire_timeout(acquire)
            .connect_with(
                options
                    .read_only(true)
                    // Reads share the OS page cache through mmap instead of each connection
                    // copying pages into its own small cache.
                    .pragma("mmap_size", "268435456"),
            )
            .await
            .context("open sqlite read connections")?;
        let read_connections = settings.max_read_connections.max(1);
        Ok(SqliteStore {
            outbox_signal: Arc::new(Notify::new()),
            writer: PoolGate::new(writer, "sqlite_writer", 1, None, Duration::ZERO),
            reader: PoolGate::new(
                reader,
                "sqlite_reader",
                read_connections,
                Some(settings.reject_above_ratio),
                Duration::from_millis(settings.saturation_grace_ms),
            ),
        })
    }

    /// Applies pending migrations. Idempotent.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(self.writer.pool())
            .await
            .context("apply sqlite migrations")
    }

    /// Reverts the most recent `steps` migrations (each migration ships its down script).
    pub async fn rollback(&self, steps: usize) -> anyhow::Result<()> {
        let applied = self.applied_versions().await?;
        let keep = applied.len().saturating_sub(steps);
        let target = if keep == 0 { 0 } else { applied[keep - 1] };
        MIGRATOR
            .undo(self.writer.pool(), target)
            .await
            .context("revert sqlite migrations")
    }

    async fn applied_versions(&self) -> anyhow::Result<Vec<i64>> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(self.reader.pool())
        .await
        .context("look for migrations table")?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version",
        )
        .fetch_all(self.reader.pool())
        .await
        .context("read applied migrations")
    }

    /// Ready when the file answers and every known migration is applied.
    pub async fn check_ready(&self) -> anyhow::Result<()> {
        let applied = self.applied_versions().await?;
        let missing: Vec<i64> = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| m.version)
            .collect();
        anyhow::ensure!(missing.is_empty(), "migrations not applied: {missing:?}");
        Ok(())
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader.pool().close().await;
        self.writer.pool().close().await;
    }
}

/// Turns a list of ids into the JSON array `json_each` reads, so one statement serves any batch size.
fn ids_json(ids: &[nova_core::Id]) -> String {
    let parts: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
    format!("[{}]", parts.join(","))
}
