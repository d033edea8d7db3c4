//! End-to-end tests of the social graph through a real server on port 0: follows and their
//! counters, paged follower/following lists, blocks (and what they hide), mutes, and the errors
//! for self-targets, unknown accounts and bad page arguments.

mod common;

use std::collections::HashSet;

use common::{Account, Api};
use serde_json::{json, Value};

const PROFILE: &str = "query($id: ID!) { user(id: $id) { id username followerCount followingCount viewerFollows followsViewer viewerBlocks viewerMutes } }";

/// A graph mutation (`follow`, `unfollow`, `block`, `unblock`, `mute`, `unmute`) selecting the
/// returned account's counters and relationship flags.
fn graph_mutation(name: &str) -> String {
    format!(
        "mutation($id: ID!) {{ {name}(userId: $id) {{ id username followerCount followingCount viewerFollows followsViewer viewerBlocks viewerMutes }} }}"
    )
}

/// Runs a graph mutation that must succeed and returns the account it returned.
async fn act(api: &Api, actor: &Account, name: &str, target: &str) -> Value {
    api.ok(
        Some(&actor.access_token),
        &graph_mutation(name),
        json!({ "id": target }),
    )
    .await[name]
        .clone()
}

/// Runs a graph mutation that must fail and returns its error code, checking no data came back.
async fn act_fails(api: &Api, actor: Option<&Account>, name: &str, target: &str) -> String {
    let (status, body) = api
        .post(
            actor.map(|a| a.access_token.as_str()),
            &graph_mutation(name),
            json!({ "id": target }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "{name}: expected no data: {body}");
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: expected a coded error, got {body}"))
        .to_owned()
}

/// `user(id:)` as seen by `viewer` (None = anonymous); null when hidden or absent.
async fn profile(api: &Api, viewer: Option<&Account>, id: &str) -> Value {
    api.ok(
        viewer.map(|a| a.access_token.as_str()),
        PROFILE,
        json!({ "id": id }),
    )
    .await["user"]
        .clone()
}

/// `user(username:)` as seen by `viewer`.
async fn profile_by_name(api: &Api, viewer: Option<&Account>, username: &str) -> Value {
    api.ok(
        viewer.map(|a| a.access_token.as_str()),
        "query($u: String!) { user(username: $u) { id username } }",
        json!({ "u": username }),
    )
    .await["user"]
        .clone()
}

/// Counters of an account, read anonymously: (followers, following).
async fn counts(api: &Api, id: &str) -> (i64, i64) {
    let user = profile(api, None, id).await;
    (
        user["followerCount"].as_i64().expect("followerCount"),
        user["followingCount"].as_i64().expect("followingCount"),
    )
}

/// One page of `list` ("followers" or "following") of `owner`, as seen by `viewer`.
async fn list_page(
    api: &Api,
    viewer: Option<&Account>,
    owner: &str,
    list: &str,
    first: i64,
    after: Option<&str>,
) -> Value {
    let query = format!(
        "query($id: ID!, $first: Int, $after: String) {{ user(id: $id) {{ {list}(first: $first, after: $after) {{ edges {{ cursor node {{ id username }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
    );
    api.ok(
        viewer.map(|a| a.access_token.as_str()),
        &query,
        json!({ "id": owner, "first": first, "after": after }),
    )
    .await["user"][list]
        .clone()
}

/// Usernames on one page, in order.
fn usernames(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["username"].as_str().expect("username").to_owned())
        .collect()
}

/// Walks a whole list `first` at a time; returns the pages' usernames and hasNextPage flags.
async fn walk(
    api: &Api,
    viewer: Option<&Account>,
    owner: &str,
    list: &str,
    first: i64,
) -> Vec<(Vec<String>, bool)> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list_page(api, viewer, owner, list, first, after.as_deref()).await;
        let names = usernames(&page);
        let has_next = page["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("hasNextPage");
        let end_cursor = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        if let Some(last) = page["edges"].as_array().and_then(|e| e.last()) {
            assert_eq!(
                last["cursor"].as_str(),
                end_cursor.as_deref(),
                "endCursor is the last edge's cursor"
            );
        }
        pages.push((names, has_next));
        if !has_next {
            break;
        }
        assert!(pages.len() < 20, "paging does not terminate");
        after = Some(end_cursor.expect("endCursor when hasNextPage"));
    }
    pages
}

async fn register_many(api: &Api, prefix: &str, n: usize) -> Vec<Account> {
    let mut accounts = Vec::new();
    for i in 0..n {
        accounts.push(api.register(&format!("{prefix}{i}")).await);
    }
    accounts
}

#[tokio::test]
async fn following_is_idempotent_and_moves_both_counters_once() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;

    let first = act(&api, &alice, "follow", &bob.id).await;
    assert_eq!(first["id"], bob.id.as_str());
    assert_eq!(first["followerCount"], 1);
    assert_eq!(first["viewerFollows"], true);
    assert_eq!(first["followsViewer"], false);

    let again = act(&api, &alice, "follow", &bob.id).await;
    assert_eq!(again["followerCount"], 1, "a repeated follow counts once");
    assert_eq!(again["viewerFollows"], true);

    assert_eq!(counts(&api, &bob.id).await, (1, 0));
    assert_eq!(counts(&api, &alice.id).await, (0, 1));

    // Bob sees that Alice follows him.
    let seen_by_bob = profile(&api, Some(&bob), &alice.id).await;
    assert_eq!(seen_by_bob["followsViewer"], true);
    assert_eq!(seen_by_bob["viewerFollows"], false);

    // Following back makes it mutual.
    let back = act(&api, &bob, "follow", &alice.id).await;
    assert_eq!(back["followerCount"], 1);
    assert_eq!(back["followingCount"], 1);
    assert_eq!(back["viewerFollows"], true);
    assert_eq!(back["followsViewer"], true);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn unfollowing_is_idempotent_and_counters_never_go_negative() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;

    // Unfollowing someone never followed is a harmless no-op.
    let never = act(&api, &alice, "unfollow", &bob.id).await;
    assert_eq!(never["followerCount"], 0);
    assert_eq!(never["viewerFollows"], false);

    act(&api, &alice, "follow", &bob.id).await;
    let once = act(&api, &alice, "unfollow", &bob.id).await;
    assert_eq!(once["followerCount"], 0);
    assert_eq!(once["viewerFollows"], false);
    let twice = act(&api, &alice, "unfollow", &bob.id).await;
    assert_eq!(twice["followerCount"], 0);

    assert_eq!(counts(&api, &bob.id).await, (0, 0));
    assert_eq!(counts(&api, &alice.id).await, (0, 0));

    // And following again works normally.
    let refollow = act(&api, &alice, "follow", &bob.id).await;
    assert_eq!(refollow["followerCount"], 1);
    assert_eq!(counts(&api, &alice.id).await, (0, 1));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn followers_are_paged_newest_first_without_gaps_or_duplicates() {
    let api = Api::start().await;
    let star = api.register("star").await;
    let fans = register_many(&api, "fan", 7).await;
    for fan in &fans {
        api.follow(fan, &star.id).await;
    }
    let pages = walk(&api, None, &star.id, "followers", 3).await;
    let sizes: Vec<usize> = pages.iter().map(|(names, _)| names.len()).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    let flags: Vec<bool> = pages.iter().map(|(_, next)| *next).collect();
    assert_eq!(flags, vec![true, true, false]);
    let all: Vec<String> = pages.into_iter().flat_map(|(names, _)| names).collect();
    let expected: Vec<String> = (0..7).rev().map(|i| format!("fan{i}")).collect();
    assert_eq!(
        all, expected,
        "newest follow first, each follower exactly once"
    );

    // Exactly one page's worth: no phantom next page.
    let exact = list_page(&api, None, &star.id, "followers", 7, None).await;
    assert_eq!(usernames(&exact).len(), 7);
    assert_eq!(exact["pageInfo"]["hasNextPage"], false);

    // The default page size covers them all too.
    let default = api
        .ok(
            None,
            "query($id: ID!) { user(id: $id) { followers { edges { node { username } } pageInfo { hasNextPage } } } }",
            json!({ "id": star.id }),
        )
        .await;
    assert_eq!(
        default["user"]["followers"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        7
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn following_is_paged_newest_first_without_gaps_or_duplicates() {
    let api = Api::start().await;
    let reader = api.register("reader").await;
    let writers = register_many(&api, "writer", 5).await;
    for writer in &writers {
        api.follow(&reader, &writer.id).await;
    }
    // A follow that was undone in between does not leave a hole or a ghost.
    act(&api, &reader, "unfollow", &writers[2].id).await;

    let pages = walk(&api, Some(&reader), &reader.id, "following", 2).await;
    let sizes: Vec<usize> = pages.iter().map(|(names, _)| names.len()).collect();
    assert_eq!(sizes, vec![2, 2]);
    assert_eq!(
        pages.iter().map(|(_, next)| *next).collect::<Vec<_>>(),
        vec![true, false]
    );
    let all: Vec<String> = pages.into_iter().flat_map(|(names, _)| names).collect();
    assert_eq!(all, vec!["writer4", "writer3", "writer1", "writer0"]);
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len());

    // Following an already-followed account again keeps its place; a new follow goes first.
    api.follow(&reader, &writers[0].id).await;
    api.follow(&reader, &writers[2].id).await;
    let first_page = list_page(&api, None, &reader.id, "following", 2, None).await;
    assert_eq!(usernames(&first_page), vec!["writer2", "writer4"]);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_cursor_from_one_list_is_refused_by_another() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let fans = register_many(&api, "fan", 3).await;
    for fan in &fans {
        api.follow(fan, &alice.id).await;
        api.follow(&alice, &fan.id).await;
    }
    let followers = list_page(&api, None, &alice.id, "followers", 1, None).await;
    let cursor = followers["pageInfo"]["endCursor"]
        .as_str()
        .expect("endCursor")
        .to_owned();
    // The cursor works where it came from...
    let next = list_page(&api, None, &alice.id, "followers", 1, Some(&cursor)).await;
    assert_eq!(usernames(&next), vec!["fan1"]);

    // ...but not on the following list, the home feed, or after tampering.
    let following_query = "query($id: ID!, $after: String) { user(id: $id) { following(first: 1, after: $after) { edges { node { id } } } } }";
    let code = api
        .error_code(
            None,
            following_query,
            json!({ "id": alice.id, "after": cursor }),
        )
        .await;
    assert_eq!(code, "INVALID_INPUT");
    let code = api
        .error_code(
            Some(&alice.access_token),
            "query($after: String) { homeFeed(first: 1, after: $after) { edges { cursor } } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(code, "INVALID_INPUT");
    for garbage in [
        "garbage",
        "",
        "!!!!",
        &format!("{cursor}x"),
        &"A".repeat(200),
    ] {
        let (_, body) = api
            .post(
                None,
                following_query,
                json!({ "id": alice.id, "after": garbage }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "{garbage:?}: {body}"
        );
        assert_eq!(
            body["errors"][0]["message"],
            "`after` is not a valid cursor for this list"
        );
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn page_sizes_outside_zero_to_one_hundred_are_invalid_input() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&bob, &alice.id).await;
    for list in ["followers", "following"] {
        for first in [101, -1, 1_000_000] {
            let (_, body) = api
                .post(
                    None,
                    &format!("query($id: ID!, $f: Int) {{ user(id: $id) {{ {list}(first: $f) {{ edges {{ node {{ id }} }} }} }} }}"),
                    json!({ "id": alice.id, "f": first }),
                )
                .await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
                "{list} first={first}: {body}"
            );
            assert_eq!(
                body["errors"][0]["message"], "`first` must be between 0 and 100",
                "{body}"
            );
        }
    }
    // The bounds themselves are fine.
    let hundred = list_page(&api, None, &alice.id, "followers", 100, None).await;
    assert_eq!(usernames(&hundred), vec!["bob"]);
    assert_eq!(hundred["pageInfo"]["hasNextPage"], false);
    let zero = list_page(&api, None, &alice.id, "followers", 0, None).await;
    assert!(usernames(&zero).is_empty());
    assert_eq!(zero["pageInfo"]["hasNextPage"], true);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn blocking_removes_follows_in_both_directions_and_their_counts() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&alice, &bob.id).await;
    api.follow(&bob, &alice.id).await;
    api.follow(&carol, &alice.id).await;
    assert_eq!(counts(&api, &alice.id).await, (2, 1));

    let blocked = act(&api, &alice, "block", &bob.id).await;
    assert_eq!(blocked["id"], bob.id.as_str());
    assert_eq!(blocked["viewerBlocks"], true);
    assert_eq!(blocked["viewerFollows"], false);
    assert_eq!(blocked["followsViewer"], false);
    assert_eq!(blocked["followerCount"], 0);
    assert_eq!(blocked["followingCount"], 0);

    // Only the follows between the two went; Carol's follow of Alice stays.
    assert_eq!(counts(&api, &alice.id).await, (1, 0));
    assert_eq!(counts(&api, &bob.id).await, (0, 0));
    let followers = list_page(&api, None, &alice.id, "followers", 10, None).await;
    assert_eq!(usernames(&followers), vec!["carol"]);
    let following = list_page(&api, None, &bob.id, "following", 10, None).await;
    assert!(usernames(&following).is_empty());

    // Blocking again is harmless.
    let again = act(&api, &alice, "block", &bob.id).await;
    assert_eq!(again["viewerBlocks"], true);
    assert_eq!(counts(&api, &alice.id).await, (1, 0));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn blocked_accounts_cannot_see_each_others_profiles() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    act(&api, &alice, "block", &bob.id).await;

    // Hidden in both directions, by id and by username.
    assert!(profile(&api, Some(&alice), &bob.id).await.is_null());
    assert!(profile(&api, Some(&bob), &alice.id).await.is_null());
    assert!(profile_by_name(&api, Some(&alice), "bob").await.is_null());
    assert!(profile_by_name(&api, Some(&bob), "alice").await.is_null());

    // Everyone else still sees both.
    for viewer in [None, Some(&carol)] {
        assert_eq!(profile(&api, viewer, &alice.id).await["username"], "alice");
        assert_eq!(
            profile_by_name(&api, viewer, "bob").await["username"],
            "bob"
        );
    }
    // Each still sees themselves.
    assert_eq!(
        profile_by_name(&api, Some(&bob), "bob").await["username"],
        "bob"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn blocked_accounts_cannot_follow_each_other() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    act(&api, &alice, "block", &bob.id).await;

    // The blocked side is told the account does not exist.
    assert_eq!(
        act_fails(&api, Some(&bob), "follow", &alice.id).await,
        "NOT_FOUND"
    );
    // The blocker must unblock first.
    assert_eq!(
        act_fails(&api, Some(&alice), "follow", &bob.id).await,
        "FORBIDDEN"
    );
    assert_eq!(counts(&api, &alice.id).await, (0, 0));
    assert_eq!(counts(&api, &bob.id).await, (0, 0));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn blocked_accounts_are_hidden_from_each_others_view_of_follower_lists() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&alice, &carol.id).await;
    api.follow(&bob, &carol.id).await;
    api.follow(&carol, &alice.id).await;
    api.follow(&carol, &bob.id).await;
    act(&api, &alice, "block", &bob.id).await;

    let seen_by_bob = list_page(&api, Some(&bob), &carol.id, "followers", 10, None).await;
    assert_eq!(usernames(&seen_by_bob), vec!["bob"]);
    let seen_by_alice = list_page(&api, Some(&alice), &carol.id, "following", 10, None).await;
    assert_eq!(usernames(&seen_by_alice), vec!["alice"]);
    // Carol and anonymous readers see everyone.
    for viewer in [None, Some(&carol)] {
        let followers = list_page(&api, viewer, &carol.id, "followers", 10, None).await;
        assert_eq!(usernames(&followers), vec!["bob", "alice"]);
        let following = list_page(&api, viewer, &carol.id, "following", 10, None).await;
        assert_eq!(usernames(&following), vec!["bob", "alice"]);
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn unblocking_restores_visibility_but_not_the_removed_follows() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&alice, &bob.id).await;
    api.follow(&bob, &alice.id).await;
    act(&api, &alice, "block", &bob.id).await;

    let unblocked = act(&api, &alice, "unblock", &bob.id).await;
    assert_eq!(unblocked["viewerBlocks"], false);
    assert_eq!(unblocked["viewerFollows"], false);
    assert_eq!(unblocked["followsViewer"], false);

    let seen_by_bob = profile(&api, Some(&bob), &alice.id).await;
    assert_eq!(seen_by_bob["username"], "alice");
    assert_eq!(seen_by_bob["viewerFollows"], false);
    assert_eq!(seen_by_bob["followerCount"], 0);
    let seen_by_alice = profile(&api, Some(&alice), &bob.id).await;
    assert_eq!(seen_by_alice["username"], "bob");
    assert_eq!(seen_by_alice["viewerBlocks"], false);
    assert_eq!(counts(&api, &alice.id).await, (0, 0));

    // Unblocking twice is harmless, and following works again.
    act(&api, &alice, "unblock", &bob.id).await;
    let followed = act(&api, &bob, "follow", &alice.id).await;
    assert_eq!(followed["followerCount"], 1);
    assert_eq!(followed["viewerFollows"], true);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_block_in_either_direction_keeps_accounts_apart_until_both_are_lifted() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    act(&api, &alice, "block", &bob.id).await;
    act(&api, &bob, "block", &alice.id).await;

    act(&api, &alice, "unblock", &bob.id).await;
    // Bob's block still stands.
    assert!(profile(&api, Some(&alice), &bob.id).await.is_null());
    assert!(profile(&api, Some(&bob), &alice.id).await.is_null());
    assert_eq!(
        act_fails(&api, Some(&alice), "follow", &bob.id).await,
        "NOT_FOUND"
    );
    assert_eq!(
        act_fails(&api, Some(&bob), "follow", &alice.id).await,
        "FORBIDDEN"
    );

    act(&api, &bob, "unblock", &alice.id).await;
    assert_eq!(
        profile(&api, Some(&alice), &bob.id).await["username"],
        "bob"
    );
    assert_eq!(
        profile(&api, Some(&bob), &alice.id).await["username"],
        "alice"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn muting_and_unmuting_toggle_viewer_mutes_idempotently() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.follow(&alice, &bob.id).await;
    assert_eq!(
        profile(&api, Some(&alice), &bob.id).await["viewerMutes"],
        false
    );

    let muted = act(&api, &alice, "mute", &bob.id).await;
    assert_eq!(muted["viewerMutes"], true);
    // Muting is not unfollowing and is invisible to the muted account.
    assert_eq!(muted["viewerFollows"], true);
    assert_eq!(muted["followerCount"], 1);
    let seen_by_bob = profile(&api, Some(&bob), &alice.id).await;
    assert_eq!(seen_by_bob["username"], "alice");
    assert_eq!(seen_by_bob["followsViewer"], true);
    assert_eq!(seen_by_bob["viewerMutes"], false);

    assert_eq!(
        act(&api, &alice, "mute", &bob.id).await["viewerMutes"],
        true
    );
    assert_eq!(
        profile(&api, Some(&alice), &bob.id).await["viewerMutes"],
        true
    );

    let unmuted = act(&api, &alice, "unmute", &bob.id).await;
    assert_eq!(unmuted["viewerMutes"], false);
    assert_eq!(unmuted["viewerFollows"], true);
    assert_eq!(
        act(&api, &alice, "unmute", &bob.id).await["viewerMutes"],
        false
    );
    assert_eq!(
        profile(&api, Some(&alice), &bob.id).await["viewerMutes"],
        false
    );
    // Anonymous readers never see relationship flags.
    let anonymous = profile(&api, None, &bob.id).await;
    assert_eq!(anonymous["viewerMutes"], false);
    assert_eq!(anonymous["viewerFollows"], false);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_account_cannot_follow_block_or_mute_itself() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    for name in ["follow", "unfollow", "block", "unblock", "mute", "unmute"] {
        let (_, body) = api
            .post(
                Some(&alice.access_token),
                &graph_mutation(name),
                json!({ "id": alice.id }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "{name}: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("yourself"), "{name}: {message}");
    }
    assert_eq!(counts(&api, &alice.id).await, (0, 0));
    assert_eq!(
        profile(&api, Some(&alice), &alice.id).await["username"],
        "alice"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn graph_mutations_on_unknown_or_malformed_ids_fail_with_not_found_or_invalid_input() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    for name in ["follow", "unfollow", "block", "unblock", "mute", "unmute"] {
        assert_eq!(
            act_fails(&api, Some(&alice), name, "123456789").await,
            "NOT_FOUND",
            "{name}"
        );
        for malformed in ["abc", "-1", "0", "", "99999999999999999999"] {
            assert_eq!(
                act_fails(&api, Some(&alice), name, malformed).await,
                "INVALID_INPUT",
                "{name} {malformed:?}"
            );
        }
        assert_eq!(
            act_fails(&api, None, name, &alice.id).await,
            "UNAUTHENTICATED",
            "{name} without a token"
        );
    }
    assert_eq!(counts(&api, &alice.id).await, (0, 0));
    api.app.stop().await.expect("stop");
}

/// Registers Alice (with a recognisable display name and bio) and Bob, and has Alice block Bob.
async fn alice_blocks_bob(api: &Api) -> (Account, Account) {
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    api.ok(
        Some(&alice.access_token),
        "mutation { updateProfile(input: {displayName: \"Secret Alice\", bio: \"hidden-from-bob\"}) { id } }",
        json!({}),
    )
    .await;
    act(api, &alice, "block", &bob.id).await;
    (alice, bob)
}

/// Runs `name` as `actor` on `target`, selecting profile fields; returns the raw body.
async fn act_reading_profile(api: &Api, actor: &Account, name: &str, target: &str) -> Value {
    let query = format!(
        "mutation($id: ID!) {{ {name}(userId: $id) {{ id username displayName bio followerCount }} }}"
    );
    let (status, body) = api
        .post(Some(&actor.access_token), &query, json!({ "id": target }))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn an_account_blocked_by_another_gets_not_found_from_follow_unfollow_mute_and_unmute() {
    let api = Api::start().await;
    let (alice, bob) = alice_blocks_bob(&api).await;
    // `user(id:)` hides Alice from Bob, so must the mutations that return her profile.
    for name in ["follow", "unfollow", "mute", "unmute"] {
        let body = act_reading_profile(&api, &bob, name, &alice.id).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{name}: {body}"
        );
        assert!(body["data"].is_null(), "{name}: {body}");
        assert!(
            !body.to_string().contains("hidden-from-bob"),
            "{name}: {body}"
        );
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_account_blocked_by_another_cannot_read_its_profile_by_blocking_or_unblocking_it() {
    let api = Api::start().await;
    let (alice, bob) = alice_blocks_bob(&api).await;
    // Bob may block Alice back and lift that block again, but neither may show him her profile.
    for name in ["block", "unblock"] {
        let body = act_reading_profile(&api, &bob, name, &alice.id).await;
        let text = body.to_string();
        assert!(
            !text.contains("hidden-from-bob") && !text.contains("Secret Alice"),
            "{name} showed Alice's profile to the account she blocked: {body}"
        );
    }
    assert!(profile(&api, Some(&bob), &alice.id).await.is_null());
    api.app.stop().await.expect("stop");
}
