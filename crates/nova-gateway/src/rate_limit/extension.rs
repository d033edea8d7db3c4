//! The operation-level limits, as an async-graphql extension: when a root mutation field is about
//! to run, `signIn` and `register` are charged per client address and per login/username, and
//! write mutations per account. A field over its limit fails with RATE_LIMITED (with
//! `retryAfter` seconds in its extensions) and does not run; the rest of the request proceeds.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, PathSegment, ServerError, ServerResult, Value, Variables,
};
use nova_core::Code;

use super::{operation_limited_message, LimitKind, CLIENT};

/// Root mutation fields charged to the per-account write limit. Sending, editing and deleting
/// messages and moving read markers are chat traffic, bounded by the per-account request rate
/// instead: an hourly budget sized for posting would cut a conversation short.
pub const WRITE_MUTATIONS: [&str; 17] = [
    "createPost",
    "editPost",
    "deletePost",
    "likePost",
    "unlikePost",
    "follow",
    "unfollow",
    "block",
    "unblock",
    "mute",
    "unmute",
    "updateProfile",
    "startConversation",
    "addConversationMembers",
    "leaveConversation",
    "setMessagingPrivacy",
    "updateNotificationPreferences",
];

/// Longest login kept as a key; longer ones are cut (they fail validation anyway), so a client
/// cannot make the limiter store megabytes per key.
const MAX_LOGIN_KEY_CHARS: usize = 128;

/// Registers the per-operation limits on a schema. The limits themselves come with each request
/// (set by the `/graphql` middleware), so one schema serves every configuration.
pub struct RateLimitExtension;

impl ExtensionFactory for RateLimitExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest::default())
    }
}

#[derive(Default)]
struct PerRequest {
    variables: Mutex<Option<Variables>>,
}

/// The `input.<field>` string argument of a root field, variables resolved, normalised the way
/// the accounts domain compares logins (trimmed, lower-cased), cut to a bounded length.
fn login_argument(info: &ResolveInfo<'_>, variables: &Variables, field: &str) -> Option<String> {
    let input = info.field.get_argument("input")?;
    let input = input
        .node
        .clone()
        .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
        .ok()?;
    let Value::Object(fields) = input else {
        return None;
    };
    let Some(Value::String(login)) = fields.get(field) else {
        return None;
    };
    Some(
        login
            .trim()
            .chars()
            .take(MAX_LOGIN_KEY_CHARS)
            .flat_map(char::to_lowercase)
            .collect(),
    )
}

/// The field's error: on its path (so the response says which mutation was refused), with the
/// code and the seconds to wait.
fn rate_limited(info: &ResolveInfo<'_>, outcome: &super::Outcome) -> ServerError {
    let mut error = ServerError::new(operation_limited_message(outcome), None);
    error.path = vec![PathSegment::Field(
        info.alias.unwrap_or(info.name).to_owned(),
    )];
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Code::RateLimited.as_str());
    extensions.set("retryAfter", outcome.retry_after_secs());
    error.extensions = Some(extensions);
    error
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Ok(mut slot) = self.variables.lock() {
            *slot = Some(variables.clone());
        }
        next.run(ctx, query, variables).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let is_root_mutation = info.path_node.parent.is_none()
            && ctx.schema_env.registry.mutation_type.as_deref() == Some(info.parent_type);
        let Some(client) = CLIENT
            .try_with(Clone::clone)
            .ok()
            .filter(|_| is_root_mutation)
        else {
            return next.run(ctx, info).await;
        };
        let variables = self
            .variables
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_default();
        let mut charges: Vec<(LimitKind, String)> = Vec::new();
        match info.name {
            "signIn" => {
                charges.push((LimitKind::SignInIp, client.ip_key.clone()));
                if let Some(login) = login_argument(&info, &variables, "login") {
                    charges.push((LimitKind::SignInLogin, login));
                }
            }
            "register" => {
                charges.push((LimitKind::RegisterIp, client.ip_key.clone()));
                if let Some(username) = login_argument(&info, &variables, "username") {
                    charges.push((LimitKind::RegisterLogin, username));
                }
            }
            name if WRITE_MUTATIONS.contains(&name) => {
                if let Some(account) = &client.account {
                    charges.push((LimitKind::Writes, account.clone()));
                }
            }
            _ => {}
        }
        for (kind, key) in charges {
            let outcome = client.limits.check(kind, &key).await;
            if !outcome.allowed {
                return Err(rate_limited(&info, &outcome));
            }
        }
        next.run(ctx, info).await
    }
}
