//! Query root.

use async_graphql::{Context, Object, ID};

use crate::context::{maybe_viewer, services, viewer};
use crate::error::{api_error, invalid, parse_id};
use crate::types::{page_request, post_connection, PostConnection, PostObject, UserObject};

#[derive(Default)]
pub struct CoreQuery;

#[Object]
impl CoreQuery {
    /// The signed-in account.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<UserObject> {
        let viewer = viewer(ctx)?;
        let user = services(ctx)
            .users
            .get_user(viewer.user_id)
            .await
            .map_err(api_error)?;
        user.map(UserObject::owner)
            .ok_or_else(crate::error::unauthenticated)
    }

    /// An account by username or id; null when it does not exist or is hidden by a block.
    async fn user(
        &self,
        ctx: &Context<'_>,
        username: Option<String>,
        id: Option<ID>,
    ) -> async_graphql::Result<Option<UserObject>> {
        let services = services(ctx);
        let user_id = match (username, id) {
            (Some(username), None) => services
                .users
                .find_by_username(&username)
                .await
                .map_err(api_error)?,
            (None, Some(id)) => Some(parse_id(&id, "id")?),
            _ => return Err(invalid("give exactly one of username or id")),
        };
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        if !services
            .graph
            .can_see(maybe_viewer(ctx), user_id)
            .await
            .map_err(api_error)?
        {
            return Ok(None);
        }
        Ok(services
            .users
            .get_user(user_id)
            .await
            .map_err(api_error)?
            .map(UserObject::new))
    }

    /// A post with its thread; null when it does not exist, was deleted or is hidden from the viewer.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<PostObject>> {
        let id = parse_id(&id, "id")?;
        match services(ctx).posts.get_post(maybe_viewer(ctx), id).await {
            Ok(post) => Ok(Some(PostObject(post))),
            Err(nova_posts::PostError::NotFound) => Ok(None),
            Err(e) => Err(api_error(e)),
        }
    }

    /// The viewer's posts and those of accounts they follow, newest first, without muted accounts.
    async fn home_feed(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PostConnection> {
        let viewer = viewer(ctx)?;
        let page = page_request(first, after, "feed")?;
        let found = services(ctx)
            .posts
            .home_feed(viewer, &page)
            .await
            .map_err(api_error)?;
        post_connection(ctx, found, "feed").await
    }
}
