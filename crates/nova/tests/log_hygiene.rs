//! Logging hygiene, checked on the JSON log of a real server: one "graphql request" line per
//! request with its request id, operation type, outcome and duration, and no password, email
//! address or token anywhere, not even in the logged detail of an internal failure.
//!
//! One test only: the subscriber is process-wide, so this binary installs exactly one.

mod common;

use common::logs::Captured;
use serde_json::{json, Value};

const USERNAME: &str = "loggy";
const EMAIL: &str = "Hygiene.Check+Nova@Example.test";
const PASSWORD: &str = "Zebra-Quartz-Ostrich-9142";
const WRONG_PASSWORD: &str = "Walrus-Nebula-Pumpkin-7305";

const AUTH_FIELDS: &str = "accessToken refreshToken userId";

/// Sends one GraphQL request with a chosen request id; returns the status and body.
async fn request(
    api: &common::Api,
    request_id: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut builder = api
        .http
        .post(api.url("/graphql"))
        .header("x-request-id", request_id)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().await.expect("send");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.expect("JSON body");
    (status, body)
}

/// One request the flow made and the outcome its log line must report.
struct Sent {
    request_id: String,
    operation_type: &'static str,
    outcome: &'static str,
}

#[tokio::test]
async fn the_request_log_has_one_line_per_request_and_never_a_secret() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(captured.clone())
        .init();

    let api = common::Api::start().await;
    let mut sent: Vec<Sent> = Vec::new();
    let mut secrets: Vec<String> = vec![
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        EMAIL.to_owned(),
        EMAIL.to_lowercase(),
        "hygiene.check+nova@example.test".to_owned(),
        "Hygiene.Check+Nova".to_owned(),
    ];
    let mut step = 0;
    let mut next_id =
        |sent: &mut Vec<Sent>, operation_type: &'static str, outcome: &'static str| {
            step += 1;
            let id = format!("log-hygiene-{step:02}");
            sent.push(Sent {
                request_id: id.clone(),
                operation_type,
                outcome,
            });
            id
        };

    // Register, sign in by username and by email, refresh, post, read.
    let id = next_id(&mut sent, "mutation", "OK");
    let (_, body) = request(
        &api,
        &id,
        None,
        &format!("mutation($u: String!, $e: String!, $p: String!) {{ register(input: {{username: $u, email: $e, password: $p}}) {{ {AUTH_FIELDS} }} }}"),
        json!({ "u": USERNAME, "e": EMAIL, "p": PASSWORD }),
    )
    .await;
    let registered = body["data"]["register"].clone();
    assert!(registered.is_object(), "register failed: {body}");
    let mut tokens = vec![registered.clone()];

    for login in [USERNAME, EMAIL] {
        let id = next_id(&mut sent, "mutation", "OK");
        let (_, body) = request(
            &api,
            &id,
            None,
            &format!("mutation($l: String!, $p: String!) {{ signIn(input: {{login: $l, password: $p}}) {{ {AUTH_FIELDS} }} }}"),
            json!({ "l": login, "p": PASSWORD }),
        )
        .await;
        assert!(body["data"]["signIn"].is_object(), "sign-in failed: {body}");
        tokens.push(body["data"]["signIn"].clone());
    }

    let id = next_id(&mut sent, "mutation", "OK");
    let (_, body) = request(
        &api,
        &id,
        None,
        &format!(
            "mutation($t: String!) {{ refreshSession(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"
        ),
        json!({ "t": registered["refreshToken"] }),
    )
    .await;
    assert!(
        body["data"]["refreshSession"].is_object(),
        "refresh failed: {body}"
    );
    tokens.push(body["data"]["refreshSession"].clone());
    let access = tokens[1]["accessToken"].as_str().expect("token").to_owned();

    let id = next_id(&mut sent, "mutation", "OK");
    let (_, body) = request(
        &api,
        &id,
        Some(&access),
        "mutation($b: String!) { createPost(input: {body: $b}) { id } }",
        json!({ "b": format!("mail me at {EMAIL}? no thanks") }),
    )
    .await;
    assert!(body["data"]["createPost"]["id"].is_string(), "{body}");

    let id = next_id(&mut sent, "query", "OK");
    let (_, body) = request(&api, &id, Some(&access), "{ me { email } }", json!({})).await;
    assert_eq!(
        body["data"]["me"]["email"].as_str().map(str::to_lowercase),
        Some(EMAIL.to_lowercase())
    );

    // Failures: wrong password, a replayed refresh token, a bad bearer token, a bad request.
    let id = next_id(&mut sent, "mutation", "UNAUTHENTICATED");
    let (_, body) = request(
        &api,
        &id,
        None,
        "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { userId } }",
        json!({ "l": EMAIL, "p": WRONG_PASSWORD }),
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let id = next_id(&mut sent, "mutation", "UNAUTHENTICATED");
    let (_, body) = request(
        &api,
        &id,
        None,
        "mutation($t: String!) { refreshSession(refreshToken: $t) { userId } }",
        json!({ "t": registered["refreshToken"] }),
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let bad_bearer = format!("{PASSWORD}.{EMAIL}");
    let id = next_id(&mut sent, "unknown", "UNAUTHENTICATED");
    let (status, _) = request(&api, &id, Some(&bad_bearer), "{ me { id } }", json!({})).await;
    assert_eq!(status, 401);

    let id = next_id(&mut sent, "mutation", "INVALID_INPUT");
    let (_, body) = request(
        &api,
        &id,
        None,
        "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { userId } }",
        json!({ "u": USERNAME, "e": format!("{EMAIL}\u{0}"), "p": PASSWORD }),
    )
    .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");

    // An internal failure while handling secrets: the sessions table disappears under the
    // server, then a sign-in (password) and a refresh (token) fail inside storage.
    rename_table(&api.app.settings, "sessions", "sessions_gone").await;
    let id = next_id(&mut sent, "mutation", "INTERNAL");
    let (status, body) = request(
        &api,
        &id,
        None,
        "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { userId } }",
        json!({ "l": EMAIL, "p": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    assert_eq!(body["errors"][0]["message"], "internal error");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], id.as_str());
    let id = next_id(&mut sent, "mutation", "INTERNAL");
    let (_, body) = request(
        &api,
        &id,
        None,
        "mutation($t: String!) { refreshSession(refreshToken: $t) { userId } }",
        json!({ "t": tokens[2]["refreshToken"] }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    rename_table(&api.app.settings, "sessions_gone", "sessions").await;

    let id = next_id(&mut sent, "query", "OK");
    let (_, body) = request(&api, &id, Some(&access), "{ me { id } }", json!({})).await;
    assert!(body["data"]["me"]["id"].is_string(), "{body}");
    api.app.stop().await.expect("stop");

    for issued in &tokens {
        for key in ["accessToken", "refreshToken"] {
            let token = issued[key].as_str().expect("token").to_owned();
            // A JWT's header is the same for every token; its claims and signature are not.
            for part in token
                .split('.')
                .filter(|p| p.len() >= 16 && !p.starts_with("eyJhbGciOi"))
            {
                secrets.push(part.to_owned());
            }
            secrets.push(token);
        }
    }

    let log = captured.text();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .collect();
    assert!(!lines.is_empty(), "nothing was logged");

    // No secret, anywhere, in any form the JSON writer might use.
    for (n, line) in log.lines().enumerate() {
        let lower = line.to_lowercase();
        for secret in &secrets {
            assert!(
                !lower.contains(&secret.to_lowercase()),
                "log line {n} leaks {secret:?}: {line}"
            );
        }
    }

    // Neither query text nor variables are logged.
    for fragment in [
        "createPost(input",
        "signIn(input",
        "refreshSession(refreshToken",
        "no thanks",
    ] {
        assert!(!log.contains(fragment), "the log contains {fragment:?}");
    }

    // One request line per request, with the fields operators need.
    let request_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "graphql request")
        .collect();
    assert_eq!(
        request_lines.len(),
        sent.len(),
        "expected one request line per request:\n{log}"
    );
    for expected in &sent {
        let matching: Vec<&&Value> = request_lines
            .iter()
            .filter(|l| l["fields"]["request_id"] == expected.request_id.as_str())
            .collect();
        assert_eq!(matching.len(), 1, "{}: {log}", expected.request_id);
        let fields = &matching[0]["fields"];
        assert_eq!(
            fields["operation_type"], expected.operation_type,
            "{fields}"
        );
        assert_eq!(fields["outcome"], expected.outcome, "{fields}");
        let duration = fields["duration_ms"]
            .as_f64()
            .expect("duration_ms is a number");
        assert!((0.0..60_000.0).contains(&duration), "{fields}");
        assert!(fields["status"].is_u64(), "{fields}");
        assert_eq!(matching[0]["level"], "INFO");
    }

    // The internal failures were logged with detail, tied to their request ids.
    let internal: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    for expected in sent.iter().filter(|s| s.outcome == "INTERNAL") {
        assert!(
            internal
                .iter()
                .any(|l| l.to_string().contains(&expected.request_id)),
            "no error line carries {}:\n{log}",
            expected.request_id
        );
    }
}

/// Renames a table in the test server's own database, under the running server.
async fn rename_table(settings: &nova_app::Settings, from: &str, to: &str) {
    let statement = format!("ALTER TABLE {from} RENAME TO {to}");
    match &settings.db.url {
        // TEST_DATABASE=postgres: the test's own Postgres database.
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
