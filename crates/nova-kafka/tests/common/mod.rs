//! Helpers for the tests against a real Kafka-compatible broker (`.ci/kafka-broker.sh`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nova_core::Id;
use nova_events::{DomainEvent, Envelope, EventHandler, EventRecord, Handled, HandlerKind, Topic};
use nova_kafka::KafkaSettings;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;

/// The broker the tests use, or None (after saying so) when `TEST_KAFKA_BROKERS` is unset.
pub fn brokers(test: &str) -> Option<String> {
    match std::env::var("TEST_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.trim().is_empty() => Some(brokers),
        _ => {
            println!("{test}: skipped: set TEST_KAFKA_BROKERS (see .ci/kafka-broker.sh)");
            None
        }
    }
}

/// Settings with a fresh prefix, so tests never see each other's topics and groups.
pub fn settings(brokers: &str) -> KafkaSettings {
    let mut settings =
        KafkaSettings::new(brokers, format!("t{}.", uuid::Uuid::new_v4().simple()), 1);
    settings.commit_interval = Duration::from_millis(200);
    settings.max_retry_backoff = Duration::from_millis(500);
    settings
}

pub fn followed(id: i64, follower: i64) -> Envelope {
    Envelope::new(
        Id(id),
        nova_core::now_millis(),
        DomainEvent::UserFollowed {
            follower_id: Id(follower),
            followee_id: Id(1),
        },
    )
}

pub fn records(events: &[Envelope]) -> Vec<EventRecord> {
    events.iter().map(Envelope::record).collect()
}

/// Waits until `done` holds, or panics after `timeout` with `what`.
pub async fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A durable handler that records each event id it applied (its "database"): a repeat is
/// `AlreadyApplied`, never a second effect. It can be told to stall after applying one event
/// (before returning), to stand for a consumer stopped between its effect and its commit.
#[derive(Default)]
pub struct Recording {
    pub state: Mutex<RecordingState>,
    pub stalled: Notify,
    pub release: Notify,
}

#[derive(Default)]
pub struct RecordingState {
    pub applied: HashSet<Id>,
    /// (key, event id) in the order the effects happened.
    pub effects: Vec<(Id, Id)>,
    /// Every call, repeats included.
    pub deliveries: Vec<Id>,
    pub already_applied: u32,
    /// The events applied, in order.
    pub events: Vec<Envelope>,
    /// Stall after applying this event (once).
    pub stall_on: Option<Id>,
    /// Stall forever instead of until `release`.
    pub stall_forever: bool,
}

impl Recording {
    pub fn new() -> Arc<Recording> {
        Arc::new(Recording::default())
    }
    pub fn effects(&self) -> Vec<(Id, Id)> {
        self.state.lock().expect("state").effects.clone()
    }
    pub fn deliveries_of(&self, id: Id) -> usize {
        self.state
            .lock()
            .expect("state")
            .deliveries
            .iter()
            .filter(|d| **d == id)
            .count()
    }
}

/// Shares one `Recording` (its durable state) between consumer instances.
pub struct Handler(pub Arc<Recording>);

#[async_trait]
impl EventHandler for Handler {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn topics(&self) -> &'static [Topic] {
        &[Topic::Feed]
    }
    fn kind(&self) -> HandlerKind {
        HandlerKind::Durable
    }
    async fn handle(&self, event: &Envelope) -> anyhow::Result<Handled> {
        let stall = {
            let mut state = self.0.state.lock().expect("state");
            state.deliveries.push(event.id);
            if !state.applied.insert(event.id) {
                state.already_applied += 1;
                return Ok(Handled::AlreadyApplied);
            }
            state.effects.push((event.key, event.id));
            state.events.push(event.clone());
            if state.stall_on == Some(event.id) {
                state.stall_on = None;
                Some(state.stall_forever)
            } else {
                None
            }
        };
        if let Some(forever) = stall {
            self.0.stalled.notify_one();
            if forever {
                std::future::pending::<()>().await;
            }
            self.0.release.notified().await;
        }
        Ok(Handled::Applied)
    }
}

/// Reads every message of `topic` from the beginning (no consumer group: assigned partitions),
/// until `expected` arrived or `timeout` passed.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            assignment
                .add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    let started = Instant::now();
    let mut messages = Vec::new();
    while messages.len() < expected && started.elapsed() < timeout {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            messages.push(message.detach());
        }
    }
    messages
}

/// How many partitions `topic` has.
pub fn partition_count(brokers: &str, topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("metadata client");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata.topics().iter().map(|t| t.partitions().len()).sum()
}

pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|header| header.key == key)
            .and_then(|header| header.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// The offset committed by `group` for one partition (None when nothing is).
pub fn committed(brokers: &str, group: &str, topic: &str, partition: i32) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offsets client");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .find_partition(topic, partition)
        .and_then(|p| match p.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
}

/// A tansu broker of the test's own (to pause or kill), on a free port.
pub struct OwnBroker {
    pub bin: String,
    pub port: u16,
    pub child: Child,
}

impl OwnBroker {
    /// None (after saying so) when `TEST_TANSU_BIN` is unset.
    pub fn start(test: &str) -> Option<OwnBroker> {
        let Ok(bin) = std::env::var("TEST_TANSU_BIN") else {
            println!("{test}: skipped: set TEST_TANSU_BIN (see .ci/kafka-broker.sh)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = spawn(&bin, port);
        Some(OwnBroker { bin, port, child })
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGKILL, then a new broker on the same port (memory storage: empty).
    pub fn kill(&mut self) {
        self.child.kill().expect("sigkill");
        self.child.wait().expect("reap");
    }

    pub fn restart(&mut self) {
        self.child = spawn(&self.bin, self.port);
    }
}

fn spawn(bin: &str, port: u16) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tansu did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
