//! GraphQL over WebSocket: the `graphql-transport-ws` protocol (and the legacy
//! `subscriptions-transport-ws`, named `graphql-ws`), on the same `/graphql` path.
//!
//! async-graphql runs the protocol; this module adds what it leaves to the server:
//! - authentication in `connection_init` (payload `{"authorization": "Bearer <token>"}` or
//!   `{"token": "<token>"}`, or the upgrade request's `Authorization` header), refused with
//!   close code 4403 (Forbidden) as the protocol recommends;
//! - 4408 when no `connection_init` arrives within the init timeout, 4401 for an operation
//!   before the handshake;
//! - access-token expiry: at the token's `exp` the socket is closed with 4403 unless the client
//!   refreshed it by sending `{"type":"ping","payload":{"token":"<new token>"}}` for the same
//!   account (the pong says `{"refreshed": true, "expiresAt": ...}`);
//! - frame and message size caps, and a connection gauge.
//!
//! A client that stops reading blocks only its own socket task: its subscriptions stop being
//! polled, their queues fill and overflow (counted, and reported to the client when it resumes),
//! while every other socket is served by its own task.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use nova_core::Viewer;

use crate::SharedState;

/// How long a client may take to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message a client may send (operations are small; this is far above any real one).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Bytes read from a socket at a time.
const READ_BUFFER_BYTES: usize = 4 * 1024;

const FORBIDDEN: u16 = 4403;
const UNAUTHORIZED: u16 = 4401;
const INIT_TIMEOUT_CODE: u16 = 4408;

/// Whether a request asks to upgrade to WebSocket.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The `exp` claim of a JWT, read after the authenticator verified it.
fn token_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// The token of a `Bearer <token>` credential.
fn strip_bearer(value: &str) -> Option<String> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|t| t.trim().to_owned())
}

fn bearer_from_header(headers: &HeaderMap) -> Option<String> {
    strip_bearer(
        headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?,
    )
}

/// `{"token": "<token>"}` or `{"authorization": "Bearer <token>"}`.
fn bearer_from_payload(payload: &serde_json::Value) -> Option<String> {
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str());
    if let Some(token) = field("token") {
        return Some(token.trim().to_owned());
    }
    strip_bearer(field("authorization").or_else(|| field("Authorization"))?)
}

fn now_secs() -> i64 {
    nova_core::now_millis() / 1000
}

/// State shared by one socket's protocol callbacks and its writer loop.
struct Session {
    viewer: std::sync::Mutex<Option<Viewer>>,
    /// Unix seconds after which the socket is closed: the init deadline, then the token's expiry.
    deadline: AtomicI64,
    initialized: AtomicBool,
    auth_refused: AtomicBool,
}

pub(crate) fn upgrade(state: SharedState, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let requested = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let protocol = requested
        .split(',')
        .map(str::trim)
        .find_map(|p| p.parse::<WebSocketProtocols>().ok());
    let Some(protocol) = protocol else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "errors": [{"message": "WebSocket requires the graphql-transport-ws subprotocol",
                            "extensions": {"code": "INVALID_INPUT"}}]
            })),
        )
            .into_response();
    };
    let header_token = bearer_from_header(&headers);
    ws.protocols(["graphql-transport-ws", "graphql-ws"])
        // tungstenite zero-fills up to this many bytes of its read buffer on every poll of the
        // socket; clients send small messages, and at the 128 KiB default this memset was a
        // third of the CPU of a 1,000-subscriber fan-out (B5).
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(state, socket, protocol, header_token))
}

async fn serve(
    state: SharedState,
    socket: WebSocket,
    protocol: WebSocketProtocols,
    header_token: Option<String>,
) {
    metrics::gauge!("ws_connections_active").increment(1.0);
    let session = Arc::new(Session {
        viewer: std::sync::Mutex::new(None),
        deadline: AtomicI64::new(now_secs() + INIT_TIMEOUT.as_secs() as i64),
        initialized: AtomicBool::new(false),
        auth_refused: AtomicBool::new(false),
    });
    let (mut sink, source) = socket.split();
    let input = source
        .take_while(|m| {
            futures::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_))))
        })
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(Message::Text(text)) => Some(text.as_str().as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });

    let init_state = state.clone();
    let init_session = session.clone();
    let on_init = move |payload: serde_json::Value| async move {
        let token = bearer_from_payload(&payload).or(header_token);
        let refuse = |session: &Session, why: &str| {
            session.auth_refused.store(true, Ordering::SeqCst);
            async_graphql::Error::new(why.to_owned())
        };
        let Some(token) = token else {
            return Err(refuse(
                &init_session,
                "Forbidden: connection_init carries no access token",
            ));
        };
        let viewer = match init_state.authenticator.verify(&token).await {
            Ok(viewer) => viewer,
            Err(_) => return Err(refuse(&init_session, "Forbidden: invalid access token")),
        };
        let expiry = token_expiry(&token).unwrap_or_else(|| now_secs() + 60);
        if let Ok(mut v) = init_session.viewer.lock() {
            *v = Some(viewer);
        }
        init_session.deadline.store(expiry, Ordering::SeqCst);
        init_session.initialized.store(true, Ordering::SeqCst);
        Ok(nova_graphql::connection_data(&init_state.services, viewer))
    };

    let ping_state = state.clone();
    let ping_session = session.clone();
    let on_ping = move |_data: Option<&async_graphql::Data>, payload: Option<serde_json::Value>| {
        let state = ping_state.clone();
        let session = ping_session.clone();
        async move {
            let Some(token) = payload.as_ref().and_then(bearer_from_payload) else {
                return Ok(None);
            };
            let current = session.viewer.lock().ok().and_then(|v| *v);
            let refreshed = match state.authenticator.verify(&token).await {
                Ok(viewer) if Some(viewer) == current => token_expiry(&token),
                _ => None,
            };
            Ok(Some(match refreshed {
                Some(expiry) => {
                    session.deadline.store(expiry, Ordering::SeqCst);
                    serde_json::json!({ "refreshed": true, "expiresAt": expiry })
                }
                None => serde_json::json!({ "refreshed": false }),
            }))
        }
    };

    let mut protocol_stream = async_graphql::http::WebSocket::new(
        crate::admission::AdmittedExecutor(state.clone()),
        input,
        protocol,
    )
    .on_connection_init(on_init)
    .on_ping(on_ping);

    let close = loop {
        let deadline = session.deadline.load(Ordering::SeqCst);
        let wait = Duration::from_millis(((deadline - now_secs()).max(0) as u64) * 1000 + 50);
        tokio::select! {
            message = protocol_stream.next() => match message {
                Some(WsMessage::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = if session.auth_refused.load(Ordering::SeqCst) {
                        FORBIDDEN
                    } else if code == 1011 && !session.initialized.load(Ordering::SeqCst) {
                        UNAUTHORIZED
                    } else {
                        code
                    };
                    break Some((code, reason));
                }
                None => break None,
            },
            () = tokio::time::sleep(wait) => {
                if now_secs() < session.deadline.load(Ordering::SeqCst) {
                    continue; // refreshed meanwhile
                }
                break Some(if session.initialized.load(Ordering::SeqCst) {
                    metrics::counter!("ws_closed_token_expired_total").increment(1);
                    (FORBIDDEN, "Forbidden: access token expired".to_owned())
                } else {
                    (INIT_TIMEOUT_CODE, "Connection initialisation timeout".to_owned())
                });
            }
        }
    };
    if let Some((code, reason)) = close {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    let _ = sink.close().await;
    metrics::gauge!("ws_connections_active").decrement(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tokens_from_payloads_and_headers() {
        let p = serde_json::json!({"authorization": "Bearer abc"});
        assert_eq!(bearer_from_payload(&p).as_deref(), Some("abc"));
        let p = serde_json::json!({"token": " xyz "});
        assert_eq!(bearer_from_payload(&p).as_deref(), Some("xyz"));
        assert_eq!(
            bearer_from_payload(&serde_json::json!({"authorization": 3})),
            None
        );
        assert_eq!(bearer_from_payload(&serde_json::json!(null)), None);
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer t0k".parse().expect("header"),
        );
        assert_eq!(bearer_from_header(&h).as_deref(), Some("t0k"));
    }

    #[test]
    fn reads_the_expiry_of_a_jwt_and_nothing_from_garbage() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1234}"#);
        assert_eq!(token_expiry(&format!("h.{claims}.s")), Some(1234));
        assert_eq!(token_expiry("nonsense"), None);
        assert_eq!(token_expiry("a.%%%.c"), None);
    }
}
