//! The read-only connections of the SQLite adapter, and the gate in front of them.
//!
//! A read runs synchronously on the thread that asks for it (a tokio worker): reads take tens to
//! hundreds of microseconds, far less than handing the work to another thread and back, which
//! is what sqlx-sqlite did for every statement (see docs/adr/0003-sqlite-direct-access.md).
//! Connections sit on a stack behind a mutex held only to push or pop; a semaphore with one
//! permit per connection makes a caller wait (asynchronously, at most the acquire timeout)
//! when all of them are out, and the shared [`Admission`] policy rejects new reads early when
//! the pool has stayed saturated past the grace period.

use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::gate::Admission;

pub(crate) struct Readers {
    /// Idle connections. Never empty while a permit is available.
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    size: u32,
    acquire_timeout: Duration,
    admission: Admission,
}

/// A checked-out read connection; goes back on the stack when dropped (also on panic).
pub(crate) struct ReadConnection<'p> {
    conn: Option<Connection>,
    readers: &'p Readers,
    /// Given back after the connection (dropped after `drop` ran); forgotten with a lost one.
    permit: Option<OwnedSemaphorePermit>,
}

impl Deref for ReadConnection<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Always Some until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for ReadConnection<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A connection left inside a transaction (a panic mid-read) would pin an old
            // snapshot: only return connections in autocommit mode.
            if conn.is_autocommit() && !self.readers.permits.is_closed() {
                self.readers
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                return;
            }
            // Without its connection the permit must not come back either.
            if let Some(permit) = self.permit.take() {
                permit.forget();
            }
            drop(conn);
        }
    }
}

impl Readers {
    pub(crate) fn new(
        connections: Vec<Connection>,
        acquire_timeout: Duration,
        admission: Admission,
    ) -> Self {
        let size = u32::try_from(connections.len()).unwrap_or(u32::MAX);
        Readers {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Mutex::new(connections),
            size,
            acquire_timeout,
            admission,
        }
    }

    fn in_use(&self) -> u32 {
        let available = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        self.size.saturating_sub(available)
    }

    /// A read connection: at once when one is idle, otherwise after waiting at most the acquire
    /// timeout; `Unavailable` when the pool is saturated past the grace period, timed out or
    /// closed.
    pub(crate) async fn acquire(&self) -> anyhow::Result<ReadConnection<'_>> {
        self.admission.admit(self.admission.ratio(self.in_use()))?;
        let started = Instant::now();
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                self.admission.waited(started);
                permit
            }
            Err(TryAcquireError::Closed) => return Err(crate::gate::Admission::closed()),
            Err(TryAcquireError::NoPermits) => {
                let waited = tokio::time::timeout(
                    self.acquire_timeout,
                    Arc::clone(&self.permits).acquire_owned(),
                )
                .await;
                self.admission.waited(started);
                match waited {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return Err(Admission::closed()),
                    Err(_elapsed) => return Err(self.admission.timed_out()),
                }
            }
        };
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match conn {
            Some(conn) => Ok(ReadConnection {
                conn: Some(conn),
                readers: self,
                permit: Some(permit),
            }),
            // Only after `close` took the connections.
            None => Err(Admission::closed()),
        }
    }

    /// Refuses new reads and closes the idle connections; connections in use close when their
    /// reads return them.
    pub(crate) fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(idle);
    }
}

#[cfg(test)]
mod tests {
    //! The read pool keeps the pool gate's contract (crates/nova-db/tests/pool_gate.rs runs the
    //! same checks on Postgres).

    use std::time::{Duration, Instant};

    use nova_core::code::Unavailable;

    use crate::sqlite::testing::migrated_with;
    use crate::sqlite::SqliteStore;

    async fn one_read(store: &SqliteStore) -> anyhow::Result<i64> {
        store
            .read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?))
            .await
    }

    fn is_unavailable(error: &anyhow::Error) -> bool {
        error.downcast_ref::<Unavailable>().is_some()
    }

    #[tokio::test]
    async fn a_busy_read_pool_rejects_new_reads_at_once_and_recovers() {
        let (_dir, store, _conn) = migrated_with(|s| {
            s.max_read_connections = 4;
            s.acquire_timeout_ms = 300;
            s.reject_above_ratio = 0.85;
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.readers.acquire().await.expect("hold"));
        }
        one_read(&store).await.expect("75 % busy is still admitted");
        held.push(store.readers.acquire().await.expect("hold"));
        let started = Instant::now();
        let error = one_read(&store).await.expect_err("rejected");
        assert!(is_unavailable(&error), "{error:#}");
        assert!(started.elapsed() < Duration::from_millis(100));
        drop(held);
        one_read(&store).await.expect("recovers");
        store.close().await;
    }

    #[tokio::test]
    async fn without_early_rejection_a_read_waits_at_most_the_acquire_timeout() {
        let (_dir, store, _conn) = migrated_with(|s| {
            s.max_read_connections = 2;
            s.acquire_timeout_ms = 300;
            s.reject_above_ratio = 1.0;
        })
        .await;
        let held = vec![
            store.readers.acquire().await.expect("hold"),
            store.readers.acquire().await.expect("hold"),
        ];
        let started = Instant::now();
        let error = one_read(&store).await.expect_err("times out");
        let waited = started.elapsed();
        assert!(is_unavailable(&error), "{error:#}");
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(waited < Duration::from_millis(1_000), "{waited:?}");
        drop(held);
        one_read(&store).await.expect("recovers");
        store.close().await;
        let error = one_read(&store).await.expect_err("closed");
        assert!(is_unavailable(&error), "{error:#}");
    }
}
