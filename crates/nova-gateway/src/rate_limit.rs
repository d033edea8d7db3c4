//! Rate limits (GCRA): every `/graphql` request is charged to its client address and, when it
//! carries a valid token, to its account; sign-in and registration attempts are charged per
//! address and per login, writes per account. A request over the whole-request limits gets a 429
//! with `Retry-After` and `RateLimit-*` headers; an operation over its own limit fails with the
//! GraphQL error code RATE_LIMITED.
//!
//! Buckets live in process ([`local`], governor) or, when Redis is configured, in Redis
//! ([`shared`]) so that N nodes do not grant N times the quota; a Redis failure falls back to the
//! local buckets (fail-open, counted). Logs carry a salted hash of the key, never the address or
//! login itself.

mod client_ip;
mod local;
mod operation;
mod shared;

pub use client_ip::{client_ip, ip_key, parse_trusted_proxy};

use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use nova_core::Code;

use crate::SharedState;
use local::LocalLimiter;
use shared::SharedLimiter;

/// `count` requests per `window`, with up to `burst` at once after a quiet period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window: Duration,
    pub burst: u32,
}

impl Rate {
    pub fn per_second(count: u32, burst: u32) -> Rate {
        Rate {
            count,
            window: Duration::from_secs(1),
            burst,
        }
    }

    pub fn per_minute(count: u32, burst: u32) -> Rate {
        Rate {
            count,
            window: Duration::from_secs(60),
            burst,
        }
    }

    pub fn per_hour(count: u32, burst: u32) -> Rate {
        Rate {
            count,
            window: Duration::from_secs(3600),
            burst,
        }
    }

    /// The GCRA emission interval: one request's worth of time.
    pub fn emission_interval(&self) -> Duration {
        (self.window / self.count.max(1)).max(Duration::from_nanos(1))
    }
}

/// Redis connection for limits shared across nodes.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key; nodes sharing quotas use the same prefix.
    pub key_prefix: String,
    /// Longest wait for Redis before a check falls back to the local limiter.
    pub timeout: Duration,
}

/// Every rate limit, as the composition root configures them.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Peers whose `Forwarded`/`X-Forwarded-For` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub per_ip: Rate,
    pub per_account: Rate,
    /// `signIn` attempts, per address and (separately) per login.
    pub sign_in: Rate,
    /// `register` attempts, per address and (separately) per username.
    pub register: Rate,
    /// Write mutations (posts, likes, follows, ...) per account.
    pub writes: Rate,
    pub redis: Option<RedisConfig>,
    /// How often idle in-process buckets are dropped.
    pub sweep_interval: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            trusted_proxies: Vec::new(),
            per_ip: Rate::per_second(100, 10),
            per_account: Rate::per_second(100, 10),
            sign_in: Rate::per_minute(10, 5),
            register: Rate::per_minute(10, 5),
            writes: Rate::per_hour(300, 50),
            redis: None,
            sweep_interval: Duration::from_secs(10),
        }
    }
}

/// Which limit a check is charged to; the label is the `limit` of `nova_rate_limited_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Ip,
    Account,
    SignInIp,
    SignInLogin,
    RegisterIp,
    RegisterLogin,
    Writes,
}

impl LimitKind {
    const ALL: [LimitKind; 7] = [
        LimitKind::Ip,
        LimitKind::Account,
        LimitKind::SignInIp,
        LimitKind::SignInLogin,
        LimitKind::RegisterIp,
        LimitKind::RegisterLogin,
        LimitKind::Writes,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Ip => "ip",
            LimitKind::Account => "account",
            LimitKind::SignInIp => "sign_in_ip",
            LimitKind::SignInLogin => "sign_in_login",
            LimitKind::RegisterIp => "register_ip",
            LimitKind::RegisterLogin => "register_login",
            LimitKind::Writes => "writes",
        }
    }

    fn rate(self, config: &RateLimitConfig) -> Rate {
        match self {
            LimitKind::Ip => config.per_ip,
            LimitKind::Account => config.per_account,
            LimitKind::SignInIp | LimitKind::SignInLogin => config.sign_in,
            LimitKind::RegisterIp | LimitKind::RegisterLogin => config.register,
            LimitKind::Writes => config.writes,
        }
    }
}

/// The result of charging one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// The burst: requests a full bucket admits at once (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests the bucket would still admit right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// When refused: how long until one request would be admitted (`Retry-After`).
    pub retry_after: Duration,
    /// How long until the bucket is full again (`RateLimit-Reset`).
    pub reset: Duration,
}

impl Outcome {
    const UNLIMITED: Outcome = Outcome {
        allowed: true,
        limit: u32::MAX,
        remaining: u32::MAX,
        retry_after: Duration::ZERO,
        reset: Duration::ZERO,
    };

    /// Whole seconds, rounded up (`Retry-After` must not invite a retry that is refused again).
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after).max(1)
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Every limiter of a node.
pub struct RateLimits {
    config: RateLimitConfig,
    local: Vec<LocalLimiter>,
    shared: Option<SharedLimiter>,
    salt: std::hash::RandomState,
}

impl RateLimits {
    /// Builds the limiters and, inside a Tokio runtime, starts the task that evicts idle keys
    /// (it ends when the limiters are dropped). Fails only for an invalid Redis URL.
    pub fn new(config: RateLimitConfig) -> anyhow::Result<Arc<RateLimits>> {
        let local = LimitKind::ALL
            .iter()
            .map(|kind| LocalLimiter::new(kind.rate(&config)))
            .collect();
        let shared = match &config.redis {
            Some(redis) => Some(SharedLimiter::new(
                &redis.url,
                &redis.key_prefix,
                redis.timeout,
            )?),
            None => None,
        };
        let limits = Arc::new(RateLimits {
            config,
            local,
            shared,
            salt: std::hash::RandomState::new(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&limits);
            let every = limits.config.sweep_interval.max(Duration::from_millis(10));
            runtime.spawn(sweep(weak, every));
        }
        Ok(limits)
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Charges one request to `kind`/`key`: in Redis when configured and healthy, else locally.
    pub async fn check(&self, kind: LimitKind, key: &str) -> Outcome {
        if !self.config.enabled {
            return Outcome::UNLIMITED;
        }
        let rate = kind.rate(&self.config);
        let outcome = match &self.shared {
            Some(shared) => match shared.check(kind.label(), rate, key).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    metrics::counter!("nova_rate_limit_redis_fallback_total").increment(1);
                    tracing::warn!(error = %format!("{error:#}"), "rate limit: Redis unavailable, using the local limiter");
                    self.local_check(kind, key)
                }
            },
            None => self.local_check(kind, key),
        };
        if !outcome.allowed {
            metrics::counter!("nova_rate_limited_total", "limit" => kind.label()).increment(1);
            tracing::info!(
                target: "nova::rate_limit",
                limit = kind.label(),
                key = %self.redact(key),
                retry_after_ms = outcome.retry_after.as_millis() as u64,
                "rate limited"
            );
        }
        outcome
    }

    fn local_check(&self, kind: LimitKind, key: &str) -> Outcome {
        match self
            .local
            .iter()
            .zip(LimitKind::ALL)
            .find(|(_, k)| *k == kind)
        {
            Some((limiter, _)) => limiter.check(key),
            None => Outcome::UNLIMITED,
        }
    }

    /// A salted hash of a key, for logs: lets an operator see that one client is hammering
    /// without recording its address or login.
    pub fn redact(&self, key: &str) -> String {
        format!("{:012x}", self.salt.hash_one(key) & 0xffff_ffff_ffff)
    }

    /// Drops idle in-process buckets.
    pub fn evict_idle(&self) {
        for limiter in &self.local {
            limiter.evict_idle();
        }
    }

    /// In-process buckets currently held, all limits together.
    pub fn tracked_keys(&self) -> usize {
        self.local.iter().map(LocalLimiter::len).sum()
    }
}

async fn sweep(limits: Weak<RateLimits>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(limits) = limits.upgrade() else {
            return;
        };
        limits.evict_idle();
    }
}

/// Who a request is charged to, for the operation-level limits checked during execution.
#[derive(Debug, Clone)]
pub struct ClientContext {
    pub limits: Arc<RateLimits>,
    /// The client address key ([`ip_key`]).
    pub ip_key: String,
    /// The authenticated account, when the request carries a valid token.
    pub account: Option<String>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    /// Set by [`middleware`] around the `/graphql` handler; the handler attaches it to the
    /// GraphQL request as its operation limits.
    pub(crate) static CLIENT: ClientContext;
}

static RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
static RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

fn set_headers(headers: &mut HeaderMap, outcome: &Outcome, rate: Rate) {
    headers.insert(RATE_LIMIT_LIMIT.clone(), HeaderValue::from(outcome.limit));
    headers.insert(
        RATE_LIMIT_REMAINING.clone(),
        HeaderValue::from(outcome.remaining),
    );
    headers.insert(
        RATE_LIMIT_RESET.clone(),
        HeaderValue::from(ceil_secs(outcome.reset)),
    );
    if let Ok(policy) = HeaderValue::from_str(&format!(
        "{};w={};burst={}",
        rate.count,
        ceil_secs(rate.window),
        rate.burst
    )) {
        headers.insert(RATE_LIMIT_POLICY.clone(), policy);
    }
}

/// The 429 for a request over a whole-request limit.
fn too_many_requests(request_headers: &HeaderMap, outcome: &Outcome, rate: Rate) -> Response {
    let retry_after = outcome.retry_after_secs();
    let body = serde_json::json!({
        "errors": [{
            "message": format!("rate limit exceeded; retry after {retry_after} s"),
            "extensions": { "code": Code::RateLimited.as_str(), "retryAfter": retry_after },
        }]
    });
    let graphql_response = request_headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/graphql-response+json"));
    let media = if graphql_response {
        "application/graphql-response+json"
    } else {
        "application/json"
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    set_headers(headers, outcome, rate);
    response
}

/// The peer when the router is served without `ConnectInfo` (never by `App::serve`): every such
/// request shares one bucket.
fn unknown_peer() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// The whole-request limits, around `/graphql`: per client address, then per account for a
/// request with a valid bearer token. Sets the context the operation-level limits read.
pub(crate) async fn middleware(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = Arc::clone(&state.rate_limits);
    if !limits.config.enabled {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(unknown_peer, |info| info.0.ip());
    let ip = client_ip(peer, request.headers(), &limits.config.trusted_proxies);
    let ip_key = ip_key(ip);
    // The cheap look at the token (no revocation check): good enough to pick the bucket; the
    // handler does the full check.
    let account = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| state.authenticator.authenticate(token.trim()))
        .map(|viewer| viewer.user_id.to_string());
    let mut charged = (limits.check(LimitKind::Ip, &ip_key).await, LimitKind::Ip);
    if charged.0.allowed {
        if let Some(account) = &account {
            let by_account = limits.check(LimitKind::Account, account).await;
            if !by_account.allowed || by_account.remaining < charged.0.remaining {
                charged = (by_account, LimitKind::Account);
            }
        }
    }
    let (outcome, kind) = charged;
    let rate = kind.rate(&limits.config);
    if !outcome.allowed {
        metrics::counter!("nova_graphql_requests_total", "operation_type" => "unknown", "outcome" => "rate_limited").increment(1);
        return too_many_requests(request.headers(), &outcome, rate);
    }
    let context = ClientContext {
        limits,
        ip_key,
        account,
    };
    let mut response = CLIENT.scope(context, next.run(request)).await;
    set_headers(response.headers_mut(), &outcome, rate);
    response
}

/// The message of the GraphQL error for an operation over its limit.
pub(crate) fn operation_limited_message(outcome: &Outcome) -> String {
    format!(
        "too many attempts; retry after {} s",
        outcome.retry_after_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_limits_admit_everything_and_the_redacted_key_hides_the_address() {
        let limits = RateLimits::new(RateLimitConfig {
            enabled: false,
            per_ip: Rate::per_second(1, 1),
            ..RateLimitConfig::default()
        })
        .expect("limits");
        for _ in 0..10 {
            assert!(limits.check(LimitKind::Ip, "1.2.3.4").await.allowed);
        }
        let redacted = limits.redact("1.2.3.4");
        assert_eq!(redacted.len(), 12);
        assert!(!redacted.contains("1.2.3.4"));
        assert_eq!(redacted, limits.redact("1.2.3.4"));
    }

    #[tokio::test]
    async fn each_limit_has_its_own_buckets() {
        let limits = RateLimits::new(RateLimitConfig {
            sign_in: Rate::per_minute(1, 2),
            ..RateLimitConfig::default()
        })
        .expect("limits");
        assert!(limits.check(LimitKind::SignInLogin, "alice").await.allowed);
        assert!(limits.check(LimitKind::SignInLogin, "alice").await.allowed);
        let refused = limits.check(LimitKind::SignInLogin, "alice").await;
        assert!(!refused.allowed);
        assert!(refused.retry_after_secs() >= 29, "{refused:?}");
        assert!(limits.check(LimitKind::SignInIp, "alice").await.allowed);
        assert!(limits.check(LimitKind::SignInLogin, "bob").await.allowed);
        assert!(limits.tracked_keys() >= 3);
    }

    #[test]
    fn headers_follow_the_ietf_draft() {
        let outcome = Outcome {
            allowed: false,
            limit: 10,
            remaining: 0,
            retry_after: Duration::from_millis(1500),
            reset: Duration::from_millis(2500),
        };
        let response = too_many_requests(&HeaderMap::new(), &outcome, Rate::per_second(4, 10));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = response.headers();
        assert_eq!(h[header::RETRY_AFTER], "2");
        assert_eq!(h["ratelimit-limit"], "10");
        assert_eq!(h["ratelimit-remaining"], "0");
        assert_eq!(h["ratelimit-reset"], "3");
        assert_eq!(h["ratelimit-policy"], "4;w=1;burst=10");
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
    }
}
