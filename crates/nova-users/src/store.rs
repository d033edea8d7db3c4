//! Storage ports of the accounts domain. Adapters live in `nova-db`.
//!
//! Error contract: expected outcomes (a taken username, a lost race) are return values;
//! `Err(anyhow::Error)` means the store failed and is reported as INTERNAL (or UNAVAILABLE when
//! the adapter marks it so).

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;

use crate::model::{Email, FollowEdge, ProfilePatch, Relationship, User, UserView, Username};

/// A user row to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Id,
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertUserOutcome {
    Inserted,
    UsernameTaken,
    EmailTaken,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, user: &NewUser) -> anyhow::Result<InsertUserOutcome>;
    /// Finds the id and password hash for a login that is either a username or an email.
    async fn get_credentials(&self, login: &str) -> anyhow::Result<Option<(Id, String)>>;
    async fn get_user_views(&self, ids: &[Id]) -> anyhow::Result<Vec<UserView>>;
    async fn get_user_id_by_username(&self, username: &Username) -> anyhow::Result<Option<Id>>;
    async fn update_profile(
        &self,
        id: Id,
        patch: &ProfilePatch,
        now: UnixMillis,
    ) -> anyhow::Result<Option<User>>;
}

/// A refresh-token session row.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Id,
    pub family_id: Id,
    pub user_id: Id,
    pub token_hash: Vec<u8>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Id,
    pub family_id: Id,
    pub user_id: Id,
    pub expires_at: UnixMillis,
    pub rotated_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &NewSession) -> anyhow::Result<()>;
    async fn get_session_by_hash(&self, token_hash: &[u8])
        -> anyhow::Result<Option<SessionRecord>>;
    /// Atomically marks `old_id` rotated and inserts `next`. Returns false (and inserts nothing)
    /// when `old_id` was already rotated or revoked, i.e. another request won the race.
    async fn rotate_session(
        &self,
        old_id: Id,
        next: &NewSession,
        now: UnixMillis,
    ) -> anyhow::Result<bool>;
    async fn revoke_family(&self, family_id: Id, now: UnixMillis) -> anyhow::Result<()>;
    /// Whether any session of the family was revoked (a revocation marks every row of the
    /// family, and a revoked family never comes back). A family with no rows is not revoked.
    async fn is_family_revoked(&self, family_id: Id) -> anyhow::Result<bool>;
}

#[async_trait]
pub trait GraphStore: Send + Sync {
    /// Inserts the follow unless it exists; returns whether it was inserted. Counters and
    /// `event` (in the outbox) are written only when a row was inserted, so retries are harmless.
    async fn put_follow(
        &self,
        edge_id: Id,
        follower: Id,
        followee: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool>;
    async fn delete_follow(&self, follower: Id, followee: Id) -> anyhow::Result<bool>;
    /// Inserts the block and removes follows in both directions, in one transaction.
    async fn put_block(&self, blocker: Id, blocked: Id, now: UnixMillis) -> anyhow::Result<bool>;
    async fn delete_block(&self, blocker: Id, blocked: Id) -> anyhow::Result<bool>;
    async fn put_mute(&self, muter: Id, muted: Id, now: UnixMillis) -> anyhow::Result<bool>;
    async fn delete_mute(&self, muter: Id, muted: Id) -> anyhow::Result<bool>;
    /// Relationships from `viewer` towards each of `others`, in the same order.
    async fn get_relationships(
        &self,
        viewer: Id,
        others: &[Id],
    ) -> anyhow::Result<Vec<Relationship>>;
    /// Relationships of many (viewer, other) pairs, in the same order: what an event batch's
    /// rules need, in one query where the adapter can. The default asks once per pair (as
    /// slow as per-event lookups; adapters override it).
    async fn get_relationship_pairs(
        &self,
        pairs: &[(Id, Id)],
    ) -> anyhow::Result<Vec<Relationship>> {
        let mut found = Vec::with_capacity(pairs.len());
        for (viewer, other) in pairs {
            found.push(
                self.get_relationships(*viewer, &[*other])
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
            );
        }
        Ok(found)
    }
    /// The `candidates` whose home feed shows `author`'s posts: the author, and those who
    /// follow the author without muting it, with no block either way. One query, for live
    /// delivery to every connected subscriber at once.
    async fn feed_audience(&self, author: Id, candidates: &[Id]) -> anyhow::Result<Vec<Id>>;
    /// Followers of `user`, newest follow first, hiding accounts blocked either way with `viewer`.
    async fn list_followers(
        &self,
        user: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<FollowEdge>>;
    async fn list_following(
        &self,
        user: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<FollowEdge>>;
}
