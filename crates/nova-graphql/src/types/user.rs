//! The `User` type.

use async_graphql::{Context, Object, ID};
use nova_core::Id;
use nova_users::{FollowEdge, Relationship, UserView};

use crate::context::{maybe_viewer, services};
use crate::error::api_error;
use crate::loaders::loaders;
use crate::types::connection::connection;
use crate::types::{page_request, post_connection, timestamp, PostConnection};

pub struct UserObject {
    view: UserView,
    /// Set when the object was produced for its own account (sign-in payloads, `me`).
    is_owner: bool,
}

impl UserObject {
    pub fn new(view: UserView) -> Self {
        UserObject {
            view,
            is_owner: false,
        }
    }

    pub fn owner(view: UserView) -> Self {
        UserObject {
            view,
            is_owner: true,
        }
    }

    fn id_value(&self) -> Id {
        self.view.user.id
    }

    async fn relationship(&self, ctx: &Context<'_>) -> async_graphql::Result<Relationship> {
        if maybe_viewer(ctx).is_none() {
            return Ok(Relationship::default());
        }
        Ok(loaders(ctx)?
            .relationships
            .load_one(self.id_value())
            .await?
            .unwrap_or_default())
    }
}

type UserConnection = async_graphql::connection::Connection<String, UserObject>;

fn edges(page: nova_core::Page<FollowEdge>, kind: &str) -> UserConnection {
    connection(page, kind, |e| e.edge_id, |e| UserObject::new(e.user))
}

#[Object(name = "User")]
impl UserObject {
    async fn id(&self) -> ID {
        ID(self.view.user.id.to_string())
    }

    /// Lower-case, unique, 3–30 characters of a-z, 0-9 and _.
    async fn username(&self) -> &str {
        self.view.user.username.as_str()
    }

    async fn display_name(&self) -> &str {
        &self.view.user.display_name
    }

    async fn bio(&self) -> &str {
        &self.view.user.bio
    }

    async fn avatar_url(&self) -> Option<&str> {
        self.view.user.avatar_url.as_deref()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.view.user.created_at)
    }

    /// Only visible to the account itself; null for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let own = self.is_owner || maybe_viewer(ctx).map(|v| v.user_id) == Some(self.id_value());
        own.then(|| self.view.user.email.as_str())
    }

    async fn follower_count(&self) -> i64 {
        self.view.follower_count
    }

    async fn following_count(&self) -> i64 {
        self.view.following_count
    }

    async fn post_count(&self) -> i64 {
        self.view.post_count
    }

    /// Whether the viewer follows this account (false when signed out).
    async fn viewer_follows(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.relationship(ctx).await?.viewer_follows)
    }

    /// Whether this account follows the viewer.
    async fn follows_viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.relationship(ctx).await?.follows_viewer)
    }

    async fn viewer_blocks(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.relationship(ctx).await?.viewer_blocks)
    }

    async fn viewer_mutes(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.relationship(ctx).await?.viewer_mutes)
    }

    /// Accounts following this one, most recent follow first.
    async fn followers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let page = page_request(first, after, "followers")?;
        let found = services(ctx)
            .graph
            .followers(self.id_value(), maybe_viewer(ctx), &page)
            .await
            .map_err(api_error)?;
        Ok(edges(found, "followers"))
    }

    /// Accounts this one follows, most recent follow first.
    async fn following(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let page = page_request(first, after, "following")?;
        let found = services(ctx)
            .graph
            .following(self.id_value(), maybe_viewer(ctx), &page)
            .await
            .map_err(api_error)?;
        Ok(edges(found, "following"))
    }

    /// This account's posts visible to the viewer, newest first.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PostConnection> {
        let page = page_request(first, after, "author")?;
        let found = services(ctx)
            .posts
            .author_posts(self.id_value(), maybe_viewer(ctx), &page)
            .await
            .map_err(api_error)?;
        post_connection(ctx, found, "author").await
    }
}
