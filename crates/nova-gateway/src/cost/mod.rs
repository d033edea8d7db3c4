//! Query limits: caps checked before an operation runs (depth, fields per level, aliases, root
//! fields, estimated cost), the per-caller cost budget charged up front and settled after
//! execution, automatic persisted queries, and the `extensions.cost` report.
//!
//! The analysis runs before the executor, on the document the handler parses once and hands to
//! the executor ([`QueryLimits::admit`]), with the schema's types read from its SDL
//! ([`SchemaTypes`]); the handler gives each request a [`CostTicket`] naming the caller and
//! reads the outcome back from it.

pub mod analyze;
pub mod apq;
pub mod budget;
mod types;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, Variables};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

pub use analyze::{Analysis, Caps, Refusal};
pub use apq::{PersistedQueries, PersistedQuery};
pub use budget::{BudgetState, Charge, CostBudget};
pub use types::SchemaTypes;

/// Every query limit of a node, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimitsConfig {
    pub caps: Caps,
    /// Points each caller may spend per `budget_window`; 0 disables the budget.
    pub budget_points: u64,
    pub budget_window: Duration,
    /// Persisted queries remembered at most.
    pub apq_cache_entries: u64,
    /// Largest `variables` object accepted, in bytes of JSON.
    pub max_variables_bytes: usize,
    /// Largest total size of the request headers (names and values), in bytes.
    pub max_header_bytes: usize,
}

impl Default for QueryLimitsConfig {
    fn default() -> Self {
        QueryLimitsConfig {
            caps: Caps {
                max_depth: 10,
                max_fields_per_level: 50,
                max_aliases: 30,
                max_root_fields: 20,
                max_cost: 500,
            },
            budget_points: 5_000,
            budget_window: Duration::from_secs(3600),
            apq_cache_entries: 1_000,
            max_variables_bytes: 64 * 1024,
            max_header_bytes: 32 * 1024,
        }
    }
}

/// The shared state of the query limits: budgets and the persisted-query cache.
#[derive(Clone)]
pub struct QueryLimits {
    pub config: QueryLimitsConfig,
    pub budget: Option<CostBudget>,
    pub persisted: PersistedQueries,
}

impl QueryLimits {
    pub fn new(config: QueryLimitsConfig) -> QueryLimits {
        QueryLimits {
            config,
            budget: (config.budget_points > 0).then(|| {
                CostBudget::new(
                    config.budget_points,
                    config.budget_window,
                    budget::DEFAULT_MAX_KEYS,
                )
            }),
            persisted: PersistedQueries::new(config.apq_cache_entries),
        }
    }

    /// Checks the caps for `doc` and, with a ticket, charges its caller's budget (recording the
    /// analysis on the ticket for the settlement after execution). Runs before the executor:
    /// async-graphql's post-parse recursion check expands fragments without bound (a 1 KB
    /// document of fragments spreading each other twice keeps a core busy for half a minute),
    /// so a document the bounded analysis refuses never reaches it.
    pub fn admit(
        &self,
        types: &SchemaTypes,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
        ticket: Option<&CostTicket>,
    ) -> ServerResult<()> {
        let invalid = |refusal: Refusal| {
            coded_error(refusal.to_string(), nova_core::Code::InvalidInput.as_str())
        };
        let analysis = analyze::analyze(doc, operation_name, variables, types).map_err(invalid)?;
        let checked = analysis.check(&self.config.caps);
        let Some(ticket) = ticket else {
            return checked.map_err(invalid);
        };
        let cost = analysis.cost;
        let Ok(mut state) = ticket.state.lock() else {
            return Err(coded_error(
                "internal error".into(),
                nova_core::Code::Internal.as_str(),
            ));
        };
        state.analysis = Some(analysis);
        checked.map_err(invalid)?;
        if let Some(budget) = &ticket.budget {
            match budget.charge(&ticket.key, cost) {
                Ok(charge) => state.charge = Some(charge),
                Err(budget_state) => {
                    state.throttled = Some(budget_state);
                    return Err(coded_error(
                        format!(
                            "query cost {cost} exceeds the {} points left in this window; retry in {} s",
                            budget_state.remaining,
                            retry_after_secs(&budget_state)
                        ),
                        nova_core::Code::RateLimited.as_str(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits::new(QueryLimitsConfig::default())
    }
}

/// The caller's address: the one the rate limits resolved (trusted proxies honoured, IPv6 per
/// /64) when their middleware runs around the handler, else the socket peer when the server
/// records it (`ConnectInfo`).
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(ip) = crate::rate_limit::CLIENT.try_with(|client| client.ip_key.clone()) {
            return Ok(ClientAddr(Some(ip)));
        }
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        ))
    }
}

/// The budget key of a caller: its account, or its IP when anonymous.
pub fn budget_key(viewer: Option<&nova_core::Viewer>, client: &ClientAddr) -> String {
    match (viewer, &client.0) {
        (Some(viewer), _) => format!("user:{}", viewer.user_id),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "anonymous".to_owned(),
    }
}

#[derive(Debug, Default)]
struct TicketState {
    analysis: Option<Analysis>,
    charge: Option<Charge>,
    throttled: Option<BudgetState>,
}

/// One request's link between admission ([`QueryLimits::admit`]) and the settlement after
/// execution.
pub struct CostTicket {
    key: String,
    budget: Option<CostBudget>,
    state: Mutex<TicketState>,
}

impl CostTicket {
    pub fn new(key: String, budget: Option<CostBudget>) -> Self {
        CostTicket {
            key,
            budget,
            state: Mutex::new(TicketState::default()),
        }
    }

    /// The budget state when the request was refused for exceeding the caller's budget.
    pub fn throttled(&self) -> Option<BudgetState> {
        self.state.lock().ok().and_then(|s| s.throttled)
    }

    /// Settles the charge against the actual cost of `data` and returns the cost report and
    /// the caller's budget state (`None` when the operation was never analysed).
    pub fn settle(
        &self,
        data: Option<&async_graphql::Value>,
        max_cost: u64,
    ) -> Option<(Value, Option<BudgetState>)> {
        let state = self.state.lock().ok()?;
        if let Some(budget_state) = state.throttled {
            let requested = state.analysis.as_ref().map_or(0, |a| a.cost);
            return Some((
                report(requested, 0, max_cost, "THROTTLED", Some(budget_state)),
                Some(budget_state),
            ));
        }
        let analysis = state.analysis.as_ref()?;
        let actual = data
            .map(|d| analyze::actual_cost(d, analysis))
            .unwrap_or(0)
            .min(analysis.cost);
        let budget_state = match (&self.budget, &state.charge) {
            (Some(budget), Some(charge)) => Some(budget.settle(&self.key, charge, actual)),
            _ => None,
        };
        Some((
            report(analysis.cost, actual, max_cost, "PASS", budget_state),
            budget_state,
        ))
    }
}

fn epoch_secs_after(wait: Duration) -> u64 {
    (SystemTime::now() + wait)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whole seconds to wait, rounded up (at least 1).
pub fn retry_after_secs(state: &BudgetState) -> u64 {
    let secs = state.reset_in.as_secs() + u64::from(state.reset_in.subsec_nanos() > 0);
    secs.max(1)
}

/// The `extensions.cost` object.
fn report(
    requested: u64,
    actual: u64,
    max_cost: u64,
    throttle_status: &str,
    budget: Option<BudgetState>,
) -> Value {
    let mut report = json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "maximumQueryCost": max_cost,
        "throttleStatus": throttle_status,
    });
    if let (Some(budget), Some(object)) = (budget, report.as_object_mut()) {
        object.insert("maximumAvailable".into(), json!(budget.limit));
        object.insert("remaining".into(), json!(budget.remaining));
        object.insert("resetAt".into(), json!(epoch_secs_after(budget.reset_in)));
    }
    report
}

/// Adds `X-Cost-Remaining` and `X-Cost-Reset` (Unix seconds) to a response.
pub fn budget_headers(headers: &mut HeaderMap, state: &BudgetState) {
    headers.insert("x-cost-limit", HeaderValue::from(state.limit));
    headers.insert("x-cost-remaining", HeaderValue::from(state.remaining));
    headers.insert(
        "x-cost-reset",
        HeaderValue::from(epoch_secs_after(state.reset_in)),
    );
}

fn coded_error(message: String, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}
