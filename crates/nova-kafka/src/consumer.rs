//! One consumer loop: a Kafka consumer in the handler's group feeding a `nova_bus::Consumer`.
//!
//! Messages already fetched are handled together (up to 256, one `Consumer::deliver_batch`),
//! so a durable handler writes a batch in one transaction.
//! At least once: offsets are stored (and then committed by the periodic auto-commit, or the
//! final commit when the loop stops) only after `Consumer::deliver_batch` succeeded. A failed delivery
//! is retried with backoff, never skipped; a stop during those retries leaves the offset
//! uncommitted, so the event comes again. A message that does not decode is produced to the
//! topic's dead-letter topic first, then its offset is stored like any other.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use nova_bus::Consumer;
use nova_events::{Envelope, HandlerKind, Topic};
use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use tokio::sync::watch;

use crate::admin::Topics;
use crate::{headers, BusStats, KafkaPublisher, KafkaSettings};

/// Most messages handed to the handler at once: the relay's default batch size.
const MAX_BATCH: usize = 256;

pub(crate) struct Shared {
    pub settings: KafkaSettings,
    pub topics: Arc<Topics>,
    pub dead_letters: KafkaPublisher,
    pub stats: Arc<BusStats>,
}

/// Sleeps `wait` unless asked to stop first; false when stopping.
async fn pause(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.changed() => false,
    }
}

fn next_backoff(backoff: Duration, max: Duration) -> Duration {
    (backoff * 2).min(max)
}

fn client_config(settings: &KafkaSettings, consumer: &Consumer) -> (String, ClientConfig) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", format!("nova-{}", consumer.name()))
        .set("enable.auto.offset.store", "false")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000");
    let group = match consumer.kind() {
        HandlerKind::Durable => {
            config
                .set("enable.auto.commit", "true")
                .set(
                    "auto.commit.interval.ms",
                    settings.commit_interval.as_millis().max(1).to_string(),
                )
                // A new group starts from the oldest retained event: nothing published
                // before its first join is missed.
                .set("auto.offset.reset", "earliest");
            settings.durable_group(consumer.name())
        }
        HandlerKind::Live => {
            // A group of its own per node and start: every node sees every event from now on,
            // and nothing is worth committing.
            config
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "latest");
            let suffix: u32 = rand::thread_rng().gen();
            format!(
                "{}nova-live-{}-{suffix:08x}",
                settings.prefix, settings.node_id
            )
        }
    };
    config.set("group.id", &group);
    (group, config)
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    consumer: Arc<Consumer>,
    mut stop: watch::Receiver<bool>,
) {
    let name = consumer.name();
    let max_backoff = shared.settings.max_retry_backoff;
    let mut backoff = Duration::from_millis(100);
    while let Err(error) = shared.topics.ensure().await {
        tracing::warn!(
            consumer = name,
            error = format!("{error:#}"),
            "kafka topics not ready"
        );
        if !pause(backoff, &mut stop).await {
            return;
        }
        backoff = next_backoff(backoff, max_backoff);
    }
    let (group, config) = client_config(&shared.settings, &consumer);
    let kafka: StreamConsumer = match config.create() {
        Ok(kafka) => kafka,
        Err(error) => {
            tracing::error!(consumer = name, %error, "kafka consumer not created");
            return;
        }
    };
    let names: Vec<String> = consumer
        .topics()
        .iter()
        .map(|t| shared.settings.topic_name(*t))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Err(error) = kafka.subscribe(&names) {
        tracing::error!(consumer = name, %error, "kafka subscribe");
        return;
    }
    tracing::info!(consumer = name, group, topics = ?names, "kafka consumer started");
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = kafka.recv() => message,
        };
        match message {
            Ok(message) => {
                // What else is already fetched joins this message, so the handler applies a
                // batch at once (one transaction for a durable one) instead of one by one.
                let mut batch = vec![message];
                while batch.len() < MAX_BATCH {
                    match kafka.recv().now_or_never() {
                        Some(Ok(message)) => batch.push(message),
                        Some(Err(error)) => {
                            tracing::warn!(consumer = name, %error, "kafka consume");
                            break;
                        }
                        None => break,
                    }
                }
                if !process(&shared, &consumer, &kafka, &batch, &mut stop).await {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(consumer = name, %error, "kafka consume");
                if !pause(Duration::from_millis(200), &mut stop).await {
                    break;
                }
            }
        }
    }
    let durable = consumer.kind() == HandlerKind::Durable;
    // A synchronous commit and leaving the group block: not on a runtime worker.
    let closed = tokio::task::spawn_blocking(move || {
        if durable {
            // What was applied is committed now rather than redelivered after the restart.
            if let Err(error) = kafka.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(consumer = name, %error, "final kafka commit");
            }
        }
        drop(kafka);
    })
    .await;
    if let Err(error) = closed {
        tracing::warn!(consumer = name, %error, "kafka consumer close");
    }
    tracing::info!(consumer = name, "kafka consumer stopped");
}

/// The topic a (prefixed) Kafka topic name stands for, as a metric label.
fn topic_label(settings: &KafkaSettings, name: &str) -> &'static str {
    name.strip_prefix(settings.prefix.as_str())
        .and_then(Topic::from_name)
        .map_or("unknown", Topic::name)
}

/// Applies (or dead-letters) a batch of messages, then stores their offsets. The decodable ones
/// go to the handler as one batch, retried as a whole until it succeeds (the window and the
/// handler's durable record absorb the part applied before a failure). False when asked to stop
/// before that: the offsets stay where they were.
async fn process(
    shared: &Shared,
    consumer: &Consumer,
    kafka: &StreamConsumer,
    messages: &[BorrowedMessage<'_>],
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let name = consumer.name();
    let max_backoff = shared.settings.max_retry_backoff;
    shared
        .stats
        .received
        .fetch_add(messages.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let mut events = Vec::with_capacity(messages.len());
    for message in messages {
        let payload = message.payload().unwrap_or_default();
        match Envelope::decode(payload) {
            Ok(event) => events.push(event),
            Err(error) => {
                if !dead_letter_with_retries(shared, name, message, &error.to_string(), stop).await
                {
                    return false;
                }
            }
        }
    }
    if !events.is_empty() {
        let mut backoff = Duration::from_millis(50);
        loop {
            match consumer.deliver_batch(&events).await {
                Ok(_) => break,
                Err(error) => {
                    shared
                        .stats
                        .handler_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        consumer = name,
                        first_event_id = %events[0].id,
                        events = events.len(),
                        error = format!("{error:#}"),
                        retry_ms = backoff.as_millis() as u64,
                        "event handler failed; retrying"
                    );
                    if !pause(backoff, stop).await {
                        return false;
                    }
                    backoff = next_backoff(backoff, max_backoff);
                }
            }
        }
        let now = nova_core::now_millis();
        for event in &events {
            metrics::histogram!("event_publish_to_apply_seconds", "bus" => "kafka")
                .record((now - event.occurred_at).max(0) as f64 / 1000.0);
        }
    }
    if consumer.kind() == HandlerKind::Durable {
        for message in messages {
            if let Err(error) = kafka.store_offset_from_message(message) {
                // The partition was revoked meanwhile: its new owner gets the message again.
                tracing::warn!(consumer = name, %error, "kafka offset not stored");
            }
        }
    }
    true
}

/// Dead-letters one undecodable message, retrying until the dead letter is produced. False
/// when asked to stop first.
async fn dead_letter_with_retries(
    shared: &Shared,
    name: &'static str,
    message: &BorrowedMessage<'_>,
    error: &str,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let max_backoff = shared.settings.max_retry_backoff;
    let label = topic_label(&shared.settings, message.topic());
    let mut backoff = Duration::from_millis(100);
    loop {
        match dead_letter(shared, name, message, error).await {
            Ok(()) => break,
            Err(failure) => {
                tracing::warn!(
                    consumer = name,
                    error = format!("{failure:#}"),
                    "dead letter not produced; retrying"
                );
                if !pause(backoff, stop).await {
                    return false;
                }
                backoff = next_backoff(backoff, max_backoff);
            }
        }
    }
    shared
        .stats
        .dead_lettered
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    metrics::counter!("event_dead_lettered_total", "topic" => label).increment(1);
    tracing::error!(
        consumer = name,
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        %error,
        "dead-lettered kafka message"
    );
    true
}

/// Produces the message, unchanged, to `{topic}.dlq` with the reason in headers.
async fn dead_letter(
    shared: &Shared,
    consumer: &str,
    message: &BorrowedMessage<'_>,
    error: &str,
) -> anyhow::Result<()> {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let source = format!(
        "{}/{}/{}",
        message.topic(),
        message.partition(),
        message.offset()
    );
    let headers = headers
        .insert(Header {
            key: headers::DLQ_ERROR,
            value: Some(error),
        })
        .insert(Header {
            key: headers::DLQ_CONSUMER,
            value: Some(consumer),
        })
        .insert(Header {
            key: headers::DLQ_SOURCE,
            value: Some(source.as_str()),
        });
    let topic = format!("{}.dlq", message.topic());
    shared
        .dead_letters
        .send_one(&topic, message.key(), message.payload(), headers)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use nova_bus::DedupSettings;
    use nova_events::{EventHandler, Handled};

    struct Named(HandlerKind);

    #[async_trait::async_trait]
    impl EventHandler for Named {
        fn name(&self) -> &'static str {
            "hub"
        }
        fn topics(&self) -> &'static [Topic] {
            &[Topic::Feed]
        }
        fn kind(&self) -> HandlerKind {
            self.0
        }
        async fn handle(&self, _event: &Envelope) -> anyhow::Result<Handled> {
            Ok(Handled::Ignored)
        }
    }

    fn config_of(kind: HandlerKind) -> (String, ClientConfig) {
        let settings = KafkaSettings::new("127.0.0.1:9092", "p.", 12);
        let consumer = Consumer::new(Arc::new(Named(kind)), DedupSettings::default());
        client_config(&settings, &consumer)
    }

    #[test]
    fn durable_handlers_share_a_group_and_store_offsets_only_by_hand() {
        let (group, config) = config_of(HandlerKind::Durable);
        assert_eq!(group, "p.nova-hub");
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("enable.auto.commit"), Some("true"));
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
    }

    #[test]
    fn live_handlers_get_a_group_per_node_and_start_from_the_newest_events() {
        let (first, config) = config_of(HandlerKind::Live);
        let (second, _) = config_of(HandlerKind::Live);
        assert!(first.starts_with("p.nova-live-12-"), "{first}");
        assert_ne!(first, second, "a new group per start");
        assert_eq!(config.get("auto.offset.reset"), Some("latest"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
    }
}
