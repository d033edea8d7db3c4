//! The writer thread of the SQLite adapter: it owns the only write connection and commits
//! queued writes in groups.
//!
//! SQLite allows one writer at a time, so writes queue in process instead of contending for the
//! file lock ("database is locked"). The thread takes every job waiting (up to [`MAX_BATCH`]),
//! runs each under its own SAVEPOINT inside one transaction and commits once: concurrent writes
//! share one fsync. A failing job rolls back to its savepoint and gets its own error; the
//! others proceed. Nobody is answered before the COMMIT that holds their write returned, so
//! durability is that of a transaction per write.
//!
//! A job waits at most the acquire timeout for the writer (to get into the queue, then to be
//! started); past it, it fails with [`Unavailable`](nova_core::code::Unavailable) and has not
//! run. Once started, a job runs to the end and its caller hears the outcome of the commit.

use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nova_core::code::Unavailable;
use rusqlite::Connection;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::is_sqlite_unavailable;
use crate::gate::Admission;

/// At most this many jobs share one transaction, so one commit never holds a long tail of
/// callers behind a huge batch.
const MAX_BATCH: usize = 256;

/// Jobs that may wait for the writer; beyond it callers wait (at most the acquire timeout) to
/// get in.
const QUEUE_CAPACITY: usize = 4_096;

/// The connection as a write job sees it: inside the group's transaction, under the job's
/// savepoint. Statements run on it through `Deref`.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    wrote_events: bool,
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Tx<'_> {
    /// Records that the job wrote to the outbox: the relay is woken after the commit.
    pub(crate) fn wrote_event(&mut self) {
        self.wrote_events = true;
    }
}

/// Why a whole group failed, given to every job of it.
struct GroupFailure {
    unavailable: bool,
    message: String,
}

impl GroupFailure {
    fn new(what: &str, error: &rusqlite::Error) -> Self {
        GroupFailure {
            unavailable: is_sqlite_unavailable(error),
            message: format!("{what}: {error}"),
        }
    }

    fn error(&self) -> anyhow::Error {
        if self.unavailable {
            anyhow::Error::new(Unavailable("the database did not answer in time"))
                .context(self.message.clone())
        } else {
            anyhow::anyhow!("{}", self.message)
        }
    }
}

/// A queued write with its answer channel; the result type is erased so one queue serves all.
trait Job: Send {
    fn enqueued(&self) -> Instant;
    /// Runs the work; true when it succeeded (its savepoint is kept).
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Answers the caller: the job's own result, or `failure` when its group did not commit.
    fn answer(self: Box<Self>, failure: Option<&GroupFailure>);
}

struct Typed<T, F> {
    work: Option<F>,
    result: Option<anyhow::Result<T>>,
    reply: oneshot::Sender<anyhow::Result<T>>,
    enqueued: Instant,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Tx<'_>) -> anyhow::Result<T> + Send + 'static,
{
    fn enqueued(&self) -> Instant {
        self.enqueued
    }

    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking job must not take the writer thread (and every later write) with it.
        let result = catch_unwind(AssertUnwindSafe(|| work(tx)))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a database write panicked")));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failure: Option<&GroupFailure>) {
        let result = match failure {
            Some(failure) => Err(failure.error()),
            None => self
                .result
                .unwrap_or_else(|| Err(anyhow::anyhow!("the database write did not run"))),
        };
        // The caller may have gone (its request was cancelled): nobody to tell.
        let _ = self.reply.send(result);
    }
}

enum Command {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<()>),
}

/// The handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    sender: mpsc::Sender<Command>,
    acquire_timeout: Duration,
    admission: Admission,
    busy: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(
        conn: Connection,
        acquire_timeout: Duration,
        outbox_signal: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let admission = Admission::new("sqlite_writer", 1, None, Duration::ZERO);
        let busy = Arc::new(AtomicBool::new(false));
        let thread = WriterThread {
            conn,
            receiver,
            acquire_timeout,
            admission: admission.clone(),
            busy: Arc::clone(&busy),
            outbox_signal,
        };
        std::thread::Builder::new()
            .name("nova-sqlite-writer".into())
            .spawn(move || thread.run())
            .map_err(|error| anyhow::anyhow!("start the sqlite writer thread: {error}"))?;
        Ok(Writer {
            sender,
            acquire_timeout,
            admission,
            busy,
        })
    }

    /// Runs `work` in the next group transaction and returns its result once that committed.
    pub(crate) async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        let busy = if self.busy.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        };
        self.admission.admit(busy)?;
        let (reply, answer) = oneshot::channel();
        let job = Command::Job(Box::new(Typed {
            work: Some(work),
            result: None,
            reply,
            enqueued: Instant::now(),
        }));
        match self.sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => return Err(Admission::closed()),
            Err(TrySendError::Full(job)) => {
                match tokio::time::timeout(self.acquire_timeout, self.sender.send(job)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_closed)) => return Err(Admission::closed()),
                    Err(_elapsed) => return Err(self.admission.timed_out()),
                }
            }
        }
        answer.await.unwrap_or_else(|_| Err(Admission::closed()))
    }

    /// Lets queued groups finish, then closes the write connection (checkpointing the WAL).
    /// Writes arriving later fail as `Unavailable`.
    pub(crate) async fn close(&self) {
        let (ack, closed) = oneshot::channel();
        if self.sender.send(Command::Close(ack)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

struct WriterThread {
    conn: Connection,
    receiver: mpsc::Receiver<Command>,
    acquire_timeout: Duration,
    admission: Admission,
    busy: Arc<AtomicBool>,
    outbox_signal: Arc<Notify>,
}

impl WriterThread {
    fn run(mut self) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
        let mut close = None;
        while close.is_none() {
            let Some(first) = self.receiver.blocking_recv() else {
                break; // every handle is gone
            };
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Close(ack) => close = Some(ack),
                    Command::Job(job) => self.admit(job, &mut batch),
                }
                if close.is_some() || batch.len() >= MAX_BATCH {
                    break;
                }
                next = self.receiver.try_recv().ok();
            }
            if !batch.is_empty() {
                self.busy.store(true, Ordering::Relaxed);
                self.commit_group(&mut batch);
                self.busy.store(false, Ordering::Relaxed);
            }
        }
        // Jobs still queued are dropped with their reply channels: their callers see a closed
        // database.
        drop(self.receiver);
        if let Err((_, error)) = self.conn.close() {
            tracing::warn!(%error, "closing the sqlite write connection");
        }
        if let Some(ack) = close {
            let _ = ack.send(());
        }
    }

    /// Takes a job into the group, or turns it away when it waited past the acquire timeout.
    fn admit(&self, job: Box<dyn Job>, batch: &mut Vec<Box<dyn Job>>) {
        self.admission.waited(job.enqueued());
        if job.enqueued().elapsed() > self.acquire_timeout {
            let _timed_out = self.admission.timed_out();
            job.answer(Some(&GroupFailure {
                unavailable: true,
                message: "timed out waiting for the database writer".into(),
            }));
            return;
        }
        batch.push(job);
    }

    fn execute(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    /// Runs `batch` in one transaction, commits, answers every job.
    fn commit_group(&self, batch: &mut Vec<Box<dyn Job>>) {
        // A single job needs no savepoint: the transaction is its own.
        let savepoints = batch.len() > 1;
        let mut done: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
        let mut wrote_events = false;
        let mut open = false;
        for mut job in batch.drain(..) {
            if !open {
                if let Err(error) = self.execute("BEGIN IMMEDIATE") {
                    job.answer(Some(&GroupFailure::new("begin write", &error)));
                    continue;
                }
                open = true;
            }
            if savepoints {
                if let Err(error) = self.execute("SAVEPOINT job") {
                    job.answer(Some(&GroupFailure::new("savepoint", &error)));
                    continue;
                }
            }
            let mut tx = Tx {
                conn: &self.conn,
                wrote_events: false,
            };
            let ok = job.run(&mut tx);
            let job_wrote_events = tx.wrote_events;
            if self.conn.is_autocommit() {
                // SQLite rolled the whole transaction back (disk full, I/O error): the jobs run
                // before this one lost their writes too.
                let failure = GroupFailure {
                    unavailable: false,
                    message: "the write transaction was rolled back by SQLite".into(),
                };
                for lost in done.drain(..) {
                    lost.answer(Some(&failure));
                }
                wrote_events = false;
                open = false;
                if ok {
                    job.answer(Some(&failure));
                } else {
                    job.answer(None);
                }
                continue;
            }
            let ended = match (savepoints, ok) {
                (true, true) => self.execute("RELEASE job"),
                (true, false) => self
                    .execute("ROLLBACK TO job")
                    .and_then(|()| self.execute("RELEASE job")),
                (false, true) => Ok(()),
                (false, false) => {
                    // The only job failed: nothing to commit.
                    let rolled_back = self.execute("ROLLBACK");
                    if let Err(error) = rolled_back {
                        tracing::error!(%error, "rolling back a failed write");
                    }
                    open = false;
                    job.answer(None);
                    continue;
                }
            };
            if let Err(error) = ended {
                // The job's savepoint could not be closed: treat the group as failed.
                let failure = GroupFailure::new("end savepoint", &error);
                for lost in done.drain(..) {
                    lost.answer(Some(&failure));
                }
                job.answer(Some(&failure));
                self.rollback();
                wrote_events = false;
                open = false;
                continue;
            }
            wrote_events |= ok && job_wrote_events;
            done.push(job);
        }
        if !open {
            return;
        }
        match self.execute("COMMIT") {
            Ok(()) => {
                for job in done {
                    job.answer(None);
                }
                if wrote_events {
                    self.outbox_signal.notify_one();
                }
            }
            Err(error) => {
                let failure = GroupFailure::new("commit", &error);
                self.rollback();
                for job in done {
                    job.answer(Some(&failure));
                }
            }
        }
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            if let Err(error) = self.execute("ROLLBACK") {
                tracing::error!(%error, "rolling back a failed write group");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nova_core::code::Unavailable;

    use crate::sqlite::testing::migrated_with;
    use crate::sqlite::{execute, SqliteStore};

    /// Records `event_id` for consumer "test", the smallest write there is.
    async fn record(store: &SqliteStore, event_id: i64, fail: bool) -> anyhow::Result<()> {
        store
            .write(move |tx| {
                execute(
                    tx,
                    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('test', ?1, 0)",
                    [event_id],
                )?;
                anyhow::ensure!(!fail, "job {event_id} fails after writing");
                Ok(())
            })
            .await
    }

    async fn recorded(store: &SqliteStore) -> Vec<i64> {
        store
            .read(|conn| {
                Ok(crate::sqlite::all(
                    conn,
                    "SELECT event_id FROM processed_events WHERE consumer = 'test' ORDER BY event_id",
                    [],
                    |row| row.get(0),
                )?)
            })
            .await
            .expect("read")
    }

    /// Holds the writer thread for `time`, so that jobs sent meanwhile queue up as one group.
    fn hold_writer(store: &SqliteStore, time: Duration) -> tokio::task::JoinHandle<()> {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |_| {
                    std::thread::sleep(time);
                    Ok(())
                })
                .await
                .expect("holding job");
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_rolls_back_alone_and_its_group_commits() {
        let (_dir, store, _conn) = migrated_with(|_| {}).await;
        let held = hold_writer(&store, Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Queued behind the held writer: these three run as one group.
        let (first, failing, last) = tokio::join!(
            record(&store, 1, false),
            record(&store, 2, true),
            record(&store, 3, false)
        );
        held.await.expect("join");
        first.expect("first job commits");
        last.expect("last job commits");
        let error = failing.expect_err("the failing job gets its own error");
        assert!(format!("{error:#}").contains("job 2 fails"), "{error:#}");
        assert_eq!(recorded(&store).await, [1, 3]);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_waited_past_the_acquire_timeout_is_unavailable_and_never_runs() {
        let (_dir, store, _conn) = migrated_with(|s| s.acquire_timeout_ms = 100).await;
        let held = hold_writer(&store, Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let error = record(&store, 7, false)
            .await
            .expect_err("waited past the timeout");
        assert!(
            error.downcast_ref::<Unavailable>().is_some(),
            "expected Unavailable, got {error:#}"
        );
        held.await.expect("join");
        assert_eq!(recorded(&store).await, Vec::<i64>::new());
        record(&store, 8, false).await.expect("the writer recovers");
        assert_eq!(recorded(&store).await, [8]);
        store.close().await;
    }

    #[tokio::test]
    async fn writes_after_close_are_unavailable() {
        let (_dir, store, _conn) = migrated_with(|_| {}).await;
        record(&store, 1, false).await.expect("before close");
        store.close().await;
        let error = record(&store, 2, false).await.expect_err("closed");
        assert!(error.downcast_ref::<Unavailable>().is_some(), "{error:#}");
    }
}
