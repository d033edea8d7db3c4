//! `nova-bench fanout`: publish → deliver latency of live subscriptions.
//!
//! Registers one author and N subscribers on a running node, has every subscriber follow the
//! author, opens one WebSocket per subscriber (`graphql-transport-ws`, `homeFeed`), then the
//! author creates posts at a fixed rate. Each post body carries the wall-clock time (µs) just
//! before its `createPost` request was sent; each socket records `receive time - that time`,
//! so a latency covers the whole path: mutation commit, outbox relay, bus, live hub routing
//! (one follower query per post), per-subscriber queue and socket write. Client and server share
//! the machine's clock (and its cores).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

pub struct FanoutArgs {
    pub url: String,
    pub sockets: usize,
    pub posts: usize,
    pub rate: f64,
    pub server_pid: Option<u32>,
}

fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = http
        .post(format!("{url}/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    anyhow::ensure!(body.get("errors").is_none(), "graphql errors: {body}");
    Ok(body["data"].clone())
}

async fn register(
    http: &reqwest::Client,
    url: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let data = gql(
        http,
        url,
        None,
        "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { accessToken user { id } } }",
        json!({"u": name, "e": format!("{name}@bench.test"), "p": format!("password-{name}")}),
    )
    .await?;
    Ok((
        data["register"]["user"]["id"]
            .as_str()
            .context("id")?
            .to_owned(),
        data["register"]["accessToken"]
            .as_str()
            .context("token")?
            .to_owned(),
    ))
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_socket(url: &str, token: &str) -> anyhow::Result<Socket> {
    let ws_url = format!("{}/graphql", url.replacen("http://", "ws://", 1));
    let mut request = ws_url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => anyhow::anyhow!(
                "upgrade refused: {} {}",
                response.status(),
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
            ),
            other => other.into(),
        })?;
    socket
        .send(Message::Text(
            json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})
                .to_string()
                .into(),
        ))
        .await?;
    socket
        .send(Message::Text(
            json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { homeFeed { post { body } missedEvents } }"}})
                .to_string()
                .into(),
        ))
        .await?;
    socket
        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await?;
    // Wait for the pong: the subscription is registered by then.
    while let Some(message) = socket.next().await {
        if let Message::Text(text) = message? {
            let value: Value = serde_json::from_str(text.as_str())?;
            if value["type"] == "pong" {
                return Ok(socket);
            }
        }
    }
    anyhow::bail!("socket closed during the handshake")
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let url = args.url.trim_end_matches('/').to_owned();
    let run = format!("{:x}", rand::random::<u32>());
    let (author_id, author_token) = register(&http, &url, &format!("fa_{run}")).await?;
    eprintln!("registering {} subscribers", args.sockets);
    let mut tokens = Vec::with_capacity(args.sockets);
    let registered: Vec<anyhow::Result<String>> = futures::stream::iter(0..args.sockets)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            let author_id = author_id.clone();
            let name = format!("fs_{run}_{i}");
            async move {
                let (_, token) = register(&http, &url, &name).await?;
                gql(
                    &http,
                    &url,
                    Some(&token),
                    "mutation($id: ID!) { follow(userId: $id) { id } }",
                    json!({"id": author_id}),
                )
                .await?;
                Ok(token)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for token in registered {
        tokens.push(token?);
    }
    eprintln!("opening {} sockets", args.sockets);
    let sockets: Vec<anyhow::Result<Socket>> = futures::stream::iter(tokens.iter())
        .map(|token| open_socket(&url, token))
        .buffer_unordered(32)
        .collect()
        .await;
    let histogram = Arc::new(std::sync::Mutex::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?,
    ));
    let missed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for socket in sockets {
        let mut socket = socket?;
        let histogram = histogram.clone();
        let missed = missed.clone();
        let expected = args.posts;
        readers.push(tokio::spawn(async move {
            let mut got = 0usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
            while got < expected {
                let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await
                else {
                    break;
                };
                let received = now_micros();
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if value["type"] != "next" {
                    continue;
                }
                let update = &value["payload"]["data"]["homeFeed"];
                if let Some(n) = update["missedEvents"].as_u64().filter(|n| *n > 0) {
                    missed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    got += n as usize;
                    continue;
                }
                let sent: i64 = update["post"]["body"]
                    .as_str()
                    .and_then(|b| b.strip_prefix("t="))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(received);
                if let Ok(mut h) = histogram.lock() {
                    let _ = h.record(u64::try_from(received - sent).unwrap_or(0).max(1));
                }
                got += 1;
            }
            let _ = socket.close(None).await;
            got
        }));
    }
    eprintln!("publishing {} posts at {}/s", args.posts, args.rate);
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut mutation =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    for i in 0..args.posts {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + interval * i as u32,
        ))
        .await;
        let sent = Instant::now();
        gql(
            &http,
            &url,
            Some(&author_token),
            "mutation($b: String!) { createPost(input: {body: $b}) { id } }",
            json!({"b": format!("t={}", now_micros())}),
        )
        .await?;
        let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = mutation.record(took.max(1));
    }
    let mut delivered = 0usize;
    for reader in readers {
        delivered += reader.await.context("reader")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, args.server_pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let h = histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock"))?;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({
        "sockets": args.sockets,
        "posts": args.posts,
        "rate_per_s": args.rate,
        "expected_deliveries": args.sockets * args.posts,
        "delivered": h.len(),
        "missed_reported": missed.load(std::sync::atomic::Ordering::Relaxed),
        "accounted": delivered,
        "deliveries_per_s": h.len() as f64 / elapsed,
        "p50_ms": ms(0.5),
        "p90_ms": ms(0.9),
        "p99_ms": ms(0.99),
        "max_ms": h.max() as f64 / 1000.0,
        "create_post_p50_ms": mutation.value_at_quantile(0.5) as f64 / 1000.0,
        "create_post_p99_ms": mutation.value_at_quantile(0.99) as f64 / 1000.0,
        "server_cpu_seconds": cpu,
        "server_cores_used": cpu.map(|c| c / elapsed),
        "elapsed_s": elapsed,
    }))
}
