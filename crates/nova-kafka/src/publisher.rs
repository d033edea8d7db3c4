//! The relay's publisher: an idempotent producer with `acks=all`.
//!
//! `publish` hands every message of the batch to the producer, then waits for every delivery
//! report: it returns Ok only when all of them were acknowledged by the broker, so the relay
//! marks rows sent only after that. Any failure (a message timed out, the broker refused it)
//! fails the whole batch; the relay publishes it again later and consumers absorb the
//! duplicates. The idempotent producer keeps retries from reordering or duplicating messages
//! within a partition while it retries on its own.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nova_events::{EventRecord, Publisher, Topic};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::admin::Topics;
use crate::{headers, KafkaSettings};

#[derive(Clone)]
pub struct KafkaPublisher {
    /// Replaced after a failed batch (see [`KafkaPublisher::renew`]).
    producer: Arc<RwLock<FutureProducer>>,
    config: ClientConfig,
    topics: Arc<Topics>,
    names: Arc<[(Topic, String)]>,
}

/// Type and version of an encoded envelope, for headers (absent when it does not parse).
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow)]
    type_name: Option<std::borrow::Cow<'a, str>>,
    version: Option<u16>,
}

impl KafkaPublisher {
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<KafkaPublisher> {
        KafkaPublisher::with_topics(settings, Arc::new(Topics::new(settings)?))
    }

    pub(crate) fn with_topics(
        settings: &KafkaSettings,
        topics: Arc<Topics>,
    ) -> anyhow::Result<KafkaPublisher> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                settings.message_timeout.as_millis().to_string(),
            )
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "1000")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "2000")
            .set("linger.ms", "5");
        let producer: FutureProducer = config.create()?;
        let names = Topic::ALL
            .into_iter()
            .map(|t| (t, settings.topic_name(t)))
            .collect();
        Ok(KafkaPublisher {
            producer: Arc::new(RwLock::new(producer)),
            config,
            topics,
            names,
        })
    }

    fn name_of(&self, topic: Topic) -> &str {
        self.names
            .iter()
            .find(|(t, _)| *t == topic)
            .map_or("", |(_, n)| n.as_str())
    }

    /// Produces one message and waits for its acknowledgement (dead letters).
    pub(crate) async fn send_one(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> anyhow::Result<()> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
        record.key = key;
        record.payload = payload;
        let delivery = self.enqueue(record).await?;
        let error = match delivery.await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err((error, _))) => anyhow::Error::new(error),
            Err(_) => anyhow::anyhow!("producer dropped the delivery report"),
        };
        self.topics.invalidate().await;
        self.renew();
        Err(error.context(format!("produce to {topic}")))
    }

    fn producer(&self) -> FutureProducer {
        match self.producer.read() {
            Ok(producer) => producer.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Starts over with a new producer. An idempotent producer numbers its messages per
    /// partition; a broker that lost its state (restarted without storage, or a failed-over
    /// partition leader missing the tail) no longer accepts that sequence, and the old producer
    /// would time out every message from then on. The messages it still holds belong to
    /// batches that failed and will be published again.
    fn renew(&self) {
        let fatal = self.producer().client().fatal_error();
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                let mut producer = match self.producer.write() {
                    Ok(producer) => producer,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let old = std::mem::replace(&mut *producer, fresh);
                drop(producer);
                // Dropping a producer purges its queue and waits up to 500 ms: not on a
                // runtime worker.
                tokio::task::spawn_blocking(move || drop(old));
                tracing::info!(?fatal, "kafka producer renewed after a failed batch");
            }
            Err(error) => tracing::warn!(%error, "kafka producer not renewed"),
        }
    }

    /// Hands a message to the producer, waiting while its local queue is full.
    async fn enqueue<'a>(
        &self,
        mut record: FutureRecord<'a, [u8], [u8]>,
    ) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
        let producer = self.producer();
        loop {
            match producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, back)) => {
                    return Err(
                        anyhow::Error::new(error).context(format!("produce to {}", back.topic))
                    )
                }
            }
        }
    }
}

fn headers_of(record: &EventRecord) -> OwnedHeaders {
    let id = record.id.to_string();
    let mut headers = OwnedHeaders::new_with_capacity(3).insert(Header {
        key: headers::EVENT_ID,
        value: Some(id.as_str()),
    });
    if let Ok(probe) = serde_json::from_slice::<Probe<'_>>(&record.payload) {
        if let Some(type_name) = probe.type_name {
            headers = headers.insert(Header {
                key: headers::EVENT_TYPE,
                value: Some(type_name.as_ref()),
            });
        }
        if let Some(version) = probe.version {
            headers = headers.insert(Header {
                key: headers::EVENT_VERSION,
                value: Some(version.to_string().as_str()),
            });
        }
    }
    headers
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, batch: &[EventRecord]) -> anyhow::Result<()> {
        let started = Instant::now();
        let result = self.publish_all(batch).await;
        match &result {
            Ok(()) => {
                metrics::counter!("kafka_published_total").increment(batch.len() as u64);
                metrics::histogram!("kafka_publish_batch_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Err(_) => {
                metrics::counter!("kafka_publish_failures_total").increment(1);
                // The broker may have lost its topics and our producer's state (a restart
                // without storage).
                self.topics.invalidate().await;
                self.renew();
            }
        }
        result
    }
}

impl KafkaPublisher {
    async fn publish_all(&self, batch: &[EventRecord]) -> anyhow::Result<()> {
        self.topics.ensure().await?;
        let mut deliveries = Vec::with_capacity(batch.len());
        for record in batch {
            let key = record.key.to_string();
            let topic = self.name_of(record.topic);
            let message = FutureRecord::<[u8], [u8]>::to(topic)
                .key(key.as_bytes())
                .payload(record.payload.as_slice())
                .headers(headers_of(record));
            deliveries.push(self.enqueue(message).await?);
        }
        let mut failure = None;
        for (record, delivery) in batch
            .iter()
            .zip(futures::future::join_all(deliveries).await)
        {
            let error = match delivery {
                Ok(Ok(_)) => continue,
                Ok(Err((error, _))) => anyhow::Error::new(error),
                Err(_) => anyhow::anyhow!("producer dropped the delivery report"),
            };
            if failure.is_none() {
                failure = Some(error.context(format!(
                    "publish event {} to {}",
                    record.id,
                    self.name_of(record.topic)
                )));
            }
        }
        match failure {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }
}
