//! The posts service: the only entry point to posts, replies, edits, likes and feeds.

use std::sync::Arc;

use nova_core::{now_millis, Id, IdGenerator, Page, PageRequest, Viewer};
use nova_events::{DomainEvent, Envelope};
use nova_users::{GraphService, Relationship};

use crate::model::{mentions, IdempotencyKey, Post, PostBody, PostStats, PostVersion, Visibility};
use crate::store::{InsertPostOutcome, NewPost, PostStore};
use crate::PostError;

/// Whether a viewer may see a post, given how the viewer relates to its author.
pub fn can_view(post: &Post, viewer: Option<Id>, relationship: &Relationship) -> bool {
    if viewer == Some(post.author_id) {
        return true;
    }
    if relationship.blocked_either_way() {
        return false;
    }
    match post.visibility {
        Visibility::Public => true,
        Visibility::Followers => viewer.is_some() && relationship.viewer_follows,
    }
}

/// Raw input of `createPost`.
#[derive(Debug, Clone, Default)]
pub struct CreatePostInput<'a> {
    pub body: &'a str,
    pub visibility: Option<Visibility>,
    pub reply_to: Option<Id>,
    pub idempotency_key: Option<&'a str>,
}

pub struct PostsService {
    posts: Arc<dyn PostStore>,
    graph: Arc<GraphService>,
    ids: Arc<IdGenerator>,
}

impl PostsService {
    pub fn new(posts: Arc<dyn PostStore>, graph: Arc<GraphService>, ids: Arc<IdGenerator>) -> Self {
        PostsService { posts, graph, ids }
    }

    async fn relationship(
        &self,
        viewer: Option<Id>,
        author: Id,
    ) -> Result<Relationship, PostError> {
        match viewer {
            Some(v) => Ok(self.graph.relationship(v, author).await?),
            None => Ok(Relationship::default()),
        }
    }

    /// A post the viewer may see, or NotFound (hidden posts are indistinguishable from missing).
    pub async fn get_post(&self, viewer: Option<Viewer>, id: Id) -> Result<Post, PostError> {
        let viewer_id = viewer.map(|v| v.user_id);
        let post = self.posts.get_post(id).await?.ok_or(PostError::NotFound)?;
        let relationship = self.relationship(viewer_id, post.author_id).await?;
        if can_view(&post, viewer_id, &relationship) {
            Ok(post)
        } else {
            Err(PostError::NotFound)
        }
    }

    pub async fn create_post(
        &self,
        viewer: Viewer,
        input: CreatePostInput<'_>,
    ) -> Result<Post, PostError> {
        let body = PostBody::parse(input.body)?;
        let idempotency_key = input
            .idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?;
        let mut reply_to_author_id = None;
        if let Some(parent_id) = input.reply_to {
            let parent = self.get_post(Some(viewer), parent_id).await?;
            reply_to_author_id = Some(parent.author_id);
            let relationship = self
                .relationship(Some(viewer.user_id), parent.author_id)
                .await?;
            if relationship.blocked_either_way() {
                return Err(PostError::NotFound);
            }
        }
        let new_post = NewPost {
            id: self.ids.next_id(),
            author_id: viewer.user_id,
            body,
            visibility: input.visibility.unwrap_or(Visibility::Public),
            reply_to_id: input.reply_to,
            idempotency_key,
            created_at: now_millis(),
        };
        let event = Envelope::new(
            self.ids.next_id(),
            new_post.created_at,
            DomainEvent::PostCreated {
                post_id: new_post.id,
                author_id: new_post.author_id,
                reply_to_id: new_post.reply_to_id,
                reply_to_author_id,
                visibility: new_post.visibility.as_str().to_owned(),
                mentions: mentions(new_post.body.as_str()),
            },
        );
        match self.posts.insert_post(&new_post, &event.record()).await? {
            InsertPostOutcome::Created(post) => Ok(post),
            InsertPostOutcome::Existing(post) => {
                // A retry carries the body the post was created with, which an edit since then
                // may have replaced: compare with that original body, not the current one.
                let same = post.visibility == new_post.visibility
                    && post.reply_to_id == new_post.reply_to_id
                    && self.original_body(&post).await? == new_post.body.as_str();
                if same {
                    Ok(post)
                } else {
                    Err(PostError::IdempotencyConflict)
                }
            }
        }
    }

    /// The body a post was created with: version 1 once it was edited, its body otherwise.
    async fn original_body(&self, post: &Post) -> Result<String, PostError> {
        if post.edited_at.is_none() {
            return Ok(post.body.clone());
        }
        // Versions list newest first below `after`, so `after: 2` yields exactly version 1.
        let first_version = PageRequest {
            limit: 1,
            after: Some(Id(2)),
        };
        let versions = self.posts.list_versions(post.id, &first_version).await?;
        Ok(versions
            .items
            .into_iter()
            .find(|v| v.version == 1)
            .map_or_else(|| post.body.clone(), |v| v.body))
    }

    async fn own_post(&self, viewer: Viewer, id: Id) -> Result<Post, PostError> {
        let post = self.get_post(Some(viewer), id).await?;
        if post.author_id != viewer.user_id {
            return Err(PostError::Forbidden("only the author can change this post"));
        }
        Ok(post)
    }

    pub async fn edit_post(&self, viewer: Viewer, id: Id, body: &str) -> Result<Post, PostError> {
        let body = PostBody::parse(body)?;
        let post = self.own_post(viewer, id).await?;
        if post.body == body.as_str() {
            return Ok(post);
        }
        self.posts
            .update_post_body(id, &body, now_millis())
            .await?
            .ok_or(PostError::NotFound)
    }

    pub async fn delete_post(&self, viewer: Viewer, id: Id) -> Result<(), PostError> {
        self.own_post(viewer, id).await?;
        self.posts.delete_post(id, now_millis()).await?;
        Ok(())
    }

    /// Likes a visible post. Idempotent: liking twice counts once.
    pub async fn like(&self, viewer: Viewer, id: Id) -> Result<Post, PostError> {
        let post = self.get_post(Some(viewer), id).await?;
        let now = now_millis();
        let event = Envelope::new(
            self.ids.next_id(),
            now,
            DomainEvent::PostLiked {
                post_id: id,
                post_author_id: post.author_id,
                liker_id: viewer.user_id,
            },
        );
        self.posts
            .put_like(id, viewer.user_id, now, &event.record())
            .await?;
        Ok(post)
    }

    pub async fn unlike(&self, viewer: Viewer, id: Id) -> Result<Post, PostError> {
        let post = self.get_post(Some(viewer), id).await?;
        self.posts.delete_like(id, viewer.user_id).await?;
        Ok(post)
    }

    pub async fn stats(
        &self,
        ids: &[Id],
        viewer: Option<Viewer>,
    ) -> Result<Vec<(Id, PostStats)>, PostError> {
        Ok(self.posts.get_stats(ids, viewer.map(|v| v.user_id)).await?)
    }

    pub async fn home_feed(
        &self,
        viewer: Viewer,
        page: &PageRequest,
    ) -> Result<Page<Post>, PostError> {
        Ok(self.posts.list_home_feed(viewer.user_id, page).await?)
    }

    /// An author's timeline; empty when the author and the viewer blocked each other.
    pub async fn author_posts(
        &self,
        author: Id,
        viewer: Option<Viewer>,
        page: &PageRequest,
    ) -> Result<Page<Post>, PostError> {
        if !self.graph.can_see(viewer, author).await? {
            return Ok(Page {
                items: Vec::new(),
                has_next_page: false,
            });
        }
        Ok(self
            .posts
            .list_author_posts(author, viewer.map(|v| v.user_id), page)
            .await?)
    }

    pub async fn replies(
        &self,
        parent: Id,
        viewer: Option<Viewer>,
        page: &PageRequest,
    ) -> Result<Page<Post>, PostError> {
        Ok(self
            .posts
            .list_replies(parent, viewer.map(|v| v.user_id), page)
            .await?)
    }

    /// Earlier versions of a post the viewer may see.
    pub async fn versions(
        &self,
        viewer: Option<Viewer>,
        id: Id,
        page: &PageRequest,
    ) -> Result<Page<PostVersion>, PostError> {
        self.get_post(viewer, id).await?;
        Ok(self.posts.list_versions(id, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(visibility: Visibility) -> Post {
        Post {
            id: Id(1),
            author_id: Id(10),
            body: "x".into(),
            visibility,
            reply_to_id: None,
            created_at: 0,
            edited_at: None,
        }
    }

    #[test]
    fn followers_posts_need_a_follow() {
        let p = post(Visibility::Followers);
        assert!(!can_view(&p, None, &Relationship::default()));
        assert!(!can_view(&p, Some(Id(2)), &Relationship::default()));
        let follows = Relationship {
            viewer_follows: true,
            ..Default::default()
        };
        assert!(can_view(&p, Some(Id(2)), &follows));
        assert!(
            can_view(&p, Some(Id(10)), &Relationship::default()),
            "author sees own post"
        );
    }

    #[test]
    fn blocks_hide_posts_either_way() {
        let p = post(Visibility::Public);
        let blocked = Relationship {
            viewer_blocks: true,
            ..Default::default()
        };
        let blocked_by = Relationship {
            blocks_viewer: true,
            viewer_follows: true,
            ..Default::default()
        };
        assert!(!can_view(&p, Some(Id(2)), &blocked));
        assert!(!can_view(&p, Some(Id(2)), &blocked_by));
        assert!(can_view(&p, None, &Relationship::default()));
    }
}
