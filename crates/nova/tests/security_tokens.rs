//! Security suite for bearer tokens: every input of the Tokens list in reliability.md (missing,
//! malformed, `alg: none`, wrong key, expired, not yet valid, wrong issuer or audience, revoked)
//! plus key-id attacks and key rotation, each answered with the exact same rejection: HTTP 401,
//! code UNAUTHENTICATED, one message. Revocation is checked across two nodes sharing a database.

mod common;

use std::time::{Duration, Instant};

use common::{Account, Api};
use nova_app::settings::{JwtKeySettings, Secret};
use nova_app::Settings;
use nova_users::{Argon2Params, AuthConfig, JwtKey, TokenService};
use serde_json::{json, Value};

const ME: &str = "{ me { id username } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
const SIGN_OUT: &str = "mutation($t: String!) { signOut(refreshToken: $t) }";
const SIGN_IN: &str = "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken refreshToken } }";

const SECRET_A: &str = "k1-secret-0123456789abcdefghijklmnopqrstuv";
const SECRET_B: &str = "k2-secret-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";
const SECRET_OTHER: &str = "an-unrelated-secret-0123456789-abcdefghijkl";

fn secret(value: &str) -> Secret {
    Secret::from(value.to_owned())
}

fn key(kid: &str, value: &str) -> JwtKeySettings {
    JwtKeySettings {
        kid: kid.into(),
        secret: secret(value),
    }
}

/// Test settings with the given keys, the first signing.
fn settings_with_keys(dir: &std::path::Path, keys: &[(&str, &str)]) -> Settings {
    let mut settings = nova_app::testing::TestApp::test_settings(dir);
    settings.auth.jwt_keys = keys.iter().map(|(kid, s)| key(kid, s)).collect();
    settings.auth.signing_kid = keys.first().map(|(kid, _)| (*kid).to_owned());
    settings
}

/// A second node on the same database as `settings` (it must not drop the Postgres database
/// when it stops; the first node does).
fn sibling(settings: &Settings, dir: &std::path::Path) -> Settings {
    let mut sibling = settings.clone();
    sibling.data_dir = dir.to_path_buf();
    sibling.db.path = Some(settings.sqlite_path());
    sibling.db.create_if_missing = false;
    sibling
}

/// Signs tokens the way a node configured with `secret` under `kid` (and `issuer`/`audience`)
/// would.
fn minter(kid: &str, secret: &str, issuer: &str, audience: &str) -> TokenService {
    TokenService::with_keys(
        AuthConfig {
            jwt_secret: secret.as_bytes().to_vec(),
            issuer: issuer.into(),
            audience: audience.into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 3600,
            leeway_secs: 30,
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        },
        kid,
        Vec::<JwtKey>::new(),
    )
    .expect("valid minter")
}

fn mint(minter: &TokenService, account: &Account, at_offset_ms: i64) -> String {
    let user_id = nova_core::Id::parse(&account.id).expect("id");
    minter
        .issue_access_token(
            user_id,
            nova_core::Id(1),
            nova_core::now_millis() + at_offset_ms,
        )
        .expect("sign")
        .0
}

/// Replaces the JWT header with `{"alg":"none","typ":"JWT"}` and drops the signature.
fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload segment");
    format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
}

/// The exact rejection every bad token gets.
async fn assert_rejected(api: &Api, token: &str, what: &str) {
    let (status, body) = api.post(Some(token), ME, json!({})).await;
    assert_rejection(status, &body, what);
}

fn assert_rejection(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 401, "{what}: expected 401, body: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{what}: {body}"
    );
    assert_eq!(
        body["errors"][0]["message"], "access token is invalid or expired",
        "{what}: {body}"
    );
    assert_eq!(
        body["errors"].as_array().map(Vec::len),
        Some(1),
        "{what}: {body}"
    );
    assert!(
        body.get("data").is_none(),
        "{what}: no data expected: {body}"
    );
}

async fn assert_accepted(api: &Api, token: &str, username: &str, what: &str) {
    let (status, body) = api.post(Some(token), ME, json!({})).await;
    assert_eq!(status, 200, "{what}: {body}");
    assert_eq!(body["data"]["me"]["username"], username, "{what}: {body}");
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64 header");
    let header: Value = serde_json::from_slice(&bytes).expect("JSON header");
    header["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn every_bad_token_gets_the_same_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_with_keys(dir.path(), &[("k1", SECRET_A), ("k2", SECRET_B)]);
    let api = Api::start_with(settings).await;
    let alice = api.register("alice").await;
    assert_eq!(kid_of(&alice.access_token), "k1");
    assert_accepted(&api, &alice.access_token, "alice", "genuine").await;

    // Missing: anonymous, and an operation that needs an account says so.
    let (status, body) = api.post(None, ME, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "missing token: {body}"
    );
    assert_eq!(body["errors"][0]["message"], "sign in required", "{body}");
    assert!(status == 200 || status == 401, "missing token: {status}");

    let ours = minter("k1", SECRET_A, "nova", "nova");
    // Tokens this server would accept, except for one thing each.
    let control = mint(&ours, &alice, 0);
    assert_accepted(&api, &control, "alice", "control").await;

    let mut tampered = alice.access_token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("garbage", "garbage".into()),
        ("three dots", "a.b.c".into()),
        ("two segments", {
            let mut parts = alice.access_token.split('.');
            format!(
                "{}.{}",
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default()
            )
        }),
        ("refresh token as access token", alice.refresh_token.clone()),
        (
            "oversized",
            format!("{}{}", alice.access_token, "A".repeat(5_000)),
        ),
        ("alg none", unsigned(&alice.access_token)),
        ("alg none, empty kid", unsigned(&control)),
        ("tampered signature", tampered),
        (
            "wrong key",
            mint(&minter("k1", SECRET_OTHER, "nova", "nova"), &alice, 0),
        ),
        ("expired", mint(&ours, &alice, -2 * 3600 * 1000)),
        ("not yet valid", mint(&ours, &alice, 2 * 3600 * 1000)),
        (
            "wrong issuer",
            mint(&minter("k1", SECRET_A, "someone-else", "nova"), &alice, 0),
        ),
        (
            "wrong audience",
            mint(&minter("k1", SECRET_A, "nova", "someone-else"), &alice, 0),
        ),
        (
            "unknown kid",
            mint(&minter("k3", SECRET_A, "nova", "nova"), &alice, 0),
        ),
        (
            "kid pointing at another key",
            mint(&minter("k2", SECRET_A, "nova", "nova"), &alice, 0),
        ),
        (
            "kid default, not configured here",
            mint(&minter("default", SECRET_A, "nova", "nova"), &alice, 0),
        ),
    ];
    for (what, token) in &cases {
        assert_rejected(&api, token, what).await;
    }

    // Other schemes and malformed headers: the same rejection.
    for header in ["Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer ", "Token abc"] {
        let response = api
            .http
            .post(api.url("/graphql"))
            .header("authorization", header)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_rejection(status, &body, header);
    }

    // The second key verifies too; the genuine token still works.
    let by_k2 = mint(&minter("k2", SECRET_B, "nova", "nova"), &alice, 0);
    assert_accepted(&api, &by_k2, "alice", "second key").await;
    assert_accepted(&api, &alice.access_token, "alice", "genuine, after").await;

    // Outcomes are counted by reason.
    let metrics = api
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for outcome in [
        "ok",
        "malformed",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "unknown_kid",
    ] {
        assert!(
            metrics.contains(&format!(
                "nova_auth_outcomes_total{{outcome=\"{outcome}\"}}"
            )),
            "no {outcome} outcome counted:\n{metrics}"
        );
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn rotating_keys_signs_nobody_out_and_removing_the_old_key_retires_its_tokens() {
    let before_dir = tempfile::tempdir().expect("tempdir");
    let before = settings_with_keys(before_dir.path(), &[("2026-10", SECRET_A)]);
    let old_node = Api::start_with(before.clone()).await;
    let alice = old_node.register("alice").await;
    assert_eq!(kid_of(&alice.access_token), "2026-10");

    // Rotation: the new key is added and signs; the old one stays for verification.
    let during_dir = tempfile::tempdir().expect("tempdir");
    let mut during = sibling(&before, during_dir.path());
    during.auth.jwt_keys = vec![key("2026-10", SECRET_A), key("2026-11", SECRET_B)];
    during.auth.signing_kid = Some("2026-11".into());
    let rotated = Api::start_with(during).await;
    assert_accepted(
        &rotated,
        &alice.access_token,
        "alice",
        "old key, still configured",
    )
    .await;
    let (_, body) = rotated
        .post(
            None,
            SIGN_IN,
            json!({ "l": "alice", "p": "password-alice" }),
        )
        .await;
    let fresh = body["data"]["signIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("sign-in failed: {body}"))
        .to_owned();
    assert_eq!(kid_of(&fresh), "2026-11");
    assert_accepted(&rotated, &fresh, "alice", "new key").await;
    // The refresh token from before the rotation still refreshes, into a new-key token.
    let (_, body) = rotated
        .post(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await;
    let refreshed = body["data"]["refreshSession"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("refresh failed: {body}"))
        .to_owned();
    assert_eq!(kid_of(&refreshed), "2026-11");

    // Old tokens expired: the old key is removed. Its tokens now name an unknown key.
    let after_dir = tempfile::tempdir().expect("tempdir");
    let mut after = sibling(&before, after_dir.path());
    after.auth.jwt_keys = vec![key("2026-11", SECRET_B)];
    after.auth.signing_kid = None;
    let retired = Api::start_with(after).await;
    assert_rejected(&retired, &alice.access_token, "old key removed").await;
    assert_accepted(&retired, &fresh, "alice", "new key after removal").await;
    assert_accepted(&retired, &refreshed, "alice", "refreshed after removal").await;

    retired.app.stop().await.expect("stop");
    rotated.app.stop().await.expect("stop");
    old_node.app.stop().await.expect("stop");
}

/// Polls `me` with `token` until it is refused; returns how long that took.
async fn time_until_rejected(api: &Api, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = api.post(Some(token), ME, json!({})).await;
        if status == 401 {
            assert_rejection(status, &body, "revoked");
            return started.elapsed();
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < limit,
            "still accepted after {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn signing_out_kills_the_access_token_here_at_once_and_on_other_nodes_within_the_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_with_keys(dir.path(), &[("k1", SECRET_A)]);
    settings.auth.revocation_check_ttl_ms = 300;
    let node_a = Api::start_with(settings.clone()).await;
    let other_dir = tempfile::tempdir().expect("tempdir");
    let node_b = Api::start_with(sibling(&settings, other_dir.path())).await;

    let alice = node_a.register("alice").await;
    let (_, body) = node_a
        .post(
            None,
            SIGN_IN,
            json!({ "l": "alice", "p": "password-alice" }),
        )
        .await;
    let other_session = body["data"]["signIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    // Both nodes have checked (and cached) the session as live.
    assert_accepted(&node_a, &alice.access_token, "alice", "before sign-out, a").await;
    assert_accepted(&node_b, &alice.access_token, "alice", "before sign-out, b").await;

    let data = node_a
        .ok(None, SIGN_OUT, json!({ "t": alice.refresh_token }))
        .await;
    assert_eq!(data["signOut"], true);
    // The node that signed out knows at once.
    assert_rejected(&node_a, &alice.access_token, "revoked, same node").await;
    // The other node within its TTL (plus scheduling slack).
    let took = time_until_rejected(&node_b, &alice.access_token, Duration::from_secs(3)).await;
    assert!(took < Duration::from_millis(1_500), "took {took:?}");
    // Another session of the same account is unaffected.
    assert_accepted(&node_a, &other_session, "alice", "other session, a").await;
    assert_accepted(&node_b, &other_session, "alice", "other session, b").await;

    node_b.app.stop().await.expect("stop");
    node_a.app.stop().await.expect("stop");
}

#[tokio::test]
async fn reusing_a_refresh_token_kills_every_access_token_of_its_family() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let first = api
        .ok(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await;
    let second_access = first["refreshSession"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_accepted(&api, &alice.access_token, "alice", "original").await;
    assert_accepted(&api, &second_access, "alice", "rotated").await;

    // The rotated-out refresh token presented again: theft. The family is revoked.
    let (_, body) = api
        .post(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_rejected(&api, &alice.access_token, "original after reuse").await;
    assert_rejected(&api, &second_access, "rotated after reuse").await;
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn when_the_revocation_check_cannot_reach_storage_the_answer_is_503_not_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = nova_app::testing::TestApp::test_settings(dir.path());
    settings.auth.revocation_check_ttl_ms = 0;
    let api = Api::start_with(settings).await;
    let alice = api.register("alice").await;
    assert_accepted(&api, &alice.access_token, "alice", "before").await;

    rename_table(&api.app.settings, "sessions", "sessions_gone").await;
    let response = api
        .http
        .post(api.url("/graphql"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    // A token refused on its own merits is still a 401: no storage needed to say so.
    assert_rejected(&api, "garbage", "garbage while storage is down").await;
    rename_table(&api.app.settings, "sessions_gone", "sessions").await;

    assert_accepted(&api, &alice.access_token, "alice", "after").await;
    api.app.stop().await.expect("stop");
}

/// Renames a table in the test server's own database, under the running server.
async fn rename_table(settings: &Settings, from: &str, to: &str) {
    let statement = format!("ALTER TABLE {from} RENAME TO {to}");
    match &settings.db.url {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url.expose()).await.expect("open db");
            sqlx::query(&statement)
                .execute(&pool)
                .await
                .expect("rename table");
            pool.close().await;
        }
        None => {
            let options =
                sqlx::sqlite::SqliteConnectOptions::new().filename(settings.sqlite_path());
            let pool = sqlx::SqlitePool::connect_with(options)
                .await
                .expect("open db");
            sqlx::query(&statement)
                .execute(&pool)
                .await
                .expect("rename table");
            pool.close().await;
        }
    }
}
