//! The `nova` command line as an operator meets it: `config check` (merge order, redaction,
//! unknown keys), `migrate`, start-up refusals, and the JSON request log of `serve`.
//!
//! Every test runs the real binary as a child process in its own temporary directory (so no
//! stray `nova.toml` or `NOVA_*` variable of the test run leaks in). Servers listen on a port
//! chosen by the kernel and are killed by a guard if the test fails.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A `nova` command in `dir`, without inherited `NOVA_*` variables, with cheap password hashing.
fn nova(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nova"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NOVA_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .env("NOVA_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("NOVA_AUTH__ARGON2_ITERATIONS", "1")
        .stdin(Stdio::null());
    command
}

/// Runs a command that is expected to exit on its own, killing it after 30 s.
fn run(command: &mut Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nova");
    let mut guard = Guard(child);
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(guard.0.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(guard.0.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait for nova") {
            break status;
        }
        assert!(Instant::now() < deadline, "nova did not exit within 30 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kills the child when dropped (a no-op once it has exited and been reaped).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// `nova config check` in `dir` with extra arguments and environment.
fn config_check(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = nova(dir);
    command.args(args).args(["config", "check"]);
    for (key, value) in env {
        command.env(key, value);
    }
    run(&mut command)
}

/// The value of `key = ...` in the printed TOML (first occurrence).
fn toml_value(printed: &str, key: &str) -> Option<String> {
    printed.lines().find_map(|line| {
        let (k, v) = line.split_once(" = ")?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-do-not-print-me";

#[test]
fn config_check_prints_the_merged_configuration_with_the_jwt_secret_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("custom.toml");
    std::fs::write(
        &file,
        format!("[auth]\njwt_secret = \"{SECRET}\"\n[http]\nrequest_timeout_ms = 1234\n"),
    )
    .expect("write config");

    let output = config_check(dir.path(), &["--config", "custom.toml"], &[]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "exit {}: {stderr}", output.status);
    assert_eq!(
        toml_value(&stdout, "jwt_secret").as_deref(),
        Some("\"<redacted>\""),
        "{stdout}"
    );
    assert_eq!(
        toml_value(&stdout, "request_timeout_ms").as_deref(),
        Some("1234")
    );
    assert!(!stdout.contains("do-not-print-me"), "{stdout}");
    assert!(!stderr.contains("do-not-print-me"), "{stderr}");
    assert!(
        stdout.parse::<toml::Table>().is_ok(),
        "the output is valid TOML"
    );

    // The same through the environment.
    let output = config_check(dir.path(), &[], &[("NOVA_AUTH__JWT_SECRET", SECRET)]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        toml_value(&stdout, "jwt_secret").as_deref(),
        Some("\"<redacted>\"")
    );
    assert!(!stdout.contains("do-not-print-me"), "{stdout}");
}

#[test]
fn config_check_without_a_secret_prints_no_jwt_secret_and_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = config_check(dir.path(), &[], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(toml_value(&stdout, "jwt_secret"), None, "{stdout}");
    assert_eq!(
        toml_value(&stdout, "synchronous").as_deref(),
        Some("\"full\""),
        "durable commits are the default"
    );
}

#[test]
fn an_unknown_key_in_the_config_file_fails_and_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("nova.toml"),
        "[http]\nlisten = \"127.0.0.1:0\"\nmax_bodee_bytes = 10\n",
    )
    .expect("write config");
    // Found implicitly in the working directory…
    let output = config_check(dir.path(), &[], &[]);
    assert!(!output.status.success(), "unknown key must fail");
    assert!(
        text(&output.stderr).contains("max_bodee_bytes"),
        "{}",
        text(&output.stderr)
    );
    // …and given explicitly.
    let output = config_check(dir.path(), &["--config", "nova.toml"], &[]);
    assert!(!output.status.success(), "unknown key must fail");
    assert!(
        text(&output.stderr).contains("max_bodee_bytes"),
        "{}",
        text(&output.stderr)
    );
    // Unknown sections too.
    std::fs::write(dir.path().join("nova.toml"), "[htp]\nlisten = \"x\"\n").expect("write");
    let output = config_check(dir.path(), &[], &[]);
    assert!(!output.status.success(), "unknown section must fail");
    assert!(
        text(&output.stderr).contains("htp"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn an_unknown_nova_environment_variable_fails_and_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = config_check(dir.path(), &[], &[("NOVA_HTTP__LISTN", "127.0.0.1:1")]);
    assert!(!output.status.success(), "unknown variable must fail");
    let stderr = text(&output.stderr).to_lowercase();
    assert!(stderr.contains("listn"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing is printed on failure");
}

#[test]
fn environment_variables_beat_the_file_and_flags_beat_environment_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("nova.toml"),
        "data_dir = \"from-file\"\n[http]\nmax_body_bytes = 1000\nlisten = \"127.0.0.1:1111\"\nrequest_timeout_ms = 4242\n[log]\nformat = \"text\"\n",
    )
    .expect("write config");
    let env = [
        ("NOVA_HTTP__MAX_BODY_BYTES", "54321"),
        ("NOVA_HTTP__LISTEN", "127.0.0.1:2222"),
        ("NOVA_DATA_DIR", "from-env"),
        ("NOVA_LOG__FORMAT", "text"),
    ];

    let output = config_check(dir.path(), &[], &env);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(
        toml_value(&stdout, "max_body_bytes").as_deref(),
        Some("54321")
    );
    assert_eq!(
        toml_value(&stdout, "listen").as_deref(),
        Some("\"127.0.0.1:2222\"")
    );
    assert_eq!(
        toml_value(&stdout, "data_dir").as_deref(),
        Some("\"from-env\"")
    );
    assert_eq!(
        toml_value(&stdout, "request_timeout_ms").as_deref(),
        Some("4242"),
        "keys the environment does not set keep the file's value"
    );

    let output = config_check(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:3333",
            "--data-dir",
            "from-flag",
            "--log-format",
            "json",
        ],
        &env,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(
        toml_value(&stdout, "listen").as_deref(),
        Some("\"127.0.0.1:3333\"")
    );
    assert_eq!(
        toml_value(&stdout, "data_dir").as_deref(),
        Some("\"from-flag\"")
    );
    assert_eq!(toml_value(&stdout, "format").as_deref(), Some("\"json\""));
    assert_eq!(
        toml_value(&stdout, "max_body_bytes").as_deref(),
        Some("54321")
    );
}

#[test]
fn config_check_rejects_a_node_id_outside_0_to_1023() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = config_check(dir.path(), &[], &[("NOVA_NODE_ID", "1024")]);
    assert!(!output.status.success(), "node_id 1024 must be refused");
    assert!(
        text(&output.stderr).contains("node_id"),
        "{}",
        text(&output.stderr)
    );
    let output = config_check(dir.path(), &[], &[("NOVA_NODE_ID", "1023")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        toml_value(&text(&output.stdout), "node_id").as_deref(),
        Some("1023")
    );
}

#[test]
fn a_missing_explicit_config_file_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = config_check(dir.path(), &["--config", "missing.toml"], &[]);
    assert!(!output.status.success(), "a missing --config must fail");
    assert!(
        text(&output.stderr).contains("missing.toml"),
        "{}",
        text(&output.stderr)
    );

    let mut serve = nova(dir.path());
    serve.args([
        "--config",
        "missing.toml",
        "--listen",
        "127.0.0.1:0",
        "serve",
    ]);
    let output = run(&mut serve);
    assert!(!output.status.success(), "serve with a missing --config");
}

#[test]
fn serve_refuses_a_configured_jwt_secret_shorter_than_32_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("short.toml"),
        "[auth]\njwt_secret = \"only-31-bytes-long-0123456789ab\"\n",
    )
    .expect("write config");
    let mut command = nova(dir.path());
    command.args([
        "--config",
        "short.toml",
        "--data-dir",
        "data",
        "--listen",
        "127.0.0.1:0",
        "serve",
    ]);
    let output = run(&mut command);
    assert!(!output.status.success(), "a short secret must be refused");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("32 bytes"), "{stderr}");
    assert!(
        !stderr.contains("only-31-bytes-long"),
        "the secret itself is not printed: {stderr}"
    );

    // `config check` catches it before anyone tries to serve.
    let output = config_check(dir.path(), &["--config", "short.toml"], &[]);
    assert!(
        !output.status.success(),
        "config check accepts a short secret"
    );
    assert!(
        text(&output.stderr).contains("32 bytes"),
        "{}",
        text(&output.stderr)
    );
    assert!(!text(&output.stderr).contains("only-31-bytes-long"));

    // Through the environment as well.
    let mut command = nova(dir.path());
    command.env("NOVA_AUTH__JWT_SECRET", "short").args([
        "--data-dir",
        "data",
        "--listen",
        "127.0.0.1:0",
        "serve",
    ]);
    let output = run(&mut command);
    assert!(!output.status.success(), "a short secret must be refused");
    assert!(
        text(&output.stderr).contains("32 bytes"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn migrate_creates_the_database_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("fresh").join("data");
    for attempt in 0..2 {
        let mut command = nova(dir.path());
        command.arg("--data-dir").arg(&data).arg("migrate");
        let output = run(&mut command);
        assert!(
            output.status.success(),
            "migrate #{attempt} failed: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        assert!(data.join("nova.db").is_file(), "nova.db after migrate");
    }
}

/// A `nova serve` child whose stdout lines are collected. Killed when dropped.
struct Server {
    guard: Guard,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    stdout_done: mpsc::Receiver<()>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let child = nova(dir)
            .args([
                "--data-dir",
                "data",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "serve",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nova serve");
        let mut guard = Guard(child);
        let stdout = guard.0.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if event["message"] == "nova listening" {
                        if let Some(addr) = event["address"].as_str().and_then(|a| a.parse().ok()) {
                            let _ = addr_tx.send(addr);
                        }
                    }
                }
                sink.lock().expect("lines").push(line);
            }
            let _ = done_tx.send(());
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("nova serve logs the address it listens on");
        Server {
            guard,
            addr,
            lines,
            stdout_done: done_rx,
        }
    }

    /// SIGTERM, then waits for the exit and for the last log line.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.guard.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.guard.0.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "nova ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = self.stdout_done.recv_timeout(Duration::from_secs(5));
        let lines = std::mem::take(&mut *self.lines.lock().expect("lines"));
        (status, lines)
    }
}

#[tokio::test]
async fn serve_writes_one_json_log_line_per_graphql_request_without_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let url = format!("http://{}/graphql", server.addr);
    let http = reqwest::Client::new();

    let password = "hunter2-correct-horse";
    let email = "carol.logcheck@example.test";
    // (request id from the response header, operation type, expected outcome, operation name)
    let mut sent: Vec<(String, &str, String, &str)> = Vec::new();

    let send = |body: Value, token: Option<String>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let mut request = http.post(&url).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("send");
            let request_id = response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .expect("x-request-id header")
                .to_owned();
            let body: Value = response.json().await.expect("json body");
            (request_id, body)
        }
    };

    let (id, body) = send(
        json!({
            "query": "mutation Register($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken refreshToken } }",
            "operationName": "Register",
            "variables": { "u": "carol", "e": email, "p": password },
        }),
        None,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let access = body["data"]["register"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let refresh = body["data"]["register"]["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    sent.push((id, "mutation", "OK".into(), "Register"));

    let (id, body) = send(
        json!({
            "query": "mutation SignIn($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken } }",
            "operationName": "SignIn",
            "variables": { "l": email, "p": password },
        }),
        None,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    sent.push((id, "mutation", "OK".into(), "SignIn"));

    let (id, body) = send(
        json!({ "query": "query Me { me { username email } }", "operationName": "Me" }),
        Some(access.clone()),
    )
    .await;
    assert_eq!(body["data"]["me"]["email"], email);
    sent.push((id, "query", "OK".into(), "Me"));

    let (id, body) = send(
        json!({
            "query": "mutation BadSignIn($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken } }",
            "operationName": "BadSignIn",
            "variables": { "l": email, "p": "wrong-password-zebra" },
        }),
        None,
    )
    .await;
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .expect("error code")
        .to_owned();
    assert_ne!(code, "OK");
    sent.push((id, "mutation", code, "BadSignIn"));

    let bogus = "not.a-real.token-zzz";
    let (id, _) = send(json!({ "query": "{ me { id } }" }), Some(bogus.to_owned())).await;
    sent.push((id, "unknown", "UNAUTHENTICATED".into(), "-"));

    let (status, lines) = server.terminate();
    assert!(status.success(), "exit {status}");

    let all = lines.join("\n");
    for secret in [
        password,
        "wrong-password-zebra",
        email,
        "carol.logcheck",
        access.as_str(),
        refresh.as_str(),
        bogus,
    ] {
        assert!(!all.contains(secret), "the log contains {secret:?}:\n{all}");
    }

    let requests: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("every line is JSON"))
        .filter(|event| event["message"] == "graphql request")
        .collect();
    assert_eq!(requests.len(), sent.len(), "one line per request:\n{all}");
    for (request_id, operation_type, outcome, operation_name) in &sent {
        let matching: Vec<&Value> = requests
            .iter()
            .filter(|e| e["request_id"] == request_id.as_str())
            .collect();
        assert_eq!(matching.len(), 1, "request {request_id}:\n{all}");
        let event = matching[0];
        assert_eq!(event["operation_name"], *operation_name, "{event}");
        assert_eq!(event["operation_type"], *operation_type, "{event}");
        assert_eq!(event["outcome"], outcome.as_str(), "{event}");
        assert!(
            event["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
            "{event}"
        );
    }
}
