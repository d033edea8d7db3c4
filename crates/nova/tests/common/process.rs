//! A real `nova` binary as a child process (for crash, restart and multi-node tests), and a
//! small GraphQL client for it. Every node has its own temporary data directory and a port
//! chosen by the kernel (`--listen 127.0.0.1:0`, address read from the JSON "nova listening" log
//! line); dropping a [`Node`] kills it, so a failing test never leaves a server behind.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `nova serve` child process. Dropping it kills the process.
pub struct Node {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Node {
    /// Starts `nova serve` on `data_dir` (default durability settings: synchronous = full) and
    /// waits until it logs the address it listens on.
    pub fn start(data_dir: &Path) -> Node {
        Node::start_with(data_dir, &[])
    }

    /// Like [`Node::start`], with extra `NOVA_*` settings.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nova"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("NOVA_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            // No stray nova.toml from the working directory of the test run.
            .current_dir(data_dir.parent().expect("data dir has a parent"))
            .env("NOVA_AUTH__ARGON2_MEMORY_KIB", "1024")
            .env("NOVA_AUTH__ARGON2_ITERATIONS", "1")
            .env("NOVA_LOG__FILTER", "info")
            // A write storm from one address: the rate limits are not what this test is about.
            .env("NOVA_RATE_LIMIT__ENABLED", "false")
            // The write storm is far above a caller's hourly query cost budget.
            .env("NOVA_GRAPHQL__COST_BUDGET_PER_HOUR", "0")
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nova");

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            sink.lock().expect("stderr lock").push_str(&text);
        });

        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if event["message"] == "nova listening" {
                    if let Some(addr) = event["address"].as_str().and_then(|a| a.parse().ok()) {
                        let _ = tx.send(addr);
                    }
                }
            }
        });

        let mut node = Node {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => node.addr = addr,
            Err(_) => {
                let status = node.child.try_wait().ok().flatten();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "nova did not report its address (exit status {status:?}); stderr:\n{}",
                    node.stderr.lock().expect("stderr lock")
                );
            }
        }
        node
    }

    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for nova") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "nova did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown hooks, no WAL checkpoint, no goodbye.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL nova");
        self.child.wait().expect("reap nova");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client")
}

/// POSTs a GraphQL request; `Err` when no HTTP response came back (e.g. the server died).
pub async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await?;
    Ok((status, body))
}

/// A request that must succeed: returns `data`.
pub async fn ok(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let (status, body) = gql(http, url, token, query, variables)
        .await
        .expect("send request");
    assert_eq!(status, 200, "unexpected status, body: {body}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

/// Acknowledged: HTTP 200 without errors.
pub fn acknowledged(result: &Result<(u16, Value), reqwest::Error>) -> Option<&Value> {
    match result {
        Ok((200, body)) if body.get("errors").is_none() => Some(&body["data"]),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub password: String,
    pub access_token: String,
}

pub async fn register(http: &reqwest::Client, url: &str, username: &str) -> Account {
    let password = format!("password-{username}");
    let data = ok(
        http,
        url,
        None,
        "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken user { id } } }",
        json!({ "u": username, "e": format!("{username}@example.test"), "p": password }),
    )
    .await;
    Account {
        id: data["register"]["user"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
        username: username.to_owned(),
        password,
        access_token: data["register"]["accessToken"]
            .as_str()
            .expect("token")
            .to_owned(),
    }
}

pub async fn create_post(
    http: &reqwest::Client,
    url: &str,
    account: &Account,
    body: &str,
) -> String {
    let data = ok(
        http,
        url,
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
