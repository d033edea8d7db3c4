//! The shortest path through the product: register, post, read the home feed.

mod common;

use serde_json::json;

#[tokio::test]
async fn a_new_account_posts_and_sees_the_post_in_its_home_feed() {
    let api = common::Api::start().await;
    let alice = api.register("alice").await;
    let post_id = api.create_post(&alice, "hello world").await;
    let data = api
        .ok(
            Some(&alice.access_token),
            "{ homeFeed(first: 10) { edges { node { id body author { username } } } } }",
            json!({}),
        )
        .await;
    let edges = data["homeFeed"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["id"], post_id.as_str());
    assert_eq!(edges[0]["node"]["body"], "hello world");
    assert_eq!(edges[0]["node"]["author"]["username"], "alice");
    api.app.stop().await.expect("stop");
}
