//! The outbox relay: drains unsent outbox rows into a publisher, oldest first.
//!
//! Woken by the store after each commit that wrote an event, and by a poll interval otherwise
//! (rows written by other nodes, or left behind by a crash): the signal carries this node's own
//! writes, so the poll is only a safety net and can be slow. A failed batch is retried with
//! exponential backoff; nothing is marked sent unless the publisher accepted it, so a crash
//! anywhere means "published again", never "lost". Also reports the backlog metrics and prunes
//! old sent rows and processed-event records.
//!
//! The backlog gauge costs a count of the unsent rows, so it is not counted on a timer: it is
//! counted at most once per `backlog_report_interval` while the relay publishes (and once more
//! after the last batch, so it reaches 0 within that interval of the drain's end), and only
//! every `idle_backlog_refresh` while nothing is published (rows this relay cannot claim:
//! another node's, or behind another relay's claim). An idle node thus runs one indexed claim
//! query per poll interval and nothing else.

use std::sync::Arc;
use std::time::Duration;

use nova_core::now_millis;
use nova_events::{OutboxStore, ProcessedEvents, Publisher};
use tokio::sync::{watch, Notify};

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub batch_size: usize,
    pub poll_interval: Duration,
    pub max_backoff: Duration,
    /// Sent rows and processed-event records are kept this long, then pruned.
    pub retention: Duration,
    /// Shortest time between two backlog counts while rows are being published.
    pub backlog_report_interval: Duration,
    /// How often the backlog is counted while nothing is published.
    pub idle_backlog_refresh: Duration,
    /// Test failpoint: abort the process after a batch was published, before it is marked sent
    /// (fault F1 of the reliability matrix). Never set in production.
    pub crash_after_publish: bool,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            batch_size: 256,
            poll_interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5),
            retention: Duration::from_secs(24 * 3600),
            backlog_report_interval: Duration::from_secs(1),
            idle_backlog_refresh: Duration::from_secs(30),
            crash_after_publish: false,
        }
    }
}

pub struct Relay {
    pub outbox: Arc<dyn OutboxStore>,
    pub processed: Arc<dyn ProcessedEvents>,
    pub publisher: Arc<dyn Publisher>,
    pub signal: Arc<Notify>,
    pub settings: RelaySettings,
}

/// Aborts the process once the publisher returned, before the rows are marked sent.
struct CrashAfterPublish(Arc<dyn Publisher>);

#[async_trait::async_trait]
impl Publisher for CrashAfterPublish {
    async fn publish(&self, batch: &[nova_events::EventRecord]) -> anyhow::Result<()> {
        self.0.publish(batch).await?;
        tracing::error!(
            rows = batch.len(),
            "failpoint relay.crash_after_publish: aborting"
        );
        std::process::abort();
    }
}

impl Relay {
    /// Runs until `shutdown` turns true. Never returns an error: failures are logged, counted
    /// and retried.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let publisher: Arc<dyn Publisher> = if self.settings.crash_after_publish {
            Arc::new(CrashAfterPublish(self.publisher.clone()))
        } else {
            self.publisher.clone()
        };
        let mut backoff = Duration::ZERO;
        let mut last_report = std::time::Instant::now();
        let mut last_prune = std::time::Instant::now();
        // Rows were published since the last count: the gauge is stale until the next one.
        let mut unreported = false;
        self.report_backlog().await;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self
                .outbox
                .relay_batch(self.settings.batch_size, &*publisher)
                .await
            {
                Ok(n) => {
                    backoff = Duration::ZERO;
                    if n > 0 {
                        metrics::counter!("outbox_published_total").increment(n as u64);
                        unreported = true;
                    }
                    if n >= self.settings.batch_size {
                        Duration::ZERO
                    } else {
                        self.settings.poll_interval
                    }
                }
                Err(error) => {
                    metrics::counter!("outbox_relay_failures_total").increment(1);
                    backoff = (backoff * 2)
                        .max(Duration::from_millis(50))
                        .min(self.settings.max_backoff);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        backoff_ms = backoff.as_millis() as u64,
                        "outbox relay batch failed"
                    );
                    // A failing relay leaves the backlog growing: keep the gauge moving.
                    unreported = true;
                    backoff
                }
            };
            let report_every = if unreported {
                self.settings.backlog_report_interval
            } else {
                self.settings.idle_backlog_refresh
            };
            let since_report = last_report.elapsed();
            if since_report >= report_every {
                last_report = std::time::Instant::now();
                unreported = false;
                self.report_backlog().await;
            }
            if last_prune.elapsed() >= Duration::from_secs(60) {
                last_prune = std::time::Instant::now();
                self.prune().await;
            }
            if wait.is_zero() {
                continue;
            }
            // A count is due before the next poll: wake for it, so the gauge reaches the truth
            // (0 after a drain) within `backlog_report_interval`, not a poll interval later.
            let wait = if unreported && backoff.is_zero() {
                wait.min(report_every.saturating_sub(since_report))
                    .max(Duration::from_millis(10))
            } else {
                wait
            };
            tokio::select! {
                _ = self.signal.notified(), if backoff.is_zero() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn report_backlog(&self) {
        match self.outbox.backlog().await {
            Ok(backlog) => {
                metrics::gauge!("outbox_backlog").set(backlog.unsent as f64);
                let age = backlog
                    .oldest_created_at
                    .map_or(0.0, |t| (now_millis() - t).max(0) as f64 / 1000.0);
                metrics::gauge!("outbox_oldest_unsent_age_seconds").set(age);
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "outbox backlog"),
        }
    }

    async fn prune(&self) {
        let before = now_millis()
            - i64::try_from(self.settings.retention.as_millis()).unwrap_or(i64::MAX / 2);
        if let Err(error) = self.outbox.prune_sent(before).await {
            tracing::warn!(error = format!("{error:#}"), "prune outbox");
        }
        if let Err(error) = self.processed.prune_processed(before).await {
            tracing::warn!(error = format!("{error:#}"), "prune processed events");
        }
    }
}
