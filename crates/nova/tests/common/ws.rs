//! A minimal `graphql-transport-ws` client for tests, over tokio-tungstenite.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub struct WsClient {
    pub socket: WebSocketStream<TcpStream>,
}

/// What the server sent next.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(u16, String),
}

impl WsClient {
    /// Connects to `/graphql` asking for `protocol`; `recv_buffer` shrinks the client's socket
    /// receive buffer (to make a client that stops reading back-pressure the server quickly).
    pub async fn connect_with(
        base_url: &str,
        protocol: &str,
        recv_buffer: Option<u32>,
    ) -> WsClient {
        let url = format!("{}/graphql", base_url.replacen("http://", "ws://", 1));
        let mut request = url.as_str().into_client_request().expect("request");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host")
            .parse::<std::net::SocketAddr>()
            .expect("address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("recv buffer");
        }
        let tcp = socket.connect(addr).await.expect("connect");
        let (socket, response) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("websocket handshake");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server echoes the subprotocol"
        );
        WsClient { socket }
    }

    pub async fn connect(base_url: &str) -> WsClient {
        Self::connect_with(base_url, "graphql-transport-ws", None).await
    }

    pub async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("send");
    }

    /// The next protocol message or the close frame, within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(Frame::Json(
                        serde_json::from_str(text.as_str()).expect("json"),
                    ))
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Some(Frame::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Frame::Closed(1006, String::new())),
            }
        }
    }

    pub async fn recv_json(&mut self, wait: Duration) -> Value {
        match self.recv(wait).await {
            Some(Frame::Json(v)) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self, wait: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Some(Frame::Closed(code, reason)) => return (code, reason),
                Some(Frame::Json(_)) => continue,
                None => panic!("the socket stayed open"),
            }
        }
    }

    /// `connection_init` with the token; expects `connection_ack`.
    pub async fn init(&mut self, token: &str) {
        self.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
            .await;
        let ack = self.recv_json(Duration::from_secs(5)).await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next `next` payload of operation `id` (skipping pongs and other operations' items).
    pub async fn next_of(&mut self, id: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await? {
                Frame::Json(v) if v["id"] == id && v["type"] == "next" => {
                    assert!(
                        v["payload"].get("errors").is_none(),
                        "operation failed: {v}"
                    );
                    return Some(v["payload"]["data"].clone());
                }
                Frame::Json(v) if v["id"] == id && v["type"] == "error" => {
                    panic!("operation failed: {v}")
                }
                Frame::Json(_) => continue,
                Frame::Closed(code, reason) => panic!("socket closed {code} {reason}"),
            }
        }
    }
}
