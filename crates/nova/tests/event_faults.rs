//! The event path under real process faults (reliability matrix F1 and F11) and across two
//! nodes, with the real `nova` binary:
//!
//! - F1: the relay publishes a batch (its notification effects applied) and the process aborts
//!   before marking the rows sent (failpoint `events.crash_after_publish`); after a restart the
//!   rows are published again, the notifications consumer recognises them (durable
//!   `processed_events` record) and every effect exists exactly once;
//! - F11: SIGKILL in the middle of a storm of follows and likes; after the restart every
//!   committed follow and like has produced its notification exactly once (the notification
//!   groups count exactly the followers and likers in the database) and nothing acknowledged
//!   is missing;
//! - two nodes on one Postgres and one Kafka-compatible broker: a post created through node A
//!   reaches a subscriber connected to node B, once (runs when `TEST_KAFKA_BROKERS` is set).

mod common;

use std::time::{Duration, Instant};

use common::process::{acknowledged, client, create_post, gql, ok, register, Account, Node};
use common::ws::WsClient;
use serde_json::{json, Value};

const NOTIFICATIONS: &str = "query { unreadNotificationCount notifications(first: 50) { edges { node { type actorCount } } } }";

/// The actor count of each notification type of the viewer.
async fn notification_counts(http: &reqwest::Client, url: &str, token: &str) -> (i64, i64, i64) {
    let data = ok(http, url, Some(token), NOTIFICATIONS, json!({})).await;
    let mut follows = 0;
    let mut likes = 0;
    let mut groups = 0;
    for edge in data["notifications"]["edges"].as_array().expect("edges") {
        groups += 1;
        let count = edge["node"]["actorCount"].as_i64().expect("count");
        match edge["node"]["type"].as_str() {
            Some("FOLLOW") => follows += count,
            Some("LIKE") => likes += count,
            _ => {}
        }
    }
    (follows, likes, groups)
}

async fn metric(http: &reqwest::Client, node: &Node, name: &str) -> f64 {
    let text = http
        .get(format!("http://{}/metrics", node.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    common::metric_sum(&text, name)
}

/// Waits until the node's relay has published everything (the backlog gauge is refreshed
/// every second).
async fn drained(http: &reqwest::Client, node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(30);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    while metric(http, node, "outbox_backlog").await > 0.0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn profile_counts(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    username: &str,
    post: &str,
) -> (i64, i64) {
    let data = ok(
        http,
        url,
        Some(token),
        "query($u: String!, $p: ID!) { user(username: $u) { followerCount } post(id: $p) { likeCount } }",
        json!({"u": username, "p": post}),
    )
    .await;
    (
        data["user"]["followerCount"].as_i64().expect("followers"),
        data["post"]["likeCount"].as_i64().expect("likes"),
    )
}

#[tokio::test]
async fn f1_relay_crash_after_publish_redelivers_and_effects_happen_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let http = client();
    let node = Node::start(&data_dir);
    let url = node.graphql_url();
    let alice = register(&http, &url, "alice").await;
    let post = create_post(&http, &url, &alice, "like me").await;
    let mut likers = Vec::new();
    for i in 0..6 {
        likers.push(register(&http, &url, &format!("liker{i}")).await);
    }
    drained(&http, &node).await;
    node.terminate();

    // The failpoint aborts the process right after the first batch was published.
    let mut crashing = Node::start_with(&data_dir, &[("NOVA_EVENTS__CRASH_AFTER_PUBLISH", "true")]);
    let url = crashing.graphql_url();
    let like = "mutation($id: ID!) { likePost(postId: $id) { id } }";
    for liker in &likers {
        let _ = gql(
            &http,
            &url,
            Some(&liker.access_token),
            like,
            json!({"id": post}),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = crashing.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the failpoint did not fire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "aborted by the failpoint");
    drop(crashing);

    let node = Node::start(&data_dir);
    let url = node.graphql_url();
    // Retrying the likes is harmless (a like that exists adds no event).
    for liker in &likers {
        ok(
            &http,
            &url,
            Some(&liker.access_token),
            like,
            json!({"id": post}),
        )
        .await;
    }
    drained(&http, &node).await;
    let (_, likes) = profile_counts(&http, &url, &alice.access_token, "alice", &post).await;
    assert_eq!(likes, likers.len() as i64);
    let (_, like_actors, _) = notification_counts(&http, &url, &alice.access_token).await;
    assert_eq!(
        like_actors, likes,
        "one notification contribution per like, no more"
    );
    assert!(
        metric(
            &http,
            &node,
            "kafka_event_deduplicated_total{consumer=\"notifications\"}"
        )
        .await
            >= 1.0,
        "the republished batch was recognised"
    );
    node.terminate();
}

#[tokio::test]
async fn f11_sigkill_during_writes_loses_no_event_and_duplicates_no_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let http = client();
    let node = Node::start(&data_dir);
    let url = node.graphql_url();
    let alice = register(&http, &url, "alice").await;
    let post = create_post(&http, &url, &alice, "the post").await;
    let mut fans: Vec<Account> = Vec::new();
    for i in 0..40 {
        fans.push(register(&http, &url, &format!("fan{i}")).await);
    }

    // Eight writers follow alice and like her post, one fan after another, until the kill.
    let acknowledged_writes =
        std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, &'static str)>::new()));
    let mut writers = Vec::new();
    for chunk in fans.chunks(5) {
        let chunk = chunk.to_vec();
        let http = http.clone();
        let url = url.clone();
        let post = post.clone();
        let alice_id = alice.id.clone();
        let acks = acknowledged_writes.clone();
        writers.push(tokio::spawn(async move {
            for fan in chunk {
                for (kind, query, vars) in [
                    (
                        "follow",
                        "mutation($id: ID!) { follow(userId: $id) { id } }",
                        json!({"id": alice_id}),
                    ),
                    (
                        "like",
                        "mutation($id: ID!) { likePost(postId: $id) { id } }",
                        json!({"id": post}),
                    ),
                ] {
                    let result = gql(&http, &url, Some(&fan.access_token), query, vars).await;
                    if acknowledged(&result).is_some() {
                        acks.lock().expect("acks").push((fan.id.clone(), kind));
                    } else {
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    node.kill_9();
    for writer in writers {
        let _ = writer.await;
    }
    let acks = acknowledged_writes.lock().expect("acks").clone();
    assert!(
        !acks.is_empty(),
        "some writes were acknowledged before the kill"
    );

    let node = Node::start(&data_dir);
    let url = node.graphql_url();
    drained(&http, &node).await;
    let (followers, likes) = profile_counts(&http, &url, &alice.access_token, "alice", &post).await;
    let acked_follows = acks.iter().filter(|a| a.1 == "follow").count() as i64;
    let acked_likes = acks.iter().filter(|a| a.1 == "like").count() as i64;
    assert!(
        followers >= acked_follows,
        "{followers} followers, {acked_follows} acknowledged"
    );
    assert!(
        likes >= acked_likes,
        "{likes} likes, {acked_likes} acknowledged"
    );
    let (follow_actors, like_actors, _) =
        notification_counts(&http, &url, &alice.access_token).await;
    assert_eq!(
        follow_actors, followers,
        "every committed follow notified exactly once"
    );
    assert_eq!(
        like_actors, likes,
        "every committed like notified exactly once"
    );
    node.terminate();
}

/// Drops the test database when the test ends.
struct Database(String);

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
            ])
            .output();
    }
}

#[tokio::test]
async fn two_nodes_a_post_through_node_a_reaches_a_subscriber_on_node_b_once() {
    let Ok(brokers) = std::env::var("TEST_KAFKA_BROKERS") else {
        println!("two_nodes: skipped: set TEST_KAFKA_BROKERS (see .ci/kafka-broker.sh)");
        return;
    };
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let run = format!("{:08x}", rand_suffix());
    let name = format!("nova_test_2node_{run}");
    let _database = Database(name.clone());
    let db_url = format!("{}/{name}", base.trim_end_matches('/'));
    let prefix = format!("t{run}.");
    let dir = tempfile::tempdir().expect("tempdir");
    let shared_secret = "two-node-test-secret-two-node-test-secret";
    let env = |node_id: &'static str| {
        vec![
            ("NOVA_DB__URL", db_url.clone()),
            ("NOVA_DB__CREATE_IF_MISSING", "true".to_owned()),
            ("NOVA_EVENTS__BUS", "kafka".to_owned()),
            ("NOVA_EVENTS__KAFKA_BROKERS", brokers.clone()),
            ("NOVA_EVENTS__KAFKA_PREFIX", prefix.clone()),
            ("NOVA_NODE_ID", node_id.to_owned()),
            ("NOVA_AUTH__JWT_SECRET", shared_secret.to_owned()),
        ]
    };
    let start = |sub: &str, env: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Node::start_with(&dir.path().join(sub), &pairs)
    };
    let node_a = start("a", env("1"));
    let node_b = start("b", env("2"));
    let http = client();
    let url_a = node_a.graphql_url();
    let alice = register(&http, &url_a, "alice").await;
    let bob = register(&http, &url_a, "bob").await;
    ok(
        &http,
        &url_a,
        Some(&bob.access_token),
        "mutation($id: ID!) { follow(userId: $id) { id } }",
        json!({"id": alice.id}),
    )
    .await;

    // Bob listens on node B (same database, same signing key: the token is valid there too).
    let mut ws = WsClient::connect(&format!("http://{}", node_b.addr)).await;
    ws.init(&bob.access_token).await;
    ws.subscribe(
        "feed",
        "subscription { homeFeed { post { id body } } }",
        json!({}),
    )
    .await;

    // Node B's live consumer joins its group in the background (~20 s on tansu) and reads from
    // the latest offset: post until the first delivery shows it is live.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            Instant::now() < deadline,
            "node B never delivered a post made on node A"
        );
        create_post(&http, &url_a, &alice, "warming up").await;
        if ws.next_of("feed", Duration::from_secs(2)).await.is_some() {
            break;
        }
    }
    // Drain any warm-up posts still on their way.
    while ws.next_of("feed", Duration::from_secs(2)).await.is_some() {}

    let id = create_post(&http, &url_a, &alice, "made on node A").await;
    let delivered = ws
        .next_of("feed", Duration::from_secs(15))
        .await
        .expect("delivered on node B");
    assert_eq!(delivered["homeFeed"]["post"]["id"], id.as_str());
    assert_eq!(delivered["homeFeed"]["post"]["body"], "made on node A");
    let again: Option<Value> = ws.next_of("feed", Duration::from_secs(3)).await;
    assert!(again.is_none(), "delivered once, got a second: {again:?}");
    node_a.terminate();
    node_b.terminate();
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    nanos ^ std::process::id()
}
