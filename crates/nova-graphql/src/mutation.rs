//! Mutation root.

use crate::limits::{admit, LimitedOperation, WriteLimit};
use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use nova_posts::CreatePostInput as DomainCreatePost;
use nova_users::GraphAction;

use crate::context::{services, viewer};
use crate::error::{api_error, parse_id};
use crate::types::{AuthPayload, PostObject, UserObject, VisibilityEnum};

#[derive(Default)]
pub struct CoreMutation;

#[derive(InputObject)]
pub struct RegisterInput {
    /// 3–30 characters of a-z, 0-9 and _ (NFKC-normalised and lower-cased).
    username: String,
    email: String,
    /// 8–128 characters.
    password: String,
}

#[derive(InputObject)]
pub struct SignInInput {
    /// Username or email.
    login: String,
    password: String,
}

#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// At most 50 characters.
    display_name: Option<String>,
    /// At most 160 characters.
    bio: Option<String>,
    /// An http(s) URL; null clears it.
    avatar_url: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct CreatePostInput {
    /// 1–500 characters (grapheme clusters).
    body: String,
    /// PUBLIC when omitted.
    visibility: Option<VisibilityEnum>,
    /// The post this one replies to.
    reply_to: Option<ID>,
    /// Retrying a create with the same key returns the first post instead of making a second.
    idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct EditPostInput {
    id: ID,
    body: String,
}

#[derive(SimpleObject)]
pub struct DeletePostPayload {
    deleted_post_id: ID,
}

async fn user_after_change(
    ctx: &Context<'_>,
    id: nova_core::Id,
) -> async_graphql::Result<UserObject> {
    let user = services(ctx).users.get_user(id).await.map_err(api_error)?;
    user.map(UserObject::new)
        .ok_or_else(|| crate::error::coded(nova_core::Code::NotFound, "user not found"))
}

/// Parses the target id and applies a graph change for the viewer.
async fn apply_graph_action(
    ctx: &Context<'_>,
    user_id: &ID,
    action: GraphAction,
) -> async_graphql::Result<(nova_core::Viewer, nova_core::Id)> {
    let target = parse_id(user_id, "userId")?;
    let viewer = viewer(ctx)?;
    services(ctx)
        .graph
        .apply(viewer, target, action)
        .await
        .map_err(api_error)?;
    Ok((viewer, target))
}

/// The account after a block change, unless it blocks the viewer: then null, since a block hides
/// its profile from the viewer everywhere.
async fn user_unless_blocked_by(
    ctx: &Context<'_>,
    viewer: nova_core::Viewer,
    id: nova_core::Id,
) -> async_graphql::Result<Option<UserObject>> {
    let relationship = services(ctx)
        .graph
        .relationship(viewer.user_id, id)
        .await
        .map_err(api_error)?;
    if relationship.blocks_viewer {
        return Ok(None);
    }
    user_after_change(ctx, id).await.map(Some)
}

#[Object]
impl CoreMutation {
    /// Creates an account and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        admit(
            ctx,
            LimitedOperation::Register {
                username: &input.username,
            },
        )
        .await?;
        let signed_in = services(ctx)
            .users
            .register(&input.username, &input.email, &input.password)
            .await
            .map_err(api_error)?;
        Ok(AuthPayload(signed_in))
    }

    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        input: SignInInput,
    ) -> async_graphql::Result<AuthPayload> {
        admit(
            ctx,
            LimitedOperation::SignIn {
                login: &input.login,
            },
        )
        .await?;
        let signed_in = services(ctx)
            .users
            .sign_in(&input.login, &input.password)
            .await
            .map_err(api_error)?;
        Ok(AuthPayload(signed_in))
    }

    /// Exchanges a refresh token for new tokens. Reusing a rotated token revokes the session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let signed_in = services(ctx)
            .users
            .refresh(&refresh_token)
            .await
            .map_err(api_error)?;
        Ok(AuthPayload(signed_in))
    }

    /// Revokes the session the refresh token belongs to.
    async fn sign_out(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<bool> {
        services(ctx)
            .users
            .sign_out(&refresh_token)
            .await
            .map_err(api_error)?;
        Ok(true)
    }

    #[graphql(guard = "WriteLimit")]
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> async_graphql::Result<UserObject> {
        let viewer = viewer(ctx)?;
        let avatar = match &input.avatar_url {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(url) => Some(Some(url.as_str())),
        };
        let view = services(ctx)
            .users
            .update_profile(
                viewer,
                input.display_name.as_deref(),
                input.bio.as_deref(),
                avatar,
            )
            .await
            .map_err(api_error)?;
        Ok(UserObject::owner(view))
    }

    /// Follows an account; returns it with updated counts. Idempotent.
    #[graphql(guard = "WriteLimit")]
    async fn follow(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<UserObject> {
        let (_, target) = apply_graph_action(ctx, &user_id, GraphAction::Follow).await?;
        user_after_change(ctx, target).await
    }

    #[graphql(guard = "WriteLimit")]
    async fn unfollow(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<UserObject> {
        let (_, target) = apply_graph_action(ctx, &user_id, GraphAction::Unfollow).await?;
        user_after_change(ctx, target).await
    }

    /// Blocks an account: removes follows both ways and hides each from the other. Returns the
    /// account, or null when that account blocks the viewer (its profile stays hidden).
    #[graphql(guard = "WriteLimit")]
    async fn block(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<Option<UserObject>> {
        let (viewer, target) = apply_graph_action(ctx, &user_id, GraphAction::Block).await?;
        user_unless_blocked_by(ctx, viewer, target).await
    }

    /// Lifts the viewer's block. Returns the account, or null when that account blocks the viewer.
    #[graphql(guard = "WriteLimit")]
    async fn unblock(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<Option<UserObject>> {
        let (viewer, target) = apply_graph_action(ctx, &user_id, GraphAction::Unblock).await?;
        user_unless_blocked_by(ctx, viewer, target).await
    }

    /// Mutes an account: its posts leave the viewer's home feed.
    #[graphql(guard = "WriteLimit")]
    async fn mute(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<UserObject> {
        let (_, target) = apply_graph_action(ctx, &user_id, GraphAction::Mute).await?;
        user_after_change(ctx, target).await
    }

    #[graphql(guard = "WriteLimit")]
    async fn unmute(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<UserObject> {
        let (_, target) = apply_graph_action(ctx, &user_id, GraphAction::Unmute).await?;
        user_after_change(ctx, target).await
    }

    #[graphql(guard = "WriteLimit")]
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        input: CreatePostInput,
    ) -> async_graphql::Result<PostObject> {
        let viewer = viewer(ctx)?;
        let reply_to = input
            .reply_to
            .as_ref()
            .map(|id| parse_id(id, "replyTo"))
            .transpose()?;
        let domain_input = DomainCreatePost {
            body: &input.body,
            visibility: input.visibility.map(Into::into),
            reply_to,
            idempotency_key: input.idempotency_key.as_deref(),
        };
        let post = services(ctx)
            .posts
            .create_post(viewer, domain_input)
            .await
            .map_err(api_error)?;
        Ok(PostObject(post))
    }

    /// Replaces a post's body; the previous body is kept in `versions`.
    #[graphql(guard = "WriteLimit")]
    async fn edit_post(
        &self,
        ctx: &Context<'_>,
        input: EditPostInput,
    ) -> async_graphql::Result<PostObject> {
        let viewer = viewer(ctx)?;
        let id = parse_id(&input.id, "id")?;
        let post = services(ctx)
            .posts
            .edit_post(viewer, id, &input.body)
            .await
            .map_err(api_error)?;
        Ok(PostObject(post))
    }

    /// Deletes a post: it disappears from every read.
    #[graphql(guard = "WriteLimit")]
    async fn delete_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<DeletePostPayload> {
        let viewer = viewer(ctx)?;
        let post_id = parse_id(&id, "id")?;
        services(ctx)
            .posts
            .delete_post(viewer, post_id)
            .await
            .map_err(api_error)?;
        Ok(DeletePostPayload {
            deleted_post_id: id,
        })
    }

    /// Likes a post. Idempotent.
    #[graphql(guard = "WriteLimit")]
    async fn like_post(&self, ctx: &Context<'_>, post_id: ID) -> async_graphql::Result<PostObject> {
        let viewer = viewer(ctx)?;
        let id = parse_id(&post_id, "postId")?;
        Ok(PostObject(
            services(ctx)
                .posts
                .like(viewer, id)
                .await
                .map_err(api_error)?,
        ))
    }

    /// Removes a like. Idempotent.
    #[graphql(guard = "WriteLimit")]
    async fn unlike_post(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
    ) -> async_graphql::Result<PostObject> {
        let viewer = viewer(ctx)?;
        let id = parse_id(&post_id, "postId")?;
        Ok(PostObject(
            services(ctx)
                .posts
                .unlike(viewer, id)
                .await
                .map_err(api_error)?,
        ))
    }
}
