//! A Nova node with `events.bus = "kafka"`: a post created through the GraphQL API reaches a
//! durable Kafka consumer exactly once (outbox -> relay -> Kafka -> consumer loop). Runs on
//! SQLite, or Postgres with `TEST_DATABASE=postgres`. Skipped without `TEST_KAFKA_BROKERS`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Handler, Recording};
use nova_app::settings::BusKind;
use nova_app::testing::TestApp;
use nova_bus::{Consumer, DedupSettings};
use nova_events::DomainEvent;
use nova_kafka::KafkaBus;
use serde_json::{json, Value};

async fn graphql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json body");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_created_through_the_api_reaches_a_durable_kafka_consumer_once() {
    let Some(brokers) = common::brokers("app_over_kafka") else {
        return;
    };
    let kafka = common::settings(&brokers);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = TestApp::test_settings(dir.path());
    settings.events.bus = BusKind::Kafka;
    settings.events.kafka_brokers = brokers.clone();
    settings.events.kafka_prefix = kafka.prefix.clone();
    let app = TestApp::spawn_with(settings).await.expect("app");

    let recording = Recording::new();
    let consumer = Arc::new(Consumer::new(
        Arc::new(Handler(recording.clone())),
        DedupSettings::default(),
    ));
    let bus = KafkaBus::new(kafka, vec![consumer]).expect("bus").start();

    let data = graphql(
        &app,
        None,
        "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken user { id } } }",
        json!({ "u": "kafkawriter", "e": "kafkawriter@example.test", "p": "password-kafkawriter" }),
    )
    .await;
    let token = data["register"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let author = data["register"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let data = graphql(
        &app,
        Some(&token),
        "mutation($b: String!) { createPost(input: {body: $b}) { id } }",
        json!({ "b": "hello @kafka" }),
    )
    .await;
    let post = data["createPost"]["id"]
        .as_str()
        .expect("post id")
        .to_owned();

    let created = |recording: &Recording| -> Vec<DomainEvent> {
        recording
            .state
            .lock()
            .expect("state")
            .events
            .iter()
            .filter(|e| matches!(&e.event, DomainEvent::PostCreated { post_id, .. } if post_id.to_string() == post))
            .map(|e| e.event.clone())
            .collect()
    };
    common::wait_until(
        Duration::from_secs(90),
        "post.created on the consumer",
        || !created(&recording).is_empty(),
    )
    .await;
    // Time for a duplicate to show up, if one were coming.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = created(&recording);
    assert_eq!(seen.len(), 1, "{seen:?}");
    match &seen[0] {
        DomainEvent::PostCreated {
            author_id,
            mentions,
            visibility,
            ..
        } => {
            assert_eq!(author_id.to_string(), author);
            assert_eq!(mentions, &vec!["kafka".to_owned()]);
            assert_eq!(visibility, "PUBLIC");
        }
        other => panic!("{other:?}"),
    }
    bus.stop(Duration::from_secs(10)).await;
    app.stop().await.expect("stop app");
}
