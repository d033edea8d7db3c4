//! Per-request DataLoaders: a page of 20 posts costs one query for authors, one for counters and
//! one for relationships, not 20 of each.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use nova_core::{Id, Viewer};
use nova_posts::{PostStats, PostsService};
use nova_users::{GraphService, Relationship, UserView, UsersService};

use crate::context::Services;
use crate::error::api_error;

pub(crate) struct UserLoader(Arc<UsersService>);

impl Loader<Id> for UserLoader {
    type Value = UserView;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, UserView>, Self::Error> {
        let users = self.0.get_users(keys).await.map_err(api_error)?;
        Ok(users.into_iter().map(|u| (u.user.id, u)).collect())
    }
}

pub(crate) struct StatsLoader {
    posts: Arc<PostsService>,
    viewer: Option<Viewer>,
}

impl Loader<Id> for StatsLoader {
    type Value = PostStats;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, PostStats>, Self::Error> {
        Ok(self
            .posts
            .stats(keys, self.viewer)
            .await
            .map_err(api_error)?
            .into_iter()
            .collect())
    }
}

pub(crate) struct RelationshipLoader {
    graph: Arc<GraphService>,
    viewer: Option<Viewer>,
}

impl Loader<Id> for RelationshipLoader {
    type Value = Relationship;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, Relationship>, Self::Error> {
        let Some(viewer) = self.viewer else {
            return Ok(HashMap::new());
        };
        let others: Vec<Id> = keys
            .iter()
            .copied()
            .filter(|k| *k != viewer.user_id)
            .collect();
        let found = self
            .graph
            .relationships(viewer.user_id, &others)
            .await
            .map_err(api_error)?;
        Ok(others.into_iter().zip(found).collect())
    }
}

/// How long a loader waits to collect keys before querying. Every key of a page is requested in
/// the same poll (async-graphql resolves list items concurrently), so the default 1 ms only adds
/// latency; 100 µs leaves the batch task time to start after the siblings have registered.
const BATCH_DELAY: std::time::Duration = std::time::Duration::from_micros(100);

/// The loaders of one request (they cache per request, so they are never shared across viewers).
pub(crate) struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub stats: DataLoader<StatsLoader>,
    pub relationships: DataLoader<RelationshipLoader>,
}

impl Loaders {
    pub fn new(services: &Services, viewer: Option<Viewer>) -> Self {
        Loaders {
            users: DataLoader::new(UserLoader(Arc::clone(&services.users)), tokio::spawn)
                .delay(BATCH_DELAY),
            stats: DataLoader::new(
                StatsLoader {
                    posts: Arc::clone(&services.posts),
                    viewer,
                },
                tokio::spawn,
            )
            .delay(BATCH_DELAY),
            relationships: DataLoader::new(
                RelationshipLoader {
                    graph: Arc::clone(&services.graph),
                    viewer,
                },
                tokio::spawn,
            )
            .delay(BATCH_DELAY),
        }
    }
}

/// What a page of posts will ask of its nodes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PostRelations {
    pub author: bool,
    pub stats: bool,
}

impl Loaders {
    /// Loads the authors and counters a page of posts will ask for, one batch each and both at
    /// once, and primes the loaders with them, so each node's `author` and `likeCount` are
    /// cache hits. The page already knows every key: letting the loaders collect them instead
    /// costs a timer and a spawned task per batch, and a millisecond of latency.
    pub async fn prime_posts(
        &self,
        posts: &[nova_posts::Post],
        wants: PostRelations,
    ) -> async_graphql::Result<()> {
        if posts.is_empty() {
            return Ok(());
        }
        let authors = async {
            if !wants.author {
                return Ok(HashMap::new());
            }
            let mut ids: Vec<Id> = posts.iter().map(|p| p.author_id).collect();
            ids.sort_unstable();
            ids.dedup();
            self.users.loader().load(&ids).await
        };
        let stats = async {
            if !wants.stats {
                return Ok(HashMap::new());
            }
            let ids: Vec<Id> = posts.iter().map(|p| p.id).collect();
            let mut found = self.stats.loader().load(&ids).await?;
            // A post without a counters row reads as zero counts, as `PostObject::stats` does.
            for id in ids {
                found.entry(id).or_default();
            }
            Ok(found)
        };
        let (authors, stats) = futures::try_join!(authors, stats)?;
        self.users.feed_many(authors).await;
        self.stats.feed_many(stats).await;
        Ok(())
    }
}

pub(crate) fn loaders<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>()
}
