//! The pool gate: every connection acquisition passes through it.
//!
//! [`Admission`] holds the policy and the metrics; [`PoolGate`] applies it to a sqlx pool
//! (Postgres), and the SQLite adapter applies it to its own read-connection pool.
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

/// The admission policy of one pool, independent of how the pool hands out connections: the
/// caller reports utilisation and waits, this decides and records the metrics.
#[derive(Debug, Clone)]
pub struct Admission {
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

impl Admission {
    pub fn new(
        name: &'static str,
        max_connections: u32,
        reject_above_ratio: Option<f64>,
        grace: Duration,
    ) -> Self {
        Admission {
            name,
            max_connections: max_connections.max(1),
            reject_above_ratio,
            grace,
            saturated_since_micros: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        }
    }

    /// The pool name the metrics carry.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Fraction of `max_connections` that `in_use` represents.
    pub fn ratio(&self, in_use: u32) -> f64 {
        f64::from(in_use) / f64::from(self.max_connections)
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

    /// Admits or rejects new work given the pool's current utilisation (0.0 to 1.0).
    pub fn admit(&self, utilization: f64) -> anyhow::Result<()> {
        metrics::gauge!("db_pool_utilization_ratio", "pool" => self.name).set(utilization);
        if let Some(limit) = self.reject_above_ratio {
            if self.saturated_past_grace(utilization > limit) {
                self.exhausted();
                return Err(anyhow::Error::new(Unavailable("database pool exhausted")));
            }
        }
        Ok(())
    }

    /// Records how long an acquisition that started at `started` waited.
    pub fn waited(&self, started: Instant) {
        metrics::histogram!("db_pool_acquire_wait_seconds", "pool" => self.name)
            .record(started.elapsed().as_secs_f64());
    }

    /// Counts one rejection or timeout.
    pub fn exhausted(&self) {
        metrics::counter!("db_pool_exhausted_total", "pool" => self.name).increment(1);
    }

    /// The error of an acquisition that gave up after the acquire timeout (counted).
    pub fn timed_out(&self) -> anyhow::Error {
        self.exhausted();
        anyhow::Error::new(Unavailable("timed out waiting for a database connection"))
    }

    /// The error of an acquisition from a closed pool.
    pub fn closed() -> anyhow::Error {
        anyhow::Error::new(Unavailable("database pool closed"))
    }
}

/// [`Admission`] in front of a sqlx pool.
#[derive(Debug)]
pub struct PoolGate<DB: Database> {
    pool: Pool<DB>,
    admission: Admission,
}

// Manual impl: a derive would require `DB: Clone`, which the database marker types are not.
impl<DB: Database> Clone for PoolGate<DB> {
    fn clone(&self) -> Self {
        PoolGate {
            pool: self.pool.clone(),
            admission: self.admission.clone(),
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
            admission: Admission::new(name, max_connections, reject_above_ratio, grace),
        }
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
        self.admission.ratio(in_use)
    }

    fn waited<T>(&self, started: Instant, result: Result<T, sqlx::Error>) -> anyhow::Result<T> {
        self.admission.waited(started);
        match result {
            Ok(value) => Ok(value),
            Err(sqlx::Error::PoolTimedOut) => Err(self.admission.timed_out()),
            Err(sqlx::Error::PoolClosed) => Err(Admission::closed()),
            Err(error) => Err(anyhow::Error::new(error).context("acquire database connection")),
        }
    }

    /// A connection for one or more statements outside a transaction.
    pub async fn acquire(&self) -> anyhow::Result<PoolConnection<DB>> {
        self.admission.admit(self.utilization())?;
        let started = Instant::now();
        let result = self.pool.acquire().await;
        self.waited(started, result)
    }

    /// A transaction on a gated connection.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, DB>> {
        self.admission.admit(self.utilization())?;
        let started = Instant::now();
        let result = self.pool.begin().await;
        self.waited(started, result)
    }
}
