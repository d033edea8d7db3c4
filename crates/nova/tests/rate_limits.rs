//! Rate limits through the API: 429 with `Retry-After` and `RateLimit-*` headers for the
//! whole-request limits; RATE_LIMITED errors for sign-in, registration and write limits; client
//! addresses taken from forwarding headers only behind a trusted proxy (spoofed headers from an
//! untrusted peer change nothing); quotas shared across two nodes through Redis; a local fallback
//! when Redis is down.

mod common;

use std::time::{Duration, Instant};

use nova_app::testing::TestApp;
use nova_app::Settings;
use serde_json::{json, Value};

const ME: &str = "{ __typename }";
const SIGN_IN: &str = "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken } }";
const REGISTER: &str = "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken user { id } } }";
const CREATE_POST: &str = "mutation($b: String!) { createPost(input: {body: $b}) { id } }";

/// Test settings with every limit out of reach; each test tightens the ones it exercises.
fn settings(dir: &tempfile::TempDir) -> Settings {
    TestApp::test_settings(dir.path())
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
}

async fn send(
    api: &common::Api,
    headers: &[(&str, &str)],
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Reply {
    let mut request = api
        .http
        .post(api.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.expect("JSON body");
    Reply {
        status,
        headers,
        body,
    }
}

fn assert_rate_limited_response(reply: &Reply, burst: u32) {
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
    assert!(reply.body.get("data").is_none(), "{}", reply.body);
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        reply.body["errors"][0]["extensions"]["retryAfter"],
        json!(retry_after)
    );
    assert_eq!(
        reply.header("ratelimit-limit"),
        Some(burst.to_string().as_str())
    );
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    let reset: u64 = reply
        .header("ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .expect("RateLimit-Reset in seconds");
    assert!(
        reset >= retry_after,
        "reset {reset} < retry after {retry_after}"
    );
    assert!(reply.header("ratelimit-policy").is_some());
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.per_ip_per_second = 1;
    settings.rate_limit.per_ip_burst = 3;
    assert!(settings.rate_limit.trusted_proxies.is_empty());
    let api = common::Api::start_with(settings).await;

    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for i in 0..6 {
        let xff = format!("198.51.100.{i}");
        let forwarded = format!("for=203.0.113.{i}");
        let reply = send(
            &api,
            &[("x-forwarded-for", &xff), ("forwarded", &forwarded)],
            None,
            ME,
            json!({}),
        )
        .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_rate_limited_response(&reply, 3);
        } else {
            remaining.push(reply.header("ratelimit-remaining").map(str::to_owned));
        }
    }
    // One bucket for the peer, whatever the headers claim: the burst, then 429s.
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    assert_eq!(
        remaining,
        [Some("2".into()), Some("1".into()), Some("0".into())]
    );

    let metrics = api
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("nova_rate_limited_total{limit=\"ip\"}")),
        "{metrics}"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.per_ip_per_second = 1;
    settings.rate_limit.per_ip_burst = 2;
    settings.rate_limit.trusted_proxies = vec!["127.0.0.1/32".into(), "10.0.0.0/8".into()];
    let api = common::Api::start_with(settings).await;

    let statuses = |headers: Vec<(&'static str, String)>, n: usize| {
        let api = &api;
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                let pairs: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                out.push(send(api, &pairs, None, ME, json!({})).await.status);
            }
            out
        }
    };
    // Client A exhausts its bucket...
    let a = vec![("x-forwarded-for", "203.0.113.1".to_owned())];
    assert_eq!(statuses(a.clone(), 3).await, [200, 200, 429]);
    // ...and cannot escape it by prepending a spoofed address: the walk starts on the right.
    let spoofing_a = vec![("x-forwarded-for", "192.0.2.99, 203.0.113.1".to_owned())];
    assert_eq!(statuses(spoofing_a, 1).await, [429]);
    // Through a second trusted hop, A is still A.
    let a_via_two_proxies = vec![("x-forwarded-for", "203.0.113.1, 10.1.2.3".to_owned())];
    assert_eq!(statuses(a_via_two_proxies, 1).await, [429]);
    // Client B, and client C named by RFC 7239 `Forwarded`, have buckets of their own.
    let b = vec![("x-forwarded-for", "203.0.113.2".to_owned())];
    assert_eq!(statuses(b, 3).await, [200, 200, 429]);
    let c = vec![(
        "forwarded",
        "for=\"[2001:db8::7]:4711\";proto=https".to_owned(),
    )];
    assert_eq!(statuses(c, 3).await, [200, 200, 429]);
    // The proxy's own requests (no header) are charged to the proxy.
    assert_eq!(statuses(Vec::new(), 3).await, [200, 200, 429]);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_login_and_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.sign_in_per_minute = 1;
    settings.rate_limit.sign_in_burst = 2;
    settings.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    let api = common::Api::start_with(settings).await;
    api.register("alice").await;

    let attempt = |ip: &'static str, login: &'static str, password: &'static str| {
        let api = &api;
        async move {
            send(
                api,
                &[("x-forwarded-for", ip)],
                None,
                SIGN_IN,
                json!({ "l": login, "p": password }),
            )
            .await
        }
    };
    // Per login: two wrong passwords from one address, then the right one from another address
    // is refused too; the error is a GraphQL error on the field, not a 429.
    for ip in ["192.0.2.1", "192.0.2.2"] {
        let reply = attempt(ip, "alice", "wrong-password").await;
        assert_ne!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
    }
    let reply = attempt("192.0.2.3", "ALICE", "password-alice").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["path"], json!(["signIn"]));
    assert!(reply.body["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));

    // Per address: different logins from one address.
    assert_ne!(
        attempt("192.0.2.9", "bob", "x").await.code(),
        Some("RATE_LIMITED")
    );
    assert_ne!(
        attempt("192.0.2.9", "carol", "x").await.code(),
        Some("RATE_LIMITED")
    );
    assert_eq!(
        attempt("192.0.2.9", "dave", "x").await.code(),
        Some("RATE_LIMITED")
    );
    // Another address and login are unaffected.
    assert_ne!(
        attempt("192.0.2.10", "erin", "x").await.code(),
        Some("RATE_LIMITED")
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn registrations_are_limited_per_address_and_writes_per_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.register_per_minute = 1;
    settings.rate_limit.register_burst = 2;
    settings.rate_limit.writes_per_hour = 1;
    settings.rate_limit.writes_burst = 3;
    let api = common::Api::start_with(settings).await;

    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let reply = send(
        &api,
        &[],
        None,
        REGISTER,
        json!({ "u": "carol", "e": "carol@example.test", "p": "password-carol" }),
    )
    .await;
    assert_eq!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["path"], json!(["register"]));

    for i in 0..3 {
        api.create_post(&alice, &format!("post {i}")).await;
    }
    let reply = send(
        &api,
        &[],
        Some(&alice.access_token),
        CREATE_POST,
        json!({ "b": "one too many" }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
    // Follows count against the same budget; reads do not; other accounts are unaffected.
    let reply = send(
        &api,
        &[],
        Some(&alice.access_token),
        "mutation($id: ID!) { follow(userId: $id) { id } }",
        json!({ "id": bob.id }),
    )
    .await;
    assert_eq!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
    api.ok(Some(&alice.access_token), "{ me { id } }", json!({}))
        .await;
    api.create_post(&bob, "bob is fine").await;
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn authenticated_requests_are_limited_per_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.per_account_per_second = 1;
    settings.rate_limit.per_account_burst = 2;
    let api = common::Api::start_with(settings).await;
    let alice = api.register("alice").await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            send(&api, &[], Some(&alice.access_token), ME, json!({}))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    let reply = send(&api, &[], Some(&alice.access_token), ME, json!({})).await;
    assert_rate_limited_response(&reply, 2);
    // The same address without the token is not charged to the account.
    assert_eq!(send(&api, &[], None, ME, json!({})).await.status, 200);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn disabled_limits_admit_everything_without_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.enabled = false;
    settings.rate_limit.per_ip_per_second = 1;
    settings.rate_limit.per_ip_burst = 1;
    settings.rate_limit.register_per_minute = 1;
    settings.rate_limit.register_burst = 1;
    let api = common::Api::start_with(settings).await;
    for _ in 0..5 {
        let reply = send(&api, &[], None, ME, json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.header("ratelimit-limit").is_none());
    }
    api.register("alice").await;
    api.register("bob").await;
    api.app.stop().await.expect("stop");
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test]
async fn two_nodes_sharing_redis_grant_one_quota_not_two() {
    let prefix = format!("nova-test-{:016x}", rand_suffix());
    let burst = 4;
    let mut apis = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = settings(&dir);
        settings.rate_limit.per_ip_per_second = 1;
        settings.rate_limit.per_ip_burst = burst;
        settings.rate_limit.redis_url = Some(redis_url().into());
        settings.rate_limit.redis_key_prefix = prefix.clone();
        settings.rate_limit.redis_timeout_ms = 1_000;
        apis.push(common::Api::start_with(settings).await);
        dirs.push(dir);
    }
    let started = Instant::now();
    let mut admitted = [0u32; 2];
    let mut refused = [0u32; 2];
    for i in 0..16 {
        let reply = send(&apis[i % 2], &[], None, ME, json!({})).await;
        match reply.status {
            200 => admitted[i % 2] += 1,
            429 => refused[i % 2] += 1,
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = admitted[0] + admitted[1];
    let quota = f64::from(burst) + elapsed.ceil();
    assert!(
        f64::from(total) <= quota,
        "{total} admitted in {elapsed:.2} s across two nodes; one node's quota is {quota} (Redis not shared?)"
    );
    assert!(total >= burst, "{total} admitted; the burst is {burst}");
    assert!(
        refused[0] > 0 && refused[1] > 0,
        "both nodes refuse: {refused:?}"
    );
    for api in apis {
        api.app.stop().await.expect("stop");
    }
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_the_local_limiter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(&dir);
    settings.rate_limit.per_ip_per_second = 1;
    settings.rate_limit.per_ip_burst = 2;
    // Nothing listens on port 1.
    settings.rate_limit.redis_url = Some("redis://127.0.0.1:1".to_owned().into());
    settings.rate_limit.redis_timeout_ms = 200;
    let api = common::Api::start_with(settings).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send(&api, &[], None, ME, json!({})).await.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the fallback does not wait on Redis for every request"
    );
    let metrics = api
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("nova_rate_limit_redis_fallback_total"),
        "{metrics}"
    );
    api.app.stop().await.expect("stop");
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}
