//! End-to-end tests of accounts and authentication through a real server on port 0: registration
//! and its validation, sign-in, `me`, refresh-token rotation and theft detection, sign-out,
//! access-token expiry and forgery, and profile updates and reads.

mod common;

use common::{Account, Api};
use serde_json::{json, Value};

const REGISTER: &str = "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken refreshToken userId user { id username email } } }";
const SIGN_IN: &str = "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken refreshToken userId user { id username email } } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken userId user { username } } }";
const SIGN_OUT: &str = "mutation($t: String!) { signOut(refreshToken: $t) }";
const ME: &str = "{ me { id username email } }";
const USER_BY_NAME: &str = "query($u: String!) { user(username: $u) { id username email displayName bio avatarUrl followerCount followingCount postCount } }";
const UPDATE_PROFILE: &str = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id username email displayName bio avatarUrl } }";

/// The first error of a response body: its code and message. Panics when there is none.
fn first_error(body: &Value) -> (String, String) {
    let error = &body["errors"][0];
    let code = error["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {body}"))
        .to_owned();
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    (code, message)
}

/// Sends `register` with the given raw fields.
async fn register_raw(api: &Api, username: &str, email: &str, password: &str) -> (u16, Value) {
    api.post(
        None,
        REGISTER,
        json!({ "u": username, "e": email, "p": password }),
    )
    .await
}

/// Runs an operation that must fail before producing any data; returns (code, message).
async fn failure(
    api: &Api,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (String, String) {
    let (status, body) = api.post(token, query, variables).await;
    assert_eq!(status, 200, "unexpected status, body: {body}");
    assert!(
        body.get("data").is_none() || body["data"].is_null(),
        "expected no data, got {body}"
    );
    first_error(&body)
}

/// Signs in and returns the `signIn` payload.
async fn sign_in(api: &Api, login: &str, password: &str) -> Value {
    api.ok(None, SIGN_IN, json!({ "l": login, "p": password }))
        .await["signIn"]
        .clone()
}

/// Asserts that `token` is refused by the gateway itself with HTTP 401 and UNAUTHENTICATED.
async fn assert_refused_token(api: &Api, token: &str, what: &str) {
    let (status, body) = api.post(Some(token), ME, json!({})).await;
    assert_eq!(status, 401, "{what}: expected 401, body: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{what}: {body}"
    );
    assert_eq!(
        body["errors"][0]["message"], "access token is invalid or expired",
        "{what}: {body}"
    );
    assert!(
        body.get("data").is_none(),
        "{what}: no data expected: {body}"
    );
}

/// The username of the account an access token belongs to, via `me`.
async fn me_username(api: &Api, token: &str) -> String {
    api.ok(Some(token), ME, json!({})).await["me"]["username"]
        .as_str()
        .expect("me.username")
        .to_owned()
}

async fn user_by_name(api: &Api, token: Option<&str>, username: &str) -> Value {
    api.ok(token, USER_BY_NAME, json!({ "u": username })).await["user"].clone()
}

#[tokio::test]
async fn registration_rejects_malformed_usernames_emails_and_passwords_with_invalid_input() {
    let api = Api::start().await;
    let long_username = "a".repeat(31);
    let long_email = format!("{}@example.test", "a".repeat(250));
    let short_password = "x".repeat(7);
    let long_password = "x".repeat(129);
    let cases: [(&str, &str, &str, &str); 13] = [
        ("ab", "ab@example.test", "password-ok", "username"),
        (
            &long_username,
            "long@example.test",
            "password-ok",
            "username",
        ),
        ("", "empty@example.test", "password-ok", "username"),
        ("al-ice", "dash@example.test", "password-ok", "username"),
        ("al ice", "space@example.test", "password-ok", "username"),
        ("💥💥💥", "emoji@example.test", "password-ok", "username"),
        ("bob", "bob", "password-ok", "email"),
        ("bob", "bob@", "password-ok", "email"),
        ("bob", "@example.test", "password-ok", "email"),
        ("bob", "", "password-ok", "email"),
        ("bob", &long_email, "password-ok", "email"),
        ("bob", "bob@example.test", &short_password, "password"),
        ("bob", "bob@example.test", &long_password, "password"),
    ];
    for (username, email, password, field) in cases {
        let (status, body) = register_raw(&api, username, email, password).await;
        assert_eq!(status, 200, "{body}");
        let (code, message) = first_error(&body);
        assert_eq!(
            code, "INVALID_INPUT",
            "{username:?}/{email:?}/{password:?}: {body}"
        );
        assert!(
            message.contains(field),
            "the message should name {field}: {message:?}"
        );
        assert!(body["data"].is_null(), "no data expected: {body}");
    }
    // The boundaries themselves are accepted: 3 and 30 characters, 8 and 128 characters.
    let shortest = api
        .ok(
            None,
            REGISTER,
            json!({ "u": "abc", "e": "abc@example.test", "p": "12345678" }),
        )
        .await;
    assert_eq!(shortest["register"]["user"]["username"], "abc");
    let longest_name = "z".repeat(30);
    let longest = api
        .ok(
            None,
            REGISTER,
            json!({ "u": longest_name, "e": "z@example.test", "p": "é".repeat(128) }),
        )
        .await;
    assert_eq!(
        longest["register"]["user"]["username"],
        longest_name.as_str()
    );
    // None of the rejected attempts left an account behind: "bob" is still free.
    let bob = api.register("bob").await;
    assert_eq!(bob.username, "bob");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn registration_normalises_fullwidth_and_upper_case_usernames_to_lower_case_ascii() {
    let api = Api::start().await;
    let data = api
        .ok(
            None,
            REGISTER,
            json!({ "u": "ＡＬＩＣＥ", "e": "alice@example.test", "p": "password-alice" }),
        )
        .await;
    let payload = &data["register"];
    assert_eq!(payload["user"]["username"], "alice");
    assert_eq!(payload["user"]["email"], "alice@example.test");
    assert_eq!(payload["userId"], payload["user"]["id"]);
    let token = payload["accessToken"].as_str().expect("token");
    assert_eq!(me_username(&api, token).await, "alice");

    let mixed = api
        .ok(
            None,
            REGISTER,
            json!({ "u": "Bob_01", "e": "bob@example.test", "p": "password-bob" }),
        )
        .await;
    assert_eq!(mixed["register"]["user"]["username"], "bob_01");

    // Lookups normalise the same way, so every spelling finds the one account.
    for spelling in ["alice", "ALICE", "Alice", "ＡＬＩＣＥ", "ａｌｉｃｅ"] {
        let found = user_by_name(&api, None, spelling).await;
        assert_eq!(found["id"], payload["user"]["id"], "{spelling}");
        assert_eq!(found["username"], "alice", "{spelling}");
    }
    // And so does sign-in.
    let signed_in = sign_in(&api, "ＡＬＩＣＥ", "password-alice").await;
    assert_eq!(signed_in["user"]["username"], "alice");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case_and_width() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    for (i, spelling) in ["alice", "ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"]
        .into_iter()
        .enumerate()
    {
        let (status, body) = register_raw(
            &api,
            spelling,
            &format!("other{i}@example.test"),
            "password-x",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (code, message) = first_error(&body);
        assert_eq!(code, "CONFLICT", "{spelling}: {body}");
        assert_eq!(message, "username is already taken");
    }
    // The original account is untouched.
    let found = user_by_name(&api, None, "alice").await;
    assert_eq!(found["id"], alice.id.as_str());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_email_can_only_be_registered_once_and_its_domain_is_case_insensitive() {
    let api = Api::start().await;
    api.register("bob").await; // bob@example.test
    for email in [
        "bob@example.test",
        "bob@EXAMPLE.TEST",
        "bob@Example.Test",
        "  bob@example.test  ",
    ] {
        let (code, message) = failure(
            &api,
            None,
            REGISTER,
            json!({ "u": "carol", "e": email, "p": "password-carol" }),
        )
        .await;
        assert_eq!(code, "CONFLICT", "{email:?}");
        assert_eq!(message, "email is already registered");
    }
    // The refused attempts created nothing: "carol" is still free.
    let carol = api
        .ok(
            None,
            REGISTER,
            json!({ "u": "carol", "e": "carol@example.test", "p": "password-carol" }),
        )
        .await;
    assert_eq!(carol["register"]["user"]["username"], "carol");
    assert_eq!(carol["register"]["user"]["email"], "carol@example.test");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn look_alike_usernames_with_cyrillic_letters_or_zero_width_characters_are_refused() {
    let api = Api::start().await;
    // "alice" exists, so a normalisation that folded a look-alike onto it would answer CONFLICT.
    api.register("alice").await;
    for (i, look_alike) in [
        "\u{430}lice",           // Cyrillic а
        "alic\u{435}",           // Cyrillic е
        "al\u{200b}ice",         // zero-width space
        "alice\u{200d}",         // zero-width joiner
        "\u{feff}alice",         // zero-width no-break space
        "al\u{3bf}ce",           // Greek ο
        "ali\u{307}ce",          // combining dot above
        "alice\u{202e}",         // right-to-left override
        "\u{430}\u{440}\u{440}", // Cyrillic "арр"
    ]
    .into_iter()
    .enumerate()
    {
        let (code, message) = failure(
            &api,
            None,
            REGISTER,
            json!({ "u": look_alike, "e": format!("x{i}@example.test"), "p": "password-x" }),
        )
        .await;
        assert_eq!(code, "INVALID_INPUT", "{look_alike:?}");
        assert!(message.contains("username"), "{message}");
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn sign_in_works_with_the_username_or_the_email() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    for login in [
        "alice",
        "ALICE",
        "alice@example.test",
        "alice@EXAMPLE.test",
        "  alice@example.test ",
    ] {
        let payload = sign_in(&api, login, "password-alice").await;
        assert_eq!(payload["userId"], alice.id.as_str(), "{login:?}");
        assert_eq!(payload["user"]["username"], "alice", "{login:?}");
        assert_eq!(payload["user"]["email"], "alice@example.test", "{login:?}");
        let access = payload["accessToken"].as_str().expect("access token");
        let refresh = payload["refreshToken"].as_str().expect("refresh token");
        assert_ne!(access, alice.access_token);
        assert_ne!(refresh, alice.refresh_token);
        assert_eq!(me_username(&api, access).await, "alice");
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn sign_in_with_a_wrong_password_or_an_unknown_login_is_unauthenticated_with_one_message() {
    let api = Api::start().await;
    api.register("alice").await;
    let too_long = "x".repeat(600);
    let attempts = [
        ("alice", "password-bob"),
        ("alice", "PASSWORD-ALICE"),
        ("alice", ""),
        ("alice@example.test", "wrong-password"),
        ("nobody", "password-alice"),
        ("nobody@example.test", "password-alice"),
        ("x", "password-alice"),
        ("", ""),
        (too_long.as_str(), "password-alice"),
    ];
    for (login, password) in attempts {
        let (code, message) =
            failure(&api, None, SIGN_IN, json!({ "l": login, "p": password })).await;
        assert_eq!(code, "UNAUTHENTICATED", "{login:?}/{password:?}");
        // One message for every failure, so responses do not reveal which logins exist.
        assert_eq!(message, "invalid username/email or password");
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn me_returns_the_signed_in_account_and_is_unauthenticated_without_a_token() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let data = api.ok(Some(&alice.access_token), ME, json!({})).await;
    assert_eq!(data["me"]["id"], alice.id.as_str());
    assert_eq!(data["me"]["username"], "alice");
    assert_eq!(data["me"]["email"], "alice@example.test");

    let (status, body) = api.post(None, ME, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "{body}");
    let (code, message) = first_error(&body);
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "sign in required");
    assert_eq!(body["errors"][0]["path"], json!(["me"]));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_email_address_is_visible_only_to_its_owner() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let own = user_by_name(&api, Some(&alice.access_token), "alice").await;
    assert_eq!(own["email"], "alice@example.test");
    let seen_by_bob = user_by_name(&api, Some(&bob.access_token), "alice").await;
    assert_eq!(seen_by_bob["username"], "alice");
    assert!(seen_by_bob["email"].is_null(), "{seen_by_bob}");
    let anonymous = user_by_name(&api, None, "alice").await;
    assert_eq!(anonymous["username"], "alice");
    assert!(anonymous["email"].is_null(), "{anonymous}");
    // Nor through a mutation payload or a list.
    let followed = api
        .ok(
            Some(&bob.access_token),
            "mutation($id: ID!) { follow(userId: $id) { username email } }",
            json!({ "id": alice.id }),
        )
        .await;
    assert_eq!(followed["follow"]["username"], "alice");
    assert!(followed["follow"]["email"].is_null(), "{followed}");
    let listed = api
        .ok(
            Some(&alice.access_token),
            "{ me { followers(first: 5) { edges { node { username email } } } } }",
            json!({}),
        )
        .await;
    let node = &listed["me"]["followers"]["edges"][0]["node"];
    assert_eq!(node["username"], "bob");
    assert!(node["email"].is_null(), "{listed}");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_and_the_old_one_stops_working() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let refreshed = api
        .ok(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await["refreshSession"]
        .clone();
    assert_eq!(refreshed["userId"], alice.id.as_str());
    assert_eq!(refreshed["user"]["username"], "alice");
    let new_refresh = refreshed["refreshToken"].as_str().expect("refresh token");
    let new_access = refreshed["accessToken"].as_str().expect("access token");
    assert_ne!(new_refresh, alice.refresh_token);
    assert_eq!(me_username(&api, new_access).await, "alice");

    // A second refresh with the new token works and rotates again.
    let again = api.ok(None, REFRESH, json!({ "t": new_refresh })).await["refreshSession"].clone();
    let newest = again["refreshToken"].as_str().expect("refresh token");
    assert_ne!(newest, new_refresh);
    assert_eq!(
        me_username(&api, again["accessToken"].as_str().expect("access")).await,
        "alice"
    );

    // The first token was used up.
    let (code, message) = failure(&api, None, REFRESH, json!({ "t": alice.refresh_token })).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "refresh token is invalid, expired or revoked");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn presenting_a_rotated_refresh_token_again_revokes_the_whole_session_family() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    // A second, independent session of the same account.
    let other_session = sign_in(&api, "alice", "password-alice").await;

    let first = api
        .ok(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await["refreshSession"]["refreshToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let second = api.ok(None, REFRESH, json!({ "t": first })).await["refreshSession"]
        ["refreshToken"]
        .as_str()
        .expect("token")
        .to_owned();

    // Someone replays `first`, which was already rotated: treated as theft.
    let (code, _) = failure(&api, None, REFRESH, json!({ "t": first })).await;
    assert_eq!(code, "UNAUTHENTICATED");
    // The newest token of the family is revoked too, even though it was never used.
    let (code, _) = failure(&api, None, REFRESH, json!({ "t": second })).await;
    assert_eq!(code, "UNAUTHENTICATED");
    let (code, _) = failure(&api, None, REFRESH, json!({ "t": alice.refresh_token })).await;
    assert_eq!(code, "UNAUTHENTICATED");

    // The other session belongs to another family and still works.
    let other = api
        .ok(None, REFRESH, json!({ "t": other_session["refreshToken"] }))
        .await;
    assert_eq!(other["refreshSession"]["user"]["username"], "alice");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn garbage_and_oversized_refresh_tokens_are_unauthenticated() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let oversized = "a".repeat(300);
    for token in [
        "",
        "garbage",
        alice.access_token.as_str(),
        oversized.as_str(),
    ] {
        let (code, _) = failure(&api, None, REFRESH, json!({ "t": token })).await;
        assert_eq!(code, "UNAUTHENTICATED", "{token:?}");
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn signing_out_revokes_the_session_and_is_idempotent() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let other_session = sign_in(&api, "alice", "password-alice").await;
    // Rotate once, then sign out with the current token: the whole family goes.
    let current = api
        .ok(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await["refreshSession"]["refreshToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let data = api.ok(None, SIGN_OUT, json!({ "t": current })).await;
    assert_eq!(data["signOut"], true);
    let (code, _) = failure(&api, None, REFRESH, json!({ "t": current })).await;
    assert_eq!(code, "UNAUTHENTICATED");

    // Signing out again, or with an unknown token, still answers true.
    assert_eq!(
        api.ok(None, SIGN_OUT, json!({ "t": current })).await["signOut"],
        true
    );
    assert_eq!(
        api.ok(None, SIGN_OUT, json!({ "t": "never-issued" })).await["signOut"],
        true
    );

    // Other sessions are unaffected.
    let other = api
        .ok(None, REFRESH, json!({ "t": other_session["refreshToken"] }))
        .await;
    assert_eq!(other["refreshSession"]["userId"], alice.id.as_str());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_expired_access_token_is_refused_with_401_unauthenticated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = nova_app::testing::TestApp::test_settings(dir.path());
    settings.auth.access_token_ttl_secs = 1;
    settings.auth.leeway_secs = 0;
    let api = Api::start_with(settings).await;
    let alice = api.register("alice").await;
    assert_eq!(me_username(&api, &alice.access_token).await, "alice");

    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_refused_token(&api, &alice.access_token, "expired token").await;
    // Anonymous operations still work on the same server...
    let anonymous = user_by_name(&api, None, "alice").await;
    assert_eq!(anonymous["username"], "alice");
    // ...and the refresh token, which lives much longer, gets a fresh pair.
    let refreshed = api
        .ok(None, REFRESH, json!({ "t": alice.refresh_token }))
        .await;
    let fresh = refreshed["refreshSession"]["accessToken"]
        .as_str()
        .expect("access token");
    assert_ne!(fresh, alice.access_token);
    api.app.stop().await.expect("stop");
}

/// Replaces the JWT header of `token` with `{"alg":"none","typ":"JWT"}` and drops the signature.
fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload segment");
    format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
}

/// An access token for `account` signed by an app with its own, different secret (or, with
/// `settings`, by an app configured as given).
async fn token_from_other_app(account: &Account, settings: nova_app::Settings) -> String {
    let other = nova_app::App::build(&settings).await.expect("build app");
    let user_id = nova_core::Id::parse(&account.id).expect("id");
    let (token, _) = other
        .services()
        .users
        .tokens()
        .issue_access_token(user_id, nova_core::Id(1), nova_core::now_millis())
        .expect("sign");
    token
}

#[tokio::test]
async fn forged_or_malformed_bearer_tokens_are_refused_with_401() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;

    let other_dir = tempfile::tempdir().expect("tempdir");
    let wrong_secret = token_from_other_app(
        &alice,
        nova_app::testing::TestApp::test_settings(other_dir.path()),
    )
    .await;
    // The same claims and a valid-looking shape, only the key differs.
    assert_eq!(wrong_secret.split('.').count(), 3);

    let mut tampered_signature = alice.access_token.clone();
    let last = tampered_signature.pop().expect("non-empty");
    tampered_signature.push(if last == 'A' { 'B' } else { 'A' });

    // Alice's header and signature around Bob's claims.
    let parts: Vec<&str> = alice.access_token.split('.').collect();
    let bob_claims = bob.access_token.split('.').nth(1).expect("claims");
    let spliced = format!("{}.{}.{}", parts[0], bob_claims, parts[2]);

    let oversized = format!("{}{}", alice.access_token, "A".repeat(5_000));
    let cases = [
        ("garbage", "garbage".to_owned()),
        ("three dots", "a.b.c".to_owned()),
        ("alg none", unsigned(&alice.access_token)),
        ("wrong secret", wrong_secret),
        ("tampered signature", tampered_signature),
        ("spliced claims", spliced),
        ("refresh token as access token", alice.refresh_token.clone()),
        ("oversized", oversized),
    ];
    for (what, token) in &cases {
        assert_refused_token(&api, token, what).await;
    }

    // Other schemes and an empty bearer are refused the same way.
    for header in [
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer ",
        "bearer-less",
        "Token abc",
    ] {
        let response = api
            .http
            .post(api.url("/graphql"))
            .header("authorization", header)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 401, "{header:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{header:?}: {body}"
        );
    }

    // The genuine token still works: the refusals above were about the tokens.
    assert_eq!(me_username(&api, &alice.access_token).await, "alice");
    assert_eq!(me_username(&api, &bob.access_token).await, "bob");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn tokens_signed_with_the_right_secret_for_another_issuer_or_audience_are_refused() {
    let secret: nova_app::settings::Secret =
        serde_json::from_value(json!("0123456789abcdef0123456789abcdef-shared-secret"))
            .expect("secret");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = nova_app::testing::TestApp::test_settings(dir.path());
    settings.auth.jwt_secret = Some(secret.clone());
    let api = Api::start_with(settings.clone()).await;
    let alice = api.register("alice").await;

    // Control: an app sharing secret, issuer and audience issues tokens the server accepts.
    let same_dir = tempfile::tempdir().expect("tempdir");
    let mut same = nova_app::testing::TestApp::test_settings(same_dir.path());
    same.auth.jwt_secret = Some(secret.clone());
    let accepted = token_from_other_app(&alice, same).await;
    assert_eq!(me_username(&api, &accepted).await, "alice");

    let audience_dir = tempfile::tempdir().expect("tempdir");
    let mut other_audience = nova_app::testing::TestApp::test_settings(audience_dir.path());
    other_audience.auth.jwt_secret = Some(secret.clone());
    other_audience.auth.audience = "someone-else".into();
    let token = token_from_other_app(&alice, other_audience).await;
    assert_refused_token(&api, &token, "other audience").await;

    let issuer_dir = tempfile::tempdir().expect("tempdir");
    let mut other_issuer = nova_app::testing::TestApp::test_settings(issuer_dir.path());
    other_issuer.auth.jwt_secret = Some(secret);
    other_issuer.auth.issuer = "someone-else".into();
    let token = token_from_other_app(&alice, other_issuer).await;
    assert_refused_token(&api, &token, "other issuer").await;
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn update_profile_sets_and_clears_display_name_bio_and_avatar() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());

    let fresh = user_by_name(&api, None, "alice").await;
    assert_eq!(fresh["displayName"], "");
    assert_eq!(fresh["bio"], "");
    assert!(fresh["avatarUrl"].is_null());

    let updated = api
        .ok(
            token,
            UPDATE_PROFILE,
            json!({ "input": {
                "displayName": "  Alice Liddell ",
                "bio": "Down the rabbit hole.\nBack again.",
                "avatarUrl": "https://img.example.test/alice.png"
            } }),
        )
        .await["updateProfile"]
        .clone();
    assert_eq!(updated["id"], alice.id.as_str());
    assert_eq!(updated["email"], "alice@example.test");
    assert_eq!(updated["displayName"], "Alice Liddell");
    assert_eq!(updated["bio"], "Down the rabbit hole.\nBack again.");
    assert_eq!(updated["avatarUrl"], "https://img.example.test/alice.png");

    // Everyone reads the new profile.
    let read = user_by_name(&api, None, "alice").await;
    assert_eq!(read["displayName"], "Alice Liddell");
    assert_eq!(read["bio"], "Down the rabbit hole.\nBack again.");
    assert_eq!(read["avatarUrl"], "https://img.example.test/alice.png");

    // Omitted fields are left alone.
    let partial = api
        .ok(
            token,
            UPDATE_PROFILE,
            json!({ "input": { "bio": "New bio" } }),
        )
        .await["updateProfile"]
        .clone();
    assert_eq!(partial["bio"], "New bio");
    assert_eq!(partial["displayName"], "Alice Liddell");
    assert_eq!(partial["avatarUrl"], "https://img.example.test/alice.png");

    // An explicit null clears the avatar (and only the avatar).
    let cleared = api
        .ok(
            token,
            UPDATE_PROFILE,
            json!({ "input": { "avatarUrl": null } }),
        )
        .await["updateProfile"]
        .clone();
    assert!(cleared["avatarUrl"].is_null(), "{cleared}");
    assert_eq!(cleared["displayName"], "Alice Liddell");
    assert_eq!(cleared["bio"], "New bio");
    let read = user_by_name(&api, None, "alice").await;
    assert!(read["avatarUrl"].is_null(), "{read}");

    // Empty strings clear the text fields.
    let emptied = api
        .ok(
            token,
            UPDATE_PROFILE,
            json!({ "input": { "displayName": "", "bio": "" } }),
        )
        .await["updateProfile"]
        .clone();
    assert_eq!(emptied["displayName"], "");
    assert_eq!(emptied["bio"], "");

    // The limits themselves are accepted: 50 and 160 characters (here multi-byte).
    let name = "é".repeat(50);
    let bio = "ü".repeat(160);
    let at_limit = api
        .ok(
            token,
            UPDATE_PROFILE,
            json!({ "input": { "displayName": name, "bio": bio } }),
        )
        .await["updateProfile"]
        .clone();
    assert_eq!(at_limit["displayName"], name.as_str());
    assert_eq!(at_limit["bio"], bio.as_str());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn update_profile_rejects_invalid_urls_and_overlong_fields_without_changing_anything() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());
    api.ok(
        token,
        UPDATE_PROFILE,
        json!({ "input": { "displayName": "Alice", "bio": "Hi", "avatarUrl": "https://x.test/a.png" } }),
    )
    .await;

    let long_url = format!("https://x.test/{}", "a".repeat(2_100));
    let bad_inputs = [
        (json!({ "avatarUrl": "javascript:alert(1)" }), "avatarUrl"),
        (json!({ "avatarUrl": "not a url" }), "avatarUrl"),
        (json!({ "avatarUrl": "/relative/path.png" }), "avatarUrl"),
        (json!({ "avatarUrl": "ftp://x.test/a.png" }), "avatarUrl"),
        (
            json!({ "avatarUrl": "data:image/png;base64,AAAA" }),
            "avatarUrl",
        ),
        (json!({ "avatarUrl": long_url }), "avatarUrl"),
        (json!({ "displayName": "x".repeat(51) }), "displayName"),
        (json!({ "displayName": "line\nbreak" }), "displayName"),
        (json!({ "bio": "é".repeat(161) }), "bio"),
        (json!({ "bio": "bell\u{7}" }), "bio"),
        // A valid field next to an invalid one changes nothing either.
        (
            json!({ "displayName": "Changed", "bio": "Changed", "avatarUrl": "javascript:x" }),
            "avatarUrl",
        ),
        (
            json!({ "displayName": "Changed", "bio": "x".repeat(161) }),
            "bio",
        ),
    ];
    for (input, field) in bad_inputs {
        let (code, message) = failure(&api, token, UPDATE_PROFILE, json!({ "input": input })).await;
        assert_eq!(code, "INVALID_INPUT", "{input}");
        assert!(message.contains(field), "{input}: {message}");
    }
    let read = user_by_name(&api, None, "alice").await;
    assert_eq!(read["displayName"], "Alice");
    assert_eq!(read["bio"], "Hi");
    assert_eq!(read["avatarUrl"], "https://x.test/a.png");

    // Without a token there is no profile to update.
    let (code, _) = failure(
        &api,
        None,
        UPDATE_PROFILE,
        json!({ "input": { "displayName": "Mallory" } }),
    )
    .await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(
        user_by_name(&api, None, "alice").await["displayName"],
        "Alice"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn any_profile_is_readable_by_username_or_id_with_its_counters() {
    let api = Api::start().await;
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let carol = api.register("carol").await;
    api.follow(&alice, &bob.id).await;
    api.follow(&carol, &bob.id).await;
    api.follow(&bob, &alice.id).await;
    api.create_post(&bob, "first").await;
    api.create_post(&bob, "second").await;

    for token in [
        None,
        Some(alice.access_token.as_str()),
        Some(carol.access_token.as_str()),
    ] {
        let read = user_by_name(&api, token, "bob").await;
        assert_eq!(read["id"], bob.id.as_str());
        assert_eq!(read["username"], "bob");
        assert_eq!(read["followerCount"], 2, "{read}");
        assert_eq!(read["followingCount"], 1, "{read}");
        assert_eq!(read["postCount"], 2, "{read}");
    }
    let alice_read = user_by_name(&api, None, "alice").await;
    assert_eq!(alice_read["followerCount"], 1);
    assert_eq!(alice_read["followingCount"], 1);
    assert_eq!(alice_read["postCount"], 0);

    let by_id = api
        .ok(
            None,
            "query($id: ID!) { user(id: $id) { username followerCount followingCount postCount } }",
            json!({ "id": bob.id }),
        )
        .await;
    assert_eq!(by_id["user"]["username"], "bob");
    assert_eq!(by_id["user"]["followerCount"], 2);
    assert_eq!(by_id["user"]["followingCount"], 1);
    assert_eq!(by_id["user"]["postCount"], 2);

    // Unknown accounts are null, not errors.
    assert!(user_by_name(&api, None, "nobody").await.is_null());
    assert!(user_by_name(&api, None, "no").await.is_null()); // malformed username
    let unknown_id = api
        .ok(None, "{ user(id: \"123456789\") { id } }", json!({}))
        .await;
    assert!(unknown_id["user"].is_null(), "{unknown_id}");

    // Malformed ids and ambiguous arguments are the client's mistake.
    for query in [
        "{ user(id: \"abc\") { id } }",
        "{ user(id: \"-5\") { id } }",
        "{ user { id } }",
        "{ user(username: \"bob\", id: \"1\") { id } }",
    ] {
        let code = api.error_code(None, query, json!({})).await;
        assert_eq!(code, "INVALID_INPUT", "{query}");
    }
    api.app.stop().await.expect("stop");
}
