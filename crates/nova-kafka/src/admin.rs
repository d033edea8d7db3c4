//! Creates Nova's topics (and their dead-letter topics) when they are missing.

use std::time::Duration;

use nova_events::Topic;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::Mutex;

use crate::KafkaSettings;

/// Topic creation, done once per bus (again after a publish failed: a broker that lost its
/// data may have lost the topics too).
pub struct Topics {
    admin: AdminClient<DefaultClientContext>,
    names: Vec<String>,
    partitions: i32,
    replication: i32,
    ready: Mutex<bool>,
}

impl Topics {
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<Topics> {
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .create()?;
        let names = Topic::ALL
            .into_iter()
            .flat_map(|t| [settings.topic_name(t), settings.dead_letter_topic(t)])
            .collect();
        Ok(Topics {
            admin,
            names,
            partitions: settings.partitions,
            replication: settings.replication,
            ready: Mutex::new(false),
        })
    }

    /// Creates the missing topics; existing ones are left as they are.
    pub async fn ensure(&self) -> anyhow::Result<()> {
        let mut ready = self.ready.lock().await;
        if *ready {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = self
            .names
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    self.partitions,
                    TopicReplication::Fixed(self.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self.admin.create_topics(&new, &options).await?;
        for result in results {
            match result {
                Ok(name) => tracing::info!(topic = name, "created kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => anyhow::bail!("create kafka topic {name}: {code}"),
            }
        }
        *ready = true;
        Ok(())
    }

    /// The next [`Topics::ensure`] asks the broker again.
    pub async fn invalidate(&self) {
        *self.ready.lock().await = false;
    }
}
