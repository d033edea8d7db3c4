//! Log hygiene across the whole API: a scenario that runs every mutation and query (accounts,
//! sessions, profiles, follows, blocks, mutes, posts, replies, edits, likes, feeds, and their
//! failures, including every kind of refused bearer token) with JSON logging at DEBUG, then
//! checks that no line carries a password, an email address, or an access or refresh token,
//! and that every authentication attempt left one `nova::auth` line with its outcome.
//!
//! One test only: the subscriber is process-wide, so this binary installs exactly one.

mod common;

use common::logs::Captured;
use common::Api;
use serde_json::{json, Value};

/// One account of the scenario, with everything about it that must never be logged.
struct Person {
    username: &'static str,
    email: &'static str,
    password: &'static str,
}

const PEOPLE: [Person; 3] = [
    Person {
        username: "hyg_alice",
        email: "Alice.Private+Nova@Example.test",
        password: "Marmot-Lantern-Quasar-5821",
    },
    Person {
        username: "hyg_bob",
        email: "bob.secret@mail.example.test",
        password: "Gecko-Trombone-Nimbus-0374",
    },
    Person {
        username: "hyg_carol",
        email: "Carol_Hidden@Example.test",
        password: "Otter-Saffron-Glacier-6619",
    },
];
const WRONG_PASSWORD: &str = "Badger-Compass-Velvet-2290";
const NEW_PASSWORD_ATTEMPT: &str = "Heron-Mosaic-Tundra-4417";

const AUTH: &str = "accessToken refreshToken userId";
const USER_FIELDS: &str = "id username displayName bio avatarUrl email followerCount followingCount postCount viewerFollows followsViewer viewerBlocks viewerMutes";
const POST_FIELDS: &str = "id body visibility createdAt editedAt likeCount replyCount viewerHasLiked author { id username }";

/// Everything the scenario was handed that must not appear in the log.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, value: &str) {
        if !value.is_empty() {
            self.0.push(value.to_owned());
        }
    }

    /// A token and, for a JWT, its claims and signature (the header is the same for all).
    fn add_token(&mut self, token: &str) {
        self.add(token);
        for part in token.split('.').filter(|p| {
            p.len() >= 16 && !p.starts_with("eyJ0eXAiOi") && !p.starts_with("eyJhbGciOi")
        }) {
            self.add(part);
        }
    }

    /// Records the tokens of an auth payload and returns (access, refresh).
    fn tokens(&mut self, payload: &Value) -> (String, String) {
        let access = payload["accessToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let refresh = payload["refreshToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !access.is_empty() && !refresh.is_empty(),
            "no tokens in {payload}"
        );
        self.add_token(&access);
        self.add_token(&refresh);
        (access, refresh)
    }
}

async fn gql(api: &Api, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    api.post(token, query, variables).await
}

async fn ok(api: &Api, token: Option<&str>, query: &str, variables: Value) -> Value {
    let (status, body) = gql(api, token, query, variables).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

async fn code(api: &Api, token: Option<&str>, query: &str, variables: Value) -> String {
    let (_, body) = gql(api, token, query, variables).await;
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{query}: expected an error, got {body}"))
        .to_owned()
}

#[tokio::test]
async fn no_log_line_of_the_whole_api_carries_a_password_token_or_email() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(captured.clone())
        .init();

    let api = Api::start().await;
    let mut secrets = Secrets::default();
    for person in &PEOPLE {
        secrets.add(person.password);
        secrets.add(person.email);
        secrets.add(&person.email.to_lowercase());
        if let Some((local, _)) = person.email.split_once('@') {
            secrets.add(local);
        }
    }
    secrets.add(WRONG_PASSWORD);
    secrets.add(NEW_PASSWORD_ATTEMPT);

    // Accounts: register everyone; a duplicate and an invalid registration fail.
    let register = format!("mutation($u: String!, $e: String!, $p: String!) {{ register(input: {{username: $u, email: $e, password: $p}}) {{ {AUTH} user {{ id }} }} }}");
    let mut access = Vec::new();
    let mut refresh = Vec::new();
    let mut ids = Vec::new();
    for person in &PEOPLE {
        let data = ok(
            &api,
            None,
            &register,
            json!({ "u": person.username, "e": person.email, "p": person.password }),
        )
        .await;
        let (a, r) = secrets.tokens(&data["register"]);
        access.push(a);
        refresh.push(r);
        ids.push(
            data["register"]["user"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let alice = PEOPLE[0].username;
    assert_eq!(
        code(
            &api,
            None,
            &register,
            json!({ "u": alice, "e": "other@example.test", "p": NEW_PASSWORD_ATTEMPT })
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(
        code(
            &api,
            None,
            &register,
            json!({ "u": "x", "e": PEOPLE[0].email, "p": "short" })
        )
        .await,
        "INVALID_INPUT"
    );

    // Sessions: sign in by username and by email, a wrong password, refresh, reuse, sign out.
    let sign_in = format!("mutation($l: String!, $p: String!) {{ signIn(input: {{login: $l, password: $p}}) {{ {AUTH} }} }}");
    let by_name = ok(
        &api,
        None,
        &sign_in,
        json!({ "l": alice, "p": PEOPLE[0].password }),
    )
    .await;
    let (alice_second, alice_second_refresh) = secrets.tokens(&by_name["signIn"]);
    let by_email = ok(
        &api,
        None,
        &sign_in,
        json!({ "l": PEOPLE[0].email, "p": PEOPLE[0].password }),
    )
    .await;
    let (_, alice_third_refresh) = secrets.tokens(&by_email["signIn"]);
    for login in [alice, PEOPLE[0].email, "nobody@example.test"] {
        assert_eq!(
            code(
                &api,
                None,
                &sign_in,
                json!({ "l": login, "p": WRONG_PASSWORD })
            )
            .await,
            "UNAUTHENTICATED"
        );
    }
    let refresh_op =
        format!("mutation($t: String!) {{ refreshSession(refreshToken: $t) {{ {AUTH} }} }}");
    let refreshed = ok(&api, None, &refresh_op, json!({ "t": refresh[0] })).await;
    let (alice_access, _) = secrets.tokens(&refreshed["refreshSession"]);
    // Reusing the rotated-out token revokes that family: its access token dies too.
    assert_eq!(
        code(&api, None, &refresh_op, json!({ "t": refresh[0] })).await,
        "UNAUTHENTICATED"
    );
    let (status, _) = gql(&api, Some(&alice_access), "{ me { id } }", json!({})).await;
    assert_eq!(status, 401);
    let sign_out = "mutation($t: String!) { signOut(refreshToken: $t) }";
    ok(&api, None, sign_out, json!({ "t": alice_third_refresh })).await;
    ok(&api, None, sign_out, json!({ "t": "never-issued" })).await;
    // From here on Alice uses her second session.
    let alice_token = alice_second.as_str();
    let bob_token = access[1].as_str();
    let carol_token = access[2].as_str();

    // Profiles.
    let me = ok(
        &api,
        Some(alice_token),
        &format!("{{ me {{ {USER_FIELDS} }} }}"),
        json!({}),
    )
    .await;
    assert!(me["me"]["email"].is_string());
    ok(
        &api,
        Some(alice_token),
        "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id displayName bio avatarUrl } }",
        json!({ "i": { "displayName": "Alice", "bio": "write to me at my address", "avatarUrl": "https://img.example.test/a.png" } }),
    )
    .await;
    assert_eq!(
        code(
            &api,
            Some(alice_token),
            "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }",
            json!({ "i": { "avatarUrl": format!("javascript:{}", PEOPLE[0].email) } }),
        )
        .await,
        "INVALID_INPUT"
    );
    for (token, username) in [(None, PEOPLE[1].username), (Some(bob_token), alice)] {
        ok(
            &api,
            token,
            &format!("query($u: String!) {{ user(username: $u) {{ {USER_FIELDS} }} }}"),
            json!({ "u": username }),
        )
        .await;
    }
    ok(
        &api,
        None,
        "query($id: ID) { user(id: $id) { id username } }",
        json!({ "id": ids[2] }),
    )
    .await;

    // The graph: follow, unfollow, block, unblock, mute, unmute, and the lists.
    let user_mutation =
        |name: &str| format!("mutation($id: ID!) {{ {name}(userId: $id) {{ id followerCount }} }}");
    ok(
        &api,
        Some(alice_token),
        &user_mutation("follow"),
        json!({ "id": ids[1] }),
    )
    .await;
    ok(
        &api,
        Some(carol_token),
        &user_mutation("follow"),
        json!({ "id": ids[0] }),
    )
    .await;
    ok(
        &api,
        Some(bob_token),
        &user_mutation("follow"),
        json!({ "id": ids[0] }),
    )
    .await;
    ok(
        &api,
        Some(alice_token),
        &user_mutation("unfollow"),
        json!({ "id": ids[1] }),
    )
    .await;
    ok(
        &api,
        Some(alice_token),
        &user_mutation("follow"),
        json!({ "id": ids[1] }),
    )
    .await;
    ok(
        &api,
        Some(alice_token),
        &user_mutation("mute"),
        json!({ "id": ids[1] }),
    )
    .await;
    ok(
        &api,
        Some(alice_token),
        &user_mutation("unmute"),
        json!({ "id": ids[1] }),
    )
    .await;
    ok(
        &api,
        Some(carol_token),
        &user_mutation("block"),
        json!({ "id": ids[1] }),
    )
    .await;
    assert_eq!(
        code(
            &api,
            Some(bob_token),
            &user_mutation("follow"),
            json!({ "id": ids[2] })
        )
        .await,
        "NOT_FOUND"
    );
    ok(
        &api,
        Some(carol_token),
        &user_mutation("unblock"),
        json!({ "id": ids[1] }),
    )
    .await;
    assert_eq!(
        code(
            &api,
            Some(alice_token),
            &user_mutation("follow"),
            json!({ "id": ids[0] })
        )
        .await,
        "INVALID_INPUT"
    );
    assert_eq!(
        code(
            &api,
            Some(alice_token),
            &user_mutation("follow"),
            json!({ "id": "999999999" })
        )
        .await,
        "NOT_FOUND"
    );
    ok(
        &api,
        Some(bob_token),
        "query($u: String!) { user(username: $u) { followers(first: 10) { edges { cursor node { id username } } pageInfo { hasNextPage endCursor } } following(first: 10) { nodes { id } } } }",
        json!({ "u": alice }),
    )
    .await;

    // Posts: create, reply, edit, like, unlike, read, feeds, delete, and refusals.
    let create =
        format!("mutation($i: CreatePostInput!) {{ createPost(input: $i) {{ {POST_FIELDS} }} }}");
    let post = ok(
        &api,
        Some(bob_token),
        &create,
        json!({ "i": { "body": format!("contact {} or {}", PEOPLE[1].email, PEOPLE[0].email) } }),
    )
    .await;
    let post_id = post["createPost"]["id"]
        .as_str()
        .expect("post id")
        .to_owned();
    let followers_only = ok(
        &api,
        Some(alice_token),
        &create,
        json!({ "i": { "body": "only for followers", "visibility": "FOLLOWERS" } }),
    )
    .await;
    let private_id = followers_only["createPost"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = ok(
        &api,
        Some(alice_token),
        &create,
        json!({ "i": { "body": "a reply", "replyTo": post_id } }),
    )
    .await;
    let reply_id = reply["createPost"]["id"].as_str().expect("id").to_owned();
    ok(
        &api,
        Some(bob_token),
        &format!("mutation($i: EditPostInput!) {{ editPost(input: $i) {{ {POST_FIELDS} }} }}"),
        json!({ "i": { "id": post_id, "body": "edited, no addresses now" } }),
    )
    .await;
    assert_eq!(
        code(
            &api,
            Some(alice_token),
            "mutation($i: EditPostInput!) { editPost(input: $i) { id } }",
            json!({ "i": { "id": post_id, "body": "not mine" } }),
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &api,
            Some(alice_token),
            &create,
            json!({ "i": { "body": "" } })
        )
        .await,
        "INVALID_INPUT"
    );
    for name in ["likePost", "unlikePost", "likePost"] {
        ok(
            &api,
            Some(alice_token),
            &format!(
                "mutation($id: ID!) {{ {name}(postId: $id) {{ id likeCount viewerHasLiked }} }}"
            ),
            json!({ "id": post_id }),
        )
        .await;
    }
    for token in [None, Some(alice_token), Some(carol_token)] {
        ok(
            &api,
            token,
            &format!("query($id: ID!) {{ post(id: $id) {{ {POST_FIELDS} replyTo {{ id }} replies(first: 5) {{ nodes {{ id body }} pageInfo {{ hasNextPage }} }} versions(first: 5) {{ nodes {{ version body createdAt }} }} }} }}"),
            json!({ "id": post_id }),
        )
        .await;
    }
    ok(
        &api,
        Some(carol_token),
        "query($id: ID!) { post(id: $id) { id } }",
        json!({ "id": private_id }),
    )
    .await;
    for token in [alice_token, bob_token, carol_token] {
        let feed = ok(
            &api,
            Some(token),
            &format!("{{ homeFeed(first: 2) {{ edges {{ cursor node {{ {POST_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"),
            json!({}),
        )
        .await;
        if let Some(cursor) = feed["homeFeed"]["pageInfo"]["endCursor"].as_str() {
            ok(
                &api,
                Some(token),
                "query($a: String) { homeFeed(first: 2, after: $a) { nodes { id } } }",
                json!({ "a": cursor }),
            )
            .await;
        }
    }
    assert_eq!(
        code(
            &api,
            Some(alice_token),
            "query($a: String) { homeFeed(first: 2, after: $a) { nodes { id } } }",
            json!({ "a": "not-a-cursor" })
        )
        .await,
        "INVALID_INPUT"
    );
    ok(
        &api,
        None,
        "query($u: String!) { user(username: $u) { posts(first: 10) { nodes { id body } } } }",
        json!({ "u": PEOPLE[1].username }),
    )
    .await;
    ok(
        &api,
        Some(alice_token),
        "mutation($id: ID!) { deletePost(id: $id) { deletedPostId } }",
        json!({ "id": reply_id }),
    )
    .await;
    assert_eq!(
        code(
            &api,
            Some(carol_token),
            "mutation($id: ID!) { deletePost(id: $id) { deletedPostId } }",
            json!({ "id": post_id })
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        code(&api, None, &create, json!({ "i": { "body": "anonymous" } })).await,
        "UNAUTHENTICATED"
    );

    // A query over GET with a bearer token, and a mutation over GET (refused).
    let response = api
        .http
        .get(api.url("/graphql"))
        .query(&[("query", "{ me { id email } }")])
        .bearer_auth(bob_token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let response = api
        .http
        .get(api.url("/graphql"))
        .query(&[(
            "query",
            format!("mutation {{ signOut(refreshToken: \"{}\") }}", refresh[1]),
        )])
        .send()
        .await
        .expect("GET");
    assert!(response.status().is_client_error());

    // Refused bearer tokens of every kind: each is logged as an authentication outcome.
    let payload = alice_token.split('.').nth(1).unwrap_or_default();
    let mut tampered = alice_token.to_owned();
    tampered.pop();
    tampered.push('x');
    let bad_tokens = [
        "garbage".to_owned(),
        format!("{}.{}", PEOPLE[0].password, PEOPLE[0].email),
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
        tampered,
        refresh[2].clone(),
        alice_access.clone(),
    ];
    for token in &bad_tokens {
        secrets.add_token(token);
        let (status, _) = gql(&api, Some(token), "{ me { id } }", json!({})).await;
        assert_eq!(status, 401);
    }
    // Finally Alice signs out her last session; its access token dies.
    ok(&api, None, sign_out, json!({ "t": alice_second_refresh })).await;
    let (status, _) = gql(&api, Some(alice_token), "{ me { id } }", json!({})).await;
    assert_eq!(status, 401);
    api.app.stop().await.expect("stop");

    let log = captured.text();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .collect();
    assert!(lines.len() > 50, "too little was logged:\n{log}");

    for (n, line) in log.lines().enumerate() {
        let lower = line.to_lowercase();
        for secret in &secrets.0 {
            assert!(
                !lower.contains(&secret.to_lowercase()),
                "log line {n} leaks {secret:?}: {line}"
            );
        }
        // No email address of any shape.
        assert!(
            !lower.contains("@example.test"),
            "log line {n} has an email address: {line}"
        );
    }

    // Every authentication attempt left one `nova::auth` line with its outcome and duration.
    let auth_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "nova::auth")
        .collect();
    let outcomes: Vec<&str> = auth_lines
        .iter()
        .filter_map(|l| l["fields"]["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.len(), auth_lines.len());
    for expected in ["ok", "revoked", "malformed", "bad_signature"] {
        assert!(
            outcomes.contains(&expected),
            "no {expected} authentication line: {outcomes:?}"
        );
    }
    for line in &auth_lines {
        let fields = &line["fields"];
        assert!(fields["duration_ms"].is_f64(), "{line}");
        let account = fields["account_id"].as_str().expect("account_id");
        assert!(
            account == "-" || ids.iter().any(|id| id == account),
            "{line}"
        );
    }
    let revoked: Vec<&&Value> = auth_lines
        .iter()
        .filter(|l| l["fields"]["outcome"] == "revoked")
        .collect();
    assert!(
        revoked
            .iter()
            .all(|l| l["fields"]["account_id"] == ids[0].as_str()),
        "a revoked token's line names its account: {revoked:?}"
    );
}
