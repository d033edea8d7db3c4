//! End-to-end tests of the lists that show posts, through a real server: the home feed (own and
//! followed accounts, mutes, FOLLOWERS posts), author timelines, block visibility, and keyset
//! pagination (stable pages while posts arrive, `first` bounds, cursors bound to their list).

mod common;

use common::{Account, Api};
use serde_json::{json, Value};

/// Starts a server. Starts are serialised because `nova_gateway::metrics_handle` races when two
/// apps are built at once before the first has installed the process-wide recorder (one start
/// then fails with "another metrics recorder is installed"); see the report of this test suite.
async fn start() -> Api {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = STARTING.lock().await;
    Api::start().await
}

const FEED: &str = "query($first: Int, $after: String) { homeFeed(first: $first, after: $after) { \
    edges { cursor node { id body visibility author { username } } } \
    pageInfo { hasNextPage endCursor } } }";

const TIMELINE: &str = "query($u: String!, $first: Int, $after: String) { user(username: $u) { \
    username posts(first: $first, after: $after) { edges { cursor node { id body visibility } } \
    pageInfo { hasNextPage endCursor } } } }";

const GET_POST: &str = "query($id: ID!) { post(id: $id) { id body author { username } } }";

/// One page of a post connection.
#[derive(Debug)]
struct PostPage {
    ids: Vec<String>,
    bodies: Vec<String>,
    has_next_page: bool,
    end_cursor: Option<String>,
}

impl PostPage {
    fn from_connection(connection: &Value) -> PostPage {
        let edges = connection["edges"].as_array().expect("edges");
        for edge in edges {
            assert!(edge["cursor"].is_string(), "every edge has a cursor");
        }
        PostPage {
            ids: edges
                .iter()
                .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
                .collect(),
            bodies: edges
                .iter()
                .map(|e| e["node"]["body"].as_str().expect("body").to_owned())
                .collect(),
            has_next_page: connection["pageInfo"]["hasNextPage"]
                .as_bool()
                .expect("hasNextPage"),
            end_cursor: connection["pageInfo"]["endCursor"]
                .as_str()
                .map(str::to_owned),
        }
    }
}

/// The home feed of `who`.
async fn feed(api: &Api, who: &Account, first: Option<i32>, after: Option<&str>) -> PostPage {
    let data = api
        .ok(
            Some(&who.access_token),
            FEED,
            json!({ "first": first, "after": after }),
        )
        .await;
    PostPage::from_connection(&data["homeFeed"])
}

/// Bodies of the first 100 posts of `who`'s home feed.
async fn feed_bodies(api: &Api, who: &Account) -> Vec<String> {
    feed(api, who, Some(100), None).await.bodies
}

/// `username`'s timeline as seen with `token`; `None` when the account itself is hidden.
async fn timeline(
    api: &Api,
    token: Option<&str>,
    username: &str,
    first: Option<i32>,
    after: Option<&str>,
) -> Option<PostPage> {
    let data = api
        .ok(
            token,
            TIMELINE,
            json!({ "u": username, "first": first, "after": after }),
        )
        .await;
    if data["user"].is_null() {
        return None;
    }
    assert_eq!(data["user"]["username"], username);
    Some(PostPage::from_connection(&data["user"]["posts"]))
}

/// Bodies of `username`'s timeline as seen with `token`; empty when the account is hidden.
async fn timeline_bodies(api: &Api, token: Option<&str>, username: &str) -> Vec<String> {
    timeline(api, token, username, Some(100), None)
        .await
        .map(|page| page.bodies)
        .unwrap_or_default()
}

/// Creates a post with the given visibility and returns its id.
async fn post_with(api: &Api, who: &Account, body: &str, visibility: &str) -> String {
    let data = api
        .ok(
            Some(&who.access_token),
            "mutation($b: String!, $v: Visibility) { createPost(input: {body: $b, visibility: $v}) { id visibility } }",
            json!({ "b": body, "v": visibility }),
        )
        .await;
    assert_eq!(data["createPost"]["visibility"], visibility);
    data["createPost"]["id"].as_str().expect("id").to_owned()
}

async fn graph_action(api: &Api, who: &Account, action: &str, target: &Account) {
    let data = api
        .ok(
            Some(&who.access_token),
            &format!("mutation($id: ID!) {{ {action}(userId: $id) {{ id }} }}"),
            json!({ "id": target.id }),
        )
        .await;
    assert_eq!(data[action]["id"], target.id.as_str());
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn the_home_feed_holds_own_and_followed_posts_newest_first_and_nothing_else() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    api.follow(&alice, &bob.id).await;
    api.follow(&alice, &carol.id).await;
    // Dave follows Alice, but Alice does not follow Dave.
    api.follow(&dave, &alice.id).await;

    api.create_post(&bob, "b1").await;
    api.create_post(&alice, "a1").await;
    api.create_post(&dave, "d1").await;
    api.create_post(&carol, "c1").await;
    api.create_post(&bob, "b2").await;
    api.create_post(&dave, "d2").await;
    api.create_post(&alice, "a2").await;

    let page = feed(&api, &alice, None, None).await;
    assert_eq!(page.bodies, strings(&["a2", "b2", "c1", "a1", "b1"]));
    assert!(!page.has_next_page);
    let data = api.ok(Some(&alice.access_token), FEED, json!({})).await;
    let authors: Vec<&str> = data["homeFeed"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["author"]["username"].as_str().expect("author"))
        .collect();
    assert_eq!(authors, ["alice", "bob", "carol", "alice", "bob"]);

    assert_eq!(
        feed_bodies(&api, &dave).await,
        strings(&["a2", "d2", "d1", "a1"])
    );
    assert_eq!(feed_bodies(&api, &bob).await, strings(&["b2", "b1"]));

    // Unfollowing takes the account's posts out of the feed; following brings them back.
    graph_action(&api, &alice, "unfollow", &carol).await;
    assert_eq!(
        feed_bodies(&api, &alice).await,
        strings(&["a2", "b2", "a1", "b1"])
    );
    api.follow(&alice, &carol.id).await;
    assert_eq!(
        feed_bodies(&api, &alice).await,
        strings(&["a2", "b2", "c1", "a1", "b1"])
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_new_account_has_an_empty_home_feed() {
    let api = start().await;
    let alice = api.register("alice").await;
    let page = feed(&api, &alice, None, None).await;
    assert!(page.ids.is_empty());
    assert!(!page.has_next_page);
    assert_eq!(page.end_cursor, None);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn muted_accounts_leave_the_home_feed_but_keep_their_timeline() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&alice, &bob.id).await;
    api.follow(&alice, &carol.id).await;
    api.create_post(&bob, "bob 1").await;
    api.create_post(&carol, "carol 1").await;
    let bob_post = api.create_post(&bob, "bob 2").await;

    graph_action(&api, &alice, "mute", &bob).await;
    assert_eq!(feed_bodies(&api, &alice).await, strings(&["carol 1"]));
    // Still visible on Bob's timeline and by id, and Alice still follows Bob.
    assert_eq!(
        timeline_bodies(&api, Some(&alice.access_token), "bob").await,
        strings(&["bob 2", "bob 1"])
    );
    let read = api
        .ok(
            Some(&alice.access_token),
            GET_POST,
            json!({ "id": bob_post }),
        )
        .await;
    assert_eq!(read["post"]["body"], "bob 2");
    let relation = api
        .ok(
            Some(&alice.access_token),
            "{ user(username: \"bob\") { viewerFollows viewerMutes } }",
            json!({}),
        )
        .await;
    assert_eq!(
        relation["user"],
        json!({ "viewerFollows": true, "viewerMutes": true })
    );
    // A mute is one-sided: it does not change anyone else's feed.
    api.follow(&carol, &bob.id).await;
    assert_eq!(
        feed_bodies(&api, &carol).await,
        strings(&["bob 2", "carol 1", "bob 1"])
    );

    graph_action(&api, &alice, "unmute", &bob).await;
    assert_eq!(
        feed_bodies(&api, &alice).await,
        strings(&["bob 2", "carol 1", "bob 1"])
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn followers_posts_are_shown_to_followers_and_the_author_only() {
    let api = start().await;
    let alice = api.register("alice").await;
    let follower = api.register("follower").await;
    let stranger = api.register("stranger").await;
    api.follow(&follower, &alice.id).await;
    post_with(&api, &alice, "public one", "PUBLIC").await;
    let private = post_with(&api, &alice, "followers one", "FOLLOWERS").await;

    // Home feeds.
    assert_eq!(
        feed_bodies(&api, &alice).await,
        strings(&["followers one", "public one"])
    );
    assert_eq!(
        feed_bodies(&api, &follower).await,
        strings(&["followers one", "public one"])
    );
    assert!(feed_bodies(&api, &stranger).await.is_empty());

    // Timelines.
    assert_eq!(
        timeline_bodies(&api, Some(&alice.access_token), "alice").await,
        strings(&["followers one", "public one"])
    );
    assert_eq!(
        timeline_bodies(&api, Some(&follower.access_token), "alice").await,
        strings(&["followers one", "public one"])
    );
    assert_eq!(
        timeline_bodies(&api, Some(&stranger.access_token), "alice").await,
        strings(&["public one"])
    );
    assert_eq!(
        timeline_bodies(&api, None, "alice").await,
        strings(&["public one"])
    );

    // By id.
    for (token, visible) in [
        (Some(alice.access_token.as_str()), true),
        (Some(follower.access_token.as_str()), true),
        (Some(stranger.access_token.as_str()), false),
        (None, false),
    ] {
        let data = api.ok(token, GET_POST, json!({ "id": private })).await;
        assert_eq!(!data["post"].is_null(), visible, "{data}");
    }

    // The stranger cannot reply to it either.
    let code = api
        .error_code(
            Some(&stranger.access_token),
            "mutation($id: ID!) { createPost(input: {body: \"psst\", replyTo: $id}) { id } }",
            json!({ "id": private }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");

    // Unfollowing loses access.
    graph_action(&api, &follower, "unfollow", &alice).await;
    assert_eq!(feed_bodies(&api, &follower).await, Vec::<String>::new());
    assert_eq!(
        timeline_bodies(&api, Some(&follower.access_token), "alice").await,
        strings(&["public one"])
    );
    let data = api
        .ok(
            Some(&follower.access_token),
            GET_POST,
            json!({ "id": private }),
        )
        .await;
    assert!(data["post"].is_null());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn accounts_that_blocked_each_other_cannot_see_each_others_posts() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&alice, &bob.id).await;
    api.follow(&bob, &alice.id).await;
    let alice_post = api.create_post(&alice, "from alice").await;
    let bob_post = api.create_post(&bob, "from bob").await;
    assert_eq!(
        feed_bodies(&api, &alice).await,
        strings(&["from bob", "from alice"])
    );

    graph_action(&api, &bob, "block", &alice).await;

    // The block removed the follows, so the feeds no longer mix.
    assert_eq!(feed_bodies(&api, &alice).await, strings(&["from alice"]));
    assert_eq!(feed_bodies(&api, &bob).await, strings(&["from bob"]));
    // Neither sees the other's post by id, nor the other's timeline.
    for (who, other, other_post) in [(&alice, &bob, &bob_post), (&bob, &alice, &alice_post)] {
        let data = api
            .ok(
                Some(&who.access_token),
                GET_POST,
                json!({ "id": other_post }),
            )
            .await;
        assert!(data["post"].is_null(), "{} sees {data}", who.username);
        let hidden = timeline(&api, Some(&who.access_token), &other.username, None, None).await;
        assert!(
            hidden.as_ref().is_none_or(|page| page.ids.is_empty()),
            "{} sees the timeline {hidden:?}",
            who.username
        );
    }
    // Following again is not possible while the block stands.
    let code = api
        .error_code(
            Some(&alice.access_token),
            "mutation($id: ID!) { follow(userId: $id) { id } }",
            json!({ "id": bob.id }),
        )
        .await;
    assert!(
        code == "NOT_FOUND" || code == "FORBIDDEN",
        "unexpected code {code}"
    );
    assert_eq!(feed_bodies(&api, &alice).await, strings(&["from alice"]));

    // Everyone else still sees both.
    assert_eq!(
        timeline_bodies(&api, Some(&carol.access_token), "alice").await,
        strings(&["from alice"])
    );
    assert_eq!(
        timeline_bodies(&api, None, "bob").await,
        strings(&["from bob"])
    );

    // Lifting the block makes the posts visible again (but does not restore follows).
    graph_action(&api, &bob, "unblock", &alice).await;
    let data = api
        .ok(
            Some(&alice.access_token),
            GET_POST,
            json!({ "id": bob_post }),
        )
        .await;
    assert_eq!(data["post"]["body"], "from bob");
    assert_eq!(feed_bodies(&api, &alice).await, strings(&["from alice"]));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn feed_pages_stay_stable_while_new_posts_arrive() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&alice, &bob.id).await;
    let mut originals = Vec::new();
    for i in 0..7 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        originals.push(api.create_post(who, &format!("old {i}")).await);
    }
    let newest_first: Vec<String> = originals.iter().rev().cloned().collect();

    let page1 = feed(&api, &alice, Some(3), None).await;
    assert_eq!(page1.ids, newest_first[0..3]);
    assert!(page1.has_next_page);
    let cursor1 = page1.end_cursor.clone().expect("end cursor");

    // New posts arrive from both accounts between the two page loads.
    let mut fresh = Vec::new();
    for i in 0..4 {
        let who = if i % 2 == 0 { &bob } else { &alice };
        fresh.push(api.create_post(who, &format!("new {i}")).await);
    }

    let page2 = feed(&api, &alice, Some(3), Some(&cursor1)).await;
    assert_eq!(
        page2.ids,
        newest_first[3..6],
        "no duplicates, nothing skipped"
    );
    assert!(page2.has_next_page);
    let page3 = feed(&api, &alice, Some(3), page2.end_cursor.as_deref()).await;
    assert_eq!(page3.ids, newest_first[6..7]);
    assert!(!page3.has_next_page);

    let mut seen: Vec<String> = page1.ids.clone();
    seen.extend(page2.ids.iter().cloned());
    seen.extend(page3.ids.iter().cloned());
    assert_eq!(
        seen, newest_first,
        "the three pages are exactly the old posts"
    );
    for id in &fresh {
        assert!(!seen.contains(id), "a new post leaked into a later page");
    }

    // A deletion between pages does not shift the next page either.
    let page_a = feed(&api, &alice, Some(4), None).await;
    assert_eq!(
        page_a.bodies[2], "new 1",
        "a post of Alice's own, so she may delete it"
    );
    let expected_tail: Vec<String> = {
        let mut all: Vec<String> = fresh.iter().rev().cloned().collect();
        all.extend(newest_first.iter().cloned());
        all[4..].to_vec()
    };
    api.ok(
        Some(&alice.access_token),
        "mutation($id: ID!) { deletePost(id: $id) { deletedPostId } }",
        json!({ "id": page_a.ids[2] }),
    )
    .await;
    let page_b = feed(&api, &alice, Some(100), page_a.end_cursor.as_deref()).await;
    assert_eq!(page_b.ids, expected_tail);

    // And the fresh posts are at the top of a new first page.
    let top = feed(&api, &alice, Some(4), None).await;
    let mut fresh_newest_first: Vec<String> = fresh.iter().rev().cloned().collect();
    fresh_newest_first.retain(|id| *id != page_a.ids[2]);
    assert_eq!(top.ids[..fresh_newest_first.len()], fresh_newest_first[..]);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn timelines_page_by_keyset_too() {
    let api = start().await;
    let alice = api.register("alice").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(api.create_post(&alice, &format!("post {i}")).await);
    }
    ids.reverse();
    let page1 = timeline(&api, None, "alice", Some(2), None)
        .await
        .expect("visible");
    assert_eq!(page1.ids, ids[0..2]);
    assert!(page1.has_next_page);
    api.create_post(&alice, "late").await;
    let page2 = timeline(&api, None, "alice", Some(2), page1.end_cursor.as_deref())
        .await
        .expect("visible");
    assert_eq!(page2.ids, ids[2..4]);
    let page3 = timeline(&api, None, "alice", Some(2), page2.end_cursor.as_deref())
        .await
        .expect("visible");
    assert_eq!(page3.ids, ids[4..5]);
    assert!(!page3.has_next_page);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn first_is_capped_at_100_and_must_not_be_negative() {
    let api = start().await;
    let alice = api.register("alice").await;
    let post = api.create_post(&alice, "x").await;
    let token = Some(alice.access_token.as_str());

    let ok = feed(&api, &alice, Some(100), None).await;
    assert_eq!(ok.ids, vec![post.clone()]);
    let zero = feed(&api, &alice, Some(0), None).await;
    assert!(zero.ids.is_empty());

    for first in [101, 1000, -1, i32::MAX] {
        let (status, body) = api.post(token, FEED, json!({ "first": first })).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "first {first}: {body}"
        );
        assert!(body["data"].is_null(), "{body}");

        let code = api
            .error_code(token, TIMELINE, json!({ "u": "alice", "first": first }))
            .await;
        assert_eq!(code, "INVALID_INPUT", "timeline first {first}");
        let code = api
            .error_code(
                token,
                "query($id: ID!, $first: Int) { post(id: $id) { replies(first: $first) { edges { cursor } } } }",
                json!({ "id": post, "first": first }),
            )
            .await;
        assert_eq!(code, "INVALID_INPUT", "replies first {first}");
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_default_page_is_twenty_posts() {
    let api = start().await;
    let alice = api.register("alice").await;
    for i in 0..21 {
        api.create_post(&alice, &format!("p{i}")).await;
    }
    let page = feed(&api, &alice, None, None).await;
    assert_eq!(page.ids.len(), 20);
    assert!(page.has_next_page);
    assert_eq!(page.bodies[0], "p20");
    let rest = feed(&api, &alice, None, page.end_cursor.as_deref()).await;
    assert_eq!(rest.bodies, strings(&["p0"]));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn tampered_and_foreign_cursors_are_invalid_input() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let parent = api.create_post(&alice, "parent").await;
    api.create_post(&alice, "second").await;
    for i in 0..2 {
        api.ok(
            Some(&bob.access_token),
            "mutation($id: ID!, $b: String!) { createPost(input: {body: $b, replyTo: $id}) { id } }",
            json!({ "id": parent, "b": format!("reply {i}") }),
        )
        .await;
    }
    let token = Some(alice.access_token.as_str());
    let feed_cursor = feed(&api, &alice, Some(1), None)
        .await
        .end_cursor
        .expect("feed cursor");
    // The genuine cursor works.
    assert_eq!(
        feed(&api, &alice, Some(10), Some(&feed_cursor))
            .await
            .bodies,
        strings(&["parent"])
    );

    let mut tampered = vec![
        format!("{feed_cursor}!"),
        format!("{feed_cursor}%3D"),
        feed_cursor[1..].to_owned(),
        feed_cursor.to_uppercase(),
        "not a cursor".to_owned(),
        "!!!!".to_owned(),
        String::new(),
        "A".repeat(200),
    ];
    // Well-formed base64 of broken payloads.
    for payload in [
        "v1:feed:abc",
        "v1:feed:-5",
        "v1:feed:0",
        "v2:feed:1",
        "feed:1",
    ] {
        tampered.push(base64_url(payload.as_bytes()));
    }
    for cursor in &tampered {
        let (status, body) = api
            .post(token, FEED, json!({ "first": 5, "after": cursor }))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "cursor {cursor:?}: {body}"
        );
    }

    // A feed cursor is refused by the replies list and the timeline, and theirs by the feed.
    const REPLIES: &str = "query($id: ID!, $after: String) { post(id: $id) { replies(first: 5, after: $after) { edges { cursor node { body } } pageInfo { endCursor } } } }";
    let code = api
        .error_code(
            token,
            REPLIES,
            json!({ "id": parent, "after": feed_cursor }),
        )
        .await;
    assert_eq!(code, "INVALID_INPUT");
    let code = api
        .error_code(
            token,
            TIMELINE,
            json!({ "u": "alice", "first": 5, "after": feed_cursor }),
        )
        .await;
    assert_eq!(code, "INVALID_INPUT");

    let replies = api
        .ok(token, REPLIES, json!({ "id": parent, "after": null }))
        .await;
    let reply_cursor = replies["post"]["replies"]["edges"][0]["cursor"]
        .as_str()
        .expect("reply cursor")
        .to_owned();
    let next = api
        .ok(
            token,
            REPLIES,
            json!({ "id": parent, "after": reply_cursor }),
        )
        .await;
    assert_eq!(
        next["post"]["replies"]["edges"][0]["node"]["body"], "reply 1",
        "the replies cursor works on its own list"
    );
    let code = api
        .error_code(token, FEED, json!({ "first": 5, "after": reply_cursor }))
        .await;
    assert_eq!(code, "INVALID_INPUT");
    let timeline_cursor = timeline(&api, token, "alice", Some(1), None)
        .await
        .expect("visible")
        .end_cursor
        .expect("timeline cursor");
    let code = api
        .error_code(token, FEED, json!({ "first": 5, "after": timeline_cursor }))
        .await;
    assert_eq!(code, "INVALID_INPUT");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_home_feed_requires_a_signed_in_account() {
    let api = start().await;
    let alice = api.register("alice").await;
    api.create_post(&alice, "hidden from anonymous feeds").await;
    let (status, body) = api.post(None, FEED, json!({ "first": 5 })).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["path"], json!(["homeFeed"]));
    assert!(body["data"].is_null(), "{body}");
    // A bad token is refused with 401 before execution.
    let (status, body) = api.post(Some("garbage"), FEED, json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    // Anonymous readers still get public timelines.
    assert_eq!(
        timeline_bodies(&api, None, "alice").await,
        strings(&["hidden from anonymous feeds"])
    );
    api.app.stop().await.expect("stop");
}

/// URL-safe base64 without padding, as cursors use (kept local to avoid a dependency).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[test]
fn the_local_base64_matches_the_cursor_encoding() {
    // Cursor::encode(Id(42), "feed") is base64url("v1:feed:42").
    let expected = nova_core::Cursor::new(nova_core::Id(42)).encode("feed");
    assert_eq!(base64_url(b"v1:feed:42"), expected);
}
