//! The `Post` type.

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use nova_posts::{Post, PostStats, PostVersion, Visibility};

use crate::context::{maybe_viewer, services};
use crate::error::{api_error, coded};
use crate::loaders::loaders;
use crate::types::connection::connection;
use crate::types::{page_request, post_connection, timestamp, PostConnection, UserObject};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Visibility")]
pub enum VisibilityEnum {
    /// Anyone who is not blocked.
    Public,
    /// Only the author's followers.
    Followers,
}

impl From<VisibilityEnum> for Visibility {
    fn from(v: VisibilityEnum) -> Self {
        match v {
            VisibilityEnum::Public => Visibility::Public,
            VisibilityEnum::Followers => Visibility::Followers,
        }
    }
}

impl From<Visibility> for VisibilityEnum {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => VisibilityEnum::Public,
            Visibility::Followers => VisibilityEnum::Followers,
        }
    }
}

pub struct PostObject(pub Post);

impl PostObject {
    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<PostStats> {
        Ok(loaders(ctx)?
            .stats
            .load_one(self.0.id)
            .await?
            .unwrap_or_default())
    }
}

/// An earlier body of an edited post.
#[derive(SimpleObject)]
#[graphql(name = "PostVersion")]
pub struct PostVersionObject {
    /// 1 is the original body.
    version: i64,
    body: String,
    /// When this body was written.
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<PostVersion> for PostVersionObject {
    fn from(v: PostVersion) -> Self {
        PostVersionObject {
            version: v.version,
            body: v.body,
            created_at: timestamp(v.created_at),
        }
    }
}

type PostVersionConnection = async_graphql::connection::Connection<String, PostVersionObject>;

#[Object(name = "Post")]
impl PostObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Plain text, NFC-normalised, at most 500 characters. Never HTML.
    async fn body(&self) -> &str {
        &self.0.body
    }

    async fn visibility(&self) -> VisibilityEnum {
        self.0.visibility.into()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// Set when the body was edited; earlier bodies are in `versions`.
    async fn edited_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.edited_at.map(timestamp)
    }

    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<UserObject> {
        let author = loaders(ctx)?.users.load_one(self.0.author_id).await?;
        author
            .map(UserObject::new)
            .ok_or_else(|| coded(nova_core::Code::NotFound, "author not found"))
    }

    /// The post this one replies to, if the viewer may see it.
    async fn reply_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PostObject>> {
        let Some(parent) = self.0.reply_to_id else {
            return Ok(None);
        };
        match services(ctx)
            .posts
            .get_post(maybe_viewer(ctx), parent)
            .await
        {
            Ok(post) => Ok(Some(PostObject(post))),
            Err(nova_posts::PostError::NotFound) => Ok(None),
            Err(e) => Err(api_error(e)),
        }
    }

    async fn like_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.stats(ctx).await?.like_count)
    }

    async fn reply_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.stats(ctx).await?.reply_count)
    }

    /// Whether the viewer liked this post (false when signed out).
    async fn viewer_has_liked(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.stats(ctx).await?.viewer_has_liked)
    }

    /// Replies visible to the viewer, oldest first.
    async fn replies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PostConnection> {
        let page = page_request(first, after, "replies")?;
        let found = services(ctx)
            .posts
            .replies(self.0.id, maybe_viewer(ctx), &page)
            .await
            .map_err(api_error)?;
        post_connection(ctx, found, "replies").await
    }

    /// Earlier bodies of this post, most recent first.
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PostVersionConnection> {
        let page = page_request(first, after, "versions")?;
        let found = services(ctx)
            .posts
            .versions(maybe_viewer(ctx), self.0.id, &page)
            .await
            .map_err(api_error)?;
        Ok(connection(
            found,
            "versions",
            |v| nova_core::Id(v.version),
            PostVersionObject::from,
        ))
    }
}
