//! The social graph service: follow, block and mute, relationships and follower lists.

use std::sync::Arc;

use nova_core::{now_millis, Id, IdGenerator, Page, PageRequest, Viewer};
use nova_events::{DomainEvent, Envelope};

use crate::model::{FollowEdge, Relationship};
use crate::store::{GraphStore, UserStore};
use crate::UserError;

/// A change to how the viewer relates to another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphAction {
    Follow,
    Unfollow,
    Block,
    Unblock,
    Mute,
    Unmute,
}

pub struct GraphService {
    graph: Arc<dyn GraphStore>,
    users: Arc<dyn UserStore>,
    ids: Arc<IdGenerator>,
}

impl GraphService {
    pub fn new(
        graph: Arc<dyn GraphStore>,
        users: Arc<dyn UserStore>,
        ids: Arc<IdGenerator>,
    ) -> Self {
        GraphService { graph, users, ids }
    }

    /// The relationship from `viewer` to `other` (all false for oneself).
    pub async fn relationship(&self, viewer: Id, other: Id) -> Result<Relationship, UserError> {
        if viewer == other {
            return Ok(Relationship::default());
        }
        Ok(self
            .graph
            .get_relationships(viewer, &[other])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    pub async fn relationships(
        &self,
        viewer: Id,
        others: &[Id],
    ) -> Result<Vec<Relationship>, UserError> {
        Ok(self.graph.get_relationships(viewer, others).await?)
    }

    /// The relationship of each (viewer, other) pair, in the same order (a pair of one account
    /// with itself relates in no way), in one store call.
    pub async fn relationship_pairs(
        &self,
        pairs: &[(Id, Id)],
    ) -> Result<Vec<Relationship>, UserError> {
        let asked: Vec<(Id, Id)> = pairs.iter().copied().filter(|(v, o)| v != o).collect();
        if asked.is_empty() {
            return Ok(vec![Relationship::default(); pairs.len()]);
        }
        let found = self.graph.get_relationship_pairs(&asked).await?;
        // A short answer would read as "no block, no mute" for the missing pairs: refuse it.
        if found.len() != asked.len() {
            return Err(UserError::Internal(anyhow::anyhow!(
                "get_relationship_pairs returned {} relationships for {} pairs",
                found.len(),
                asked.len()
            )));
        }
        let mut found = found.into_iter();
        Ok(pairs
            .iter()
            .map(|(v, o)| {
                if v == o {
                    Relationship::default()
                } else {
                    found.next().unwrap_or_default()
                }
            })
            .collect())
    }

    /// Which of `candidates` have `author`'s posts in their home feed.
    pub async fn feed_audience(&self, author: Id, candidates: &[Id]) -> Result<Vec<Id>, UserError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.graph.feed_audience(author, candidates).await?)
    }

    /// Whether `viewer` (if any) may see `other` at all: false when either blocked the other.
    pub async fn can_see(&self, viewer: Option<Viewer>, other: Id) -> Result<bool, UserError> {
        match viewer {
            None => Ok(true),
            Some(v) => Ok(!self
                .relationship(v.user_id, other)
                .await?
                .blocked_either_way()),
        }
    }

    async fn target(
        &self,
        viewer: Viewer,
        target: Id,
        action: &'static str,
    ) -> Result<Relationship, UserError> {
        if viewer.user_id == target {
            return Err(UserError::invalid(format!("you cannot {action} yourself")));
        }
        if self.users.get_user_views(&[target]).await?.is_empty() {
            return Err(UserError::NotFound);
        }
        self.relationship(viewer.user_id, target).await
    }

    /// Applies one graph change for the viewer.
    pub async fn apply(
        &self,
        viewer: Viewer,
        target: Id,
        action: GraphAction,
    ) -> Result<(), UserError> {
        match action {
            GraphAction::Follow => self.follow(viewer, target).await,
            GraphAction::Unfollow => self.unfollow(viewer, target).await,
            GraphAction::Block => self.block(viewer, target).await,
            GraphAction::Unblock => self.unblock(viewer, target).await,
            GraphAction::Mute => self.mute(viewer, target).await,
            GraphAction::Unmute => self.unmute(viewer, target).await,
        }
    }

    pub async fn follow(&self, viewer: Viewer, target: Id) -> Result<(), UserError> {
        let rel = self.target(viewer, target, "follow").await?;
        if rel.blocks_viewer {
            return Err(UserError::NotFound);
        }
        if rel.viewer_blocks {
            return Err(UserError::Forbidden(
                "unblock this account before following it",
            ));
        }
        let now = now_millis();
        let event = Envelope::new(
            self.ids.next_id(),
            now,
            DomainEvent::UserFollowed {
                follower_id: viewer.user_id,
                followee_id: target,
            },
        );
        self.graph
            .put_follow(
                self.ids.next_id(),
                viewer.user_id,
                target,
                now,
                &event.record(),
            )
            .await?;
        Ok(())
    }

    /// Idempotent. An account that blocked the viewer does not exist for it (its profile would
    /// otherwise leak through the mutation's payload); no follow can exist across a block anyway.
    pub async fn unfollow(&self, viewer: Viewer, target: Id) -> Result<(), UserError> {
        let rel = self.target(viewer, target, "unfollow").await?;
        if rel.blocks_viewer {
            return Err(UserError::NotFound);
        }
        self.graph.delete_follow(viewer.user_id, target).await?;
        Ok(())
    }

    pub async fn block(&self, viewer: Viewer, target: Id) -> Result<(), UserError> {
        self.target(viewer, target, "block").await?;
        self.graph
            .put_block(viewer.user_id, target, now_millis())
            .await?;
        Ok(())
    }

    pub async fn unblock(&self, viewer: Viewer, target: Id) -> Result<(), UserError> {
        self.target(viewer, target, "unblock").await?;
        self.graph.delete_block(viewer.user_id, target).await?;
        Ok(())
    }

    pub async fn mute(&self, viewer: Viewer, target: Id) -> Result<(), UserError> {
        let rel = self.target(viewer, target, "mute").await?;
        if rel.blocks_viewer {
            return Err(UserError::NotFound);
        }
        self.graph
            .put_mute(viewer.user_id, target, now_millis())
            .await?;
        Ok(())
    }

    /// Idempotent. Like `mute`, refused with NotFound while the target blocks the viewer.
    pub async fn unmute(&self, viewer: Viewer, target: Id) -> Result<(), UserError> {
        let rel = self.target(viewer, target, "unmute").await?;
        if rel.blocks_viewer {
            return Err(UserError::NotFound);
        }
        self.graph.delete_mute(viewer.user_id, target).await?;
        Ok(())
    }

    pub async fn followers(
        &self,
        user: Id,
        viewer: Option<Viewer>,
        page: &PageRequest,
    ) -> Result<Page<FollowEdge>, UserError> {
        Ok(self
            .graph
            .list_followers(user, viewer.map(|v| v.user_id), page)
            .await?)
    }

    pub async fn following(
        &self,
        user: Id,
        viewer: Option<Viewer>,
        page: &PageRequest,
    ) -> Result<Page<FollowEdge>, UserError> {
        Ok(self
            .graph
            .list_following(user, viewer.map(|v| v.user_id), page)
            .await?)
    }
}
