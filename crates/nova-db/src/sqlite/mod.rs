//! SQLite adapter, the embedded default, on rusqlite.
//!
//! Reads run inline on the calling thread on a small pool of read-only connections
//! ([`readers`]); writes go to one writer thread that owns the only write connection and commits
//! queued writes in groups ([`writer`]). SQLite allows a single writer at a time, so funnelling
//! writes through one connection turns lock contention ("database is locked") into a short
//! in-process queue, while WAL lets readers proceed during writes. Why not sqlx-sqlite:
//! docs/adr/0003-sqlite-direct-access.md.
//!
//! Migrations stay on sqlx's migrator (a short-lived sqlx connection), so existing databases and
//! their `_sqlx_migrations` history keep working unchanged.

mod events;
mod graph;
mod messaging;
mod notifications;
mod posts;
mod readers;
mod users;
mod writer;

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Params, Row};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::Connection as _;
use tokio::sync::Notify;

use crate::gate::Admission;
use readers::Readers;
pub(crate) use writer::Tx;
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Prepared statements kept per connection: every statement the adapter runs fits, so none is
/// parsed twice on a connection.
const STATEMENT_CACHE: usize = 128;

/// Reads share the OS page cache through mmap instead of each connection copying pages into
/// its own small cache.
const MMAP_SIZE: i64 = 268_435_456;

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
    /// The single writer connection's thread: writes queue there for at most the acquire
    /// timeout, which is the "wait briefly" that replaces SQLite's "database is locked".
    writer: Writer,
    readers: Arc<Readers>,
    /// Woken after every commit that wrote to the outbox, so the relay publishes at once.
    outbox_signal: Arc<Notify>,
    settings: Arc<SqliteSettings>,
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
        // The writer first: it creates the file and switches it to WAL before readers attach.
        let write_conn = open_writer(settings)
            .with_context(|| format!("open sqlite database {}", settings.path.display()))?;
        let read_connections = settings.max_read_connections.max(1);
        let readers = (0..read_connections)
            .map(|_| open_reader(settings))
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("open sqlite read connections")?;
        let acquire = Duration::from_millis(settings.acquire_timeout_ms);
        let outbox_signal = Arc::new(Notify::new());
        Ok(SqliteStore {
            writer: Writer::start(write_conn, acquire, outbox_signal.clone())?,
            readers: Arc::new(Readers::new(
                readers,
                acquire,
                Admission::new(
                    "sqlite_reader",
                    read_connections,
                    Some(settings.reject_above_ratio),
                    Duration::from_millis(settings.saturation_grace_ms),
                ),
            )),
            outbox_signal,
            settings: Arc::new(settings.clone()),
        })
    }

    /// Runs `read` on a read-only connection, on this thread.
    pub(crate) async fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let conn = self.readers.acquire().await?;
        read(&conn)
    }

    /// Runs `work` on the writer thread in the next group transaction; answers after the commit.
    pub(crate) async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        self.writer.run(work).await
    }

    /// A short-lived sqlx connection for the migrator, with the pragmas of the writer.
    async fn migration_connection(&self) -> anyhow::Result<sqlx::SqliteConnection> {
        let settings = &self.settings;
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
        sqlx::SqliteConnection::connect_with(&options)
            .await
            .with_context(|| format!("open sqlite database {}", settings.path.display()))
    }

    /// Applies pending migrations. Idempotent.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.migration_connection().await?;
        let migrated = MIGRATOR
            .run(&mut conn)
            .await
            .context("apply sqlite migrations");
        conn.close().await.context("close migration connection")?;
        migrated
    }

    /// Reverts the most recent `steps` migrations (each migration ships its down script).
    pub async fn rollback(&self, steps: usize) -> anyhow::Result<()> {
        let applied = self.applied_versions().await?;
        let keep = applied.len().saturating_sub(steps);
        let target = if keep == 0 { 0 } else { applied[keep - 1] };
        let mut conn = self.migration_connection().await?;
        let reverted = MIGRATOR
            .undo(&mut conn, target)
            .await
            .context("revert sqlite migrations");
        conn.close().await.context("close migration connection")?;
        reverted
    }

    async fn applied_versions(&self) -> anyhow::Result<Vec<i64>> {
        self.read(|conn| {
            let exists: Option<String> = crate::error::DbContext::context(
                optional(
                    conn,
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                    [],
                    |row| row.get(0),
                ),
                "look for migrations table",
            )?;
            if exists.is_none() {
                return Ok(Vec::new());
            }
            crate::error::DbContext::context(
                all(
                    conn,
                    "SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version",
                    [],
                    |row| row.get(0),
                ),
                "read applied migrations",
            )
        })
        .await
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

    /// Closes the read connections, then the writer once queued writes are done (the last
    /// connection to close checkpoints the WAL).
    pub async fn close(&self) {
        self.readers.close();
        self.writer.close().await;
    }
}

/// The writer's connection: read-write, created if missing, WAL.
fn open_writer(settings: &SqliteSettings) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        &settings.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_millis(settings.busy_timeout_ms))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    conn.pragma_update(
        None,
        "synchronous",
        match settings.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A reader: opened read-only and `query_only`, so no code path can write through it.
fn open_reader(settings: &SqliteSettings) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        &settings.path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_millis(settings.busy_timeout_ms))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.pragma_update_and_check(None, "mmap_size", MMAP_SIZE, |row| row.get::<_, i64>(0))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Every row of a cached statement, mapped.
pub(crate) fn all<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, map)?;
    rows.collect()
}

/// The first row of a cached statement, if any.
pub(crate) fn optional<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(sql)?.query_row(params, map).optional()
}

/// The first row of a cached statement, which must exist.
pub(crate) fn one<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, map)
}

/// Runs a cached statement; the number of rows it changed.
pub(crate) fn execute<P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Turns a list of ids into the JSON array `json_each` reads, so one statement serves any batch size.
fn ids_json(ids: &[nova_core::Id]) -> String {
    let parts: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A migrated database file for the adapter's unit tests.

    use super::{SqliteSettings, SqliteStore, Synchronous};

    /// A migrated store on a fresh file, and a plain read-only rusqlite connection to it.
    pub(crate) async fn migrated() -> (tempfile::TempDir, SqliteStore, rusqlite::Connection) {
        migrated_with(|_| {}).await
    }

    /// [`migrated`] with settings adjusted by `adjust`.
    pub(crate) async fn migrated_with(
        adjust: impl FnOnce(&mut SqliteSettings),
    ) -> (tempfile::TempDir, SqliteStore, rusqlite::Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = SqliteSettings {
            path: dir.path().join("nova.db"),
            max_read_connections: 2,
            busy_timeout_ms: 5_000,
            acquire_timeout_ms: 5_000,
            synchronous: Synchronous::Normal,
            reject_above_ratio: 1.0,
            saturation_grace_ms: 0,
        };
        adjust(&mut settings);
        let store = SqliteStore::open(&settings).await.expect("open");
        store.migrate().await.expect("migrate");
        let conn = rusqlite::Connection::open_with_flags(
            &settings.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open read-only");
        (dir, store, conn)
    }
}
