//! Live updates over WebSocket (`graphql-transport-ws`) through a real server: who receives a
//! new post (followers only, not muted, not blocked, FOLLOWERS posts to followers), the
//! handshake's close codes (4403 without or with a bad token, 4401 before the handshake),
//! token expiry (closed with 4403 unless refreshed through a ping), the per-account
//! subscription cap, and a subscriber that stops reading (its queue stays bounded, it is told
//! how many events it missed, and the others receive everything).

mod common;

use std::time::Duration;

use common::ws::{Frame, WsClient};
use common::Api;
use serde_json::{json, Value};

const HOME_FEED: &str = "subscription { homeFeed { post { id body visibility author { username } } missedEvents pressure } }";
const SECS: Duration = Duration::from_secs(5);

async fn start_with(edit: impl FnOnce(&mut nova_app::Settings)) -> (Api, tempfile::TempDir) {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = STARTING.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = nova_app::testing::TestApp::test_settings(dir.path());
    edit(&mut settings);
    (Api::start_with(settings).await, dir)
}

async fn post_as(api: &Api, token: &str, body: &str, visibility: &str) -> String {
    let data = api
        .ok(
            Some(token),
            "mutation($b: String!, $v: Visibility) { createPost(input: {body: $b, visibility: $v}) { id } }",
            json!({ "b": body, "v": visibility }),
        )
        .await;
    data["createPost"]["id"].as_str().expect("id").to_owned()
}

async fn subscribed(api: &Api, token: &str) -> WsClient {
    let mut ws = WsClient::connect(&api.url("")).await;
    ws.init(token).await;
    ws.subscribe("feed", HOME_FEED, json!({})).await;
    // The subscription is registered once the server has read the message; a ping round trip
    // after it proves that.
    ws.send(json!({"type": "ping"})).await;
    loop {
        match ws.recv(SECS).await {
            Some(Frame::Json(v)) if v["type"] == "pong" => return ws,
            Some(Frame::Json(_)) => continue,
            other => panic!("expected pong, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn new_posts_reach_exactly_the_followers_who_may_see_them() {
    let (api, _dir) = start_with(|_| {}).await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let erin = api.register("erin").await;
    api.follow(&bob, &alice.id).await;
    api.follow(&dave, &alice.id).await;
    api.follow(&erin, &alice.id).await;
    api.ok(
        Some(&dave.access_token),
        "mutation($id: ID!) { mute(userId: $id) { id } }",
        json!({"id": alice.id}),
    )
    .await;
    api.ok(
        Some(&alice.access_token),
        "mutation($id: ID!) { block(userId: $id) { id } }",
        json!({"id": erin.id}),
    )
    .await;

    let mut bob_ws = subscribed(&api, &bob.access_token).await;
    let mut alice_ws = subscribed(&api, &alice.access_token).await;
    let mut others = Vec::new();
    for account in [&carol, &dave, &erin] {
        others.push(subscribed(&api, &account.access_token).await);
    }

    let public = post_as(&api, &alice.access_token, "hello @bob", "PUBLIC").await;
    let followers = post_as(&api, &alice.access_token, "for followers", "FOLLOWERS").await;
    let carols = post_as(&api, &carol.access_token, "carol speaks", "PUBLIC").await;

    for (ws, who) in [(&mut bob_ws, "bob"), (&mut alice_ws, "alice")] {
        let first = ws.next_of("feed", SECS).await.expect("first post");

        assert_eq!(first["homeFeed"]["post"]["id"], public.as_str(), "{who}");
        assert_eq!(first["homeFeed"]["post"]["author"]["username"], "alice");
        assert_eq!(first["homeFeed"]["missedEvents"], 0);
        assert_eq!(first["homeFeed"]["pressure"], "NORMAL");
        let second = ws.next_of("feed", SECS).await.expect("second post");
        assert_eq!(
            second["homeFeed"]["post"]["id"],
            followers.as_str(),
            "{who}"
        );
        assert_eq!(second["homeFeed"]["post"]["visibility"], "FOLLOWERS");
    }
    // Nobody else follows carol, and carol, dave (muted alice) and erin (blocked) see nothing
    // of alice's; carol sees her own post only.
    let own = others[0]
        .next_of("feed", SECS)
        .await
        .expect("carol's own post");
    assert_eq!(own["homeFeed"]["post"]["id"], carols.as_str());
    for ws in &mut others {
        assert!(ws
            .next_of("feed", Duration::from_millis(400))
            .await
            .is_none());
    }
    assert!(bob_ws
        .next_of("feed", Duration::from_millis(200))
        .await
        .is_none());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_handshake_refuses_missing_or_bad_tokens_and_early_operations() {
    let (api, _dir) = start_with(|_| {}).await;
    let base = api.url("");

    let mut ws = WsClient::connect(&base).await;
    ws.send(json!({"type": "connection_init", "payload": {}}))
        .await;
    assert_eq!(ws.closed(SECS).await.0, 4403);

    let mut ws = WsClient::connect(&base).await;
    ws.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer not.a.token"}}))
        .await;
    assert_eq!(ws.closed(SECS).await.0, 4403);

    let mut ws = WsClient::connect(&base).await;
    ws.subscribe("1", HOME_FEED, json!({})).await;
    assert_eq!(ws.closed(SECS).await.0, 4401);

    // No subprotocol at all: refused before the upgrade, with a coded error.
    let response = reqwest::Client::new()
        .get(api.url("/graphql"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");

    // An unauthenticated operation on an authenticated socket is impossible; a subscription
    // over plain HTTP is refused with a coded error.
    let (_, body) = api.post(None, HOME_FEED, json!({})).await;
    assert!(
        body["errors"][0]["extensions"]["code"].is_string(),
        "{body}"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_socket_closes_when_its_token_expires_unless_the_client_refreshed_it() {
    let (api, _dir) = start_with(|s| {
        s.auth.access_token_ttl_secs = 3;
        s.auth.leeway_secs = 0;
    })
    .await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&bob, &alice.id).await;

    let mut stale = subscribed(&api, &bob.access_token).await;
    let mut fresh = subscribed(&api, &bob.access_token).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let renewed = api
        .ok(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({"t": bob.refresh_token}),
        )
        .await["refreshSession"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    fresh
        .send(json!({"type": "ping", "payload": {"token": renewed}}))
        .await;
    let pong = loop {
        let v = fresh.recv_json(SECS).await;
        if v["type"] == "pong" {
            break v;
        }
    };
    assert_eq!(pong["payload"]["refreshed"], true, "{pong}");

    let (code, reason) = stale.closed(Duration::from_secs(6)).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("expired"), "{reason}");

    // Past the first token's expiry the refreshed socket still delivers. Alice's own 3 s token
    // has expired by now too: she refreshes it before posting.
    let alice_token = api
        .ok(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({"t": alice.refresh_token}),
        )
        .await["refreshSession"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let id = post_as(&api, &alice_token, "still there?", "PUBLIC").await;
    let item = fresh
        .next_of("feed", SECS)
        .await
        .expect("delivered after refresh");
    assert_eq!(item["homeFeed"]["post"]["id"], id.as_str());
    // ... until the refreshed token expires too.
    assert_eq!(fresh.closed(Duration::from_secs(6)).await.0, 4403);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn subscriptions_per_account_are_capped() {
    let (api, _dir) = start_with(|s| s.events.max_subscriptions_per_account = 2).await;
    let bob = api.register("bob").await;
    let mut ws = WsClient::connect(&api.url("")).await;
    ws.init(&bob.access_token).await;
    for id in ["a", "b", "c"] {
        ws.subscribe(id, HOME_FEED, json!({})).await;
    }
    let refused = loop {
        let v = ws.recv_json(SECS).await;
        if v["type"] == "error" || v["type"] == "next" {
            break v;
        }
    };
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    // Completing an admitted one frees a place.
    let admitted = ["a", "b", "c"]
        .into_iter()
        .find(|id| refused["id"] != *id)
        .expect("an admitted subscription");
    ws.send(json!({"id": admitted, "type": "complete"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.subscribe("d", HOME_FEED, json!({})).await;
    ws.send(json!({"type": "ping"})).await;
    loop {
        let v = ws.recv_json(SECS).await;
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == "pong" {
            break;
        }
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_loses_only_its_own_events_and_is_told_how_many() {
    const CAPACITY: usize = 8;
    const POSTS: usize = 600;
    let (api, _dir) = start_with(|s| s.events.subscriber_queue_capacity = CAPACITY).await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&bob, &alice.id).await;
    api.follow(&carol, &alice.id).await;

    let mut fast = subscribed(&api, &bob.access_token).await;
    // Carol's socket: a small receive buffer, and she stops reading after subscribing.
    let mut slow = WsClient::connect_with(&api.url(""), "graphql-transport-ws", Some(4096)).await;
    slow.init(&carol.access_token).await;
    for id in ["f1", "f2"] {
        slow.subscribe(
            id,
            "subscription { homeFeed { post { id body } missedEvents pressure } }",
            json!({}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < POSTS {
            match fast.next_of("feed", Duration::from_secs(20)).await {
                Some(v) => {
                    assert_eq!(
                        v["homeFeed"]["missedEvents"], 0,
                        "the fast reader missed nothing"
                    );
                    ids.push(v["homeFeed"]["post"]["id"].as_str().expect("id").to_owned());
                }
                None => break,
            }
        }
        ids
    });
    let mut created = Vec::new();
    for i in 0..POSTS {
        created.push(
            post_as(
                &api,
                &alice.access_token,
                &format!(
                    "{i} {}",
                    "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}".repeat(300)
                ),
                "PUBLIC",
            )
            .await,
        );
    }
    let received = reader.await.expect("reader");
    assert_eq!(
        received, created,
        "the fast subscriber got every post, in order"
    );

    let metrics = reqwest::get(api.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let dropped = common::metric_sum(&metrics, "subscription_events_dropped_total");
    assert!(
        dropped > 0.0,
        "the slow subscriber's queue overflowed:\n{metrics}"
    );

    // Carol resumes: on each of her subscriptions every post is either delivered or counted as
    // missed, and she learns how many she missed.
    let mut delivered = std::collections::HashMap::<String, u64>::new();
    let mut missed = std::collections::HashMap::<String, u64>::new();
    let mut pressures = std::collections::HashSet::new();
    while let Some(Frame::Json(v)) = slow.recv(Duration::from_secs(2)).await {
        if v["type"] != "next" {
            continue;
        }
        let id = v["id"].as_str().expect("id").to_owned();
        let update = &v["payload"]["data"]["homeFeed"];
        pressures.insert(update["pressure"].as_str().expect("pressure").to_owned());
        if update["post"].is_null() {
            assert_eq!(update["pressure"], "OVERFLOWED");
            *missed.entry(id).or_default() += update["missedEvents"].as_u64().expect("count");
        } else {
            *delivered.entry(id).or_default() += 1;
        }
    }
    let total_missed: u64 = missed.values().sum();
    assert!(total_missed > 0, "told about the missed events");
    for id in ["f1", "f2"] {
        let (d, m) = (
            delivered.get(id).copied().unwrap_or(0),
            missed.get(id).copied().unwrap_or(0),
        );
        assert_eq!(
            d + m,
            POSTS as u64,
            "{id}: nothing lost silently ({d} delivered, {m} missed)"
        );
    }
    assert_eq!(
        total_missed as f64, dropped,
        "the drops counted are the ones reported"
    );
    assert!(pressures.contains("OVERFLOWED"), "{pressures:?}");
    api.app.stop().await.expect("stop");
}

const MESSAGES: &str = "subscription($c: ID) { messageUpdates(conversationId: $c) { kind conversationId messageId actorId missedEvents pressure } }";

async fn subscribed_to(api: &Api, token: &str, query: &str, variables: Value) -> WsClient {
    let mut ws = WsClient::connect(&api.url("")).await;
    ws.init(token).await;
    ws.subscribe("s", query, variables).await;
    ws.send(json!({"type": "ping"})).await;
    loop {
        match ws.recv(SECS).await {
            Some(Frame::Json(v)) if v["type"] == "pong" => return ws,
            Some(Frame::Json(_)) => continue,
            other => panic!("expected pong, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn message_updates_reach_the_members_of_the_conversation_only() {
    let (api, _dir) = start_with(|_| {}).await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let conversation = api
        .ok(
            Some(&alice.access_token),
            "mutation($m: [ID!]!) { startConversation(memberIds: $m) { id } }",
            json!({"m": [bob.id]}),
        )
        .await["startConversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut bob_all = subscribed_to(&api, &bob.access_token, MESSAGES, json!({})).await;
    let mut bob_one = subscribed_to(
        &api,
        &bob.access_token,
        MESSAGES,
        json!({"c": conversation}),
    )
    .await;
    let mut bob_other = subscribed_to(&api, &bob.access_token, MESSAGES, json!({"c": "1"})).await;
    let mut carol_ws = subscribed_to(&api, &carol.access_token, MESSAGES, json!({})).await;

    let sent = api
        .ok(
            Some(&alice.access_token),
            "mutation($c: ID!, $b: String!) { sendMessage(input: {conversationId: $c, body: $b}) { id } }",
            json!({"c": conversation, "b": "hi bob"}),
        )
        .await["sendMessage"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for ws in [&mut bob_all, &mut bob_one] {
        let update = ws.next_of("s", SECS).await.expect("message update");
        let update = &update["messageUpdates"];
        assert_eq!(update["kind"], "SENT");
        assert_eq!(update["conversationId"], conversation.as_str());
        assert_eq!(update["messageId"], sent.as_str());
        assert_eq!(update["actorId"], alice.id.as_str());
    }
    api.ok(
        Some(&bob.access_token),
        "mutation($c: ID!, $m: ID!) { markConversationRead(conversationId: $c, messageId: $m) { id } }",
        json!({"c": conversation, "m": sent}),
    )
    .await;
    let read = bob_all.next_of("s", SECS).await.expect("read update");
    assert_eq!(read["messageUpdates"]["kind"], "READ");
    assert_eq!(read["messageUpdates"]["actorId"], bob.id.as_str());
    // Not a member, or listening to another conversation: nothing.
    assert!(carol_ws
        .next_of("s", Duration::from_millis(400))
        .await
        .is_none());
    assert!(bob_other
        .next_of("s", Duration::from_millis(100))
        .await
        .is_none());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn notification_updates_reach_their_recipient() {
    let (api, _dir) = start_with(|_| {}).await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let query = "subscription { notificationUpdates { notificationId missedEvents pressure } }";
    let mut alice_ws = subscribed_to(&api, &alice.access_token, query, json!({})).await;
    let mut bob_ws = subscribed_to(&api, &bob.access_token, query, json!({})).await;
    api.follow(&bob, &alice.id).await;
    let update = alice_ws
        .next_of("s", SECS)
        .await
        .expect("notification update");
    let id = update["notificationUpdates"]["notificationId"]
        .as_str()
        .expect("id")
        .to_owned();
    let listed = api
        .ok(
            Some(&alice.access_token),
            "query { notifications(first: 5) { edges { node { id type } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["notifications"]["edges"][0]["node"]["id"],
        id.as_str()
    );
    assert_eq!(
        listed["notifications"]["edges"][0]["node"]["type"],
        "FOLLOW"
    );
    assert!(bob_ws
        .next_of("s", Duration::from_millis(400))
        .await
        .is_none());
    api.app.stop().await.expect("stop");
}
