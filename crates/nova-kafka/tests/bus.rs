//! The Kafka bus against a real broker: delivery and per-key order, offsets committed only
//! after the effect, dead letters, and redelivery after a crash before the commit (fault F3).
//! Needs `TEST_KAFKA_BROKERS` (`.ci/kafka-broker.sh`); skipped without it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Handler, Recording};
use nova_bus::{Consumer, DedupSettings};
use nova_core::Id;
use nova_events::{Publisher, Topic};
use nova_kafka::{headers, KafkaBus};
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const WAIT: Duration = Duration::from_secs(90);

fn consumer(recording: &Arc<Recording>) -> Arc<Consumer> {
    Arc::new(Consumer::new(
        Arc::new(Handler(recording.clone())),
        DedupSettings::default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_in_key_order_and_offsets_follow_the_effects() {
    let Some(brokers) = common::brokers("every_event_arrives_in_key_order") else {
        return;
    };
    let settings = common::settings(&brokers);
    let recording = Recording::new();
    // 30 events over 3 keys; the last one stalls in its handler after its effect.
    let events: Vec<_> = (1..=30)
        .map(|i| common::followed(1000 + i, 1 + i % 3))
        .collect();
    let last = events[29].id;
    recording.state.lock().expect("state").stall_on = Some(last);

    let bus = KafkaBus::new(settings.clone(), vec![consumer(&recording)]).expect("bus");
    let publisher = bus.publisher().expect("publisher");
    let running = bus.start();
    let records = common::records(&events);
    publisher
        .publish(&records[..12])
        .await
        .expect("first batch");
    publisher
        .publish(&records[12..])
        .await
        .expect("second batch");

    tokio::time::timeout(WAIT, recording.stalled.notified())
        .await
        .expect("the last event reached its handler");
    let topic = settings.topic_name(Topic::Feed);
    let published = common::read_topic(&brokers, &topic, 30, Duration::from_secs(20));
    assert_eq!(published.len(), 30, "every event is on the topic");
    assert_eq!(
        common::partition_count(&brokers, &topic),
        3,
        "created with 3 partitions"
    );
    for message in &published {
        let id = common::header(message, headers::EVENT_ID).expect("id header");
        let event = events
            .iter()
            .find(|e| e.id.to_string() == id)
            .expect("known id");
        assert_eq!(message.key(), Some(event.key.to_string().as_bytes()));
        assert_eq!(
            common::header(message, headers::EVENT_TYPE).as_deref(),
            Some("user.followed")
        );
        assert_eq!(
            common::header(message, headers::EVENT_VERSION).as_deref(),
            Some("1")
        );
    }
    let stalled = published
        .iter()
        .find(|m| common::header(m, headers::EVENT_ID) == Some(last.to_string()))
        .expect("last event");
    let group = settings.durable_group("recording");

    // The effect happened, the handler has not returned: the offset must not move past it,
    // through several commit intervals.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let committed = common::committed(&brokers, &group, &topic, stalled.partition());
    assert!(
        committed.is_none_or(|c| c <= stalled.offset()),
        "offset {committed:?} committed past the unfinished message at {}",
        stalled.offset()
    );
    recording.release.notify_one();
    common::wait_until(WAIT, "the commit after the effect", || {
        common::committed(&brokers, &group, &topic, stalled.partition())
            == Some(stalled.offset() + 1)
    })
    .await;

    let effects = recording.effects();
    assert_eq!(effects.len(), 30, "each event applied once");
    for key in 1..=3 {
        let of_key: Vec<Id> = effects
            .iter()
            .filter(|(k, _)| *k == Id(key))
            .map(|(_, id)| *id)
            .collect();
        let mut sorted = of_key.clone();
        sorted.sort();
        assert_eq!(
            of_key, sorted,
            "events of key {key} applied in publish order"
        );
        assert_eq!(of_key.len(), 10);
    }
    running.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_unknown_version_messages_are_dead_lettered_and_consumption_goes_on() {
    let Some(brokers) = common::brokers("dead_letters") else {
        return;
    };
    let settings = common::settings(&brokers);
    let recording = Recording::new();
    let bus = KafkaBus::new(settings.clone(), vec![consumer(&recording)]).expect("bus");
    let stats = bus.stats();
    let publisher = bus.publisher().expect("publisher");
    let running = bus.start();
    // Topics exist once the first publish returned.
    let first = common::followed(2001, 7);
    publisher.publish(&[first.record()]).await.expect("publish");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let topic = settings.topic_name(Topic::Feed);
    let mut v2: serde_json::Value =
        serde_json::from_slice(&common::followed(2002, 7).encode()).expect("json");
    v2["version"] = 2.into();
    let v2 = serde_json::to_vec(&v2).expect("v2");
    let garbage: &[u8] = b"\xff\x00 not an event";
    for payload in [garbage, v2.as_slice()] {
        producer
            .send(
                FutureRecord::to(&topic).key("7").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce bad message");
    }
    // The same key, so the same partition, behind the bad messages.
    let after = common::followed(2003, 7);
    publisher.publish(&[after.record()]).await.expect("publish");

    common::wait_until(WAIT, "the event behind the bad ones", || {
        recording.effects().len() == 2
    })
    .await;
    assert_eq!(
        recording.effects(),
        vec![(Id(7), first.id), (Id(7), after.id)]
    );
    assert_eq!(stats.dead_lettered(), 2);

    let dlq = common::read_topic(
        &brokers,
        &settings.dead_letter_topic(Topic::Feed),
        2,
        Duration::from_secs(20),
    );
    assert_eq!(dlq.len(), 2, "both bad messages are parked");
    let mut payloads: Vec<&[u8]> = dlq
        .iter()
        .map(|m| m.payload().unwrap_or_default())
        .collect();
    payloads.sort();
    let mut expected = vec![garbage, v2.as_slice()];
    expected.sort();
    assert_eq!(payloads, expected, "parked unchanged");
    for message in &dlq {
        assert_eq!(message.key(), Some(&b"7"[..]));
        let error = common::header(message, headers::DLQ_ERROR).expect("error header");
        assert!(
            error.contains("undecodable") || error.contains("unsupported event version 2"),
            "{error}"
        );
        assert_eq!(
            common::header(message, headers::DLQ_CONSUMER).as_deref(),
            Some("recording")
        );
        assert!(common::header(message, headers::DLQ_SOURCE)
            .expect("source")
            .starts_with(&topic));
    }
    running.stop(Duration::from_secs(10)).await;
}

/// F3: the consumer dies after its side effect, before its offset is committed. The restarted
/// consumer gets the event again; the idempotent handler applies nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_a_crash_between_effect_and_commit_redelivers_without_a_second_effect() {
    let Some(brokers) = common::brokers("f3_crash_between_effect_and_commit") else {
        return;
    };
    let settings = common::settings(&brokers);
    let recording = Recording::new();
    let events = [common::followed(3001, 9), common::followed(3002, 9)];
    {
        let mut state = recording.state.lock().expect("state");
        state.stall_on = Some(events[1].id);
        state.stall_forever = true;
    }
    let bus = KafkaBus::new(settings.clone(), vec![consumer(&recording)]).expect("bus");
    let publisher = bus.publisher().expect("publisher");
    let running = bus.start();
    publisher
        .publish(&common::records(&events))
        .await
        .expect("publish");
    tokio::time::timeout(WAIT, recording.stalled.notified())
        .await
        .expect("second event applied");
    // The crash: the loop dies inside the handler, after the effect, before storing the offset.
    running.abort().await;
    assert_eq!(recording.deliveries_of(events[1].id), 1);

    let bus = KafkaBus::new(settings.clone(), vec![consumer(&recording)]).expect("restarted bus");
    let running = bus.start();
    common::wait_until(WAIT, "redelivery of the uncommitted event", || {
        recording.deliveries_of(events[1].id) >= 2
    })
    .await;
    {
        let state = recording.state.lock().expect("state");
        assert_eq!(
            state.effects,
            vec![(Id(9), events[0].id), (Id(9), events[1].id)],
            "effect count unchanged by the redelivery"
        );
        assert!(state.already_applied >= 1, "the repeat was recognised");
    }
    running.stop(Duration::from_secs(10)).await;
}
