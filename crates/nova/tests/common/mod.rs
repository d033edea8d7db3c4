//! Shared helpers for tests that talk to a real Nova server over HTTP.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

pub mod logs;
pub mod process;
pub mod ws;

use nova_app::testing::TestApp;
use serde_json::{json, Value};

/// A server on 127.0.0.1:0 plus an HTTP client.
pub struct Api {
    pub app: TestApp,
    pub http: reqwest::Client,
}

/// A registered account: its id, username and tokens.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Api {
    pub async fn start() -> Api {
        let app = TestApp::spawn().await.expect("spawn test app");
        Api {
            app,
            http: reqwest::Client::new(),
        }
    }

    pub async fn start_with(settings: nova_app::Settings) -> Api {
        let app = TestApp::spawn_with(settings).await.expect("spawn test app");
        Api {
            app,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// POSTs a GraphQL request and returns the HTTP status and the JSON body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send request");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.expect("JSON body");
        (status, body)
    }

    /// Runs an operation that must succeed; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(token, query, variables).await;
        assert_eq!(status, 200, "unexpected status, body: {body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs an operation that must fail; returns the first error's `extensions.code`.
    pub async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let (_, body) = self.post(token, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code, got {body}"))
            .to_owned()
    }

    /// Registers `username` (email `<username>@example.test`, password `password-<username>`).
    pub async fn register(&self, username: &str) -> Account {
        let data = self
            .ok(
                None,
                "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken refreshToken user { id username } } }",
                json!({ "u": username, "e": format!("{username}@example.test"), "p": format!("password-{username}") }),
            )
            .await;
        let payload = &data["register"];
        Account {
            id: payload["user"]["id"].as_str().expect("id").to_owned(),
            username: payload["user"]["username"]
                .as_str()
                .expect("username")
                .to_owned(),
            access_token: payload["accessToken"]
                .as_str()
                .expect("access token")
                .to_owned(),
            refresh_token: payload["refreshToken"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        }
    }

    /// Creates a post as `account` and returns its id.
    pub async fn create_post(&self, account: &Account, body: &str) -> String {
        let data = self
            .ok(
                Some(&account.access_token),
                "mutation($b: String!) { createPost(input: {body: $b}) { id } }",
                json!({ "b": body }),
            )
            .await;
        data["createPost"]["id"]
            .as_str()
            .expect("post id")
            .to_owned()
    }

    /// `account` follows the account with id `target`.
    pub async fn follow(&self, account: &Account, target: &str) {
        self.ok(
            Some(&account.access_token),
            "mutation($id: ID!) { follow(userId: $id) { id } }",
            json!({ "id": target }),
        )
        .await;
    }
}

/// The sum of every sample of Prometheus metric lines starting with `prefix` (a name, or a name
/// with its label set) in a `/metrics` text.
pub fn metric_sum(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
