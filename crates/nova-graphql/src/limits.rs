//! The per-operation limits a root mutation field passes before it runs: sign-in and register
//! attempts (per client address and per login) and writes (per account).
//!
//! The limits themselves belong to the edge (they key on client addresses and know the rate
//! configuration); this crate only says which fields are limited and how: write mutations carry
//! the [`WriteLimit`] guard, `signIn` and `register` call [`admit`] with the login they received.
//! The edge attaches its [`OperationLimits`] to each request; a request without one (a schema
//! test, a WebSocket operation) is not limited here.
//!
//! Checked when the field is about to run, not before the request executes, so a refused field
//! fails alone (RATE_LIMITED on its path, with `retryAfter`) and the rest of the request
//! proceeds. Only root mutation fields carry the check: no other field pays for it.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions as _, Guard};
use futures::future::BoxFuture;
use nova_core::Code;

/// What a limited root mutation field is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedOperation<'a> {
    /// A sign-in attempt for `login` (username or email, as typed).
    SignIn { login: &'a str },
    /// A registration attempt for `username` (as typed).
    Register { username: &'a str },
    /// A write by the signed-in account.
    Write,
}

/// A field refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRefusal {
    pub message: String,
    /// Whole seconds to wait before retrying.
    pub retry_after_secs: u64,
}

/// The limits of one request, implemented by the edge.
pub trait OperationLimits: Send + Sync {
    fn admit<'a>(
        &'a self,
        operation: LimitedOperation<'a>,
    ) -> BoxFuture<'a, Result<(), LimitRefusal>>;
}

/// The request's limits, as attached by the edge.
#[derive(Clone)]
pub struct RequestLimits(pub Arc<dyn OperationLimits>);

/// Charges `operation` to the request's limits; a refusal becomes the field's RATE_LIMITED
/// error with `retryAfter`.
pub(crate) async fn admit(
    ctx: &Context<'_>,
    operation: LimitedOperation<'_>,
) -> async_graphql::Result<()> {
    let Some(RequestLimits(limits)) = ctx.data_opt::<RequestLimits>() else {
        return Ok(());
    };
    limits.admit(operation).await.map_err(|refusal| {
        async_graphql::Error::new(refusal.message).extend_with(|_, extensions| {
            extensions.set("code", Code::RateLimited.as_str());
            extensions.set("retryAfter", refusal.retry_after_secs);
        })
    })
}

/// The guard of every write mutation: charges the per-account write limit. Sending, editing
/// and deleting messages and moving read markers do not carry it: they are chat traffic,
/// bounded by the per-account request rate instead (an hourly budget sized for posting would
/// cut a conversation short).
pub(crate) struct WriteLimit;

impl Guard for WriteLimit {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        admit(ctx, LimitedOperation::Write).await
    }
}
