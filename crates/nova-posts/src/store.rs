//! Storage port of the posts domain. Adapters live in `nova-db`.
//!
//! Error contract: expected outcomes are return values; `Err` means the store failed.
//! Every list takes the viewer so that the adapter filters blocks and visibility in the query
//! itself (a page is never short because rows were dropped after fetching).

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;

use crate::model::{IdempotencyKey, Post, PostBody, PostStats, PostVersion, Visibility};

#[derive(Debug, Clone)]
pub struct NewPost {
    pub id: Id,
    pub author_id: Id,
    pub body: PostBody,
    pub visibility: Visibility,
    pub reply_to_id: Option<Id>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone)]
pub enum InsertPostOutcome {
    Created(Post),
    /// The author already created a post with this idempotency key: here it is.
    Existing(Post),
}

#[async_trait]
pub trait PostStore: Send + Sync {
    /// Inserts the post, its counters row, the parent's reply counter and `event` (in the outbox)
    /// in one transaction, unless the author already used the idempotency key.
    async fn insert_post(
        &self,
        post: &NewPost,
        event: &EventRecord,
    ) -> anyhow::Result<InsertPostOutcome>;
    /// A live (not deleted) post.
    async fn get_post(&self, id: Id) -> anyhow::Result<Option<Post>>;
    /// Records the current body as a version and replaces it, in one transaction.
    async fn update_post_body(
        &self,
        id: Id,
        body: &PostBody,
        now: UnixMillis,
    ) -> anyhow::Result<Option<Post>>;
    /// Soft-deletes; returns whether a live post was deleted.
    async fn delete_post(&self, id: Id, now: UnixMillis) -> anyhow::Result<bool>;
    /// Adds the like with its counter and `event`, in one transaction; false (and no event)
    /// if the like existed.
    async fn put_like(
        &self,
        post_id: Id,
        user_id: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool>;
    async fn delete_like(&self, post_id: Id, user_id: Id) -> anyhow::Result<bool>;
    async fn get_stats(
        &self,
        post_ids: &[Id],
        viewer: Option<Id>,
    ) -> anyhow::Result<Vec<(Id, PostStats)>>;
    /// The viewer's posts and those of accounts they follow, newest first, without muted authors.
    async fn list_home_feed(&self, viewer: Id, page: &PageRequest) -> anyhow::Result<Page<Post>>;
    /// An author's posts visible to the viewer, newest first.
    async fn list_author_posts(
        &self,
        author: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Post>>;
    /// Replies to a post visible to the viewer, oldest first (conversation order).
    async fn list_replies(
        &self,
        parent: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Post>>;
    /// Earlier versions of a post, newest first.
    async fn list_versions(
        &self,
        post_id: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<PostVersion>>;
}
