//! Durability of the real `nova` binary: data written before a clean restart (SIGTERM) or a
//! crash (SIGKILL in the middle of a stream of writes) is there after the node starts again on
//! the same data directory, with counters that agree with the rows they count.
//!
//! Every node is a child process (`common::process::Node`) with its own temporary data
//! directory; a guard kills it when dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

mod common;

use common::process::{acknowledged, client, create_post, gql, ok, register, Account, Node};

/// Every post id on `user_id`'s timeline (`User.posts`), paging through all of it, plus the
/// account's `postCount`, `followerCount` and `followingCount` as read in the first request.
struct Timeline {
    post_ids: Vec<String>,
    post_count: i64,
    follower_count: i64,
    following_count: i64,
    followers: BTreeSet<String>,
    following: BTreeSet<String>,
}

async fn timeline(http: &reqwest::Client, url: &str, token: &str, user_id: &str) -> Timeline {
    let counts = ok(
        http,
        url,
        Some(token),
        "query($id: ID!) { user(id: $id) { postCount followerCount followingCount } }",
        json!({ "id": user_id }),
    )
    .await;
    let user = &counts["user"];
    let mut result = Timeline {
        post_ids: Vec::new(),
        post_count: user["postCount"].as_i64().expect("postCount"),
        follower_count: user["followerCount"].as_i64().expect("followerCount"),
        following_count: user["followingCount"].as_i64().expect("followingCount"),
        followers: BTreeSet::new(),
        following: BTreeSet::new(),
    };
    for list in ["posts", "followers", "following"] {
        let mut after: Option<String> = None;
        loop {
            let query = format!(
                "query($id: ID!, $after: String) {{ user(id: $id) {{ {list}(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ id }} }} }} }}"
            );
            let data = ok(
                http,
                url,
                Some(token),
                &query,
                json!({ "id": user_id, "after": after }),
            )
            .await;
            let connection = &data["user"][list];
            for node in connection["nodes"].as_array().expect("nodes") {
                let id = node["id"].as_str().expect("node id").to_owned();
                match list {
                    "posts" => result.post_ids.push(id),
                    "followers" => {
                        result.followers.insert(id);
                    }
                    _ => {
                        result.following.insert(id);
                    }
                }
            }
            if connection["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = connection["pageInfo"]["endCursor"]
                .as_str()
                .map(str::to_owned);
            assert!(after.is_some(), "hasNextPage without endCursor");
        }
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_access_tokens_survive_a_clean_restart_on_the_same_data_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    let http = client();

    let node = Node::start(&data_dir);
    let url = node.graphql_url();
    let alice = register(&http, &url, "alice").await;
    let bob = register(&http, &url, "bob").await;
    let mut posts = Vec::new();
    for n in 0..3 {
        let body = format!("alice says {n}");
        posts.push((create_post(&http, &url, &alice, &body).await, body));
    }
    ok(
        &http,
        &url,
        Some(&bob.access_token),
        "mutation($id: ID!) { likePost(postId: $id) { id } }",
        json!({ "id": posts[1].0 }),
    )
    .await;
    ok(
        &http,
        &url,
        Some(&bob.access_token),
        "mutation($id: ID!) { follow(userId: $id) { id } }",
        json!({ "id": alice.id }),
    )
    .await;

    let status = node.terminate();
    assert!(status.success(), "nova exited with {status} after SIGTERM");

    let secret_path = data_dir.join("jwt-secret");
    let metadata = std::fs::metadata(&secret_path).expect("jwt-secret exists");
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o600,
        "jwt-secret must be readable by its owner only"
    );
    let secret_before = std::fs::read(&secret_path).expect("read jwt-secret");
    assert!(secret_before.len() >= 32);

    let node = Node::start(&data_dir);
    let url = node.graphql_url();
    assert_eq!(
        std::fs::read(&secret_path).expect("read jwt-secret"),
        secret_before,
        "a restart must reuse the persisted secret, not generate a new one"
    );

    // The access token issued before the restart still verifies.
    let me = ok(
        &http,
        &url,
        Some(&alice.access_token),
        "{ me { id username postCount followerCount } }",
        json!({}),
    )
    .await;
    assert_eq!(me["me"]["id"], alice.id.as_str());
    assert_eq!(me["me"]["username"], "alice");
    assert_eq!(me["me"]["postCount"], 3);
    assert_eq!(me["me"]["followerCount"], 1);

    // The password still signs in.
    let signed_in = ok(
        &http,
        &url,
        None,
        "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { user { id } } }",
        json!({ "l": alice.username, "p": alice.password }),
    )
    .await;
    assert_eq!(signed_in["signIn"]["user"]["id"], alice.id.as_str());

    for (index, (id, body)) in posts.iter().enumerate() {
        let data = ok(
            &http,
            &url,
            Some(&bob.access_token),
            "query($id: ID!) { post(id: $id) { id body likeCount viewerHasLiked author { id } } }",
            json!({ "id": id }),
        )
        .await;
        let post = &data["post"];
        assert_eq!(post["id"], id.as_str());
        assert_eq!(post["body"], body.as_str());
        assert_eq!(post["author"]["id"], alice.id.as_str());
        let liked = index == 1;
        assert_eq!(post["likeCount"], i64::from(liked), "{post}");
        assert_eq!(post["viewerHasLiked"], liked, "{post}");
    }

    let bobs_view = ok(
        &http,
        &url,
        Some(&bob.access_token),
        "{ me { followingCount } homeFeed(first: 10) { nodes { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(bobs_view["me"]["followingCount"], 1);
    let feed: Vec<&str> = bobs_view["homeFeed"]["nodes"]
        .as_array()
        .expect("feed")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let expected: Vec<&str> = posts.iter().rev().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        feed, expected,
        "bob's feed holds alice's posts, newest first"
    );

    let status = node.terminate();
    assert!(status.success(), "nova exited with {status} after SIGTERM");
}

/// Everything the server acknowledged (HTTP 200, no errors) during the write storm.
#[derive(Default, Clone)]
struct Ledger {
    /// post id → (author id, body)
    posts: BTreeMap<String, (String, String)>,
    /// (liker id, post id)
    likes: BTreeSet<(String, String)>,
    /// (follower id, followee id) → whether following, per the last acknowledged request;
    /// `None` when the last request for the pair got no answer (either state is acceptable).
    follows: BTreeMap<(String, String), Option<bool>>,
    acknowledged_this_round: usize,
    unanswered_this_round: usize,
}

struct Writer {
    http: reqwest::Client,
    url: String,
    round: usize,
    index: usize,
    /// The account this writer acts as.
    me: Account,
    /// The account it follows and unfollows.
    other: Account,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
}

const WRITERS_PER_ACCOUNT: usize = 2;
const ACCOUNTS: usize = 4;

/// One writer: creates posts as fast as it can, liking the newest acknowledged post every few
/// writes and — for the first writer of each account — toggling a follow now and then. Stops at
/// the first request that gets no HTTP answer (the server is gone) or when told to.
async fn writer(spec: Writer) {
    let Writer {
        http,
        url,
        round,
        index,
        me,
        other,
        ledger,
        stop,
    } = spec;
    let owns_follow_pair = index < ACCOUNTS;
    let mut following = false;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if n.is_multiple_of(5) {
            let target = ledger
                .lock()
                .expect("ledger")
                .posts
                .keys()
                .next_back()
                .cloned();
            if let Some(post_id) = target {
                let result = gql(
                    &http,
                    &url,
                    Some(&me.access_token),
                    "mutation($id: ID!) { likePost(postId: $id) { id viewerHasLiked } }",
                    json!({ "id": post_id }),
                )
                .await;
                let mut ledger = ledger.lock().expect("ledger");
                match acknowledged(&result) {
                    Some(data) => {
                        assert_eq!(data["likePost"]["viewerHasLiked"], true, "{data}");
                        ledger.likes.insert((me.id.clone(), post_id));
                        ledger.acknowledged_this_round += 1;
                    }
                    None if result.is_err() => {
                        ledger.unanswered_this_round += 1;
                        return;
                    }
                    None => panic!("likePost failed: {result:?}"),
                }
                continue;
            }
        }
        if owns_follow_pair && n.is_multiple_of(7) {
            let mutation = if following { "unfollow" } else { "follow" };
            let pair = (me.id.clone(), other.id.clone());
            ledger
                .lock()
                .expect("ledger")
                .follows
                .insert(pair.clone(), None);
            let result = gql(
                &http,
                &url,
                Some(&me.access_token),
                &format!("mutation($id: ID!) {{ {mutation}(userId: $id) {{ id }} }}"),
                json!({ "id": other.id }),
            )
            .await;
            let mut ledger = ledger.lock().expect("ledger");
            match acknowledged(&result) {
                Some(_) => {
                    following = !following;
                    ledger.follows.insert(pair, Some(following));
                    ledger.acknowledged_this_round += 1;
                }
                None if result.is_err() => {
                    ledger.unanswered_this_round += 1;
                    return;
                }
                None => panic!("{mutation} failed: {result:?}"),
            }
            continue;
        }
        let body = format!("round {round} writer {index} post {n}");
        let result = gql(
            &http,
            &url,
            Some(&me.access_token),
            "mutation($b: String!) { createPost(input: {body: $b}) { id body } }",
            json!({ "b": body }),
        )
        .await;
        let mut ledger = ledger.lock().expect("ledger");
        match acknowledged(&result) {
            Some(data) => {
                let id = data["createPost"]["id"]
                    .as_str()
                    .expect("post id")
                    .to_owned();
                assert_eq!(data["createPost"]["body"], body.as_str());
                ledger.posts.insert(id, (me.id.clone(), body));
                ledger.acknowledged_this_round += 1;
            }
            None if result.is_err() => {
                ledger.unanswered_this_round += 1;
                return;
            }
            None => panic!("createPost failed: {result:?}"),
        }
    }
}

/// Checks that everything in the ledger is on the restarted node and that counters match lists.
async fn verify(http: &reqwest::Client, url: &str, accounts: &[Account], ledger: &Ledger) {
    // Every acknowledged post, 20 per request (the root-field cap).
    let posts: Vec<(&String, &(String, String))> = ledger.posts.iter().collect();
    for chunk in posts.chunks(20) {
        let fields: String = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, _))| format!("p{i}: post(id: \"{id}\") {{ id body author {{ id }} }} "))
            .collect();
        let data = ok(http, url, None, &format!("{{ {fields} }}"), json!({})).await;
        for (i, (id, (author, body))) in chunk.iter().enumerate() {
            let post = &data[format!("p{i}")];
            assert!(
                !post.is_null(),
                "acknowledged post {id} ({body:?}) is missing after the crash"
            );
            assert_eq!(post["id"], id.as_str());
            assert_eq!(post["body"], body.as_str(), "post {id}");
            assert_eq!(post["author"]["id"], author.as_str(), "post {id}");
        }
    }

    // Every acknowledged like, seen by its liker.
    let likes: Vec<&(String, String)> = ledger.likes.iter().collect();
    for account in accounts {
        let mine: Vec<&String> = likes
            .iter()
            .filter(|(liker, _)| *liker == account.id)
            .map(|(_, post)| post)
            .collect();
        for chunk in mine.chunks(20) {
            let fields: String = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| format!("l{i}: post(id: \"{id}\") {{ likeCount viewerHasLiked }} "))
                .collect();
            let data = ok(
                http,
                url,
                Some(&account.access_token),
                &format!("{{ {fields} }}"),
                json!({}),
            )
            .await;
            for (i, id) in chunk.iter().enumerate() {
                let post = &data[format!("l{i}")];
                assert_eq!(
                    post["viewerHasLiked"], true,
                    "acknowledged like of {id} by {} is missing",
                    account.username
                );
                let count = post["likeCount"].as_i64().expect("likeCount");
                assert!(
                    (1..=ACCOUNTS as i64).contains(&count),
                    "post {id} has likeCount {count}"
                );
            }
        }
    }

    // Counters agree with the lists they count; acknowledged posts and follows are there.
    for account in accounts {
        let timeline = timeline(http, url, &account.access_token, &account.id).await;
        let on_timeline: BTreeSet<&String> = timeline.post_ids.iter().collect();
        assert_eq!(
            on_timeline.len(),
            timeline.post_ids.len(),
            "the timeline of {} repeats posts",
            account.username
        );
        assert_eq!(
            timeline.post_count,
            timeline.post_ids.len() as i64,
            "postCount of {} disagrees with its timeline",
            account.username
        );
        assert_eq!(
            timeline.follower_count,
            timeline.followers.len() as i64,
            "followerCount of {}",
            account.username
        );
        assert_eq!(
            timeline.following_count,
            timeline.following.len() as i64,
            "followingCount of {}",
            account.username
        );
        for (id, (author, body)) in &ledger.posts {
            if *author == account.id {
                assert!(
                    on_timeline.contains(id),
                    "acknowledged post {id} ({body:?}) is not on its author's timeline"
                );
            }
        }
        for ((follower, followee), state) in &ledger.follows {
            if *follower == account.id {
                if let Some(following) = state {
                    assert_eq!(
                        timeline.following.contains(followee),
                        *following,
                        "follow state of {} → {followee} is not the acknowledged one",
                        account.username
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_in_the_middle_of_a_write_storm() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    let http = client();

    let mut node = Node::start(&data_dir);
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        accounts.push(register(&http, &node.graphql_url(), &format!("writer{i}")).await);
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    for round in 0..3 {
        {
            let mut ledger = ledger.lock().expect("ledger");
            ledger.acknowledged_this_round = 0;
            ledger.unanswered_this_round = 0;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let url = node.graphql_url();
        let mut tasks = Vec::new();
        for index in 0..ACCOUNTS * WRITERS_PER_ACCOUNT {
            let me = accounts[index % ACCOUNTS].clone();
            let other = accounts[(index + 1) % ACCOUNTS].clone();
            tasks.push(tokio::spawn(writer(Writer {
                http: http.clone(),
                url: url.clone(),
                round,
                index,
                me,
                other,
                ledger: Arc::clone(&ledger),
                stop: Arc::clone(&stop),
            })));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        node.kill_9();
        let writers_done = async {
            for task in tasks {
                task.await.expect("writer task panicked");
            }
        };
        let finished = tokio::time::timeout(Duration::from_secs(20), writers_done).await;
        stop.store(true, Ordering::Relaxed);
        assert!(finished.is_ok(), "writers did not notice the dead server");

        {
            let ledger = ledger.lock().expect("ledger");
            assert!(
                ledger.acknowledged_this_round > 0,
                "round {round}: no write was acknowledged before the kill"
            );
            assert_eq!(
                ledger.unanswered_this_round,
                ACCOUNTS * WRITERS_PER_ACCOUNT,
                "round {round}: every writer should have stopped because the server went away"
            );
            eprintln!(
                "round {round}: {} writes acknowledged, {} posts so far",
                ledger.acknowledged_this_round,
                ledger.posts.len()
            );
        }

        assert!(
            data_dir.join("nova.db-wal").exists(),
            "a killed node leaves its write-ahead log behind for recovery"
        );
        node = Node::start(&data_dir);
        let snapshot = ledger.lock().expect("ledger").clone();
        verify(&http, &node.graphql_url(), &accounts, &snapshot).await;
    }

    let status = node.terminate();
    assert!(status.success(), "nova exited with {status} after SIGTERM");
}
