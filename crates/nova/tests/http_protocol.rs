//! GraphQL over HTTP as the specification describes it, checked against a real server: methods,
//! media types and status codes, request limits, the operational endpoints and request ids.

mod common;

use nova_app::testing::TestApp;
use reqwest::header::{HeaderMap, ACCEPT, ALLOW, CONTENT_TYPE};
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

/// One HTTP exchange, kept whole so tests can look at status, headers and body.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("send request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body text");
    Reply {
        status,
        headers,
        text,
    }
}

/// POSTs `body` verbatim with the given content type and accept headers.
async fn post_raw(
    api: &common::Api,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = api.http.post(api.url("/graphql")).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    send(request).await
}

async fn post_json(api: &common::Api, accept: Option<&str>, body: &Value) -> Reply {
    post_raw(api, Some("application/json"), accept, body.to_string()).await
}

/// Every error carries a code from the documented set.
fn assert_error_codes(body: &Value) {
    if let Some(errors) = body.get("errors") {
        let errors = errors.as_array().expect("errors is a list");
        assert!(!errors.is_empty(), "empty errors list: {body}");
        for error in errors {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("error without extensions.code: {body}"));
            assert!(CODES.contains(&code), "unknown code {code}: {body}");
        }
    }
}

/// A request error: `errors` with codes, no `data` at all.
fn assert_request_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "body: {}", reply.text);
    let body = reply.json();
    assert_error_codes(&body);
    assert!(
        body.get("data").is_none(),
        "request errors have no data: {body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], code,
        "body: {body}"
    );
}

#[tokio::test]
async fn post_with_application_json_runs_the_query_with_or_without_a_charset() {
    let api = common::Api::start().await;
    let body = json!({ "query": "{ user(username: \"nobody\") { id } }" });
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ] {
        let reply = post_raw(&api, Some(content_type), None, body.to_string()).await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text);
        // Besides `data`, the response carries only `extensions.cost` (query limits).
        let mut json = reply.json();
        json.as_object_mut().map(|o| o.remove("extensions"));
        assert_eq!(json, json!({ "data": { "user": null } }));
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn get_with_a_query_parameter_runs_a_query() {
    let api = common::Api::start().await;
    let alice = api.register("alice").await;
    let reply = send(api.http.get(api.url("/graphql")).query(&[
        (
            "query",
            "query Who($name: String!) { user(username: $name) { id } }",
        ),
        ("variables", r#"{"name":"alice"}"#),
        ("operationName", "Who"),
    ]))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["data"]["user"]["id"], alice.id.as_str());
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn get_carrying_a_mutation_is_refused_with_405_and_allow_post() {
    let api = common::Api::start().await;
    let query = "mutation { register(input: {username: \"viaget\", email: \"viaget@example.test\", password: \"password-viaget\"}) { userId } }";
    for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
        let mut request = api.http.get(api.url("/graphql")).query(&[("query", query)]);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let reply = send(request).await;
        assert_eq!(reply.status, 405, "{}", reply.text);
        assert_eq!(
            reply.headers.get(ALLOW).and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        assert_request_error(&reply, 405, "INVALID_INPUT");
    }
    // The mutation never ran.
    let data = api
        .ok(None, "{ user(username: \"viaget\") { id } }", json!({}))
        .await;
    assert_eq!(data["user"], Value::Null);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_response_media_type_follows_the_accept_header() {
    let api = common::Api::start().await;
    let body = json!({ "query": "{ user(username: \"nobody\") { id } }" });
    let cases = [
        (None, "application/json"),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (Some(GRAPHQL_RESPONSE_JSON), GRAPHQL_RESPONSE_JSON),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE_JSON,
        ),
    ];
    for (accept, expected) in cases {
        let reply = post_json(&api, accept, &body).await;
        assert_eq!(reply.status, 200, "{accept:?}: {}", reply.text);
        assert!(
            reply.content_type().starts_with(expected),
            "Accept {accept:?} gave {}",
            reply.content_type()
        );
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn request_errors_are_400_without_data_under_graphql_response_json() {
    let api = common::Api::start().await;
    let cases = [
        json!({ "query": "{ user(username: \"x\") { id " }),
        json!({ "query": "{ user(username: \"x\") { noSuchField } }" }),
        json!({ "query": "query A { me { id } }", "operationName": "B" }),
        json!({ "query": "query A { me { id } } query B { me { id } }" }),
        json!({ "query": "query($n: String!) { user(username: $n) { id } }", "variables": { "n": 42 } }),
        json!({ "query": "query($n: String!) { user(username: $n) { id } }" }),
    ];
    for body in &cases {
        let reply = post_json(&api, Some(GRAPHQL_RESPONSE_JSON), body).await;
        assert_request_error(&reply, 400, "INVALID_INPUT");
        assert!(reply.content_type().starts_with(GRAPHQL_RESPONSE_JSON));
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn request_errors_are_200_under_application_json() {
    let api = common::Api::start().await;
    let cases = [
        json!({ "query": "{ user(username: \"x\") { id " }),
        json!({ "query": "{ user(username: \"x\") { noSuchField } }" }),
        json!({ "query": "query A { me { id } }", "operationName": "B" }),
    ];
    for body in &cases {
        for accept in [None, Some("application/json")] {
            let reply = post_json(&api, accept, body).await;
            assert_request_error(&reply, 200, "INVALID_INPUT");
            assert!(reply.content_type().starts_with("application/json"));
        }
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_415() {
    let api = common::Api::start().await;
    let body = json!({ "query": "{ me { id } }" }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/graphql"),
        None,
    ] {
        let reply = post_raw(&api, content_type, None, body.clone()).await;
        assert_request_error(&reply, 415, "INVALID_INPUT");
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let api = common::Api::start().await;
    for raw in [
        "{",
        "",
        "not json",
        "{\"query\": \"{ me { id } }\",}",
        "{\"query\": \"{ me { id } }\"} trailing",
    ] {
        for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
            let reply = post_raw(&api, Some("application/json"), accept, raw).await;
            assert_request_error(&reply, 400, "INVALID_INPUT");
        }
    }
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_batch_array_is_400_invalid_input() {
    let api = common::Api::start().await;
    let batch = json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }]);
    let reply = post_json(&api, None, &batch).await;
    assert_request_error(&reply, 400, "INVALID_INPUT");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_missing_or_non_string_query_is_400() {
    let api = common::Api::start().await;
    let cases = [
        json!({}),
        json!({ "variables": {} }),
        json!({ "query": null }),
        json!({ "query": 1 }),
        json!({ "query": ["{ me { id } }"] }),
        json!({ "query": { "text": "{ me { id } }" } }),
        json!({ "query": "{ me { id } }", "variables": "{}" }),
        json!({ "query": "{ me { id } }", "variables": [1] }),
        json!({ "query": "{ me { id } }", "operationName": 5 }),
        json!({ "query": "{ me { id } }", "extensions": "x" }),
        json!("{ me { id } }"),
        json!(null),
        json!(42),
    ];
    for body in &cases {
        for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
            let reply = post_json(&api, accept, body).await;
            assert_request_error(&reply, 400, "INVALID_INPUT");
        }
    }
    // GET without a query (and without asking for HTML) is a request error too.
    let reply = send(api.http.get(api.url("/graphql"))).await;
    assert_request_error(&reply, 400, "INVALID_INPUT");
    api.app.stop().await.expect("stop");
}

/// A syntactically valid request padded with whitespace to exactly `len` bytes.
fn padded_request(len: usize) -> String {
    let head = "{\"query\": \"{ user(username: \\\"nobody\\\") { id } }\"";
    let mut body = String::with_capacity(len);
    body.push_str(head);
    body.push_str(&" ".repeat(len - head.len() - 1));
    body.push('}');
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = TestApp::test_settings(dir.path());
    settings.http.max_body_bytes = 1024;
    let api = common::Api::start_with(settings).await;

    let fits = post_raw(&api, Some("application/json"), None, padded_request(1024)).await;
    assert_eq!(fits.status, 200, "{}", fits.text);

    let too_big = post_raw(&api, Some("application/json"), None, padded_request(1025)).await;
    assert_request_error(&too_big, 413, "INVALID_INPUT");

    // The limit holds for bodies sent without a Content-Length (chunked) as well.
    let (status, _) = post_chunked(&api, &padded_request(2048)).await;
    assert_eq!(status, 413);

    let health = send(api.http.get(api.url("/healthz"))).await;
    assert_eq!(health.status, 200);
    api.app.stop().await.expect("stop");
    drop(dir);
}

/// POSTs `body` with `Transfer-Encoding: chunked` over a raw connection; returns the status and
/// the raw response.
async fn post_chunked(api: &common::Api, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(api.app.addr)
        .await
        .expect("connect");
    let head = "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut request = head.as_bytes().to_vec();
    for chunk in body.as_bytes().chunks(256) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything; a failed write is fine.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

#[tokio::test]
async fn the_default_limit_of_one_mebibyte_rejects_a_body_of_one_and_a_half() {
    let api = common::Api::start().await;
    let reply = post_raw(
        &api,
        Some("application/json"),
        None,
        padded_request(1024 * 1024 + 512 * 1024),
    )
    .await;
    assert_request_error(&reply, 413, "INVALID_INPUT");
    let fits = post_raw(
        &api,
        Some("application/json"),
        None,
        padded_request(1000 * 1000),
    )
    .await;
    assert_eq!(fits.status, 200, "{}", fits.text);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_accept_header_allowing_no_json_type_is_406() {
    let api = common::Api::start().await;
    let body = json!({ "query": "{ me { id } }" });
    for accept in ["image/png", "text/html", "application/xml"] {
        let reply = post_json(&api, Some(accept), &body).await;
        assert_request_error(&reply, 406, "INVALID_INPUT");
    }
    let reply = send(
        api.http
            .get(api.url("/graphql"))
            .query(&[("query", "{ me { id } }")])
            .header(ACCEPT, "image/png"),
    )
    .await;
    assert_request_error(&reply, 406, "INVALID_INPUT");
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn a_browser_get_of_graphql_receives_graphiql() {
    let api = common::Api::start().await;
    let reply = send(api.http.get(api.url("/graphql")).header(
        ACCEPT,
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ))
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/html"));
    assert!(
        reply.text.to_lowercase().contains("graphiql"),
        "{}",
        reply.text
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_with_json() {
    let api = common::Api::start().await;
    let health = send(api.http.get(api.url("/healthz"))).await;
    assert_eq!(health.status, 200);
    assert!(health.content_type().starts_with("application/json"));
    assert_eq!(health.json()["status"], "ok");
    let ready = send(api.http.get(api.url("/readyz"))).await;
    assert_eq!(ready.status, 200);
    assert!(ready.content_type().starts_with("application/json"));
    assert_eq!(ready.json(), json!({ "status": "ready" }));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn metrics_count_requests_by_operation_type_and_time_them() {
    let api = common::Api::start().await;
    let alice = api.register("alice").await;
    for _ in 0..3 {
        api.ok(Some(&alice.access_token), "{ me { id } }", json!({}))
            .await;
    }
    let reply = send(api.http.get(api.url("/metrics"))).await;
    assert_eq!(reply.status, 200);
    let text = &reply.text;
    let counter = text
        .lines()
        .find(|l| {
            l.starts_with("nova_graphql_requests_total{")
                && l.contains("operation_type=\"query\"")
                && l.contains("outcome=\"ok\"")
        })
        .unwrap_or_else(|| panic!("no query counter in:\n{text}"));
    let count: f64 = counter
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("counter value");
    assert!(count >= 3.0, "{counter}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("nova_graphql_requests_total{")
                && l.contains("operation_type=\"mutation\"")),
        "no mutation counter in:\n{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("nova_graphql_request_duration_seconds_bucket{")
                && l.contains("operation_type=\"query\"")
                && l.contains("le=\"")
        ),
        "no duration histogram in:\n{text}"
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_an_incoming_one_is_echoed() {
    let api = common::Api::start().await;
    let requests = [
        api.http
            .post(api.url("/graphql"))
            .json(&json!({ "query": "{ me { id } }" })),
        api.http.post(api.url("/graphql")).body("{"),
        api.http.get(api.url("/graphql")),
        api.http.get(api.url("/healthz")),
        api.http.get(api.url("/readyz")),
        api.http.get(api.url("/metrics")),
        api.http.get(api.url("/no-such-path")),
        api.http.delete(api.url("/graphql")),
    ];
    let mut seen = std::collections::HashSet::new();
    for request in requests {
        let reply = send(request).await;
        let id = reply
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no x-request-id (status {})", reply.status))
            .to_owned();
        assert!(!id.is_empty());
        assert!(seen.insert(id), "request ids repeat");
    }
    let reply = send(
        api.http
            .post(api.url("/graphql"))
            .header("x-request-id", "client-chosen-42")
            .json(&json!({ "query": "{ me { id } }" })),
    )
    .await;
    assert_eq!(
        reply
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("client-chosen-42")
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn every_error_in_every_body_has_a_documented_code() {
    let api = common::Api::start().await;
    let alice = api.register("alice").await;
    let bodies = [
        json!({ "query": "{ me { id } }" }),
        json!({ "query": "{ post(id: \"abc\") { id } }" }),
        json!({ "query": "{ homeFeed(first: -1) { edges { cursor } } }" }),
        json!({ "query": "mutation { follow(userId: \"999999\") { id } }" }),
        json!({ "query": "{ nope }" }),
        json!({ "query": "mutation { signIn(input: {login: \"alice\", password: \"wrong-password\"}) { userId } }" }),
    ];
    let mut errors_seen = 0;
    for body in &bodies {
        for token in [None, Some(alice.access_token.as_str()), Some("garbage")] {
            for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
                let mut request = api.http.post(api.url("/graphql")).json(body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if let Some(accept) = accept {
                    request = request.header(ACCEPT, accept);
                }
                let reply = send(request).await;
                assert!(reply.status < 500, "{body}: {}", reply.text);
                let value = reply.json();
                if value.get("errors").is_some() {
                    errors_seen += 1;
                }
                assert_error_codes(&value);
                assert!(
                    !reply.text.contains("\"INTERNAL\""),
                    "{body}: {}",
                    reply.text
                );
            }
        }
    }
    // Only alice's own `me` succeeds.
    assert_eq!(errors_seen, bodies.len() * 3 * 2 - 2);
    api.app.stop().await.expect("stop");
}
