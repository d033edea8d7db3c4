//! The payload of register, sign-in and refresh.

use async_graphql::{Context, Object, ID};
use nova_users::service::SignedIn;

use crate::context::services;
use crate::error::{api_error, coded};
use crate::types::{timestamp, UserObject};

pub struct AuthPayload(pub SignedIn);

#[Object]
impl AuthPayload {
    /// Bearer token for the `Authorization` header.
    async fn access_token(&self) -> &str {
        &self.0.tokens.access_token
    }

    async fn access_token_expires_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.tokens.access_token_expires_at)
    }

    /// Single-use token for `refreshSession`; each use returns a new one.
    async fn refresh_token(&self) -> &str {
        &self.0.tokens.refresh_token
    }

    async fn refresh_token_expires_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.tokens.refresh_token_expires_at)
    }

    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }

    /// The signed-in account.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<UserObject> {
        let user = services(ctx)
            .users
            .get_user(self.0.user_id)
            .await
            .map_err(api_error)?;
        user.map(UserObject::owner)
            .ok_or_else(|| coded(nova_core::Code::NotFound, "user not found"))
    }
}
