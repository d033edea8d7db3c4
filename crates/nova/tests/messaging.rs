//! End-to-end tests of direct messages through a real server: one direct conversation per pair
//! (also under concurrent starts), groups and their member cap, sending with idempotency keys,
//! edits, soft deletes, read markers and unread counts, leaving and adding members, who may
//! message whom (blocks both ways, EVERYONE / FOLLOWING / NOBODY), membership as the only way
//! in, input validation with stable codes, and the outbox row a send writes.

mod common;

use common::{Account, Api};
use serde_json::{json, Value};

/// Starts a server (serialised: see `posts.rs` on the process-wide metrics recorder).
async fn start() -> Api {
    start_with(|_| {}).await
}

async fn start_with(change: impl FnOnce(&mut nova_app::Settings)) -> Api {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = STARTING.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The directory must outlive the server: leak it (one per test process is cheap).
    let path = dir.keep();
    let mut settings = nova_app::testing::TestApp::test_settings(&path);
    change(&mut settings);
    Api::start_with(settings).await
}

const CONVERSATION_FIELDS: &str = "id kind unreadCount members { id username } \
    lastMessage { id body deletedAt sender { id } }";

fn start_query() -> String {
    format!("mutation($ids: [ID!]!) {{ startConversation(memberIds: $ids) {{ {CONVERSATION_FIELDS} }} }}")
}

fn get_query() -> String {
    format!("query($id: ID!) {{ conversation(id: $id) {{ {CONVERSATION_FIELDS} }} }}")
}

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String) { sendMessage(input: \
    {conversationId: $c, body: $b, idempotencyKey: $k}) { id conversationId body createdAt editedAt deletedAt sender { id } } }";

const EDIT: &str = "mutation($id: ID!, $b: String!) { editMessage(input: {id: $id, body: $b}) { id body editedAt deletedAt } }";

const DELETE: &str = "mutation($id: ID!) { deleteMessage(id: $id) { id body editedAt deletedAt } }";

const READ: &str = "mutation($c: ID!, $m: ID!) { markConversationRead(conversationId: $c, messageId: $m) { id unreadCount } }";

const LEAVE: &str =
    "mutation($c: ID!) { leaveConversation(conversationId: $c) { leftConversationId } }";

const ADD: &str = "mutation($c: ID!, $ids: [ID!]!) { addConversationMembers(conversationId: $c, userIds: $ids) { id members { id } } }";

const MESSAGES: &str = "query($id: ID!, $first: Int, $after: String) { conversation(id: $id) { \
    messages(first: $first, after: $after) { edges { cursor node { id body deletedAt } } pageInfo { hasNextPage endCursor } } } }";

const LIST: &str = "query($first: Int, $after: String) { conversations(first: $first, after: $after) { \
    edges { cursor node { id kind unreadCount lastMessage { id body } members { username } } } pageInfo { hasNextPage endCursor } } }";

const PRIVACY: &str = "mutation($w: MessagingPrivacy!) { setMessagingPrivacy(who: $w) }";

async fn start_conversation(api: &Api, who: &Account, with: &[&Account]) -> Value {
    let ids: Vec<&str> = with.iter().map(|a| a.id.as_str()).collect();
    api.ok(
        Some(&who.access_token),
        &start_query(),
        json!({ "ids": ids }),
    )
    .await["startConversation"]
        .clone()
}

async fn start_error(api: &Api, who: &Account, ids: Value) -> String {
    let (status, body) = api
        .post(
            Some(&who.access_token),
            &start_query(),
            json!({ "ids": ids }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "nothing may be returned: {body}");
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a coded error, got {body}"))
        .to_owned()
}

async fn send(api: &Api, who: &Account, conversation: &str, body: &str) -> Value {
    api.ok(
        Some(&who.access_token),
        SEND,
        json!({ "c": conversation, "b": body }),
    )
    .await["sendMessage"]
        .clone()
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

/// Runs a mutation or query that must fail with a null result; returns the code.
async fn fails(api: &Api, token: Option<&str>, query: &str, variables: Value) -> String {
    let (status, body) = api.post(token, query, variables).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert!(
        data.is_null()
            || data
                .as_object()
                .is_some_and(|o| o.values().all(Value::is_null)),
        "nothing may be returned: {body}"
    );
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a coded error, got {body}"))
        .to_owned()
}

/// The conversation as `who` sees it (must be a member).
async fn conversation(api: &Api, who: &Account, id: &str) -> Value {
    api.ok(Some(&who.access_token), &get_query(), json!({ "id": id }))
        .await["conversation"]
        .clone()
}

/// Every message id of a conversation, newest first, paging `first` at a time.
async fn all_message_ids(api: &Api, who: &Account, id: &str, first: i32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = api
            .ok(
                Some(&who.access_token),
                MESSAGES,
                json!({ "id": id, "first": first, "after": after }),
            )
            .await;
        let connection = &data["conversation"]["messages"];
        for edge in connection["edges"].as_array().expect("edges") {
            ids.push(edge["node"]["id"].as_str().expect("id").to_owned());
        }
        if !connection["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("hasNextPage")
        {
            return ids;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
}

fn member_names(conversation: &Value) -> Vec<String> {
    let mut names: Vec<String> = conversation["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["username"].as_str().expect("username").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_direct_conversation_is_created_once_per_pair_and_returned_again() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let first = start_conversation(&api, &alice, &[&bob]).await;
    assert_eq!(first["kind"], "DIRECT");
    assert_eq!(member_names(&first), ["alice", "bob"]);
    assert_eq!(first["unreadCount"], 0);
    assert!(first["lastMessage"].is_null());
    let again = start_conversation(&api, &alice, &[&bob]).await;
    assert_eq!(again["id"], first["id"]);
    let from_bob = start_conversation(&api, &bob, &[&alice]).await;
    assert_eq!(from_bob["id"], first["id"], "the pair is unordered");
    // The viewer's own id in the list is ignored.
    let with_self = start_conversation(&api, &alice, &[&alice, &bob, &bob]).await;
    assert_eq!(with_self["id"], first["id"]);

    let list = api.ok(Some(&alice.access_token), LIST, json!({})).await;
    assert_eq!(
        list["conversations"]["edges"].as_array().map(Vec::len),
        Some(1)
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn concurrent_starts_of_the_same_pair_yield_one_conversation() {
    let api = start().await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (who, other) = if i % 2 == 0 {
            (carol.clone(), dave.clone())
        } else {
            (dave.clone(), carol.clone())
        };
        let http = api.http.clone();
        let url = api.url("/graphql");
        let query = start_query();
        tasks.push(tokio::spawn(async move {
            let body: Value = http
                .post(url)
                .bearer_auth(&who.access_token)
                .json(&json!({ "query": query, "variables": { "ids": [other.id] } }))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            body["data"]["startConversation"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("start failed: {body}"))
                .to_owned()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one conversation for the pair: {ids:?}");
    for who in [&carol, &dave] {
        let list = api.ok(Some(&who.access_token), LIST, json!({})).await;
        assert_eq!(
            list["conversations"]["edges"].as_array().map(Vec::len),
            Some(1)
        );
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn messages_are_sent_nfc_normalised_and_listed_newest_first_with_stable_pages() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let c = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let sent = send(&api, &alice, &c, "Cafe\u{301}").await;
    assert_eq!(sent["body"], "Caf\u{e9}");
    assert_eq!(sent["conversationId"], c.as_str());
    assert_eq!(sent["sender"]["id"], alice.id.as_str());
    assert!(sent["editedAt"].is_null() && sent["deletedAt"].is_null());

    let mut expected = vec![id_of(&sent)];
    for i in 0..24 {
        let who = if i % 2 == 0 { &bob } else { &alice };
        expected.push(id_of(&send(&api, who, &c, &format!("message {i}")).await));
    }
    expected.reverse();
    assert_eq!(all_message_ids(&api, &alice, &c, 10).await, expected);
    assert_eq!(all_message_ids(&api, &bob, &c, 100).await, expected);

    // Pages stay stable while new messages arrive: the cursor continues below its position.
    let data = api
        .ok(
            Some(&alice.access_token),
            MESSAGES,
            json!({ "id": c, "first": 10 }),
        )
        .await;
    let cursor = data["conversation"]["messages"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    send(&api, &bob, &c, "arrives while paging").await;
    let next = api
        .ok(
            Some(&alice.access_token),
            MESSAGES,
            json!({ "id": c, "first": 10, "after": cursor }),
        )
        .await;
    let next_ids: Vec<&str> = next["conversation"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(next_ids, expected[10..20].to_vec());

    // A cursor from another list, a bad cursor and an oversized page are refused.
    let list = api.ok(Some(&alice.access_token), LIST, json!({})).await;
    let conversations_cursor = list["conversations"]["edges"][0]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    for (first, after) in [
        (json!(10), json!(conversations_cursor)),
        (json!(10), json!("garbage")),
        (json!(101), Value::Null),
    ] {
        let (_, body) = api
            .post(
                Some(&alice.access_token),
                MESSAGES,
                json!({ "id": c, "first": first, "after": after }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "{body}"
        );
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_bodies_and_bad_ids_are_refused_with_stable_codes_and_store_nothing() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let c = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let token = Some(alice.access_token.as_str());
    let long = "a".repeat(5001);
    for body in [long.as_str(), "", "   \n\t ", "a\u{0}b"] {
        let code = fails(&api, token, SEND, json!({ "c": c, "b": body })).await;
        assert_eq!(
            code,
            "INVALID_INPUT",
            "body {:?}",
            &body[..body.len().min(10)]
        );
    }
    let code = fails(
        &api,
        token,
        SEND,
        json!({ "c": c, "b": "hi", "k": "bad key!" }),
    )
    .await;
    assert_eq!(code, "INVALID_INPUT");
    assert!(all_message_ids(&api, &alice, &c, 100).await.is_empty());
    // 5000 graphemes (emoji of several code points each) are accepted.
    let max = "👍🏽".repeat(5000);
    assert_eq!(send(&api, &alice, &c, &max).await["body"], max.as_str());

    for bad in ["abc", "-1", "", "99999999999999999999999"] {
        assert_eq!(
            fails(&api, token, SEND, json!({ "c": bad, "b": "hi" })).await,
            "INVALID_INPUT"
        );
        assert_eq!(
            fails(&api, token, &get_query(), json!({ "id": bad })).await,
            "INVALID_INPUT"
        );
        assert_eq!(
            start_error(&api, &alice, json!([bad])).await,
            "INVALID_INPUT"
        );
    }
    assert_eq!(
        fails(&api, token, SEND, json!({ "c": "123456", "b": "hi" })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        start_error(&api, &alice, json!(["123456"])).await,
        "NOT_FOUND"
    );
    assert_eq!(start_error(&api, &alice, json!([])).await, "INVALID_INPUT");
    assert_eq!(
        start_error(&api, &alice, json!([alice.id])).await,
        "INVALID_INPUT",
        "a conversation with oneself only"
    );
    assert_eq!(
        fails(&api, None, SEND, json!({ "c": c, "b": "hi" })).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(fails(&api, None, LIST, json!({})).await, "UNAUTHENTICATED");
    assert_eq!(all_message_ids(&api, &alice, &c, 100).await.len(), 1);
    let list = api.ok(Some(&alice.access_token), LIST, json!({})).await;
    assert_eq!(
        list["conversations"]["edges"].as_array().map(Vec::len),
        Some(1),
        "no conversation was stored by the refused starts"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_retried_send_returns_the_first_message_and_a_reused_key_is_a_conflict() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let c = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let other = id_of(&start_conversation(&api, &alice, &[&carol]).await);
    let token = Some(alice.access_token.as_str());
    let vars = json!({ "c": c, "b": "once", "k": "send-1" });
    let first = api.ok(token, SEND, vars.clone()).await["sendMessage"].clone();
    let retry = api.ok(token, SEND, vars.clone()).await["sendMessage"].clone();
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(retry["createdAt"], first["createdAt"]);
    assert_eq!(
        fails(
            &api,
            token,
            SEND,
            json!({ "c": c, "b": "twice", "k": "send-1" })
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(
        fails(
            &api,
            token,
            SEND,
            json!({ "c": other, "b": "once", "k": "send-1" })
        )
        .await,
        "CONFLICT",
        "the same key in another conversation"
    );
    // After an edit, a retry of the original send is still recognised.
    api.ok(token, EDIT, json!({ "id": first["id"], "b": "edited" }))
        .await;
    let late = api.ok(token, SEND, vars).await["sendMessage"].clone();
    assert_eq!(late["id"], first["id"]);
    assert_eq!(late["body"], "edited");
    // Keys are per sender: bob may use the same one.
    api.ok(
        Some(&bob.access_token),
        SEND,
        json!({ "c": c, "b": "mine", "k": "send-1" }),
    )
    .await;
    assert_eq!(all_message_ids(&api, &alice, &c, 100).await.len(), 2);
    assert!(all_message_ids(&api, &alice, &other, 100).await.is_empty());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn only_members_read_or_write_and_only_the_sender_changes_a_message() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let eve = api.register("eve").await;
    let c = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let m = id_of(&send(&api, &alice, &c, "private").await);
    let eve_token = Some(eve.access_token.as_str());

    // To a non-member the conversation and its messages do not exist, exactly like missing ones.
    for (query, vars, missing) in [
        (get_query(), json!({ "id": c }), json!({ "id": "424242" })),
        (
            SEND.to_owned(),
            json!({ "c": c, "b": "hi" }),
            json!({ "c": "424242", "b": "hi" }),
        ),
        (
            EDIT.to_owned(),
            json!({ "id": m, "b": "mine now" }),
            json!({ "id": "424242", "b": "x" }),
        ),
        (
            DELETE.to_owned(),
            json!({ "id": m }),
            json!({ "id": "424242" }),
        ),
        (
            READ.to_owned(),
            json!({ "c": c, "m": m }),
            json!({ "c": "424242", "m": m }),
        ),
        (
            LEAVE.to_owned(),
            json!({ "c": c }),
            json!({ "c": "424242" }),
        ),
        (
            ADD.to_owned(),
            json!({ "c": c, "ids": [eve.id] }),
            json!({ "c": "424242", "ids": [eve.id] }),
        ),
    ] {
        let (_, hidden) = api.post(eve_token, &query, vars).await;
        let (_, absent) = api.post(eve_token, &query, missing).await;
        assert_eq!(
            hidden["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{query}: {hidden}"
        );
        assert_eq!(
            hidden["errors"][0]["message"], absent["errors"][0]["message"],
            "{query}: indistinguishable from a missing id"
        );
        assert_eq!(hidden["data"], absent["data"]);
    }
    let list = api.ok(eve_token, LIST, json!({})).await;
    assert_eq!(list["conversations"]["edges"], json!([]));

    // A member cannot change someone else's message.
    let bob_token = Some(bob.access_token.as_str());
    assert_eq!(
        fails(&api, bob_token, EDIT, json!({ "id": m, "b": "forged" })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        fails(&api, bob_token, DELETE, json!({ "id": m })).await,
        "FORBIDDEN"
    );
    let history = api
        .ok(bob_token, MESSAGES, json!({ "id": c, "first": 10 }))
        .await;
    assert_eq!(
        history["conversation"]["messages"]["edges"][0]["node"],
        json!({ "id": m, "body": "private", "deletedAt": null })
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_edit_marks_the_message_edited_and_a_delete_keeps_its_place_without_body() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let c = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let first = id_of(&send(&api, &alice, &c, "first").await);
    let second = id_of(&send(&api, &alice, &c, "second").await);
    let token = Some(alice.access_token.as_str());

    let edited = api
        .ok(token, EDIT, json!({ "id": first, "b": "first, edited" }))
        .await["editMessage"]
        .clone();
    assert_eq!(edited["body"], "first, edited");
    assert!(edited["editedAt"].is_string());
    assert_eq!(
        fails(&api, token, EDIT, json!({ "id": first, "b": " " })).await,
        "INVALID_INPUT"
    );
    assert_eq!(conversation(&api, &bob, &c).await["unreadCount"], 2);

    let deleted = api.ok(token, DELETE, json!({ "id": second })).await["deleteMessage"].clone();
    assert!(deleted["body"].is_null());
    assert!(deleted["deletedAt"].is_string());
    let again = api.ok(token, DELETE, json!({ "id": second })).await["deleteMessage"].clone();
    assert_eq!(
        again["deletedAt"], deleted["deletedAt"],
        "deleting twice changes nothing"
    );
    assert_eq!(
        fails(&api, token, EDIT, json!({ "id": second, "b": "back" })).await,
        "NOT_FOUND"
    );

    let seen = conversation(&api, &bob, &c).await;
    assert_eq!(seen["unreadCount"], 1, "deleted messages are not unread");
    assert_eq!(seen["lastMessage"]["id"], second.as_str());
    assert!(seen["lastMessage"]["body"].is_null());
    assert!(seen["lastMessage"]["deletedAt"].is_string());
    let history = api
        .ok(
            Some(&bob.access_token),
            MESSAGES,
            json!({ "id": c, "first": 10 }),
        )
        .await;
    let nodes: Vec<Value> = history["conversation"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| json!([e["node"]["id"], e["node"]["body"]]))
        .collect();
    assert_eq!(
        nodes,
        vec![json!([second, null]), json!([first, "first, edited"])]
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn unread_counts_follow_read_markers_and_conversations_are_ordered_by_activity() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let with_bob = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let with_carol = id_of(&start_conversation(&api, &alice, &[&carol]).await);
    let m1 = id_of(&send(&api, &bob, &with_bob, "one").await);
    let m2 = id_of(&send(&api, &bob, &with_bob, "two").await);
    let m3 = id_of(&send(&api, &bob, &with_bob, "three").await);
    send(&api, &carol, &with_carol, "hello").await;

    let list = api.ok(Some(&alice.access_token), LIST, json!({})).await;
    let rows: Vec<Value> = list["conversations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            json!([
                e["node"]["id"],
                e["node"]["unreadCount"],
                e["node"]["lastMessage"]["body"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!([with_carol, 1, "hello"]),
            json!([with_bob, 3, "three"])
        ]
    );
    assert_eq!(
        conversation(&api, &bob, &with_bob).await["unreadCount"],
        0,
        "own messages"
    );

    let token = Some(alice.access_token.as_str());
    let read = api.ok(token, READ, json!({ "c": with_bob, "m": m2 })).await;
    assert_eq!(read["markConversationRead"]["unreadCount"], 1);
    let back = api.ok(token, READ, json!({ "c": with_bob, "m": m1 })).await;
    assert_eq!(
        back["markConversationRead"]["unreadCount"], 1,
        "markers never move back"
    );
    // A message of another conversation is not a marker for this one.
    let foreign = id_of(&send(&api, &carol, &with_carol, "elsewhere").await);
    assert_eq!(
        fails(&api, token, READ, json!({ "c": with_bob, "m": foreign })).await,
        "NOT_FOUND"
    );
    // Replying moves the sender's own marker; the older conversation moves to the top.
    send(&api, &alice, &with_bob, "reply").await;
    let list = api
        .ok(Some(&alice.access_token), LIST, json!({ "first": 1 }))
        .await;
    let top = &list["conversations"]["edges"][0]["node"];
    assert_eq!(top["id"], with_bob.as_str());
    assert_eq!(top["unreadCount"], 0);
    assert_eq!(top["lastMessage"]["body"], "reply");
    let after = list["conversations"]["pageInfo"]["endCursor"].clone();
    let rest = api
        .ok(
            Some(&alice.access_token),
            LIST,
            json!({ "first": 5, "after": after }),
        )
        .await;
    let rest_ids: Vec<&Value> = rest["conversations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(rest_ids, vec![&json!(with_carol)]);
    assert_eq!(conversation(&api, &bob, &with_bob).await["unreadCount"], 1);
    api.ok(
        Some(&bob.access_token),
        READ,
        json!({ "c": with_bob, "m": m3 }),
    )
    .await;
    assert_eq!(
        conversation(&api, &bob, &with_bob).await["unreadCount"],
        1,
        "the reply is newer"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn members_leave_groups_and_are_added_to_groups_only() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let group = start_conversation(&api, &alice, &[&bob, &carol]).await;
    assert_eq!(group["kind"], "GROUP");
    assert_eq!(member_names(&group), ["alice", "bob", "carol"]);
    let g = id_of(&group);
    // A group with the same members is a new group, not the same one.
    let other = start_conversation(&api, &alice, &[&bob, &carol]).await;
    assert_ne!(other["id"], group["id"]);
    send(&api, &bob, &g, "before dave").await;

    let left = api
        .ok(Some(&carol.access_token), LEAVE, json!({ "c": g }))
        .await;
    assert_eq!(left["leaveConversation"]["leftConversationId"], g.as_str());
    assert_eq!(
        fails(
            &api,
            Some(&carol.access_token),
            &get_query(),
            json!({ "id": g })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        fails(
            &api,
            Some(&carol.access_token),
            SEND,
            json!({ "c": g, "b": "hi" })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        member_names(&conversation(&api, &alice, &g).await),
        ["alice", "bob"]
    );

    let added = api
        .ok(
            Some(&bob.access_token),
            ADD,
            json!({ "c": g, "ids": [dave.id, alice.id] }),
        )
        .await;
    assert_eq!(
        added["addConversationMembers"]["members"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let seen = conversation(&api, &dave, &g).await;
    assert_eq!(
        seen["unreadCount"], 0,
        "history before joining is not unread"
    );
    assert_eq!(
        all_message_ids(&api, &dave, &g, 10).await.len(),
        1,
        "history is visible"
    );
    send(&api, &alice, &g, "welcome").await;
    assert_eq!(conversation(&api, &dave, &g).await["unreadCount"], 1);
    let dave_list = api.ok(Some(&dave.access_token), LIST, json!({})).await;
    assert_eq!(
        dave_list["conversations"]["edges"][0]["node"]["id"],
        g.as_str()
    );

    // Direct conversations take no members and cannot be left.
    let direct = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let token = Some(alice.access_token.as_str());
    assert_eq!(
        fails(&api, token, ADD, json!({ "c": direct, "ids": [dave.id] })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        fails(&api, token, LEAVE, json!({ "c": direct })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        member_names(&conversation(&api, &alice, &direct).await),
        ["alice", "bob"]
    );
    assert_eq!(
        fails(&api, token, ADD, json!({ "c": g, "ids": ["nope"] })).await,
        "INVALID_INPUT"
    );
    assert_eq!(
        fails(&api, token, ADD, json!({ "c": g, "ids": ["987654321"] })).await,
        "NOT_FOUND"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_group_cap_holds_when_starting_and_when_adding() {
    let api = start_with(|s| s.messaging.max_group_members = 3).await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    assert_eq!(
        start_error(&api, &alice, json!([bob.id, carol.id, dave.id])).await,
        "INVALID_INPUT"
    );
    let list = api.ok(Some(&alice.access_token), LIST, json!({})).await;
    assert_eq!(list["conversations"]["edges"], json!([]), "nothing stored");
    let g = id_of(&start_conversation(&api, &alice, &[&bob, &carol]).await);
    let (_, body) = api
        .post(
            Some(&alice.access_token),
            ADD,
            json!({ "c": g, "ids": [dave.id] }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 3 members")),
        "{body}"
    );
    assert_eq!(
        member_names(&conversation(&api, &alice, &g).await),
        ["alice", "bob", "carol"]
    );
    // Room again after someone leaves.
    api.ok(Some(&carol.access_token), LEAVE, json!({ "c": g }))
        .await;
    api.ok(
        Some(&alice.access_token),
        ADD,
        json!({ "c": g, "ids": [dave.id] }),
    )
    .await;
    assert_eq!(
        member_names(&conversation(&api, &alice, &g).await),
        ["alice", "bob", "dave"]
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn blocks_either_way_stop_starting_adding_and_direct_sending() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let direct = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let group =
        id_of(&start_conversation(&api, &alice, &[&carol, &api.register("dave").await]).await);
    api.ok(
        Some(&bob.access_token),
        "mutation($id: ID!) { block(userId: $id) { id } }",
        json!({ "id": alice.id }),
    )
    .await;

    // Alice is blocked by bob: bob does not exist for her. Bob blocked alice: refused.
    assert_eq!(
        start_error(&api, &alice, json!([bob.id])).await,
        "NOT_FOUND"
    );
    assert_eq!(
        start_error(&api, &bob, json!([alice.id])).await,
        "FORBIDDEN"
    );
    assert_eq!(
        start_error(&api, &alice, json!([bob.id, carol.id])).await,
        "NOT_FOUND"
    );
    assert_eq!(
        fails(
            &api,
            Some(&alice.access_token),
            ADD,
            json!({ "c": group, "ids": [bob.id] })
        )
        .await,
        "NOT_FOUND"
    );
    let bobs_group =
        id_of(&start_conversation(&api, &bob, &[&carol, &api.register("erin").await]).await);
    assert_eq!(
        fails(
            &api,
            Some(&bob.access_token),
            ADD,
            json!({ "c": bobs_group, "ids": [alice.id] })
        )
        .await,
        "FORBIDDEN"
    );
    // The existing direct conversation refuses new messages both ways.
    for who in [&alice, &bob] {
        assert_eq!(
            fails(
                &api,
                Some(&who.access_token),
                SEND,
                json!({ "c": direct, "b": "hi" })
            )
            .await,
            "FORBIDDEN"
        );
    }
    assert!(all_message_ids(&api, &alice, &direct, 10).await.is_empty());

    api.ok(
        Some(&bob.access_token),
        "mutation($id: ID!) { unblock(userId: $id) { id } }",
        json!({ "id": alice.id }),
    )
    .await;
    send(&api, &alice, &direct, "friends again").await;
    assert_eq!(
        start_conversation(&api, &bob, &[&alice]).await["id"],
        direct.as_str()
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn messaging_privacy_everyone_following_nobody_is_enforced_when_starting_and_adding() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let read = "{ messagingPrivacy }";
    assert_eq!(
        api.ok(Some(&bob.access_token), read, json!({})).await["messagingPrivacy"],
        "EVERYONE"
    );
    let existing = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let group = id_of(&start_conversation(&api, &alice, &[&carol, &dave]).await);

    let set = api
        .ok(Some(&bob.access_token), PRIVACY, json!({ "w": "NOBODY" }))
        .await;
    assert_eq!(set["setMessagingPrivacy"], "NOBODY");
    assert_eq!(
        api.ok(Some(&bob.access_token), read, json!({})).await["messagingPrivacy"],
        "NOBODY"
    );
    assert_eq!(
        start_error(&api, &carol, json!([bob.id])).await,
        "FORBIDDEN"
    );
    assert_eq!(
        fails(
            &api,
            Some(&alice.access_token),
            ADD,
            json!({ "c": group, "ids": [bob.id] })
        )
        .await,
        "FORBIDDEN"
    );
    // Existing conversations keep working.
    send(&api, &alice, &existing, "still here").await;
    assert_eq!(
        start_conversation(&api, &alice, &[&bob]).await["id"],
        existing.as_str()
    );

    api.ok(
        Some(&bob.access_token),
        PRIVACY,
        json!({ "w": "FOLLOWING" }),
    )
    .await;
    assert_eq!(
        start_error(&api, &carol, json!([bob.id])).await,
        "FORBIDDEN"
    );
    // Carol following bob does not help: bob must follow carol.
    api.follow(&carol, &bob.id).await;
    assert_eq!(
        start_error(&api, &carol, json!([bob.id])).await,
        "FORBIDDEN"
    );
    api.follow(&bob, &carol.id).await;
    let with_carol = start_conversation(&api, &carol, &[&bob]).await;
    assert_eq!(member_names(&with_carol), ["bob", "carol"]);
    assert_eq!(
        fails(
            &api,
            Some(&alice.access_token),
            ADD,
            json!({ "c": group, "ids": [bob.id] })
        )
        .await,
        "FORBIDDEN"
    );
    api.follow(&bob, &alice.id).await;
    api.ok(
        Some(&alice.access_token),
        ADD,
        json!({ "c": group, "ids": [bob.id] }),
    )
    .await;

    api.ok(Some(&bob.access_token), PRIVACY, json!({ "w": "EVERYONE" }))
        .await;
    start_conversation(&api, &dave, &[&bob]).await;
    assert_eq!(
        fails(
            &api,
            Some(&bob.access_token),
            PRIVACY,
            json!({ "w": "SOMETIMES" })
        )
        .await,
        "INVALID_INPUT"
    );
    assert_eq!(
        fails(&api, None, PRIVACY, json!({ "w": "NOBODY" })).await,
        "UNAUTHENTICATED"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_send_writes_a_message_sent_event_to_the_outbox() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let g = id_of(&start_conversation(&api, &alice, &[&bob, &carol]).await);
    let m = id_of(&send(&api, &bob, &g, "event").await);

    let statement = "SELECT topic, key, payload FROM outbox ORDER BY id";
    let settings = &api.app.settings;
    let rows: Vec<(String, i64, Vec<u8>)> = match settings.db_kind() {
        nova_app::settings::DbKind::Postgres => {
            let url = settings.db.url.as_ref().expect("url");
            let pool = sqlx::PgPool::connect(url.expose()).await.expect("open db");
            let rows = sqlx::query_as(statement)
                .fetch_all(&pool)
                .await
                .expect("read outbox");
            pool.close().await;
            rows
        }
        nova_app::settings::DbKind::Sqlite => {
            let options =
                sqlx::sqlite::SqliteConnectOptions::new().filename(settings.sqlite_path());
            let pool = sqlx::SqlitePool::connect_with(options)
                .await
                .expect("open db");
            let rows = sqlx::query_as(statement)
                .fetch_all(&pool)
                .await
                .expect("read outbox");
            pool.close().await;
            rows
        }
    };
    let events: Vec<(String, i64, Value)> = rows
        .into_iter()
        .map(|(topic, key, payload)| {
            (
                topic,
                key,
                serde_json::from_slice(&payload).expect("json payload"),
            )
        })
        .filter(|(topic, _, _)| topic == "messaging.events")
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|(_, _, e)| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["conversation.members_changed", "message.sent"]);
    let (_, key, sent) = &events[1];
    assert_eq!(key.to_string(), g);
    assert_eq!(sent["key"], g.as_str());
    assert_eq!(sent["data"]["conversationId"], g.as_str());
    assert_eq!(sent["data"]["messageId"], m.as_str());
    assert_eq!(sent["data"]["senderId"], bob.id.as_str());
    let mut recipients: Vec<String> = sent["data"]["recipientIds"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| r.as_str().expect("id").to_owned())
        .collect();
    recipients.sort();
    let mut expected = vec![alice.id.clone(), carol.id.clone()];
    expected.sort();
    assert_eq!(recipients, expected);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_history_page_and_a_conversation_list_cost_what_the_estimate_says() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let c = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    send(&api, &bob, &c, "hi").await;
    let (status, body) = api
        .post(
            Some(&alice.access_token),
            "query($id: ID!) { conversation(id: $id) { messages(first: 50) { edges { node { id body sender { username } } } pageInfo { hasNextPage } } } }",
            json!({ "id": c }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // conversation 1 + connection 1 + 50 × (edge + message + sender) + pageInfo 1.
    assert_eq!(
        body["extensions"]["cost"]["requestedQueryCost"], 153,
        "{body}"
    );
    let (status, body) = api
        .post(
            Some(&alice.access_token),
            "{ conversations(first: 10) { nodes { id unreadCount lastMessage { body sender { username } } members { username } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // connection 1 + 10 × (conversation 1 + last message 1 + sender 1 + 20 assumed members).
    assert_eq!(
        body["extensions"]["cost"]["requestedQueryCost"], 231,
        "{body}"
    );
    assert_eq!(
        body["data"]["conversations"]["nodes"][0]["members"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    api.app.stop().await.expect("stop");
}

/// Everything a messaging mutation could change, as alice and bob see it.
async fn messaging_snapshot(api: &Api, alice: &Account, bob: &Account, direct: &str) -> Value {
    let query =
        "query($c: ID!) { messagingPrivacy conversations(first: 10) { nodes { id unreadCount \
        members { id } lastMessage { id body editedAt deletedAt } } } \
        conversation(id: $c) { messages(first: 20) { nodes { id body editedAt deletedAt } } } }";
    let mine = api
        .ok(Some(&alice.access_token), query, json!({ "c": direct }))
        .await;
    let bobs = api
        .ok(Some(&bob.access_token), query, json!({ "c": direct }))
        .await;
    json!([mine, bobs])
}

/// Wrong types, nulls, missing fields, oversized strings, control characters and malformed ids
/// in every field of every messaging mutation: each is refused with INVALID_INPUT (never a
/// server error) and changes nothing.
#[tokio::test]
async fn every_messaging_mutation_refuses_hostile_input_and_stores_nothing() {
    let api = start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    let dave = api.register("dave").await;
    let direct = id_of(&start_conversation(&api, &alice, &[&bob]).await);
    let group = id_of(&start_conversation(&api, &alice, &[&bob, &carol]).await);
    let message = id_of(&send(&api, &alice, &direct, "original").await);

    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Str,
        Id,
        Ids,
        Enum,
    }
    // (document, valid variables, fields as (path, kind, required))
    type Fields = Vec<(&'static [&'static str], Kind, bool)>;
    let table: Vec<(&str, Value, Fields)> = vec![
        (
            "mutation($ids: [ID!]!) { startConversation(memberIds: $ids) { id } }",
            json!({ "ids": [dave.id] }),
            vec![(&["ids"], Kind::Ids, true)],
        ),
        (
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
            json!({ "input": { "conversationId": direct, "body": "must not be stored", "idempotencyKey": "k-1" } }),
            vec![
                (&["input", "conversationId"], Kind::Id, true),
                (&["input", "body"], Kind::Str, true),
                (&["input", "idempotencyKey"], Kind::Str, false),
            ],
        ),
        (
            "mutation($input: EditMessageInput!) { editMessage(input: $input) { id } }",
            json!({ "input": { "id": message, "body": "must not be stored" } }),
            vec![
                (&["input", "id"], Kind::Id, true),
                (&["input", "body"], Kind::Str, true),
            ],
        ),
        (
            "mutation($id: ID!) { deleteMessage(id: $id) { id } }",
            json!({ "id": message }),
            vec![(&["id"], Kind::Id, true)],
        ),
        (
            "mutation($c: ID!, $m: ID!) { markConversationRead(conversationId: $c, messageId: $m) { id } }",
            json!({ "c": direct, "m": message }),
            vec![(&["c"], Kind::Id, true), (&["m"], Kind::Id, true)],
        ),
        (
            LEAVE,
            json!({ "c": group }),
            vec![(&["c"], Kind::Id, true)],
        ),
        (
            ADD,
            json!({ "c": group, "ids": [dave.id] }),
            vec![(&["c"], Kind::Id, true), (&["ids"], Kind::Ids, true)],
        ),
        (
            PRIVACY,
            json!({ "w": "NOBODY" }),
            vec![(&["w"], Kind::Enum, true)],
        ),
    ];
    let bad_ids = [
        "",
        "abc",
        "-5",
        "0",
        "1e9",
        "123456789012345678901234567890",
        " 1",
        "1 ",
        "0x10",
        "+5",
        "1.0",
        "١٢٣",
        "1\u{0}",
    ];
    let set = |mut v: Value, path: &[&str], value: Option<Value>| {
        let mut at = &mut v;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        let object = at.as_object_mut().expect("object");
        match value {
            Some(value) => object.insert(path[path.len() - 1].to_owned(), value),
            None => object.remove(path[path.len() - 1]),
        };
        v
    };
    let before = messaging_snapshot(&api, &alice, &bob, &direct).await;
    let mut total = 0;
    for (document, valid, fields) in &table {
        for (path, kind, required) in fields {
            let mut values: Vec<Option<Value>> = match kind {
                Kind::Str => vec![json!(42), json!(true), json!({ "a": 1 }), json!(["x"])]
                    .into_iter()
                    .map(Some)
                    .collect(),
                Kind::Id => vec![json!(true), json!(1.5), json!({ "a": 1 }), json!(["1"])]
                    .into_iter()
                    .map(Some)
                    .collect(),
                Kind::Ids => vec![
                    json!([true]),
                    json!([null]),
                    json!([{ "a": 1 }]),
                    json!({ "a": 1 }),
                ]
                .into_iter()
                .map(Some)
                .collect(),
                Kind::Enum => vec![
                    json!(1),
                    json!("nobody"),
                    json!("SOMETIMES"),
                    json!("NOBODY "),
                ]
                .into_iter()
                .map(Some)
                .collect(),
            };
            if *required {
                values.push(Some(Value::Null));
                values.push(None);
            }
            match kind {
                Kind::Id => values.extend(bad_ids.iter().map(|b| Some(json!(b)))),
                Kind::Ids => values.extend(bad_ids.iter().map(|b| Some(json!([dave.id, b])))),
                Kind::Str => {
                    let base = "x";
                    values.extend(
                        [
                            "a".repeat(60 * 1024),
                            "😀".repeat(15 * 1024),
                            format!("a{}", "\u{301}".repeat(30 * 1024)),
                            format!("{base}\u{0}"),
                            format!("\u{1b}[31m{base}\u{1b}[0m"),
                            format!("{base}\u{7}\u{8}"),
                            format!("{base}\u{7f}\u{85}"),
                        ]
                        .into_iter()
                        .map(|s| Some(json!(s))),
                    );
                }
                Kind::Enum => {}
            }
            for value in values {
                total += 1;
                let what: String = format!("{document} {path:?} = {value:?}")
                    .chars()
                    .take(300)
                    .collect();
                let variables = set(valid.clone(), path, value);
                let (status, body) = api
                    .post(Some(&alice.access_token), document, variables)
                    .await;
                assert!(status < 500, "{what}: {status} {body}");
                assert_eq!(
                    body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
                    "{what}: {body}"
                );
            }
        }
    }
    assert!(total > 100, "only {total} cases");
    assert_eq!(
        messaging_snapshot(&api, &alice, &bob, &direct).await,
        before,
        "a refused request changed state"
    );
    api.app.stop().await.expect("stop");
}
