//! The protocol test with a standard client: `graphql-ws` (the reference implementation of
//! `graphql-transport-ws`, from npm, run by Node) subscribes to the home feed through a real
//! server and receives posts; with a bad token it is refused with close code 4403.
//!
//! Needs `node` and `npm`; the test installs the client from `crates/nova/tests/js/package-lock.json`
//! (`npm ci`) when `node_modules` is missing.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::Api;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

async fn install_client() {
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = INSTALL.lock().await;
    if js_dir().join("node_modules/graphql-ws").exists() {
        return;
    }
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(js_dir())
        .status()
        .await
        .expect("run npm ci (Node.js and npm are required)");
    assert!(status.success(), "npm ci failed");
}

struct Client {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Client {
    async fn start(api: &Api, token: &str, count: usize, query: &str) -> Client {
        install_client().await;
        let url = api.url("/graphql").replacen("http://", "ws://", 1);
        let mut child = tokio::process::Command::new("node")
            .arg(js_dir().join("client.mjs"))
            .args([url.as_str(), token, &count.to_string(), query])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        Client {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    async fn event(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("client output in time")
            .expect("read line")
            .expect("client still running");
        serde_json::from_str(&line).expect("json line")
    }
}

#[tokio::test]
async fn the_reference_client_subscribes_and_receives_new_posts() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&bob, &alice.id).await;
    let mut client = Client::start(
        &api,
        &bob.access_token,
        2,
        "subscription { homeFeed { post { id body author { username } } missedEvents pressure } }",
    )
    .await;
    assert_eq!(client.event().await["event"], "connected");
    // The subscribe message follows the ack at once; give the server a moment to register it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = api.create_post(&alice, "first live post").await;
    let second = api.create_post(&alice, "second live post").await;
    for (expected_id, body) in [(first, "first live post"), (second, "second live post")] {
        let event = client.event().await;
        assert_eq!(event["event"], "next", "{event}");
        let update = &event["data"]["data"]["homeFeed"];
        assert_eq!(update["post"]["id"], expected_id.as_str());
        assert_eq!(update["post"]["body"], body);
        assert_eq!(update["post"]["author"]["username"], "alice");
        assert_eq!(update["missedEvents"], 0);
        assert_eq!(update["pressure"], "NORMAL");
    }
    let status = client.child.wait().await.expect("client exit");
    assert!(status.success());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_reference_client_is_refused_with_4403_for_a_bad_token() {
    let api = Api::start().await;
    let mut client = Client::start(
        &api,
        "not-a-token",
        1,
        "subscription { homeFeed { missedEvents } }",
    )
    .await;
    let mut events = Vec::new();
    loop {
        let event = client.event().await;
        let done = event["event"] == "closed";
        events.push(event);
        if done {
            break;
        }
    }
    let closed = events.last().expect("closed event");
    assert_eq!(closed["code"], 4403, "{events:?}");
    assert!(
        !events.iter().any(|e| e["event"] == "connected"),
        "{events:?}"
    );
    api.app.stop().await.expect("stop");
}
