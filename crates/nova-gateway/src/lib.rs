//! HTTP edge: the axum router with `/graphql` (GraphQL over HTTP), `/healthz`, `/readyz` and
//! `/metrics`, request ids, authentication and per-request logging.
//!
//! Invariants:
//! - this crate knows HTTP, not storage: readiness and authentication come in as traits;
//! - no client mistake produces a 500: malformed requests get 4xx with a GraphQL-shaped body;
//! - one log line per GraphQL request, without query text, variables, tokens or emails.

mod admission;
pub mod cost;
mod graphql;
mod ops;
pub mod rate_limit;
mod ws;

pub use cost::{QueryLimits, QueryLimitsConfig};
pub use rate_limit::{RateLimitConfig, RateLimits};

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use nova_core::Viewer;
use nova_graphql::{NovaSchema, Services};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Malformed, expired, badly signed, revoked...: all get the same 401 with the same message;
    /// the reason is logged by the authenticator, never revealed.
    Rejected,
    /// The check could not be made (storage unreachable): 503 with Retry-After.
    Unavailable,
}

/// Verifies bearer tokens. Implemented by the composition root over the accounts domain.
pub trait Authenticator: Send + Sync {
    /// The full check of a request's token: signature and key id, claims, and revocation of its
    /// session (which may ask storage). Logs one line with the outcome. `/graphql` calls it once
    /// per request that carries an `Authorization` header.
    fn verify<'a>(&'a self, bearer_token: &'a str) -> BoxFuture<'a, Result<Viewer, AuthFailure>>;

    /// A cheap synchronous look at a token: signature, key id and claims only, no revocation
    /// check and no log line. Good for keying rate limits by account, not for authorisation.
    fn authenticate(&self, bearer_token: &str) -> Option<Viewer>;
}

/// Reports whether the node can serve traffic (storage reachable, migrations applied).
pub trait Readiness: Send + Sync {
    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// HTTP limits.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

#[derive(Clone)]
pub struct GatewayState {
    pub schema: NovaSchema,
    pub services: Services,
    pub authenticator: Arc<dyn Authenticator>,
    pub readiness: Arc<dyn Readiness>,
    pub metrics: PrometheusHandle,
    pub config: GatewayConfig,
    /// Query limits: caps, cost budgets, persisted queries (see [`cost`]).
    pub query_limits: QueryLimits,
    /// The schema's types as the query limits read them (from `schema.sdl()`).
    pub schema_types: Arc<cost::SchemaTypes>,
    /// Rate limits: `/graphql` requests pass them first (see [`rate_limit`]).
    pub rate_limits: Arc<RateLimits>,
}

/// The state every handler shares: behind one `Arc`, so that extracting it per request is one
/// reference count, not one per field.
pub(crate) type SharedState = Arc<GatewayState>;

/// The whole HTTP surface of a node.
pub fn router(state: GatewayState) -> Router {
    let state: SharedState = Arc::new(state);
    Router::new()
        .route(
            "/graphql",
            get(get_graphql_or_ws).post(graphql::post_graphql).layer(
                axum::middleware::from_fn_with_state(state.clone(), rate_limit::middleware),
            ),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions, otherwise a query over GET (or
/// GraphiQL for a browser).
async fn get_graphql_or_ws(
    State(state): State<SharedState>,
    request: axum::extract::Request,
) -> Response {
    if !ws::is_upgrade(request.headers()) {
        return axum::handler::Handler::call(graphql::get_graphql, request, state).await;
    }
    let (mut parts, _body) = request.into_parts();
    match <axum::extract::ws::WebSocketUpgrade as axum::extract::FromRequestParts<SharedState>>::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => ws::upgrade(state, parts.headers, upgrade),
        Err(rejection) => rejection.into_response(),
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<SharedState>) -> Response {
    match state.readiness.check().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "not ready" })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<SharedState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Installs the process-wide Prometheus recorder once and returns its handle. The `metrics`
/// facade is global by design; every app in the process (tests start several) shares it.
pub fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    // One mutex around check-install-store, so apps starting at the same moment (tests) never
    // see a half-installed recorder.
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut slot = HANDLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| anyhow::anyhow!("another metrics recorder is installed"))?;
    *slot = Some(handle.clone());
    Ok(handle)
}
