//! Malformed and hostile input thrown at every mutation (and at the arguments queries share with
//! them) through a real server. Whatever arrives, the answer is a clear error with a stable code,
//! never a 5xx or INTERNAL, the server stays healthy and a refused request stores nothing.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const CODES: [&str; 8] = [
    "INVALID_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "UNAVAILABLE",
    "INTERNAL",
];

/// A server with two accounts and a post by alice.
struct Fixture {
    api: common::Api,
    alice: common::Account,
    bob: common::Account,
    post_id: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let api = common::Api::start().await;
        let alice = api.register("alice").await;
        let bob = api.register("bob").await;
        let post_id = api.create_post(&alice, "the original body").await;
        api.ok(
            Some(&alice.access_token),
            "mutation { updateProfile(input: {displayName: \"Alice\", bio: \"first bio\", avatarUrl: \"https://example.test/alice.png\"}) { id } }",
            json!({}),
        )
        .await;
        Fixture {
            api,
            alice,
            bob,
            post_id,
        }
    }

    /// Everything a mutation could have changed, as alice sees it.
    async fn snapshot(&self) -> Value {
        self.api
            .ok(
                Some(&self.alice.access_token),
                "query($post: ID!) {
                    me { postCount followingCount followerCount displayName bio avatarUrl }
                    post(id: $post) { body editedAt likeCount viewerHasLiked replyCount versions { nodes { body } } }
                    bob: user(username: \"bob\") { viewerFollows viewerBlocks viewerMutes followerCount postCount }
                }",
                json!({ "post": self.post_id }),
            )
            .await
    }

    /// The server still answers health checks and queries.
    async fn assert_healthy(&self) {
        let health = self
            .api
            .http
            .get(self.api.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status(), 200);
        let ready = self
            .api
            .http
            .get(self.api.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status(), 200);
        let data = self
            .api
            .ok(
                Some(&self.alice.access_token),
                "{ me { username } }",
                json!({}),
            )
            .await;
        assert_eq!(data["me"]["username"], "alice");
    }

    async fn stop(self) {
        self.assert_healthy().await;
        self.api.app.stop().await.expect("stop");
    }
}

/// An HTTP answer to a hostile request.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or("<none>")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn succeeded(&self) -> bool {
        self.status == 200 && self.body.get("errors").is_none()
    }
}

/// Sends a raw body and checks what must hold for any input: a status below 500, a JSON body,
/// every error with a documented code, never INTERNAL, and no `data` beside a 4xx.
async fn send_raw(
    api: &common::Api,
    token: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
    what: &str,
) -> Answer {
    let mut request = api
        .http
        .post(api.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert!(status < 500, "{what}: status {status}: {text}");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {text}"));
    let answer = Answer { status, body };
    for code in answer.codes() {
        assert!(
            CODES.contains(&code.as_str()),
            "{what}: undocumented code {code}: {text}"
        );
        assert_ne!(code, "INTERNAL", "{what}: {text}");
    }
    if status >= 400 {
        assert!(answer.body.get("data").is_none(), "{what}: {text}");
        assert!(!answer.codes().is_empty(), "{what}: {text}");
    }
    answer
}

async fn send(
    api: &common::Api,
    token: Option<&str>,
    accept: Option<&str>,
    query: &str,
    variables: &Value,
    what: &str,
) -> Answer {
    let body = json!({ "query": query, "variables": variables }).to_string();
    send_raw(api, token, accept, body.into_bytes(), what).await
}

/// Asserts the request was refused with one of `codes` (every error).
fn assert_refused(answer: &Answer, codes: &[&str], what: &str) {
    let got = answer.codes();
    assert!(
        !got.is_empty(),
        "{what}: expected an error, got {}",
        answer.body
    );
    for code in &got {
        assert!(
            codes.contains(&code.as_str()),
            "{what}: expected {codes:?}, got {code}: {}",
            answer.body
        );
        let message = answer.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{what}: empty message");
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Id,
    Enum,
}

/// One argument (or input field) of a mutation that hostile values are put into.
struct Field {
    path: &'static [&'static str],
    kind: Kind,
    required: bool,
    /// Codes acceptable when the value is refused by the domain (too long, control characters).
    refused_with: &'static [&'static str],
    /// Whether control characters may legitimately be accepted (passwords, opaque tokens, URLs
    /// that get percent-encoded).
    control_may_pass: bool,
}

const INVALID: &[&str] = &["INVALID_INPUT"];
const AUTH: &[&str] = &["UNAUTHENTICATED", "INVALID_INPUT"];

const fn field(path: &'static [&'static str], kind: Kind, required: bool) -> Field {
    Field {
        path,
        kind,
        required,
        refused_with: INVALID,
        control_may_pass: false,
    }
}

/// A mutation with valid variables and the fields to corrupt one at a time.
struct Mutation {
    name: &'static str,
    document: &'static str,
    signed_in: bool,
    fields: Vec<Field>,
}

fn mutations() -> Vec<Mutation> {
    let user_id = |name: &'static str| Mutation {
        name,
        document: match name {
            "follow" => "mutation($userId: ID!) { follow(userId: $userId) { id } }",
            "unfollow" => "mutation($userId: ID!) { unfollow(userId: $userId) { id } }",
            "block" => "mutation($userId: ID!) { block(userId: $userId) { id } }",
            "unblock" => "mutation($userId: ID!) { unblock(userId: $userId) { id } }",
            "mute" => "mutation($userId: ID!) { mute(userId: $userId) { id } }",
            _ => "mutation($userId: ID!) { unmute(userId: $userId) { id } }",
        },
        signed_in: true,
        fields: vec![field(&["userId"], Kind::Id, true)],
    };
    vec![
        Mutation {
            name: "register",
            document: "mutation($input: RegisterInput!) { register(input: $input) { userId accessToken } }",
            signed_in: false,
            fields: vec![
                field(&["input", "username"], Kind::Str, true),
                field(&["input", "email"], Kind::Str, true),
                Field {
                    control_may_pass: true,
                    ..field(&["input", "password"], Kind::Str, true)
                },
            ],
        },
        Mutation {
            name: "signIn",
            document: "mutation($input: SignInInput!) { signIn(input: $input) { userId } }",
            signed_in: false,
            fields: vec![
                Field {
                    refused_with: AUTH,
                    ..field(&["input", "login"], Kind::Str, true)
                },
                Field {
                    refused_with: AUTH,
                    ..field(&["input", "password"], Kind::Str, true)
                },
            ],
        },
        Mutation {
            name: "refreshSession",
            document: "mutation($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { userId } }",
            signed_in: false,
            fields: vec![Field {
                refused_with: AUTH,
                ..field(&["refreshToken"], Kind::Str, true)
            }],
        },
        Mutation {
            name: "signOut",
            document: "mutation($refreshToken: String!) { signOut(refreshToken: $refreshToken) }",
            signed_in: false,
            fields: vec![Field {
                refused_with: AUTH,
                control_may_pass: true,
                ..field(&["refreshToken"], Kind::Str, true)
            }],
        },
        Mutation {
            name: "updateProfile",
            document: "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }",
            signed_in: true,
            fields: vec![
                field(&["input", "displayName"], Kind::Str, false),
                field(&["input", "bio"], Kind::Str, false),
                Field {
                    control_may_pass: true,
                    ..field(&["input", "avatarUrl"], Kind::Str, false)
                },
            ],
        },
        user_id("follow"),
        user_id("unfollow"),
        user_id("block"),
        user_id("unblock"),
        user_id("mute"),
        user_id("unmute"),
        Mutation {
            name: "createPost",
            document: "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            signed_in: true,
            fields: vec![
                field(&["input", "body"], Kind::Str, true),
                field(&["input", "visibility"], Kind::Enum, false),
                field(&["input", "replyTo"], Kind::Id, false),
                field(&["input", "idempotencyKey"], Kind::Str, false),
            ],
        },
        Mutation {
            name: "editPost",
            document: "mutation($input: EditPostInput!) { editPost(input: $input) { id } }",
            signed_in: true,
            fields: vec![
                field(&["input", "id"], Kind::Id, true),
                field(&["input", "body"], Kind::Str, true),
            ],
        },
        Mutation {
            name: "deletePost",
            document: "mutation($id: ID!) { deletePost(id: $id) { deletedPostId } }",
            signed_in: true,
            fields: vec![field(&["id"], Kind::Id, true)],
        },
        Mutation {
            name: "likePost",
            document: "mutation($postId: ID!) { likePost(postId: $postId) { id } }",
            signed_in: true,
            fields: vec![field(&["postId"], Kind::Id, true)],
        },
        Mutation {
            name: "unlikePost",
            document: "mutation($postId: ID!) { unlikePost(postId: $postId) { id } }",
            signed_in: true,
            fields: vec![field(&["postId"], Kind::Id, true)],
        },
    ]
}

/// Valid variables for `mutation`; each register case gets a fresh username (`n`). Every value
/// differs from the stored state, so a half-applied refused request would show in the snapshot.
fn valid_variables(fx: &Fixture, mutation: &str, n: usize) -> Value {
    match mutation {
        "register" => json!({ "input": {
            "username": format!("mal_{n}"),
            "email": format!("mal_{n}@example.test"),
            "password": "password-mallory",
        } }),
        "signIn" => json!({ "input": { "login": "alice", "password": "password-alice" } }),
        "refreshSession" | "signOut" => json!({ "refreshToken": "not-a-refresh-token" }),
        "updateProfile" => json!({ "input": {
            "displayName": "Mallory",
            "bio": "second bio",
            "avatarUrl": "https://example.test/mallory.png",
        } }),
        "follow" | "unfollow" | "block" | "unblock" | "mute" | "unmute" => {
            json!({ "userId": fx.bob.id })
        }
        "createPost" => json!({ "input": {
            "body": "a reply that must not be stored",
            "visibility": "FOLLOWERS",
            "replyTo": fx.post_id,
            "idempotencyKey": format!("key-{n}"),
        } }),
        "editPost" => {
            json!({ "input": { "id": fx.post_id, "body": "a body that must not be stored" } })
        }
        "deletePost" => json!({ "id": fx.post_id }),
        _ => json!({ "postId": fx.post_id }),
    }
}

/// Sets (or with `None` removes) the value at `path`.
fn with_value(mut variables: Value, path: &[&str], value: Option<Value>) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut target = &mut variables;
    for key in parents {
        target = &mut target[*key];
    }
    let object = target.as_object_mut().expect("object");
    match value {
        Some(value) => {
            object.insert((*last).to_owned(), value);
        }
        None => {
            object.remove(*last);
        }
    }
    variables
}

fn current(variables: &Value, path: &[&str]) -> String {
    let mut target = variables;
    for key in path {
        target = &target[*key];
    }
    target.as_str().unwrap_or("").to_owned()
}

const INVALID_IDS: [&str; 14] = [
    "",
    "abc",
    "-5",
    "0",
    "1e9",
    "123456789012345678901234567890",
    "9999999999999999999",
    " 1",
    "1 ",
    "0x10",
    "+5",
    "1.0",
    "١٢٣",
    "1\u{0}",
];

/// What a case is expected to do.
#[derive(Clone, Copy)]
enum Expect {
    /// Refused with one of these codes.
    Refused(&'static [&'static str]),
    /// Refused, or accepted when the value is harmless for this field.
    RefusedOrAccepted(&'static [&'static str]),
}

struct Case {
    what: String,
    variables: Value,
    expect: Expect,
}

/// Every hostile variant of every field of `mutation`, plus whole-input corruptions.
fn cases(fx: &Fixture, mutation: &Mutation, counter: &mut usize) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |what: String, make: &dyn Fn(Value) -> Value, expect: Expect| {
        *counter += 1;
        let variables = make(valid_variables(fx, mutation.name, *counter));
        cases.push(Case {
            what: format!("{}: {what}", mutation.name),
            variables,
            expect,
        });
    };
    let top = mutation.fields[0].path[0];
    if top == "input" {
        push(
            "input is a string".into(),
            &|_| json!({ "input": "x" }),
            Expect::Refused(INVALID),
        );
        push(
            "input is a list".into(),
            &|v| json!({ "input": [v["input"].clone()] }),
            Expect::Refused(INVALID),
        );
        push(
            "input has an unknown field".into(),
            &|v| with_value(v, &["input", "isAdmin"], Some(json!(true))),
            Expect::Refused(INVALID),
        );
    }
    push(
        "variables are empty".into(),
        &|_| json!({}),
        Expect::Refused(INVALID),
    );
    push(
        format!("${top} is null"),
        &|_| json!({ top: null }),
        Expect::Refused(INVALID),
    );
    for f in &mutation.fields {
        let path = f.path;
        let name = path.join(".");
        let wrong_types: Vec<Value> = match f.kind {
            Kind::Str => vec![
                json!(42),
                json!(true),
                json!(1.5),
                json!({ "a": 1 }),
                json!(["x"]),
            ],
            Kind::Id => vec![
                json!(true),
                json!(1.5),
                json!({ "a": 1 }),
                json!(["1"]),
                json!(-5),
                json!(0),
            ],
            Kind::Enum => vec![
                json!(1),
                json!("public"),
                json!("SECRET"),
                json!("PUBLIC "),
                json!(["PUBLIC"]),
            ],
        };
        for wrong in wrong_types {
            push(
                format!("{name} = {wrong}"),
                &move |v| with_value(v, path, Some(wrong.clone())),
                Expect::Refused(INVALID),
            );
        }
        if f.required {
            push(
                format!("{name} is null"),
                &|v| with_value(v, path, Some(Value::Null)),
                Expect::Refused(INVALID),
            );
            push(
                format!("{name} is missing"),
                &|v| with_value(v, path, None),
                Expect::Refused(INVALID),
            );
        }
        let huge_codes = if f.kind == Kind::Str {
            f.refused_with
        } else {
            INVALID
        };
        for (label, huge) in [
            ("100 KB of ascii", "a".repeat(100 * 1024)),
            ("100 KB of emoji", "😀".repeat(25 * 1024)),
            (
                "100 KB of combining marks",
                format!("a{}", "\u{301}".repeat(50 * 1024)),
            ),
        ] {
            push(
                format!("{name} is {label}"),
                &move |v| with_value(v, path, Some(json!(huge.clone()))),
                Expect::Refused(huge_codes),
            );
        }
        match f.kind {
            Kind::Id => {
                for bad in INVALID_IDS {
                    push(
                        format!("{name} = {bad:?}"),
                        &move |v| with_value(v, path, Some(json!(bad))),
                        Expect::Refused(INVALID),
                    );
                }
            }
            Kind::Str | Kind::Enum => {
                for (label, make) in [
                    (
                        "a NUL",
                        (|s: &str| format!("{s}\u{0}")) as fn(&str) -> String,
                    ),
                    ("a leading NUL", |s: &str| format!("\u{0}{s}")),
                    ("an ANSI escape", |s: &str| {
                        format!("\u{1b}[31m{s}\u{1b}[0m")
                    }),
                    ("a bell and backspaces", |s: &str| {
                        format!("{s}\u{7}\u{8}\u{8}")
                    }),
                    ("a DEL and C1 control", |s: &str| format!("{s}\u{7f}\u{85}")),
                ] {
                    let expect = if f.kind == Kind::Enum {
                        Expect::Refused(INVALID)
                    } else if f.control_may_pass {
                        Expect::RefusedOrAccepted(f.refused_with)
                    } else {
                        Expect::Refused(f.refused_with)
                    };
                    push(
                        format!("{name} with {label}"),
                        &move |v| {
                            let base = current(&v, path);
                            let base = if base.is_empty() {
                                "PUBLIC".to_owned()
                            } else {
                                base
                            };
                            with_value(v, path, Some(json!(make(&base))))
                        },
                        expect,
                    );
                }
            }
        }
    }
    cases
}

#[tokio::test]
async fn every_mutation_refuses_wrong_types_nulls_huge_strings_control_characters_and_bad_ids() {
    let fx = Fixture::start().await;
    let mut counter = 0;
    let mut total = 0;
    for mutation in mutations() {
        let token = mutation.signed_in.then_some(fx.alice.access_token.as_str());
        let mut before = fx.snapshot().await;
        for (i, case) in cases(&fx, &mutation, &mut counter).into_iter().enumerate() {
            total += 1;
            let accept = (i % 2 == 1).then_some(GRAPHQL_RESPONSE_JSON);
            let answer = send(
                &fx.api,
                token,
                accept,
                mutation.document,
                &case.variables,
                &case.what,
            )
            .await;
            let accepted = answer.succeeded();
            match case.expect {
                Expect::Refused(codes) => assert_refused(&answer, codes, &case.what),
                Expect::RefusedOrAccepted(codes) if !accepted => {
                    assert_refused(&answer, codes, &case.what)
                }
                Expect::RefusedOrAccepted(_) => {}
            }
            if accepted {
                before = fx.snapshot().await;
                continue;
            }
            let after = fx.snapshot().await;
            assert_eq!(
                before, after,
                "{}: a refused request changed state",
                case.what
            );
            if mutation.name == "register" {
                assert_no_account(&fx, &case.variables, &case.what).await;
            }
        }
    }
    assert!(total > 400, "only {total} cases");
    // Nothing above signed alice out or revoked her session.
    let refreshed = fx
        .api
        .ok(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { userId } }",
            json!({ "t": fx.alice.refresh_token }),
        )
        .await;
    assert_eq!(refreshed["refreshSession"]["userId"], fx.alice.id.as_str());
    fx.stop().await;
}

/// A refused registration left no account behind: the username is free and signing in fails.
async fn assert_no_account(fx: &Fixture, variables: &Value, what: &str) {
    let input = &variables["input"];
    for key in ["username", "email"] {
        let Some(login) = input[key].as_str() else {
            continue;
        };
        if login.len() > 200 {
            continue;
        }
        if key == "username" {
            let data = fx
                .api
                .ok(
                    None,
                    "query($u: String!) { user(username: $u) { id } }",
                    json!({ "u": login }),
                )
                .await;
            assert_eq!(data["user"], Value::Null, "{what}: account exists");
        }
        let password = input["password"].as_str().unwrap_or("password-mallory");
        let answer = send(
            &fx.api,
            None,
            None,
            "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { userId } }",
            &json!({ "l": login, "p": password }),
            what,
        )
        .await;
        assert_refused(
            &answer,
            AUTH,
            &format!("{what}: sign-in after refused register"),
        );
    }
}

#[tokio::test]
async fn literal_arguments_of_the_wrong_type_or_range_are_invalid_input() {
    let fx = Fixture::start().await;
    let before = fx.snapshot().await;
    let bob = &fx.bob.id;
    let post = &fx.post_id;
    let documents = [
        "mutation { follow(userId: 1.5) { id } }".to_owned(),
        "mutation { follow(userId: true) { id } }".to_owned(),
        "mutation { follow(userId: null) { id } }".to_owned(),
        "mutation { follow { id } }".to_owned(),
        "mutation { block(userId: [\"1\"]) { id } }".to_owned(),
        "mutation { mute(userId: {id: 1}) { id } }".to_owned(),
        "mutation { unmute(userId: -5) { id } }".to_owned(),
        "mutation { likePost(postId: 99999999999999999999999999999) { id } }".to_owned(),
        "mutation { createPost(input: \"hello\") { id } }".to_owned(),
        "mutation { createPost(input: {body: 5}) { id } }".to_owned(),
        "mutation { createPost(input: {body: \"x\", visibility: SECRET}) { id } }".to_owned(),
        "mutation { createPost(input: {}) { id } }".to_owned(),
        "mutation { editPost(input: {id: 2147483648000000000000, body: \"x\"}) { id } }".to_owned(),
        "mutation { deletePost(id: \"\") { deletedPostId } }".to_owned(),
        "mutation { register(input: {username: \"lit\", email: \"lit@example.test\"}) { userId } }".to_owned(),
        "mutation { signIn(input: \"alice\") { userId } }".to_owned(),
        "mutation { refreshSession(refreshToken: 12) { userId } }".to_owned(),
        "mutation { signOut }".to_owned(),
        "mutation { updateProfile(input: {bio: [\"a\"]}) { id } }".to_owned(),
        format!("mutation {{ follow(userId: \"{bob}\", extra: 1) {{ id }} }}"),
        format!("mutation {{ unfollow(userId: \"{bob}\") {{ followers(first: 2147483648) {{ edges {{ cursor }} }} }} }}"),
        format!("mutation {{ unlikePost(postId: \"{post}\") {{ replies(first: 9223372036854775808) {{ edges {{ cursor }} }} }} }}"),
        "{ homeFeed(first: 2147483648) { edges { cursor } } }".to_owned(),
        "{ homeFeed(first: -2147483649) { edges { cursor } } }".to_owned(),
        "{ homeFeed(first: 1.5) { edges { cursor } } }".to_owned(),
        "{ homeFeed(first: \"10\") { edges { cursor } } }".to_owned(),
    ];
    for (i, document) in documents.iter().enumerate() {
        let accept = (i % 2 == 0).then_some(GRAPHQL_RESPONSE_JSON);
        let answer = send(
            &fx.api,
            Some(&fx.alice.access_token),
            accept,
            document,
            &json!({}),
            document,
        )
        .await;
        assert_refused(&answer, INVALID, document);
    }
    assert_eq!(before, fx.snapshot().await);
    fx.stop().await;
}

#[tokio::test]
async fn page_sizes_and_cursors_out_of_range_are_invalid_input() {
    let fx = Fixture::start().await;
    let fields = [
        "homeFeed(first: $first, after: $after) { edges { cursor } }",
        "me { followers(first: $first, after: $after) { edges { cursor } } }",
        "me { following(first: $first, after: $after) { edges { cursor } } }",
        "me { posts(first: $first, after: $after) { edges { cursor } } }",
        "post(id: $post) { replies(first: $first, after: $after) { edges { cursor } } }",
        "post(id: $post) { versions(first: $first, after: $after) { edges { cursor } } }",
    ];
    let feed_cursor = fx
        .api
        .ok(
            Some(&fx.alice.access_token),
            "{ homeFeed(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await["homeFeed"]["edges"][0]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let firsts = [json!(2147483647), json!(-1), json!(101), json!(-2147483648)];
    let afters = [
        json!(""),
        json!("abc"),
        json!("!!!!"),
        json!("a".repeat(100 * 1024)),
        json!("djE6ZmVlZDow"),
        json!("djE6ZmVlZDotNQ"),
        json!("\u{0}\u{1b}"),
    ];
    for field in fields {
        let declared = if field.contains("$post") {
            "$first: Int, $after: String, $post: ID!"
        } else {
            "$first: Int, $after: String"
        };
        let query = format!("query({declared}) {{ {field} }}");
        for first in &firsts {
            let vars = json!({ "first": first, "post": fx.post_id });
            let what = format!("{field} first={first}");
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                None,
                &query,
                &vars,
                &what,
            )
            .await;
            assert_refused(&answer, INVALID, &what);
        }
        for after in &afters {
            let vars = json!({ "first": 5, "after": after, "post": fx.post_id });
            let what = format!(
                "{field} after={}",
                after.to_string().chars().take(40).collect::<String>()
            );
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                None,
                &query,
                &vars,
                &what,
            )
            .await;
            assert_refused(&answer, INVALID, &what);
        }
        if !field.starts_with("homeFeed") {
            // A cursor from another list is refused too.
            let vars = json!({ "after": feed_cursor, "post": fx.post_id });
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                None,
                &query,
                &vars,
                field,
            )
            .await;
            assert_refused(&answer, INVALID, field);
        }
        // A variable beyond 32 bits is refused.
        let vars = json!({ "first": 2147483648_i64, "post": fx.post_id });
        let answer = send(
            &fx.api,
            Some(&fx.alice.access_token),
            None,
            &query,
            &vars,
            field,
        )
        .await;
        assert_refused(&answer, INVALID, field);
    }
    fx.stop().await;
}

/// Replaces the first occurrence of `marker` in `body` with `bytes`.
fn splice(body: &str, marker: &str, bytes: &[u8]) -> Vec<u8> {
    let at = body.find(marker).expect("marker present");
    let mut out = body.as_bytes()[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&body.as_bytes()[at + marker.len()..]);
    out
}

#[tokio::test]
async fn invalid_utf8_and_absurdly_nested_json_bodies_are_refused_for_every_mutation() {
    let fx = Fixture::start().await;
    let before = fx.snapshot().await;
    let deep_list = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    for mutation in mutations() {
        let token = mutation.signed_in.then_some(fx.alice.access_token.as_str());
        let field = &mutation.fields[0];
        let variables = with_value(
            valid_variables(&fx, mutation.name, 0),
            field.path,
            Some(json!("__MARKER__")),
        );
        let body = json!({ "query": mutation.document, "variables": variables }).to_string();
        let raw_cases: [(&str, Vec<u8>); 6] = [
            (
                "invalid UTF-8",
                splice(&body, "__MARKER__", b"ab\xff\xfe\xc3\x28cd"),
            ),
            ("overlong UTF-8", splice(&body, "__MARKER__", b"\xc0\xaf")),
            (
                "a lone surrogate escape",
                splice(&body, "__MARKER__", b"\\ud800"),
            ),
            ("a raw control byte", splice(&body, "__MARKER__", b"a\x00b")),
            (
                "10,000 nested lists",
                splice(&body, "\"__MARKER__\"", deep_list.as_bytes()),
            ),
            (
                "10,000 nested objects",
                splice(&body, "\"__MARKER__\"", deep_object.as_bytes()),
            ),
        ];
        for (label, raw) in raw_cases {
            let what = format!("{}: {label}", mutation.name);
            for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
                let answer = send_raw(&fx.api, token, accept, raw.clone(), &what).await;
                assert_eq!(answer.status, 400, "{what}: {}", answer.body);
                assert_refused(&answer, INVALID, &what);
            }
        }
        // Nesting inside serde's limit still reaches GraphQL, which refuses the type.
        let nested = format!("{}\"x\"{}", "[".repeat(100), "]".repeat(100));
        let raw = splice(&body, "\"__MARKER__\"", nested.as_bytes());
        let what = format!("{}: 100 nested lists", mutation.name);
        let answer = send_raw(&fx.api, token, None, raw, &what).await;
        assert_refused(&answer, INVALID, &what);
    }
    // The same through GET's variables parameter.
    let answer = fx
        .api
        .http
        .get(fx.api.url("/graphql"))
        .query(&[
            ("query", "query($u: String) { user(username: $u) { id } }"),
            ("variables", &format!("{{\"u\": {deep_list}}}")),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), 400);
    assert_eq!(before, fx.snapshot().await);
    fx.stop().await;
}

#[tokio::test]
async fn deeply_nested_literals_in_the_query_text_are_refused() {
    let fx = Fixture::start().await;
    let before = fx.snapshot().await;
    for depth in [100, 10_000] {
        let list = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
        let object = format!("{}\"x\"{}", "{a: ".repeat(depth), "}".repeat(depth));
        let selections = format!("{}id{}", "me { ".repeat(depth), " }".repeat(depth));
        let documents = [
            format!("mutation {{ createPost(input: {{body: {list}}}) {{ id }} }}"),
            format!("mutation {{ createPost(input: {{body: \"x\", idempotencyKey: {object}}}) {{ id }} }}"),
            format!("mutation {{ follow(userId: {list}) {{ id }} }}"),
            format!("query {{ {selections} }}"),
            format!("query {}{{ me {{ id }} }}", "@include(if: true) ".repeat(depth)),
        ];
        for document in &documents {
            let what = format!("depth {depth}: {}", &document[..40.min(document.len())]);
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                Some(GRAPHQL_RESPONSE_JSON),
                document,
                &json!({}),
                &what,
            )
            .await;
            assert_refused(&answer, INVALID, &what);
        }
    }
    assert_eq!(before, fx.snapshot().await);
    fx.stop().await;
}

#[tokio::test]
async fn a_thousand_aliases_are_answered_without_a_server_error_and_mutations_are_capped_before_running(
) {
    let fx = Fixture::start().await;
    let before = fx.snapshot().await;
    let aliases = |field: &str| -> String {
        (0..1000)
            .map(|i| format!("a{i}: {field}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Refused mutations, a thousand times over: nothing is stored.
    for field in [
        "createPost(input: {body: \"\"}) { id }".to_owned(),
        "createPost(input: {body: \"x\", replyTo: \"abc\"}) { id }".to_owned(),
        "follow(userId: \"0\") { id }".to_owned(),
        "deletePost(id: \"-1\") { deletedPostId }".to_owned(),
        "register(input: {username: \"x\", email: \"bad\", password: \"short\"}) { userId }"
            .to_owned(),
    ] {
        let document = format!("mutation {{ {} }}", aliases(&field));
        let answer = send(
            &fx.api,
            Some(&fx.alice.access_token),
            None,
            &document,
            &json!({}),
            &field,
        )
        .await;
        assert_refused(&answer, INVALID, &field);
        assert_eq!(fx.snapshot().await, before, "{field}");
    }
    // A thousand password checks in one request would be a brute-force amplifier and outlive
    // the request timeout (a 503): the mutation is refused before anything runs, however the
    // aliases are wrapped.
    let sign_in = "signIn(input: {login: \"alice\", password: \"not-her-password\"}) { userId }";
    let wrapped = [
        format!("mutation {{ {} }}", aliases(sign_in)),
        format!(
            "mutation {{ ... on MutationRoot {{ {} }} }}",
            aliases(sign_in)
        ),
        format!(
            "mutation {{ ...F ...G }} fragment F on MutationRoot {{ {} }} fragment G on MutationRoot {{ {} }}",
            (0..6)
                .map(|i| format!("a{i}: {sign_in}"))
                .collect::<Vec<_>>()
                .join(" "),
            (0..6)
                .map(|i| format!("b{i}: {sign_in}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    for document in &wrapped {
        let started = std::time::Instant::now();
        let answer = send(
            &fx.api,
            None,
            Some(GRAPHQL_RESPONSE_JSON),
            document,
            &json!({}),
            "signIn aliases",
        )
        .await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_refused(&answer, INVALID, "signIn aliases");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
    // A handful of root fields is still fine.
    let few = format!(
        "mutation {{ {} }}",
        (0..10)
            .map(|i| format!("a{i}: {sign_in}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let answer = send(&fx.api, None, None, &few, &json!({}), "10 signIn aliases").await;
    assert_eq!(answer.codes().len(), 10, "{}", answer.body);
    assert_refused(&answer, &["UNAUTHENTICATED"], "10 signIn aliases");

    // Cheap reads a thousand times: answered (or refused as too costly), never a 5xx.
    let document = format!("{{ {} }}", aliases("me { id }"));
    let answer = send(
        &fx.api,
        Some(&fx.alice.access_token),
        None,
        &document,
        &json!({}),
        "me x1000",
    )
    .await;
    if !answer.succeeded() {
        assert_refused(&answer, INVALID, "me x1000");
    }
    // Costly reads a thousand times exceed the complexity limit and are refused up front.
    let costly = format!(
        "{{ {} }}",
        aliases("me { followers(first: 100) { edges { node { id username bio } } } }")
    );
    let answer = send(
        &fx.api,
        Some(&fx.alice.access_token),
        Some(GRAPHQL_RESPONSE_JSON),
        &costly,
        &json!({}),
        "followers x1000",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_refused(&answer, INVALID, "followers x1000");
    fx.stop().await;
}

#[tokio::test]
async fn fragment_cycles_and_depth_bombs_are_refused_before_any_mutation_runs() {
    let fx = Fixture::start().await;
    let before = fx.snapshot().await;
    let bob = &fx.bob.id;
    let post = &fx.post_id;
    let bomb = |levels: usize| -> String {
        format!(
            "{}id{}",
            "followers { edges { node { ".repeat(levels),
            " } } }".repeat(levels)
        )
    };
    let documents = [
        format!("mutation {{ follow(userId: \"{bob}\") {{ ...A }} }} fragment A on User {{ ...A }}"),
        format!("mutation {{ block(userId: \"{bob}\") {{ ...A }} }} fragment A on User {{ followers {{ edges {{ node {{ ...B }} }} }} }} fragment B on User {{ ...A }}"),
        format!("mutation {{ likePost(postId: \"{post}\") {{ ...P }} }} fragment P on Post {{ author {{ ...U }} }} fragment U on User {{ posts {{ nodes {{ ...P }} }} }}"),
        format!("mutation {{ follow(userId: \"{bob}\") {{ {} }} }}", bomb(5)),
        format!("mutation {{ mute(userId: \"{bob}\") {{ {} }} }}", bomb(50)),
        format!("mutation {{ createPost(input: {{body: \"bomb\"}}) {{ author {{ {} }} }} }}", bomb(20)),
        format!("mutation {{ editPost(input: {{id: \"{post}\", body: \"bomb\"}}) {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ replyTo {{ id }} }} }} }} }} }} }} }} }} }} }} }} }}"),
        format!("{{ me {{ {} }} }}", bomb(1000)),
        "fragment A on QueryRoot { ...A } { ...A }".to_owned(),
        "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...C } fragment C on QueryRoot { ...A }".to_owned(),
    ];
    for (i, document) in documents.iter().enumerate() {
        let what = format!("case {i}: {}", &document[..60.min(document.len())]);
        for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                accept,
                document,
                &json!({}),
                &what,
            )
            .await;
            assert_refused(&answer, INVALID, &what);
            if accept.is_some() {
                assert_eq!(answer.status, 400, "{what}: {}", answer.body);
            }
        }
        assert_eq!(fx.snapshot().await, before, "{what}: the mutation ran");
    }
    fx.stop().await;
}

/// Runs `cases` random inputs through `check` against one server, on a runtime of its own.
fn fuzz<S, F, Fut>(strategy: S, check: F)
where
    S: Strategy,
    S::Value: Clone + std::fmt::Debug,
    F: Fn(Arc<Fixture>, S::Value) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fx = Arc::new(runtime.block_on(Fixture::start()));
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |value| {
            runtime.block_on(check(Arc::clone(&fx), value));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(fx.assert_healthy());
}

/// Arbitrary strings, biased towards the troublesome: controls, huge, non-BMP, quotes.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,600}",
        "[\\x00-\\x1f\\x7f\"\\\\]{0,50}",
        proptest::collection::vec(any::<char>(), 0..2000).prop_map(|c| c.into_iter().collect()),
        (any::<char>(), 0usize..20_000).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

#[test]
fn random_strings_in_create_post_never_cause_a_server_error_or_a_half_stored_post() {
    fuzz(
        (hostile_string(), hostile_string()),
        |fx, (body, key)| async move {
            let before = fx.snapshot().await;
            let answer = send(
            &fx.api,
            Some(&fx.alice.access_token),
            None,
            "mutation($b: String!, $k: String) { createPost(input: {body: $b, idempotencyKey: $k}) { id body } }",
            &json!({ "b": body, "k": key }),
            "createPost fuzz",
        )
        .await;
            let after = fx.snapshot().await;
            if answer.succeeded() {
                let stored = answer.body["data"]["createPost"]["body"]
                    .as_str()
                    .unwrap_or("");
                assert!(!stored
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'));
            } else {
                assert_refused(&answer, INVALID, "createPost fuzz");
                assert_eq!(before["me"]["postCount"], after["me"]["postCount"]);
            }
        },
    );
}

#[test]
fn random_strings_in_register_never_cause_a_server_error_or_a_half_stored_account() {
    fuzz(
        (hostile_string(), hostile_string(), hostile_string()),
        |fx, (username, email, password)| async move {
            let answer = send(
                &fx.api,
                None,
                None,
                "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { userId } }",
                &json!({ "u": username, "e": email, "p": password }),
                "register fuzz",
            )
            .await;
            if !answer.succeeded() {
                assert_refused(&answer, &["INVALID_INPUT", "CONFLICT"], "register fuzz");
                if username.len() < 200 {
                    let data = fx
                        .api
                        .ok(
                            None,
                            "query($u: String!) { user(username: $u) { id } }",
                            json!({ "u": username }),
                        )
                        .await;
                    let id = data["user"]["id"].as_str().unwrap_or("");
                    assert!(
                        id.is_empty() || id == fx.alice.id || id == fx.bob.id,
                        "refused register left {username:?}"
                    );
                }
            }
        },
    );
}

#[test]
fn random_cursors_and_page_sizes_never_cause_a_server_error() {
    fuzz(
        (hostile_string(), any::<i64>()),
        |fx, (after, first)| async move {
            let query = "query($a: String, $f: Int, $p: ID!) {
                homeFeed(first: $f, after: $a) { edges { cursor } }
                me { followers(first: $f, after: $a) { edges { cursor } } posts(after: $a) { edges { cursor } } }
                post(id: $p) { replies(after: $a) { edges { cursor } } }
            }";
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                None,
                query,
                &json!({ "a": after, "f": first, "p": fx.post_id }),
                "cursor fuzz",
            )
            .await;
            if !answer.succeeded() {
                assert_refused(&answer, INVALID, "cursor fuzz");
            }
            let answer = send(
                &fx.api,
                Some(&fx.alice.access_token),
                None,
                "query($p: ID!) { post(id: $p) { id } }",
                &json!({ "p": after }),
                "id fuzz",
            )
            .await;
            if !answer.succeeded() {
                assert_refused(&answer, INVALID, "id fuzz");
            }
        },
    );
}
