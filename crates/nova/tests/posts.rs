//! End-to-end tests of posts through a real server: creating (body rules, visibility,
//! idempotency keys), replies and threads, edits with their versions, soft deletes, likes,
//! interactions across blocks and the validation of ids. Every test asserts response bodies.

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

const CREATE: &str = "mutation($input: CreatePostInput!) { createPost(input: $input) { \
    id body visibility createdAt editedAt replyTo { id } likeCount replyCount viewerHasLiked \
    author { id username postCount } } }";

const GET_POST: &str = "query($id: ID!) { post(id: $id) { id body visibility createdAt editedAt \
    replyTo { id body } likeCount replyCount viewerHasLiked author { username } } }";

const EDIT: &str = "mutation($id: ID!, $body: String!) { editPost(input: {id: $id, body: $body}) { \
    id body createdAt editedAt versions(first: 10) { edges { node { version body createdAt } } } } }";

const DELETE: &str = "mutation($id: ID!) { deletePost(id: $id) { deletedPostId } }";

const LIKE: &str = "mutation($id: ID!) { likePost(postId: $id) { id likeCount viewerHasLiked } }";

const UNLIKE: &str =
    "mutation($id: ID!) { unlikePost(postId: $id) { id likeCount viewerHasLiked } }";

const REPLIES: &str = "query($id: ID!, $first: Int, $after: String) { post(id: $id) { replyCount \
    replies(first: $first, after: $after) { edges { cursor node { id body replyTo { id } } } \
    pageInfo { hasNextPage endCursor } } } }";

/// Runs `createPost` with `input` as `who`; the mutation must succeed. Returns the post object.
async fn create(api: &Api, who: &Account, input: Value) -> Value {
    let data = api
        .ok(Some(&who.access_token), CREATE, json!({ "input": input }))
        .await;
    data["createPost"].clone()
}

/// Runs `createPost` with `input` as `who`; the mutation must fail. Returns the error code.
async fn create_error(api: &Api, who: &Account, input: Value) -> String {
    let (status, body) = api
        .post(Some(&who.access_token), CREATE, json!({ "input": input }))
        .await;
    assert_eq!(status, 200, "body: {body}");
    assert!(body["data"].is_null(), "no post may be returned: {body}");
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a coded error, got {body}"))
        .to_owned()
}

/// `post(id:)` as seen with `token` (anonymous when `None`): the post object or JSON null.
async fn get_post(api: &Api, token: Option<&str>, id: &str) -> Value {
    api.ok(token, GET_POST, json!({ "id": id })).await["post"].clone()
}

/// The `postCount` of `username`, read anonymously.
async fn post_count(api: &Api, username: &str) -> i64 {
    let data = api
        .ok(
            None,
            "query($u: String!) { user(username: $u) { postCount } }",
            json!({ "u": username }),
        )
        .await;
    data["user"]["postCount"].as_i64().expect("postCount")
}

/// Ids of the nodes of a connection.
fn node_ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("node id").to_owned())
        .collect()
}

/// One page of the replies to `parent` as seen by `who`: (reply ids, hasNextPage, endCursor).
async fn replies_page(
    api: &Api,
    who: &Account,
    parent: &str,
    first: i32,
    after: Option<&str>,
) -> (Vec<String>, bool, Option<String>) {
    let data = api
        .ok(
            Some(&who.access_token),
            REPLIES,
            json!({ "id": parent, "first": first, "after": after }),
        )
        .await;
    let replies = &data["post"]["replies"];
    (
        node_ids(replies),
        replies["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("hasNextPage"),
        replies["pageInfo"]["endCursor"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn a_post_body_is_stored_and_returned_nfc_normalised() {
    let api = start().await;
    let alice = api.register("alice").await;
    // "Café" with a combining acute accent (NFD) and "Å" as A + combining ring.
    let decomposed = "Cafe\u{301} A\u{30a}ngstro\u{308}m";
    let composed = "Caf\u{e9} \u{c5}ngstr\u{f6}m";
    let created = create(&api, &alice, json!({ "body": decomposed })).await;
    assert_eq!(created["body"], composed);
    assert_eq!(created["author"]["username"], "alice");
    assert_eq!(created["author"]["postCount"], 1);
    assert!(created["editedAt"].is_null());
    assert!(created["replyTo"].is_null());
    assert_eq!(created["likeCount"], 0);
    assert_eq!(created["replyCount"], 0);
    assert_eq!(created["viewerHasLiked"], false);

    let id = created["id"].as_str().expect("id");
    let read = get_post(&api, None, id).await;
    assert_eq!(read["body"], composed, "the stored body is the NFC form");
    assert_eq!(read["createdAt"], created["createdAt"]);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_body_of_500_graphemes_is_accepted_and_501_graphemes_is_invalid_input() {
    let api = start().await;
    let alice = api.register("alice").await;

    // 500 graphemes, each two code points before normalisation: the limit counts graphemes.
    let decomposed = "e\u{301}".repeat(500);
    let created = create(&api, &alice, json!({ "body": decomposed })).await;
    assert_eq!(created["body"], "\u{e9}".repeat(500));

    // 500 emoji made of several code points each (flag = 2 regional indicators).
    let flags = "\u{1f1eb}\u{1f1f7}".repeat(500);
    let created = create(&api, &alice, json!({ "body": flags })).await;
    assert_eq!(created["body"], flags.as_str());

    let plain = "a".repeat(500);
    assert_eq!(
        create(&api, &alice, json!({ "body": plain })).await["body"],
        plain.as_str()
    );

    for too_long in ["a".repeat(501), "e\u{301}".repeat(501), "👍".repeat(501)] {
        assert_eq!(
            create_error(&api, &alice, json!({ "body": too_long })).await,
            "INVALID_INPUT"
        );
    }
    assert_eq!(
        post_count(&api, "alice").await,
        3,
        "rejected bodies store nothing"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn empty_and_whitespace_only_bodies_are_invalid_input_and_store_nothing() {
    let api = start().await;
    let alice = api.register("alice").await;
    for blank in ["", " ", "   \n\t  ", "\u{3000}\u{a0}", "\n\n"] {
        let (status, body) = api
            .post(
                Some(&alice.access_token),
                CREATE,
                json!({ "input": { "body": blank } }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "body {blank:?}: {body}"
        );
        assert_eq!(body["errors"][0]["path"], json!(["createPost"]), "{body}");
        assert!(body["data"].is_null(), "{body}");
    }
    // A control character other than newline and tab is refused too.
    assert_eq!(
        create_error(&api, &alice, json!({ "body": "bell\u{7}" })).await,
        "INVALID_INPUT"
    );
    assert_eq!(post_count(&api, "alice").await, 0);
    let feed = api
        .ok(
            Some(&alice.access_token),
            "{ homeFeed { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(feed["homeFeed"]["edges"], json!([]));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn html_and_sql_metacharacters_are_stored_and_returned_verbatim() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bodies = [
        "<script>alert(\"x\")</script><b>bold</b> &amp; &lt;",
        "'; DROP TABLE posts; -- \" OR 1=1 /* */",
        "100% of _under_scores_ and back\\slashes \\' ?1 ?V $1 :name",
        "line one\nline two\ttabbed",
    ];
    let mut ids = Vec::new();
    for body in bodies {
        let created = create(&api, &alice, json!({ "body": body })).await;
        assert_eq!(created["body"], body);
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    for (id, body) in ids.iter().zip(bodies) {
        assert_eq!(get_post(&api, None, id).await["body"], body);
    }
    // The tables survived: the account still lists all four posts.
    assert_eq!(post_count(&api, "alice").await, 4);
    let timeline = api
        .ok(
            None,
            "{ user(username: \"alice\") { posts { edges { node { body } } } } }",
            json!({}),
        )
        .await;
    let listed: Vec<&str> = timeline["user"]["posts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["body"].as_str().expect("body"))
        .collect();
    let mut expected: Vec<&str> = bodies.to_vec();
    expected.reverse();
    assert_eq!(listed, expected, "newest first, bodies untouched");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn visibility_is_public_by_default_and_followers_when_asked() {
    let api = start().await;
    let alice = api.register("alice").await;
    let public = create(&api, &alice, json!({ "body": "for everyone" })).await;
    assert_eq!(public["visibility"], "PUBLIC");
    let explicit = create(
        &api,
        &alice,
        json!({ "body": "also everyone", "visibility": "PUBLIC" }),
    )
    .await;
    assert_eq!(explicit["visibility"], "PUBLIC");
    let followers = create(
        &api,
        &alice,
        json!({ "body": "friends only", "visibility": "FOLLOWERS" }),
    )
    .await;
    assert_eq!(followers["visibility"], "FOLLOWERS");

    let id = followers["id"].as_str().expect("id");
    assert_eq!(
        get_post(&api, Some(&alice.access_token), id).await["visibility"],
        "FOLLOWERS",
        "the author sees their own FOLLOWERS post"
    );
    assert!(
        get_post(&api, None, id).await.is_null(),
        "anonymous readers do not"
    );
    // An unknown enum value is refused before execution.
    let (_, body) = api
        .post(
            Some(&alice.access_token),
            CREATE,
            json!({ "input": { "body": "x", "visibility": "SECRET" } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
    assert_eq!(post_count(&api, "alice").await, 3);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn retrying_a_create_with_the_same_idempotency_key_returns_the_first_post() {
    let api = start().await;
    let alice = api.register("alice").await;
    let input = json!({ "body": "only once", "idempotencyKey": "retry-123" });
    let first = create(&api, &alice, input.clone()).await;
    let second = create(&api, &alice, input.clone()).await;
    let third = create(&api, &alice, input).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(third["id"], first["id"]);
    assert_eq!(second["createdAt"], first["createdAt"]);
    assert_eq!(second["body"], "only once");
    assert_eq!(third["author"]["postCount"], 1);
    assert_eq!(post_count(&api, "alice").await, 1);

    // The NFD spelling of the same body is the same body after normalisation.
    let nfc = create(
        &api,
        &alice,
        json!({ "body": "caf\u{e9}", "idempotencyKey": "nfc" }),
    )
    .await;
    let nfd = create(
        &api,
        &alice,
        json!({ "body": "cafe\u{301}", "idempotencyKey": "nfc" }),
    )
    .await;
    assert_eq!(nfd["id"], nfc["id"]);

    let feed = api
        .ok(
            Some(&alice.access_token),
            "{ homeFeed { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        feed["homeFeed"]["edges"].as_array().expect("edges").len(),
        2
    );
    assert_eq!(post_count(&api, "alice").await, 2);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn reusing_an_idempotency_key_for_a_different_post_is_a_conflict() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let parent = api.create_post(&bob, "parent").await;
    let first = create(
        &api,
        &alice,
        json!({ "body": "one", "idempotencyKey": "k1" }),
    )
    .await;

    let different_body = create_error(
        &api,
        &alice,
        json!({ "body": "two", "idempotencyKey": "k1" }),
    )
    .await;
    assert_eq!(different_body, "CONFLICT");
    let different_visibility = create_error(
        &api,
        &alice,
        json!({ "body": "one", "visibility": "FOLLOWERS", "idempotencyKey": "k1" }),
    )
    .await;
    assert_eq!(different_visibility, "CONFLICT");
    let different_parent = create_error(
        &api,
        &alice,
        json!({ "body": "one", "replyTo": parent, "idempotencyKey": "k1" }),
    )
    .await;
    assert_eq!(different_parent, "CONFLICT");

    // The first post is untouched and still the only one.
    let id = first["id"].as_str().expect("id");
    let read = get_post(&api, None, id).await;
    assert_eq!(read["body"], "one");
    assert_eq!(read["visibility"], "PUBLIC");
    assert_eq!(post_count(&api, "alice").await, 1);
    let parent_now = get_post(&api, None, &parent).await;
    assert_eq!(parent_now["replyCount"], 0);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn reusing_an_idempotency_key_after_an_edit_still_conflicts_on_a_different_body() {
    let api = start().await;
    let alice = api.register("alice").await;
    let first = create(
        &api,
        &alice,
        json!({ "body": "original", "idempotencyKey": "k-edit" }),
    )
    .await;
    let id = first["id"].as_str().expect("id");
    api.ok(
        Some(&alice.access_token),
        EDIT,
        json!({ "id": id, "body": "edited" }),
    )
    .await;
    // A late retry of the original request still gets the post back...
    let retried = create(
        &api,
        &alice,
        json!({ "body": "original", "idempotencyKey": "k-edit" }),
    )
    .await;
    assert_eq!(retried["id"], id);
    assert_eq!(retried["body"], "edited");
    // ...but a request that was never sent with this key is not silently merged into it.
    assert_eq!(
        create_error(
            &api,
            &alice,
            json!({ "body": "something new", "idempotencyKey": "k-edit" }),
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(post_count(&api, "alice").await, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn idempotency_keys_are_scoped_to_their_author() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let input = json!({ "body": "same words", "idempotencyKey": "shared-key" });
    let by_alice = create(&api, &alice, input.clone()).await;
    let by_bob = create(&api, &bob, input.clone()).await;
    assert_ne!(by_alice["id"], by_bob["id"]);
    assert_eq!(by_alice["author"]["username"], "alice");
    assert_eq!(by_bob["author"]["username"], "bob");
    // Bob may even use the key for a different body: it is his own key.
    let bob_other = create_error(
        &api,
        &bob,
        json!({ "body": "different", "idempotencyKey": "shared-key" }),
    )
    .await;
    assert_eq!(bob_other, "CONFLICT", "but not twice for himself");
    assert_eq!(create(&api, &alice, input).await["id"], by_alice["id"]);
    assert_eq!(post_count(&api, "alice").await, 1);
    assert_eq!(post_count(&api, "bob").await, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn malformed_idempotency_keys_are_invalid_input() {
    let api = start().await;
    let alice = api.register("alice").await;
    for key in ["", "has space", "ünïcode", &"k".repeat(65)] {
        assert_eq!(
            create_error(&api, &alice, json!({ "body": "x", "idempotencyKey": key })).await,
            "INVALID_INPUT",
            "key {key:?}"
        );
    }
    let ok = create(
        &api,
        &alice,
        json!({ "body": "x", "idempotencyKey": "A-z_0.9:".to_owned() + &"k".repeat(56) }),
    )
    .await;
    assert_eq!(ok["body"], "x");
    assert_eq!(post_count(&api, "alice").await, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn replies_count_on_their_parent_and_page_through_the_thread_oldest_first() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let parent = api.create_post(&alice, "what do you think?").await;

    let mut replies = Vec::new();
    for (i, who) in [&bob, &alice, &bob, &bob, &alice].into_iter().enumerate() {
        let reply = create(
            &api,
            who,
            json!({ "body": format!("reply {i}"), "replyTo": parent }),
        )
        .await;
        assert_eq!(reply["replyTo"]["id"], parent.as_str());
        replies.push(reply["id"].as_str().expect("id").to_owned());
    }

    let parent_post = get_post(&api, Some(&bob.access_token), &parent).await;
    assert_eq!(parent_post["replyCount"], 5);
    assert!(parent_post["replyTo"].is_null(), "a top-level post");
    let reply = get_post(&api, None, &replies[0]).await;
    assert_eq!(reply["replyTo"]["id"], parent.as_str());
    assert_eq!(reply["replyTo"]["body"], "what do you think?");
    assert_eq!(reply["body"], "reply 0");

    let (page1, more1, cursor1) = replies_page(&api, &bob, &parent, 2, None).await;
    assert_eq!(page1, replies[0..2]);
    assert!(more1);
    let (page2, more2, cursor2) = replies_page(&api, &bob, &parent, 2, cursor1.as_deref()).await;
    assert_eq!(page2, replies[2..4]);
    assert!(more2);
    let (page3, more3, _) = replies_page(&api, &bob, &parent, 2, cursor2.as_deref()).await;
    assert_eq!(page3, replies[4..5]);
    assert!(!more3);

    // Every reply names the parent.
    let data = api
        .ok(None, REPLIES, json!({ "id": parent, "first": 10 }))
        .await;
    for edge in data["post"]["replies"]["edges"].as_array().expect("edges") {
        assert_eq!(edge["node"]["replyTo"]["id"], parent.as_str());
    }
    assert_eq!(post_count(&api, "bob").await, 3, "replies are posts too");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn replying_to_a_missing_or_deleted_post_is_not_found_and_stores_nothing() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let parent = api.create_post(&alice, "soon gone").await;
    assert_eq!(
        create_error(
            &api,
            &bob,
            json!({ "body": "hi", "replyTo": "123456789012345" })
        )
        .await,
        "NOT_FOUND"
    );
    api.ok(Some(&alice.access_token), DELETE, json!({ "id": parent }))
        .await;
    assert_eq!(
        create_error(&api, &bob, json!({ "body": "hi", "replyTo": parent })).await,
        "NOT_FOUND"
    );
    assert_eq!(post_count(&api, "bob").await, 0);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn editing_a_post_changes_its_body_sets_edited_at_and_lists_earlier_bodies_newest_first() {
    let api = start().await;
    let alice = api.register("alice").await;
    let created = create(&api, &alice, json!({ "body": "first draft" })).await;
    let id = created["id"].as_str().expect("id");
    assert!(created["editedAt"].is_null());

    let edited = api
        .ok(
            Some(&alice.access_token),
            EDIT,
            json!({ "id": id, "body": "second draft" }),
        )
        .await["editPost"]
        .clone();
    assert_eq!(edited["id"], id);
    assert_eq!(edited["body"], "second draft");
    assert_eq!(edited["createdAt"], created["createdAt"]);
    let first_edit_at = edited["editedAt"].clone();
    assert!(first_edit_at.is_string(), "editedAt is set: {edited}");
    assert_eq!(
        edited["versions"]["edges"],
        json!([{ "node": { "version": 1, "body": "first draft", "createdAt": created["createdAt"] } }])
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let edited = api
        .ok(
            Some(&alice.access_token),
            EDIT,
            json!({ "id": id, "body": "final cafe\u{301}" }),
        )
        .await["editPost"]
        .clone();
    assert_eq!(
        edited["body"], "final caf\u{e9}",
        "edits are normalised too"
    );
    assert_ne!(edited["editedAt"], first_edit_at);
    assert_eq!(
        edited["versions"]["edges"],
        json!([
            { "node": { "version": 2, "body": "second draft", "createdAt": first_edit_at } },
            { "node": { "version": 1, "body": "first draft", "createdAt": created["createdAt"] } },
        ])
    );

    // Anyone who can see the post reads the same thing, and versions page newest first.
    let read = api
        .ok(
            None,
            "query($id: ID!) { post(id: $id) { body editedAt versions(first: 1) { edges { cursor node { body } } pageInfo { hasNextPage endCursor } } } }",
            json!({ "id": id }),
        )
        .await["post"]
        .clone();
    assert_eq!(read["body"], "final caf\u{e9}");
    assert_eq!(read["editedAt"], edited["editedAt"]);
    assert_eq!(read["versions"]["edges"][0]["node"]["body"], "second draft");
    assert_eq!(read["versions"]["pageInfo"]["hasNextPage"], true);
    let after = read["versions"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor");
    let rest = api
        .ok(
            None,
            "query($id: ID!, $after: String) { post(id: $id) { versions(first: 5, after: $after) { edges { node { body } } pageInfo { hasNextPage } } } }",
            json!({ "id": id, "after": after }),
        )
        .await;
    assert_eq!(
        rest["post"]["versions"],
        json!({ "edges": [{ "node": { "body": "first draft" } }], "pageInfo": { "hasNextPage": false } })
    );

    // Saving the same body again is not a new version.
    let same = api
        .ok(
            Some(&alice.access_token),
            EDIT,
            json!({ "id": id, "body": "final caf\u{e9}" }),
        )
        .await["editPost"]
        .clone();
    assert_eq!(
        same["versions"]["edges"].as_array().expect("edges").len(),
        2
    );
    assert_eq!(
        post_count(&api, "alice").await,
        1,
        "edits are not new posts"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn only_the_author_can_edit_a_post_and_invalid_edits_change_nothing() {
    let api = start().await;
    let alice = api.register("alice").await;
    let mallory = api.register("mallory").await;
    let id = api.create_post(&alice, "mine").await;

    let (status, body) = api
        .post(
            Some(&mallory.access_token),
            EDIT,
            json!({ "id": id, "body": "hijacked" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert!(body["data"].is_null());

    assert_eq!(
        api.error_code(None, EDIT, json!({ "id": id, "body": "anon" }))
            .await,
        "UNAUTHENTICATED"
    );
    for bad in ["", "   ", &"a".repeat(501)] {
        assert_eq!(
            api.error_code(
                Some(&alice.access_token),
                EDIT,
                json!({ "id": id, "body": bad })
            )
            .await,
            "INVALID_INPUT"
        );
    }
    assert_eq!(
        api.error_code(
            Some(&alice.access_token),
            EDIT,
            json!({ "id": "123456789012345", "body": "ghost" })
        )
        .await,
        "NOT_FOUND"
    );

    let read = api
        .ok(
            None,
            "query($id: ID!) { post(id: $id) { body editedAt versions { edges { node { body } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        read["post"],
        json!({ "body": "mine", "editedAt": null, "versions": { "edges": [] } })
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_deleted_post_disappears_from_every_read_and_from_the_post_count() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&bob, &alice.id).await;
    let kept = api.create_post(&alice, "kept").await;
    let doomed = api.create_post(&alice, "doomed").await;
    let reply = create(
        &api,
        &bob,
        json!({ "body": "doomed reply", "replyTo": kept }),
    )
    .await;
    let reply_id = reply["id"].as_str().expect("id").to_owned();
    assert_eq!(post_count(&api, "alice").await, 2);
    assert_eq!(post_count(&api, "bob").await, 1);
    assert_eq!(get_post(&api, None, &kept).await["replyCount"], 1);

    let deleted = api
        .ok(Some(&alice.access_token), DELETE, json!({ "id": doomed }))
        .await;
    assert_eq!(deleted["deletePost"]["deletedPostId"], doomed.as_str());
    let deleted = api
        .ok(Some(&bob.access_token), DELETE, json!({ "id": reply_id }))
        .await;
    assert_eq!(deleted["deletePost"]["deletedPostId"], reply_id.as_str());

    for token in [
        None,
        Some(alice.access_token.as_str()),
        Some(bob.access_token.as_str()),
    ] {
        assert!(get_post(&api, token, &doomed).await.is_null());
        assert!(get_post(&api, token, &reply_id).await.is_null());
    }
    for who in [&alice, &bob] {
        let feed = api
            .ok(
                Some(&who.access_token),
                "{ homeFeed { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            node_ids(&feed["homeFeed"]),
            vec![kept.clone()],
            "{}",
            who.username
        );
    }
    let timeline = api
        .ok(
            None,
            "{ user(username: \"alice\") { postCount posts { edges { node { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(timeline["user"]["postCount"], 1);
    assert_eq!(node_ids(&timeline["user"]["posts"]), vec![kept.clone()]);
    assert_eq!(post_count(&api, "bob").await, 0);

    let (replies, more, _) = replies_page(&api, &alice, &kept, 10, None).await;
    assert!(replies.is_empty());
    assert!(!more);
    assert_eq!(get_post(&api, None, &kept).await["replyCount"], 0);

    // A deleted post cannot be deleted again, edited, liked or replied to.
    assert_eq!(
        api.error_code(Some(&alice.access_token), DELETE, json!({ "id": doomed }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        api.error_code(
            Some(&alice.access_token),
            EDIT,
            json!({ "id": doomed, "body": "back" })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        api.error_code(Some(&bob.access_token), LIKE, json!({ "id": doomed }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(post_count(&api, "alice").await, 1, "counted down once only");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn replies_outlive_a_deleted_parent_but_no_longer_point_at_it() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let parent = api.create_post(&alice, "parent").await;
    let reply = create(&api, &bob, json!({ "body": "child", "replyTo": parent })).await;
    let reply_id = reply["id"].as_str().expect("id");
    api.ok(Some(&alice.access_token), DELETE, json!({ "id": parent }))
        .await;
    let read = get_post(&api, None, reply_id).await;
    assert_eq!(read["body"], "child");
    assert!(read["replyTo"].is_null(), "{read}");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn only_the_author_can_delete_a_post() {
    let api = start().await;
    let alice = api.register("alice").await;
    let mallory = api.register("mallory").await;
    let id = api.create_post(&alice, "stays").await;
    let (status, body) = api
        .post(Some(&mallory.access_token), DELETE, json!({ "id": id }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert!(body["data"].is_null());
    assert_eq!(
        api.error_code(None, DELETE, json!({ "id": id })).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(get_post(&api, None, &id).await["body"], "stays");
    assert_eq!(post_count(&api, "alice").await, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn liking_and_unliking_are_idempotent_and_per_viewer() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let id = api.create_post(&alice, "like me").await;

    for _ in 0..2 {
        let liked = api
            .ok(Some(&bob.access_token), LIKE, json!({ "id": id }))
            .await;
        assert_eq!(
            liked["likePost"],
            json!({ "id": id, "likeCount": 1, "viewerHasLiked": true })
        );
    }
    let by_carol = api
        .ok(Some(&carol.access_token), LIKE, json!({ "id": id }))
        .await;
    assert_eq!(by_carol["likePost"]["likeCount"], 2);
    // Authors may like their own posts.
    let by_alice = api
        .ok(Some(&alice.access_token), LIKE, json!({ "id": id }))
        .await;
    assert_eq!(by_alice["likePost"]["likeCount"], 3);

    let anonymous = get_post(&api, None, &id).await;
    assert_eq!(anonymous["likeCount"], 3);
    assert_eq!(anonymous["viewerHasLiked"], false);

    for _ in 0..2 {
        let unliked = api
            .ok(Some(&bob.access_token), UNLIKE, json!({ "id": id }))
            .await;
        assert_eq!(
            unliked["unlikePost"],
            json!({ "id": id, "likeCount": 2, "viewerHasLiked": false })
        );
    }
    let bob_view = get_post(&api, Some(&bob.access_token), &id).await;
    assert_eq!(bob_view["viewerHasLiked"], false);
    let carol_view = get_post(&api, Some(&carol.access_token), &id).await;
    assert_eq!(carol_view["viewerHasLiked"], true);
    assert_eq!(carol_view["likeCount"], 2);

    // Unliking a post one never liked changes nothing.
    let stranger = api.register("stranger").await;
    let unliked = api
        .ok(Some(&stranger.access_token), UNLIKE, json!({ "id": id }))
        .await;
    assert_eq!(
        unliked["unlikePost"],
        json!({ "id": id, "likeCount": 2, "viewerHasLiked": false })
    );
    assert_eq!(
        api.error_code(None, LIKE, json!({ "id": id })).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        api.error_code(
            Some(&bob.access_token),
            LIKE,
            json!({ "id": "123456789012345" })
        )
        .await,
        "NOT_FOUND"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn accounts_that_blocked_each_other_cannot_reply_to_or_like_each_others_posts() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let alice_post = api.create_post(&alice, "alice speaks").await;
    let bob_post = api.create_post(&bob, "bob speaks").await;
    api.ok(
        Some(&alice.access_token),
        "mutation($id: ID!) { block(userId: $id) { id } }",
        json!({ "id": bob.id }),
    )
    .await;

    // The blocked account cannot reach the blocker's post, and the blocker cannot reach the
    // blocked account's post: both are indistinguishable from a missing post.
    for (who, target) in [(&bob, &alice_post), (&alice, &bob_post)] {
        assert_eq!(
            create_error(&api, who, json!({ "body": "hey", "replyTo": target })).await,
            "NOT_FOUND",
            "{} replying",
            who.username
        );
        assert_eq!(
            api.error_code(Some(&who.access_token), LIKE, json!({ "id": target }))
                .await,
            "NOT_FOUND",
            "{} liking",
            who.username
        );
        assert!(get_post(&api, Some(&who.access_token), target)
            .await
            .is_null());
    }

    // Nothing was stored: each author still sees no reply and no like on their post.
    for (who, own) in [(&alice, &alice_post), (&bob, &bob_post)] {
        let read = get_post(&api, Some(&who.access_token), own).await;
        assert_eq!(read["replyCount"], 0);
        assert_eq!(read["likeCount"], 0);
        let (replies, _, _) = replies_page(&api, who, own, 10, None).await;
        assert!(replies.is_empty());
    }
    assert_eq!(post_count(&api, "alice").await, 1);
    assert_eq!(post_count(&api, "bob").await, 1);

    // After the block is lifted, replying and liking work again.
    api.ok(
        Some(&alice.access_token),
        "mutation($id: ID!) { unblock(userId: $id) { id } }",
        json!({ "id": bob.id }),
    )
    .await;
    let reply = create(
        &api,
        &bob,
        json!({ "body": "hi again", "replyTo": alice_post }),
    )
    .await;
    assert_eq!(reply["replyTo"]["id"], alice_post.as_str());
    let liked = api
        .ok(Some(&bob.access_token), LIKE, json!({ "id": alice_post }))
        .await;
    assert_eq!(liked["likePost"]["likeCount"], 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn replies_by_a_blocked_account_are_hidden_from_the_thread() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let thread = api.create_post(&carol, "open thread").await;
    let by_bob = create(&api, &bob, json!({ "body": "bob here", "replyTo": thread })).await;
    let by_alice = create(
        &api,
        &alice,
        json!({ "body": "alice here", "replyTo": thread }),
    )
    .await;
    api.ok(
        Some(&alice.access_token),
        "mutation($id: ID!) { block(userId: $id) { id } }",
        json!({ "id": bob.id }),
    )
    .await;
    let (alice_sees, _, _) = replies_page(&api, &alice, &thread, 10, None).await;
    assert_eq!(alice_sees, vec![by_alice["id"].as_str().expect("id")]);
    let (bob_sees, _, _) = replies_page(&api, &bob, &thread, 10, None).await;
    assert_eq!(bob_sees, vec![by_bob["id"].as_str().expect("id")]);
    let (carol_sees, _, _) = replies_page(&api, &carol, &thread, 10, None).await;
    assert_eq!(carol_sees.len(), 2);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn invalid_ids_are_invalid_input_everywhere() {
    let api = start().await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());
    for bad in ["abc", "-1", "0", "", "1.5", " 12", "99999999999999999999"] {
        let cases: [(&str, Value); 7] = [
            (GET_POST, json!({ "id": bad })),
            (LIKE, json!({ "id": bad })),
            (UNLIKE, json!({ "id": bad })),
            (DELETE, json!({ "id": bad })),
            (EDIT, json!({ "id": bad, "body": "x" })),
            (CREATE, json!({ "input": { "body": "x", "replyTo": bad } })),
            (
                "query($id: ID!) { user(id: $id) { id } }",
                json!({ "id": bad }),
            ),
        ];
        for (query, variables) in cases {
            let (status, body) = api.post(token, query, variables).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
                "id {bad:?} in {query}: {body}"
            );
        }
    }
    assert_eq!(post_count(&api, "alice").await, 0);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn creating_a_post_requires_a_signed_in_account() {
    let api = start().await;
    let (status, body) = api
        .post(None, CREATE, json!({ "input": { "body": "who am i" } }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(body["data"].is_null());
    // A forged token is refused before execution.
    let (status, body) = api
        .post(
            Some("not-a-token"),
            CREATE,
            json!({ "input": { "body": "who am i" } }),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    api.app.stop().await.expect("stop");
}

/// Sends the same GraphQL request `n` times at once; returns every response body.
async fn concurrently(
    api: &Api,
    token: &str,
    query: &str,
    variables: Value,
    n: usize,
) -> Vec<Value> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = api
            .http
            .post(api.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }));
        tasks.spawn(async move {
            let response = request.send().await.expect("send request");
            response.json::<Value>().await.expect("JSON body")
        });
    }
    let mut bodies = Vec::new();
    while let Some(body) = tasks.join_next().await {
        bodies.push(body.expect("task"));
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_idempotency_key_create_one_post() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bodies = concurrently(
        &api,
        &alice.access_token,
        CREATE,
        json!({ "input": { "body": "raced", "idempotencyKey": "race-1" } }),
        12,
    )
    .await;
    let ids: std::collections::HashSet<String> = bodies
        .iter()
        .map(|b| {
            assert!(b.get("errors").is_none(), "{b}");
            b["data"]["createPost"]["id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every retry got the same post: {ids:?}");
    assert_eq!(post_count(&api, "alice").await, 1);
    api.app.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_likes_by_one_account_count_once() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let id = api.create_post(&alice, "popular").await;
    let bodies = concurrently(&api, &bob.access_token, LIKE, json!({ "id": id }), 12).await;
    for body in &bodies {
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["likePost"]["viewerHasLiked"], true);
    }
    let read = get_post(&api, Some(&bob.access_token), &id).await;
    assert_eq!(read["likeCount"], 1);
    let bodies = concurrently(&api, &bob.access_token, UNLIKE, json!({ "id": id }), 12).await;
    for body in &bodies {
        assert!(body.get("errors").is_none(), "{body}");
    }
    let read = get_post(&api, Some(&bob.access_token), &id).await;
    assert_eq!(read["likeCount"], 0);
    assert_eq!(read["viewerHasLiked"], false);
    api.app.stop().await.expect("stop");
}
