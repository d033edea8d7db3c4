//! The pool gate: every connection acquisition passes through it.
//!
//! When more than `reject_above_ratio` of the pool has been in use for longer than a short grace
//! period, new work is rejected at once with [`Unavailable`] instead of queueing behind a slow
//! database: overload shows as a fast 503 at the edge rather than as a pile of requests waiting
//! for connections. The grace period (100 ms by default) lets a healthy burst through (one
//! GraphQL request may run a few dozen short queries in parallel); a database that stays
//! saturated past it is slow or stuck. Otherwise acquisition waits at most the pool's acquire
//! timeout, and a timeout is also reported as [`Unavailable`].
//!
//! Metrics: `db_pool_exhausted_total` (rejections and timeouts), `db_pool_utilization_ratio`,
//! `db_pool_acquire_wait_seconds`, each labelled with the pool name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nova_core::code::Unavailable;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool, Transaction};

#[derive(Debug)]
pub struct PoolGate<DB: Database> {
    pool: Pool<DB>,
    name: &'static str,
    max_connections: u32,
    /// `None` disables early rejection (SQLite's single writer connection is meant to queue).
    reject_above_ratio: Option<f64>,
    /// How long the pool may stay above the ratio before new work is rejected.
    grace: Duration,
    /// Micros since `epoch` at which the pool went above the ratio; 0 when it is below.
    saturated_since_micros: Arc<AtomicU64>,
    epoch: Instant,
}

// Manual impl: a derive would require `DB: Clone`, which the database marker types are not.
impl<DB: Database> Clone for PoolGate<DB> {
    fn clone(&self) -> Self {
        PoolGate {
            pool: self.pool.clone(),
            name: self.name,
            max_connections: self.max_connections,
            reject_above_ratio: self.reject_above_ratio,
            grace: self.grace,
            saturated_since_micros: Arc::clone(&self.saturated_since_micros),
            epoch: self.epoch,
        }
    }
}

impl<DB: Database> PoolGate<DB> {
    pub fn new(
        pool: Pool<DB>,
        name: &'static str,
        max_connections: u32,
        reject_above_ratio: Option<f64>,
        grace: Duration,
    ) -> Self {
        PoolGate {
            pool,
            name,
            max_connections: max_connections.max(1),
            reject_above_ratio,
            grace,
            saturated_since_micros: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        }
    }

    /// Whether the pool has been above the ratio for longer than the grace period.
    fn saturated_past_grace(&self, above: bool) -> bool {
        if !above {
            self.saturated_since_micros.store(0, Ordering::Relaxed);
            return false;
        }
        // +1 so that saturation starting at the very first microsecond is not read as "none".
        let now = u64::try_from(self.epoch.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let since = match self.saturated_since_micros.compare_exchange(
            0,
            now,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => now,
            Err(earlier) => earlier,
        };
        Duration::from_micros(now.saturating_sub(since)) >= self.grace
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Fraction of the pool's connections currently checked out.
    pub fn utilization(&self) -> f64 {
        let in_use = self
            .pool
            .size()
            .saturating_sub(u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX));
        f64::from(in_use) / f64::from(self.max_connections)
    }

    fn admit(&self) -> anyhow::Result<()> {
        let utilization = self.utilization();
        metrics::gauge!("db_pool_utilization_ratio", "pool" => self.name).set(utilization);
        if let Some(limit) = self.reject_above_ratio {
            if self.saturated_past_grace(utilization > limit) {
                metrics::counter!("db_pool_exhausted_total", "pool" => self.name).increment(1);
                return Err(anyhow::Error::new(Unavailable("database pool exhausted")));
            }
        }
        Ok(())
    }

    fn waited<T>(&self, started: Instant, result: Result<T, sqlx::Error>) -> anyhow::Result<T> {
        metrics::histogram!("db_pool_acquire_wait_seconds", "pool" => self.name)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(value) => Ok(value),
            Err(sqlx::Error::PoolTimedOut) => {
                metrics::counter!("db_pool_exhausted_total", "pool" => self.name).increment(1);
                Err(anyhow::Error::new(Unavailable(
                    "timed out waiting for a database connection",
                )))
            }
            Err(sqlx::Error::PoolClosed) => {
                Err(anyhow::Error::new(Unavailable("database pool closed")))
            }
            Err(error) => Err(anyhow::Error::new(error).context("acquire database connection")),
        }
    }

    /// A connection for one or more statements outside a transaction.
    pub async fn acquire(&self) -> anyhow::Result<PoolConnection<DB>> {
        self.admit()?;
        let started = Instant::now();
        let result = self.pool.acquire().await;
        self.waited(started, result)
    }

    /// A transaction on a gated connection.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, DB>> {
        self.admit()?;
        let started = Instant::now();
        let result = self.pool.begin().await;
        self.waited(started, result)
    }
}
