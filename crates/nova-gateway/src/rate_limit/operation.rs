//! The operation-level limits, as the GraphQL layer's [`OperationLimits`]: `signIn` and
//! `register` are charged per client address and per login/username, write mutations per
//! account. The GraphQL layer decides which root fields are limited and asks when such a field
//! is about to run; a refused field fails with RATE_LIMITED (with `retryAfter`) and does not run,
//! the rest of the request proceeds.

use futures::future::BoxFuture;
use nova_graphql::{LimitRefusal, LimitedOperation, OperationLimits};

use super::{operation_limited_message, ClientContext, LimitKind};

/// Longest login kept as a key; longer ones are cut (they fail validation anyway), so a client
/// cannot make the limiter store megabytes per key.
const MAX_LOGIN_KEY_CHARS: usize = 128;

/// A login normalised the way the accounts domain compares them (trimmed, lower-cased), cut to
/// a bounded length.
fn login_key(login: &str) -> String {
    login
        .trim()
        .chars()
        .take(MAX_LOGIN_KEY_CHARS)
        .flat_map(char::to_lowercase)
        .collect()
}

impl ClientContext {
    /// The buckets one operation is charged to, in the order they are checked.
    fn charges(&self, operation: LimitedOperation<'_>) -> Vec<(LimitKind, String)> {
        match operation {
            LimitedOperation::SignIn { login } => vec![
                (LimitKind::SignInIp, self.ip_key.clone()),
                (LimitKind::SignInLogin, login_key(login)),
            ],
            LimitedOperation::Register { username } => vec![
                (LimitKind::RegisterIp, self.ip_key.clone()),
                (LimitKind::RegisterLogin, login_key(username)),
            ],
            LimitedOperation::Write => self
                .account
                .iter()
                .map(|account| (LimitKind::Writes, account.clone()))
                .collect(),
        }
    }
}

impl OperationLimits for ClientContext {
    fn admit<'a>(
        &'a self,
        operation: LimitedOperation<'a>,
    ) -> BoxFuture<'a, Result<(), LimitRefusal>> {
        Box::pin(async move {
            for (kind, key) in self.charges(operation) {
                let outcome = self.limits.check(kind, &key).await;
                if !outcome.allowed {
                    return Err(LimitRefusal {
                        message: operation_limited_message(&outcome),
                        retry_after_secs: outcome.retry_after_secs(),
                    });
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_keyed_trimmed_lower_cased_and_bounded() {
        assert_eq!(login_key("  Alice@Example.COM "), "alice@example.com");
        assert_eq!(login_key(&"x".repeat(10_000)).len(), MAX_LOGIN_KEY_CHARS);
    }
}
