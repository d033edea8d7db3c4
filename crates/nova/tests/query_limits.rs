//! Query limits through a real server: every cap refused before execution with its exact code,
//! message and status; the cost reported in `extensions.cost`; the per-caller cost budget
//! charged, refunded and exhausted (429); introspection on and off (GraphiQL's query passes);
//! automatic persisted queries over POST and GET; header and variables size bounds.

mod common;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// An HTTP answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("<none>")
    }

    fn message(&self) -> &str {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("<none>")
    }

    fn header(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"));
    Answer {
        status,
        headers,
        body,
    }
}

/// POSTs `body` as JSON, accepting `application/graphql-response+json`.
async fn post(api: &common::Api, token: Option<&str>, body: &Value) -> Answer {
    let mut request = api
        .http
        .post(api.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("send")).await
}

async fn query(api: &common::Api, token: Option<&str>, document: &str) -> Answer {
    post(api, token, &json!({ "query": document })).await
}

fn settings(dir: &std::path::Path) -> nova_app::Settings {
    nova_app::testing::TestApp::test_settings(dir)
}

async fn start(
    configure: impl FnOnce(&mut nova_app::Settings),
) -> (common::Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(dir.path());
    configure(&mut settings);
    (common::Api::start_with(settings).await, dir)
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn aliases(count: usize, field: &str) -> String {
    (0..count)
        .map(|i| format!("a{i}: {field}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_refused(answer: &Answer, status: u16, code: &str, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.code(), code, "{}", answer.body);
    assert_eq!(answer.message(), message, "{}", answer.body);
    assert!(answer.body.get("data").is_none(), "{}", answer.body);
}

#[tokio::test]
async fn every_cap_is_refused_before_execution_with_its_message() {
    let (api, _dir) = start(|_| {}).await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());

    // Depth: 10 levels pass, 11 do not.
    let ten = "{ me { followers(first: 1) { edges { node { followers(first: 1) { edges { node { followers(first: 1) { nodes { id } } } } } } } } } }";
    let ok = query(&api, token, ten).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.get("errors").is_none(), "{}", ok.body);
    let eleven = "{ me { followers { edges { node { followers { edges { node { followers { edges { node { id } } } } } } } } } } }";
    assert_refused(
        &query(&api, token, eleven).await,
        400,
        "INVALID_INPUT",
        "query depth 11 exceeds the maximum of 10",
    );

    // Width: 51 fields at one level.
    let wide = format!("{{ me {{ {} }} }}", aliases(51, "id"));
    assert_refused(
        &query(&api, token, &wide).await,
        400,
        "INVALID_INPUT",
        "a selection set selects 51 fields; at most 50 are allowed at one level",
    );
    // Aliases: 31, spread over two levels, each narrow enough.
    let aliased = format!(
        "{{ me {{ {} }} other: me {{ {} }} }}",
        aliases(15, "id"),
        aliases(15, "username")
    );
    assert_refused(
        &query(&api, token, &aliased).await,
        400,
        "INVALID_INPUT",
        "the query uses 31 aliases; at most 30 are allowed",
    );
    let thirty = format!(
        "{{ me {{ {} }} other: me {{ {} }} }}",
        aliases(15, "id"),
        aliases(14, "username")
    );
    assert_eq!(query(&api, token, &thirty).await.status, 200);
    // Root fields: 21.
    let roots = format!("{{ {} }}", aliases(21, "me { id }"));
    assert_refused(
        &query(&api, token, &roots).await,
        400,
        "INVALID_INPUT",
        "the query selects 21 root fields; at most 20 are allowed",
    );
    // Mutations keep their own cap of 10 root fields.
    let mutations = format!(
        "mutation {{ {} }}",
        aliases(11, "follow(userId: \"1\") { id }")
    );
    let refused = query(&api, token, &mutations).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.code(), "INVALID_INPUT");
    assert!(
        refused.message().contains("at most 10 root fields"),
        "{}",
        refused.body
    );
    // Cost: nested pages multiply, 1 + 1 + 100 × (1 + 1 + 1 + 100).
    let costly = "{ me { followers(first: 100) { edges { node { followers(first: 100) { nodes { id } } } } } } }";
    let refused = query(&api, token, costly).await;
    assert_refused(
        &refused,
        400,
        "INVALID_INPUT",
        "query cost 10302 exceeds the maximum of 500 per request",
    );
    assert_eq!(
        refused.body["extensions"]["cost"]["requestedQueryCost"],
        10302
    );
    assert_eq!(refused.body["extensions"]["cost"]["actualQueryCost"], 0);
    // Batches.
    let batch = post(
        &api,
        token,
        &json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }]),
    )
    .await;
    assert_refused(
        &batch,
        400,
        "INVALID_INPUT",
        "batched requests are not supported; send one operation per request",
    );
    // Fragments are counted as they expand.
    let fragments = format!(
        "{{ ...F }} fragment F on QueryRoot {{ {} }}",
        aliases(21, "me { id }")
    );
    assert_refused(
        &query(&api, token, &fragments).await,
        400,
        "INVALID_INPUT",
        "the query selects 21 root fields; at most 20 are allowed",
    );
    // A fragment explosion is cut short, quickly.
    let mut bomb = String::from("{ ...F0 }");
    for i in 0..25 {
        bomb.push_str(&format!(
            " fragment F{i} on QueryRoot {{ me {{ id }} ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    bomb.push_str(" fragment F25 on QueryRoot { me { id } }");
    let started = std::time::Instant::now();
    let refused = query(&api, token, &bomb).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_refused(
        &refused,
        400,
        "INVALID_INPUT",
        "the query is too large to analyse",
    );
    // A fragment spreading itself twice is refused as a cycle before anything expands it.
    let started = std::time::Instant::now();
    let cycle = query(
        &api,
        token,
        "{ ...A } fragment A on QueryRoot { ...A ...A }",
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_refused(
        &cycle,
        400,
        "INVALID_INPUT",
        "fragment A spreads itself, directly or through other fragments",
    );
    // Unknown fields do not escape the bound.
    let mut unknown = String::from("{ ...F0 }");
    for i in 0..25 {
        unknown.push_str(&format!(
            " fragment F{i} on QueryRoot {{ nope {{ ...F{n} ...F{n} }} }}",
            n = i + 1
        ));
    }
    unknown.push_str(" fragment F25 on QueryRoot { me { id } }");
    let started = std::time::Instant::now();
    let refused = query(&api, token, &unknown).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_refused(
        &refused,
        400,
        "INVALID_INPUT",
        "the query is too large to analyse",
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn caps_are_configurable() {
    let (api, _dir) = start(|s| {
        s.graphql.max_depth = 3;
        s.graphql.max_cost = 20;
        s.graphql.max_aliases = 2;
        s.graphql.max_root_fields = 2;
        s.graphql.max_fields_per_level = 3;
    })
    .await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());
    assert_refused(
        &query(
            &api,
            token,
            "{ me { followers(first: 1) { nodes { id } } } }",
        )
        .await,
        400,
        "INVALID_INPUT",
        "query depth 4 exceeds the maximum of 3",
    );
    assert_refused(
        &query(&api, token, "{ homeFeed(first: 20) { nodes { id } } }").await,
        400,
        "INVALID_INPUT",
        "query cost 21 exceeds the maximum of 20 per request",
    );
    assert_refused(
        &query(&api, token, "{ me { id username bio displayName } }").await,
        400,
        "INVALID_INPUT",
        "a selection set selects 4 fields; at most 3 are allowed at one level",
    );
    assert_refused(
        &query(&api, token, "{ a: me { id } b: me { id } c: me { id } }").await,
        400,
        "INVALID_INPUT",
        "the query uses 3 aliases; at most 2 are allowed",
    );
    assert_refused(
        &query(
            &api,
            token,
            "{ me { id } a: me { id } post(id: \"1\") { id } }",
        )
        .await,
        400,
        "INVALID_INPUT",
        "the query selects 3 root fields; at most 2 are allowed",
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn the_cost_is_reported_and_charged_to_the_account_then_refunded() {
    let (api, _dir) = start(|s| s.graphql.cost_budget_per_hour = 5_000).await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());
    // A mutation costs 10, requested and actual.
    let created = post(
        &api,
        token,
        &json!({ "query": "mutation { createPost(input: {body: \"one\"}) { id } }" }),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let cost = &created.body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 10, "{cost}");
    assert_eq!(cost["actualQueryCost"], 10, "{cost}");
    assert_eq!(cost["remaining"], 4_990, "{cost}");
    api.create_post(&alice, "two").await; // 10 more
                                          // 1 connection + 20 × (edge + post + author) requested; 1 + 2 × 3 returned.
    let feed = query(
        &api,
        token,
        "{ homeFeed(first: 20) { edges { node { id author { username } } } } }",
    )
    .await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    assert_eq!(
        feed.body["data"]["homeFeed"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let cost = &feed.body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 61, "{cost}");
    assert_eq!(cost["actualQueryCost"], 7, "{cost}");
    assert_eq!(cost["maximumQueryCost"], 500, "{cost}");
    assert_eq!(cost["throttleStatus"], "PASS", "{cost}");
    assert_eq!(cost["maximumAvailable"], 5_000, "{cost}");
    // Charged 61 up front, refunded 54 after.
    assert_eq!(cost["remaining"], 5_000 - 10 - 10 - 7, "{cost}");
    assert_eq!(feed.header("x-cost-remaining"), Some(5_000 - 10 - 10 - 7));
    assert_eq!(feed.header("x-cost-limit"), Some(5_000));
    let reset = feed.header("x-cost-reset").expect("X-Cost-Reset");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(reset > now && reset <= now + 3_601, "{reset} vs {now}");
    assert_eq!(cost["resetAt"], reset);
    // `first: 100` costs 100 times.
    let hundred = query(&api, token, "{ homeFeed(first: 100) { nodes { id } } }").await;
    assert_eq!(
        hundred.body["extensions"]["cost"]["requestedQueryCost"],
        101
    );
    assert_eq!(hundred.body["extensions"]["cost"]["actualQueryCost"], 3);
    // Anonymous callers have a budget of their own (per client address).
    let anonymous = query(&api, None, "{ user(username: \"alice\") { id } }").await;
    assert_eq!(
        anonymous.body["extensions"]["cost"]["requestedQueryCost"],
        1
    );
    assert!(anonymous.body["extensions"]["cost"]["remaining"].as_u64() > Some(4_900));
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn an_exhausted_budget_is_a_429_with_retry_after() {
    let (api, _dir) = start(|s| s.graphql.cost_budget_per_hour = 100).await;
    let alice = api.register("alice").await;
    let token = Some(alice.access_token.as_str());
    // Requested 92, actual 2 (no followers): 98 left, then 96.
    let cheap = "{ me { followers(first: 90) { nodes { id } } } }";
    for remaining in [98, 96] {
        let ok = query(&api, token, cheap).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(ok.body["extensions"]["cost"]["remaining"], remaining);
        assert_eq!(ok.header("x-cost-remaining"), Some(remaining));
    }
    // 102 requested, 96 left.
    let refused = query(
        &api,
        token,
        "{ me { followers(first: 100) { nodes { id } } } }",
    )
    .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.code(), "RATE_LIMITED");
    assert_eq!(
        refused.message(),
        format!(
            "query cost 102 exceeds the 96 points left in this window; retry in {} s",
            refused.header("retry-after").expect("Retry-After")
        )
    );
    let retry_after = refused.header("retry-after").expect("Retry-After");
    assert!(retry_after > 3_000 && retry_after <= 3_600, "{retry_after}");
    assert_eq!(refused.header("x-cost-remaining"), Some(96));
    assert_eq!(
        refused.body["extensions"]["cost"]["throttleStatus"],
        "THROTTLED"
    );
    assert_eq!(
        refused.body["extensions"]["cost"]["requestedQueryCost"],
        102
    );
    assert!(refused.body.get("data").is_none());
    // Nothing was charged for the refusal; a cheaper query still fits.
    let ok = query(&api, token, "{ me { id } }").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["extensions"]["cost"]["remaining"], 95);
    // Another account is unaffected.
    let bob = api.register("bob").await;
    let ok = query(
        &api,
        Some(&bob.access_token),
        "{ me { followers(first: 98) { nodes { id } } } }",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    api.app.stop().await.expect("stop");
}

/// The query GraphiQL sends (graphql-js `getIntrospectionQuery`), its `TypeRef` chain nine
/// `ofType`s deep as in recent versions.
const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) {
        name description
        args { ...InputValue }
        type { ...TypeRef }
        isDeprecated deprecationReason
      }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue {
      name description
      type { ...TypeRef }
      defaultValue
    }
    fragment TypeRef on __Type {
      kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name
          ofType { kind name } } } } } } } } }
    }
"#;

#[tokio::test]
async fn graphiqls_introspection_query_passes_and_introspection_can_be_turned_off() {
    let (api, _dir) = start(|_| {}).await;
    let answer = post(
        &api,
        None,
        &json!({ "query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery" }),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("errors").is_none(), "{}", answer.body);
    assert_eq!(
        answer.body["data"]["__schema"]["queryType"]["name"],
        "QueryRoot"
    );
    assert!(answer.body["data"]["__schema"]["types"]
        .as_array()
        .is_some_and(|t| t.len() > 10));
    // Introspection is free.
    assert_eq!(answer.body["extensions"]["cost"]["requestedQueryCost"], 0);
    api.app.stop().await.expect("stop");

    let (api, _dir) = start(|s| s.graphql.introspection = false).await;
    let answer = post(
        &api,
        None,
        &json!({ "query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery" }),
    )
    .await;
    assert!(
        answer.body["data"]["__schema"].is_null(),
        "introspection must be off: {}",
        answer.body
    );
    let typed = query(&api, None, "{ __type(name: \"User\") { name } }").await;
    assert!(typed.body["data"]["__type"].is_null(), "{}", typed.body);
    // Ordinary queries still work.
    let ok = query(&api, None, "{ user(username: \"nobody\") { id } }").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.get("errors").is_none(), "{}", ok.body);
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn persisted_queries_register_then_run_by_hash_over_post_and_get() {
    let (api, _dir) = start(|_| {}).await;
    let document = "query Named($u: String) { user(username: $u) { username } }";
    let hash = sha256(document);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    // Unknown hash: Apollo's PersistedQueryNotFound, so the client resends the query.
    let missing = post(
        &api,
        None,
        &json!({ "extensions": extensions, "variables": { "u": "x" } }),
    )
    .await;
    assert_refused(&missing, 400, "INVALID_INPUT", "PersistedQueryNotFound");
    assert_eq!(
        missing.body["errors"][0]["extensions"]["persistedQuery"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // Under application/json it is a 200, as Apollo clients expect.
    let legacy = api
        .http
        .post(api.url("/graphql"))
        .json(&json!({ "extensions": extensions }))
        .send()
        .await
        .expect("send");
    let legacy = answer(legacy).await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.message(), "PersistedQueryNotFound");

    // A hash that is not the query's SHA-256 is refused and remembers nothing.
    let wrong =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256("{ me { id } }") } });
    let mismatch = post(
        &api,
        None,
        &json!({ "query": document, "extensions": wrong }),
    )
    .await;
    assert_refused(
        &mismatch,
        400,
        "INVALID_INPUT",
        "provided sha does not match query",
    );
    let still_missing = post(&api, None, &json!({ "extensions": wrong })).await;
    assert_eq!(still_missing.message(), "PersistedQueryNotFound");

    // Register with the full query, then send the hash alone.
    let alice = api.register("alice").await;
    let registered = post(
        &api,
        None,
        &json!({ "query": document, "extensions": extensions, "variables": { "u": "alice" } }),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    assert_eq!(registered.body["data"]["user"]["username"], "alice");
    let by_hash = post(
        &api,
        None,
        &json!({ "extensions": extensions, "variables": { "u": alice.username } }),
    )
    .await;
    assert_eq!(by_hash.status, 200, "{}", by_hash.body);
    assert_eq!(by_hash.body["data"]["user"]["username"], "alice");
    // The hash is case-insensitive hex.
    let upper = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash.to_uppercase() } });
    let by_upper = post(
        &api,
        None,
        &json!({ "extensions": upper, "variables": { "u": "alice" } }),
    )
    .await;
    assert_eq!(
        by_upper.body["data"]["user"]["username"], "alice",
        "{}",
        by_upper.body
    );

    // GET, as Apollo clients send hashed queries.
    let get = api
        .http
        .get(api.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .query(&[
            ("extensions", extensions.to_string()),
            ("variables", json!({ "u": "alice" }).to_string()),
        ])
        .send()
        .await
        .expect("send");
    let get = answer(get).await;
    assert_eq!(get.status, 200, "{}", get.body);
    assert_eq!(get.body["data"]["user"]["username"], "alice");
    // GET with an unknown hash, and GET registering a new query.
    let other = "{ user(username: \"alice\") { id } }";
    let other_ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(other) } });
    let get_missing = api
        .http
        .get(api.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .query(&[("extensions", other_ext.to_string())])
        .send()
        .await
        .expect("send");
    assert_refused(
        &answer(get_missing).await,
        400,
        "INVALID_INPUT",
        "PersistedQueryNotFound",
    );
    let get_register = api
        .http
        .get(api.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .query(&[
            ("query", other.to_owned()),
            ("extensions", other_ext.to_string()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(answer(get_register).await.status, 200);
    let again = post(&api, None, &json!({ "extensions": other_ext })).await;
    assert_eq!(
        again.body["data"]["user"]["id"],
        alice.id.as_str(),
        "{}",
        again.body
    );

    // A malformed extension is a plain request error.
    let bad = post(
        &api,
        None,
        &json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
    )
    .await;
    assert_refused(
        &bad,
        400,
        "INVALID_INPUT",
        "persistedQuery.version must be 1",
    );
    api.app.stop().await.expect("stop");
}

#[tokio::test]
async fn oversized_variables_and_headers_are_refused() {
    let (api, _dir) = start(|_| {}).await;
    let document = "query($u: String) { user(username: $u) { id } }";
    let big = "x".repeat(64 * 1024);
    let refused = post(
        &api,
        None,
        &json!({ "query": document, "variables": { "u": big } }),
    )
    .await;
    assert_refused(
        &refused,
        413,
        "INVALID_INPUT",
        "variables exceed 65536 bytes",
    );
    let fits = "x".repeat(60 * 1024);
    let ok = post(
        &api,
        None,
        &json!({ "query": document, "variables": { "u": fits } }),
    )
    .await;
    assert!(ok.status < 500 && ok.status != 413, "{}", ok.body);

    let refused = api
        .http
        .post(api.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .header("x-padding-a", "y".repeat(20 * 1024))
        .header("x-padding-b", "y".repeat(20 * 1024))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("send");
    let refused = answer(refused).await;
    assert_refused(
        &refused,
        431,
        "INVALID_INPUT",
        "request headers exceed 32768 bytes",
    );
    let ok = api
        .http
        .post(api.url("/graphql"))
        .header("x-padding-a", "y".repeat(20 * 1024))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    api.app.stop().await.expect("stop");
}
