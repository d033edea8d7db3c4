//! End-to-end tests of notifications through a real server: every type appears (created by the
//! relay after the write, so tests poll with [`eventually`]), never for one's own actions nor
//! from blocked, muted or blocking accounts, FOLLOWERS-only mentions only to followers,
//! preferences take effect at once (the cache is invalidated), grouping of likes and follows,
//! re-likes counted once, keyset paging, unread count, marking read, and stable error codes.
//!
//! Negative checks ("no notification from X") are ordered before a sentinel action that does
//! notify: the relay applies events in order, so once the sentinel is visible the earlier event
//! was handled.

mod common;

use std::time::Duration;

use common::{Account, Api};
use serde_json::{json, Value};

async fn start() -> Api {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = STARTING.lock().await;
    Api::start().await
}

const LIST: &str = "query($first: Int, $after: String) { unreadNotificationCount \
    notifications(first: $first, after: $after) { edges { cursor node { id type actorCount read \
    createdAt updatedAt actors { username } post { id body } } } pageInfo { hasNextPage endCursor } } }";

const MARK: &str = "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }";

const PREFS: &str = "query { notificationPreferences { follow like reply mention message from } }";

const UPDATE_PREFS: &str = "mutation($input: NotificationPreferencesInput!) { \
    updateNotificationPreferences(input: $input) { follow like reply mention message from } }";

/// The first page (20) of `who`'s notifications, and the unread count.
async fn list(api: &Api, who: &Account) -> (Vec<Value>, i64) {
    let data = api
        .ok(Some(&who.access_token), LIST, json!({ "first": 20 }))
        .await;
    let nodes = data["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    (
        nodes,
        data["unreadNotificationCount"].as_i64().expect("count"),
    )
}

/// Polls `who`'s notifications until `done` holds for them (the relay delivers asynchronously);
/// panics with the last list after 10 s.
async fn eventually(api: &Api, who: &Account, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (nodes, _) = list(api, who).await;
        if done(&nodes) {
            return nodes;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition not reached; notifications: {nodes:#?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn of_type<'a>(nodes: &'a [Value], kind: &str) -> Vec<&'a Value> {
    nodes.iter().filter(|n| n["type"] == kind).collect()
}

fn actors(node: &Value) -> Vec<&str> {
    node["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .map(|a| a["username"].as_str().expect("username"))
        .collect()
}

async fn post(api: &Api, who: &Account, input: Value) -> String {
    let data = api
        .ok(
            Some(&who.access_token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    data["createPost"]["id"].as_str().expect("id").to_owned()
}

async fn like(api: &Api, who: &Account, post_id: &str) {
    api.ok(
        Some(&who.access_token),
        "mutation($id: ID!) { likePost(postId: $id) { id } }",
        json!({ "id": post_id }),
    )
    .await;
}

async fn unlike(api: &Api, who: &Account, post_id: &str) {
    api.ok(
        Some(&who.access_token),
        "mutation($id: ID!) { unlikePost(postId: $id) { id } }",
        json!({ "id": post_id }),
    )
    .await;
}

async fn graph(api: &Api, who: &Account, action: &str, target: &Account) {
    api.ok(
        Some(&who.access_token),
        &format!("mutation($id: ID!) {{ {action}(userId: $id) {{ id }} }}"),
        json!({ "id": target.id }),
    )
    .await;
}

/// `who` follows `target`, and waits until `target` sees that follower in its FOLLOW entry
/// (the sentinel of the negative checks).
async fn follow_and_wait(api: &Api, who: &Account, target: &Account) {
    api.follow(who, &target.id).await;
    let name = who.username.clone();
    eventually(api, target, |nodes| {
        of_type(nodes, "FOLLOW")
            .iter()
            .any(|n| actors(n).contains(&name.as_str()))
    })
    .await;
}

#[tokio::test]
async fn follow_like_reply_and_mention_each_notify_the_right_account() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let alice_post = api.create_post(&alice, "hello world").await;

    api.follow(&bob, &alice.id).await;
    like(&api, &bob, &alice_post).await;
    let reply = post(
        &api,
        &bob,
        json!({ "body": "nice one", "replyTo": alice_post }),
    )
    .await;
    let mention = post(&api, &bob, json!({ "body": "look at this @Alice!" })).await;

    let nodes = eventually(&api, &alice, |n| n.len() == 4).await;
    // Latest activity first.
    let kinds: Vec<&str> = nodes
        .iter()
        .map(|n| n["type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["MENTION", "REPLY", "LIKE", "FOLLOW"]);
    for node in &nodes {
        assert_eq!(actors(node), ["bob"], "{node}");
        assert_eq!(node["actorCount"], 1);
        assert_eq!(node["read"], false);
        assert!(node["createdAt"].is_string() && node["updatedAt"].is_string());
    }
    assert_eq!(nodes[0]["post"]["id"], mention.as_str());
    assert_eq!(nodes[0]["post"]["body"], "look at this @Alice!");
    assert_eq!(nodes[1]["post"]["id"], reply.as_str());
    assert_eq!(nodes[2]["post"]["id"], alice_post.as_str());
    assert_eq!(nodes[3]["post"], Value::Null);
    let (_, unread) = list(&api, &alice).await;
    assert_eq!(unread, 4);
    // The actor is not notified of anything.
    assert_eq!(list(&api, &bob).await, (Vec::new(), 0));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn nobody_is_notified_of_their_own_actions() {
    let api = start().await;
    let alice = api.register("alice").await;
    let carol = api.register("carol").await;
    let own = api.create_post(&alice, "mine").await;
    like(&api, &alice, &own).await;
    post(
        &api,
        &alice,
        json!({ "body": "talking to myself", "replyTo": own }),
    )
    .await;
    post(&api, &alice, json!({ "body": "hi @alice" })).await;

    follow_and_wait(&api, &carol, &alice).await;
    let (nodes, unread) = list(&api, &alice).await;
    assert_eq!(nodes.len(), 1, "{nodes:#?}");
    assert_eq!(nodes[0]["type"], "FOLLOW");
    assert_eq!(unread, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn no_notifications_from_blocked_muted_or_blocking_accounts() {
    let api = start().await;
    let alice = api.register("alice").await;
    let blocked = api.register("blocked").await;
    let muted = api.register("muted").await;
    let blocker = api.register("blocker").await;
    let carol = api.register("carol").await;
    let alice_post = api.create_post(&alice, "a post").await;

    // Alice blocked this account: its mention of her is dropped (it cannot like or follow her).
    graph(&api, &alice, "block", &blocked).await;
    post(&api, &blocked, json!({ "body": "hey @alice" })).await;
    // Alice muted this account: it may still follow, like, reply and mention, silently.
    graph(&api, &alice, "mute", &muted).await;
    api.follow(&muted, &alice.id).await;
    like(&api, &muted, &alice_post).await;
    post(&api, &muted, json!({ "body": "re", "replyTo": alice_post })).await;
    post(&api, &muted, json!({ "body": "hey @alice" })).await;
    // This account blocked Alice: its mention of her is dropped.
    graph(&api, &blocker, "block", &alice).await;
    post(&api, &blocker, json!({ "body": "about @alice" })).await;

    follow_and_wait(&api, &carol, &alice).await;
    let (nodes, unread) = list(&api, &alice).await;
    assert_eq!(nodes.len(), 1, "{nodes:#?}");
    assert_eq!(actors(&nodes[0]), ["carol"]);
    assert_eq!(nodes[0]["actorCount"], 1);
    assert_eq!(unread, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_followers_only_mention_notifies_only_followers_of_the_author() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&carol, &alice.id).await;
    post(
        &api,
        &alice,
        json!({ "body": "@bob and @carol, followers only", "visibility": "FOLLOWERS" }),
    )
    .await;
    // Carol follows Alice and may see the post.
    let nodes = eventually(&api, &carol, |n| !of_type(n, "MENTION").is_empty()).await;
    assert_eq!(actors(of_type(&nodes, "MENTION")[0]), ["alice"]);
    // Bob may not: no mention (the follow below is his sentinel).
    follow_and_wait(&api, &alice, &bob).await;
    let (nodes, _) = list(&api, &bob).await;
    assert!(of_type(&nodes, "MENTION").is_empty(), "{nodes:#?}");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn preferences_default_and_take_effect_at_once() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let erin = api.register("erin").await;
    let frank = api.register("frank").await;
    let alice_post = api.create_post(&alice, "a post").await;

    let defaults = api.ok(Some(&alice.access_token), PREFS, json!({})).await;
    assert_eq!(
        defaults["notificationPreferences"],
        json!({ "follow": true, "like": true, "reply": true, "mention": true, "message": false, "from": "EVERYONE" })
    );

    // A first like: the recipient's preferences are now cached on this node.
    like(&api, &bob, &alice_post).await;
    eventually(&api, &alice, |n| of_type(n, "LIKE").len() == 1).await;

    // Likes off: Dave's like is not notified (the cached "likes on" was dropped).
    let updated = api
        .ok(
            Some(&alice.access_token),
            UPDATE_PREFS,
            json!({ "input": { "like": false } }),
        )
        .await;
    assert_eq!(
        updated["updateNotificationPreferences"],
        json!({ "follow": true, "like": false, "reply": true, "mention": true, "message": false, "from": "EVERYONE" })
    );
    like(&api, &dave, &alice_post).await;
    follow_and_wait(&api, &carol, &alice).await;
    let (nodes, _) = list(&api, &alice).await;
    let likes = of_type(&nodes, "LIKE");
    assert_eq!(likes.len(), 1);
    assert_eq!(likes[0]["actorCount"], 1, "{nodes:#?}");

    // Likes on again, from accounts Alice follows only: Erin's like is dropped, Frank's counts.
    let updated = api
        .ok(
            Some(&alice.access_token),
            UPDATE_PREFS,
            json!({ "input": { "like": true, "from": "FOLLOWING" } }),
        )
        .await;
    assert_eq!(
        updated["updateNotificationPreferences"]["from"],
        "FOLLOWING"
    );
    assert_eq!(updated["updateNotificationPreferences"]["like"], true);
    let stored = api.ok(Some(&alice.access_token), PREFS, json!({})).await;
    assert_eq!(
        stored["notificationPreferences"],
        updated["updateNotificationPreferences"]
    );
    like(&api, &erin, &alice_post).await;
    api.follow(&alice, &frank.id).await;
    like(&api, &frank, &alice_post).await;
    let nodes = eventually(&api, &alice, |n| {
        of_type(n, "LIKE")
            .first()
            .is_some_and(|l| l["actorCount"] == 2)
    })
    .await;
    assert_eq!(actors(of_type(&nodes, "LIKE")[0]), ["frank", "bob"]);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn likes_group_per_post_until_read_and_a_relike_counts_once() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let erin = api.register("erin").await;
    let frank = api.register("frank").await;
    let alice_post = api.create_post(&alice, "a post").await;

    for liker in [&bob, &carol, &dave] {
        like(&api, liker, &alice_post).await;
    }
    // Bob takes his like back and likes again: still one actor.
    unlike(&api, &bob, &alice_post).await;
    like(&api, &bob, &alice_post).await;
    api.follow(&bob, &alice.id).await;
    api.follow(&carol, &alice.id).await;
    let nodes = eventually(&api, &alice, |n| {
        of_type(n, "FOLLOW")
            .first()
            .is_some_and(|f| f["actorCount"] == 2)
    })
    .await;
    assert_eq!(
        nodes.len(),
        2,
        "one LIKE entry and one FOLLOW entry: {nodes:#?}"
    );
    let liked = of_type(&nodes, "LIKE")[0];
    assert_eq!(liked["actorCount"], 3);
    assert_eq!(actors(liked), ["dave", "carol", "bob"], "latest first");
    assert_eq!(liked["post"]["id"], alice_post.as_str());
    assert_eq!(actors(of_type(&nodes, "FOLLOW")[0]), ["carol", "bob"]);

    // Read: the next like starts a new entry, on top.
    let unread = api
        .ok(Some(&alice.access_token), MARK, json!({ "ids": null }))
        .await;
    assert_eq!(unread["markNotificationsRead"], 0);
    like(&api, &erin, &alice_post).await;
    let nodes = eventually(&api, &alice, |n| of_type(n, "LIKE").len() == 2).await;
    assert_eq!(nodes[0]["type"], "LIKE");
    assert_eq!(actors(&nodes[0]), ["erin"]);
    assert_eq!(nodes[0]["actorCount"], 1);
    assert_eq!(nodes[0]["read"], false);
    let old = of_type(&nodes, "LIKE")[1];
    assert_eq!(
        (old["actorCount"].clone(), old["read"].clone()),
        (json!(3), json!(true))
    );
    // A re-like by Erin changes nothing; Frank joins the new entry and moves it up.
    unlike(&api, &erin, &alice_post).await;
    like(&api, &erin, &alice_post).await;
    api.follow(&frank, &alice.id).await;
    like(&api, &frank, &alice_post).await;
    let nodes = eventually(&api, &alice, |n| n[0]["actorCount"] == 2).await;
    assert_eq!(nodes[0]["type"], "LIKE");
    assert_eq!(actors(&nodes[0]), ["frank", "erin"]);
    let (_, unread) = list(&api, &alice).await;
    assert_eq!(unread, 2, "the new LIKE entry and Frank's FOLLOW entry");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn pages_are_keyset_ordered_and_marking_some_read_counts_down() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let mut posts = Vec::new();
    for i in 0..5 {
        posts.push(api.create_post(&alice, &format!("post {i}")).await);
    }
    for p in &posts {
        like(&api, &bob, p).await;
    }
    let all = eventually(&api, &alice, |n| n.len() == 5).await;
    let expected: Vec<&str> = posts.iter().rev().map(String::as_str).collect();
    let listed: Vec<&str> = all
        .iter()
        .map(|n| n["post"]["id"].as_str().expect("post"))
        .collect();
    assert_eq!(listed, expected, "latest activity first");

    // Pages of 2 walk the same list without gaps or repeats.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let data = api
            .ok(
                Some(&alice.access_token),
                LIST,
                json!({ "first": 2, "after": after }),
            )
            .await;
        let connection = &data["notifications"];
        for edge in connection["edges"].as_array().expect("edges") {
            seen.push(edge["node"]["id"].as_str().expect("id").to_owned());
        }
        pages += 1;
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(pages, 3);
    let ids: Vec<String> = all
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(seen, ids);

    // Mark two read (one twice: duplicates are fine).
    let left = api
        .ok(
            Some(&alice.access_token),
            MARK,
            json!({ "ids": [ids[0], ids[2], ids[0]] }),
        )
        .await;
    assert_eq!(left["markNotificationsRead"], 3);
    let (nodes, unread) = list(&api, &alice).await;
    assert_eq!(unread, 3);
    let read: Vec<bool> = nodes
        .iter()
        .map(|n| n["read"].as_bool().expect("read"))
        .collect();
    assert_eq!(read, [true, false, true, false, false]);
    // An empty list marks nothing; omitting ids marks everything.
    let left = api
        .ok(Some(&alice.access_token), MARK, json!({ "ids": [] }))
        .await;
    assert_eq!(left["markNotificationsRead"], 3);
    let left = api.ok(Some(&alice.access_token), MARK, json!({})).await;
    assert_eq!(left["markNotificationsRead"], 0);
    assert_eq!(list(&api, &alice).await.1, 0);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_input_gets_stable_codes_and_changes_nothing() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&bob, &alice.id).await;
    api.follow(&alice, &bob.id).await;
    let alice_nodes = eventually(&api, &alice, |n| n.len() == 1).await;
    let bob_nodes = eventually(&api, &bob, |n| n.len() == 1).await;
    let alice_id = alice_nodes[0]["id"].as_str().expect("id");
    let bob_id = bob_nodes[0]["id"].as_str().expect("id");
    let token = Some(alice.access_token.as_str());

    // Someone else's notification: NOT_FOUND, and Alice's own in the same call stays unread.
    assert_eq!(
        api.error_code(token, MARK, json!({ "ids": [alice_id, bob_id] }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        api.error_code(token, MARK, json!({ "ids": ["999999999"] }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(list(&api, &alice).await.1, 1);
    assert_eq!(list(&api, &bob).await.1, 1);
    for bad in ["abc", "-1", "0", ""] {
        assert_eq!(
            api.error_code(token, MARK, json!({ "ids": [bad] })).await,
            "INVALID_INPUT",
            "{bad}"
        );
    }
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    assert_eq!(
        api.error_code(token, MARK, json!({ "ids": many })).await,
        "INVALID_INPUT"
    );
    assert_eq!(
        api.error_code(token, LIST, json!({ "first": 101 })).await,
        "INVALID_INPUT"
    );
    assert_eq!(
        api.error_code(token, LIST, json!({ "first": -1 })).await,
        "INVALID_INPUT"
    );
    assert_eq!(
        api.error_code(token, LIST, json!({ "after": "not-a-cursor" }))
            .await,
        "INVALID_INPUT"
    );
    // A cursor of another list is refused.
    api.create_post(&alice, "for the feed").await;
    let feed = api
        .ok(
            token,
            "query { homeFeed(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = feed["homeFeed"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("feed cursor");
    assert_eq!(
        api.error_code(token, LIST, json!({ "after": cursor }))
            .await,
        "INVALID_INPUT"
    );
    // Signed out: every field needs an account.
    for (query, vars) in [
        (LIST, json!({})),
        (MARK, json!({})),
        (PREFS, json!({})),
        (UPDATE_PREFS, json!({ "input": { "like": false } })),
    ] {
        assert_eq!(
            api.error_code(None, query, vars).await,
            "UNAUTHENTICATED",
            "{query}"
        );
    }
    assert_eq!(list(&api, &alice).await.1, 1);
    api.app.stop().await.expect("stop");
}
