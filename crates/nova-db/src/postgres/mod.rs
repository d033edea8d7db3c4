//! Postgres adapter, for deployments with several stateless nodes.
//!
//! Same ports and same behaviour as the SQLite adapter; the SQL differs where the dialects do
//! (`= ANY($1)` instead of `json_each`, real booleans, `FOR UPDATE` and advisory locks where
//! concurrent writers from several nodes could otherwise interleave).

mod events;
mod graph;
mod messaging;
mod notifications;
#[cfg(test)]
mod plans;
mod posts;
mod users;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::gate::PoolGate;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// Server-side statement timeout, so a runaway query cannot hold a connection forever.
    pub statement_timeout_ms: u64,
    /// Above this fraction of the pool in use, new work is rejected at once (UNAVAILABLE).
    pub reject_above_ratio: f64,
    /// How long the pool may stay above that fraction before rejection starts.
    pub saturation_grace_ms: u64,
}

/// Implements every store port on a Postgres database.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) gate: PoolGate<sqlx::Postgres>,
    /// Woken after every commit that wrote to the outbox, so this node's relay publishes at once.
    pub(crate) outbox_signal: Arc<Notify>,
}

impl PgStore {
    pub async fn open(settings: &PostgresSettings) -> anyhow::Result<Self> {
        let options: PgConnectOptions = settings.url.parse().context("parse postgres url")?;
        let options = options.options([(
            "statement_timeout",
            settings.statement_timeout_ms.to_string(),
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
            .connect_with(options)
            .await
            .context("connect to postgres")?;
        let gate = PoolGate::new(
            pool.clone(),
            "postgres",
            settings.max_connections,
            Some(settings.reject_above_ratio),
            Duration::from_millis(settings.saturation_grace_ms),
        );
        Ok(PgStore {
            pool,
            gate,
            outbox_signal: Arc::new(Notify::new()),
        })
    }

    /// Notified after every commit that wrote an event to the outbox.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// Creates the database named in `url` unless it exists.
    pub async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
        use sqlx::migrate::MigrateDatabase as _;
        if !sqlx::Postgres::database_exists(url)
            .await
            .context("check postgres database")?
        {
            sqlx::Postgres::create_database(url)
                .await
                .context("create postgres database")?;
        }
        Ok(())
    }

    /// Drops the database named in `url` (tests clean up after themselves).
    pub async fn drop_database(url: &str) -> anyhow::Result<()> {
        use sqlx::migrate::MigrateDatabase as _;
        sqlx::Postgres::force_drop_database(url)
            .await
            .context("drop postgres database")
    }

    /// Applies pending migrations. Idempotent; index migrations build CONCURRENTLY.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("apply postgres migrations")
    }

    /// Reverts the most recent `steps` migrations.
    pub async fn rollback(&self, steps: usize) -> anyhow::Result<()> {
        let applied = self.applied_versions().await?;
        let keep = applied.len().saturating_sub(steps);
        let target = if keep == 0 { 0 } else { applied[keep - 1] };
        MIGRATOR
            .undo(&self.pool, target)
            .await
            .context("revert postgres migrations")
    }

    async fn applied_versions(&self) -> anyhow::Result<Vec<i64>> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .context("look for migrations table")?;
        if !exists {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .context("read applied migrations")
    }

    /// Ready when the database answers and every known migration is applied.
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

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for tests and benchmarks that inspect plans.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// For tests and benchmarks: the URL of a fresh, uniquely named database on the test server when
/// `TEST_DATABASE=postgres` (server from `TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432`); `None` when tests run on SQLite only.
pub fn test_database_url(prefix: &str) -> Option<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if std::env::var("TEST_DATABASE").ok().as_deref() != Some("postgres") {
        return None;
    }
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Some(format!(
        "{}/nova_{prefix}_{}_{nanos}_{n}",
        base.trim_end_matches('/'),
        std::process::id()
    ))
}

fn ids(ids: &[nova_core::Id]) -> Vec<i64> {
    ids.iter().map(|id| id.0).collect()
}

/// Serialises writes that touch the relationship between two accounts (follow vs block), across
/// every node: the lock is keyed by the unordered pair and released at commit.
async fn lock_pair(
    conn: &mut sqlx::PgConnection,
    a: nova_core::Id,
    b: nova_core::Id,
) -> anyhow::Result<()> {
    let (low, high) = if a.0 <= b.0 { (a.0, b.0) } else { (b.0, a.0) };
    // Two int4 keys from the two ids' low bits: collisions only cost unnecessary waiting.
    sqlx::query("SELECT pg_advisory_xact_lock($1::int4, $2::int4)")
        .bind((low & 0x7fff_ffff) as i32)
        .bind((high & 0x7fff_ffff) as i32)
        .execute(conn)
        .await
        .context("lock account pair")?;
    Ok(())
}
