//! The live hub: this node's registry of GraphQL subscribers and the event handler that routes
//! domain events to them.
//!
//! Every node runs one hub as a `Live` event handler (each node sees every event: its own
//! subscribers are the only ones it can reach). Routing applies the same rules as reads: a new
//! post goes to the home-feed subscribers whose feed shows its author (follows, no mute, no block
//! either way, one query for all of them), message events only to the conversation's members,
//! notification events only to their recipient. Each subscriber has its own bounded queue
//! ([`queue`]), so a slow client only ever loses its own events, never slows the others.

pub mod queue;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nova_core::{Id, UnixMillis, Viewer};
use nova_events::{DomainEvent, Envelope, EventHandler, Handled, HandlerKind, Topic};
use nova_posts::{Post, PostsService};
use nova_users::GraphService;

pub use queue::QueuePressure;
use queue::{Offer, QueueReceiver, QueueSender};

#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    /// Events queued per subscriber before further ones are dropped (and counted).
    pub queue_capacity: usize,
    /// Concurrent subscriptions per account on this node.
    pub max_per_account: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            queue_capacity: 10_000,
            max_per_account: 20,
        }
    }
}

/// What happened in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum MessageUpdateKind {
    Sent,
    Edited,
    Deleted,
    Read,
    MembersChanged,
}

/// An event on its way to one subscriber.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Post {
        post: Box<Post>,
        occurred_at: UnixMillis,
    },
    Message {
        kind: MessageUpdateKind,
        conversation_id: Id,
        message_id: Option<Id>,
        actor_id: Id,
        occurred_at: UnixMillis,
    },
    Notification {
        notification_id: Id,
        occurred_at: UnixMillis,
    },
}

impl LiveEvent {
    pub fn occurred_at(&self) -> UnixMillis {
        match self {
            LiveEvent::Post { occurred_at, .. }
            | LiveEvent::Message { occurred_at, .. }
            | LiveEvent::Notification { occurred_at, .. } => *occurred_at,
        }
    }
}

/// What a subscription listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    HomeFeed,
    /// All of the subscriber's conversations, or one.
    Messages(Option<Id>),
    Notifications,
}

impl Filter {
    fn kind(self) -> &'static str {
        match self {
            Filter::HomeFeed => "home_feed",
            Filter::Messages(_) => "messages",
            Filter::Notifications => "notifications",
        }
    }
}

struct Entry {
    user: Id,
    filter: Filter,
    tx: QueueSender<LiveEvent>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    per_user: HashMap<Id, usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("too many concurrent subscriptions for this account (at most {0})")]
pub struct TooManySubscriptions(pub usize);

impl nova_core::Coded for TooManySubscriptions {
    fn code(&self) -> nova_core::Code {
        nova_core::Code::RateLimited
    }
}

pub struct LiveHub {
    registry: Mutex<Registry>,
    settings: LiveSettings,
    graph: Arc<GraphService>,
    posts: Arc<PostsService>,
}

/// A registered subscriber; unregisters itself when dropped (the client unsubscribed or left).
pub struct Subscription {
    hub: Arc<LiveHub>,
    id: u64,
    filter: Filter,
    rx: QueueReceiver<LiveEvent>,
}

impl Subscription {
    pub(crate) async fn next(&mut self) -> Option<queue::Received<LiveEvent>> {
        let received = self.rx.next().await;
        if let Some(queue::Received::Event(event, _)) = &received {
            let seconds = (nova_core::now_millis() - event.occurred_at()).max(0) as f64 / 1000.0;
            metrics::histogram!("subscription_publish_to_deliver_seconds", "kind" => self.filter.kind())
                .record(seconds);
        }
        received
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

impl LiveHub {
    pub fn new(
        settings: LiveSettings,
        graph: Arc<GraphService>,
        posts: Arc<PostsService>,
    ) -> Arc<Self> {
        Arc::new(LiveHub {
            registry: Mutex::new(Registry::default()),
            settings,
            graph,
            posts,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the registry inconsistent (every update
        // is a single insert or remove), so a poisoned lock is still usable.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(
        self: &Arc<Self>,
        user: Id,
        filter: Filter,
    ) -> Result<Subscription, TooManySubscriptions> {
        let (tx, rx) = queue::bounded(self.settings.queue_capacity, filter.kind());
        let mut registry = self.lock();
        let count = registry.per_user.entry(user).or_insert(0);
        if *count >= self.settings.max_per_account {
            metrics::counter!("subscriptions_refused_total").increment(1);
            return Err(TooManySubscriptions(self.settings.max_per_account));
        }
        *count += 1;
        registry.next_id += 1;
        let id = registry.next_id;
        registry.entries.insert(id, Entry { user, filter, tx });
        metrics::gauge!("subscriptions_active", "kind" => filter.kind()).increment(1.0);
        Ok(Subscription {
            hub: Arc::clone(self),
            id,
            filter,
            rx,
        })
    }

    fn unregister(&self, id: u64) {
        let mut registry = self.lock();
        if let Some(entry) = registry.entries.remove(&id) {
            metrics::gauge!("subscriptions_active", "kind" => entry.filter.kind()).decrement(1.0);
            if let Some(count) = registry.per_user.get_mut(&entry.user) {
                *count -= 1;
                if *count == 0 {
                    registry.per_user.remove(&entry.user);
                }
            }
        }
    }

    /// Subscribers on this node.
    pub fn subscriber_count(&self) -> usize {
        self.lock().entries.len()
    }

    /// Offers the event to every matching subscriber; never waits for one.
    fn deliver(&self, matches: impl Fn(&Entry) -> bool, event: &LiveEvent) -> usize {
        let registry = self.lock();
        let mut delivered = 0;
        for entry in registry.entries.values().filter(|e| matches(e)) {
            if entry.tx.offer(event.clone()) == Offer::Queued {
                delivered += 1;
            }
        }
        delivered
    }

    fn users_with(&self, wanted: impl Fn(Filter) -> bool) -> Vec<Id> {
        let registry = self.lock();
        let mut users: Vec<Id> = registry
            .entries
            .values()
            .filter(|e| wanted(e.filter))
            .map(|e| e.user)
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    async fn route_post(
        &self,
        post_id: Id,
        author_id: Id,
        occurred_at: UnixMillis,
    ) -> anyhow::Result<Handled> {
        let candidates = self.users_with(|f| f == Filter::HomeFeed);
        if candidates.is_empty() {
            return Ok(Handled::Ignored);
        }
        let audience = self.graph.feed_audience(author_id, &candidates).await?;
        if audience.is_empty() {
            return Ok(Handled::Ignored);
        }
        // The author may always see their post; each recipient follows the author, which is
        // what FOLLOWERS visibility asks.
        let post = match self
            .posts
            .get_post(Some(Viewer { user_id: author_id }), post_id)
            .await
        {
            Ok(post) => post,
            Err(nova_posts::PostError::NotFound) => return Ok(Handled::Ignored),
            Err(error) => return Err(error.into()),
        };
        let event = LiveEvent::Post {
            post: Box::new(post),
            occurred_at,
        };
        self.deliver(
            |e| e.filter == Filter::HomeFeed && audience.binary_search(&e.user).is_ok(),
            &event,
        );
        Ok(Handled::Applied)
    }

    fn route_message(&self, members: &[Id], event: LiveEvent) -> Handled {
        let LiveEvent::Message {
            conversation_id, ..
        } = event
        else {
            return Handled::Ignored;
        };
        self.deliver(
            |e| match e.filter {
                Filter::Messages(only) => {
                    only.is_none_or(|c| c == conversation_id) && members.contains(&e.user)
                }
                _ => false,
            },
            &event,
        );
        Handled::Applied
    }

    async fn route(&self, envelope: &Envelope) -> anyhow::Result<Handled> {
        let occurred_at = envelope.occurred_at;
        let message = |kind, conversation_id, message_id, actor_id| LiveEvent::Message {
            kind,
            conversation_id,
            message_id,
            actor_id,
            occurred_at,
        };
        Ok(match &envelope.event {
            DomainEvent::PostCreated {
                post_id, author_id, ..
            } => return self.route_post(*post_id, *author_id, occurred_at).await,
            DomainEvent::MessageSent {
                conversation_id,
                message_id,
                sender_id,
                recipient_ids,
            } => {
                let mut members = recipient_ids.clone();
                members.push(*sender_id);
                self.route_message(
                    &members,
                    message(
                        MessageUpdateKind::Sent,
                        *conversation_id,
                        Some(*message_id),
                        *sender_id,
                    ),
                )
            }
            DomainEvent::MessageChanged {
                conversation_id,
                message_id,
                sender_id,
                member_ids,
                deleted,
            } => {
                let kind = if *deleted {
                    MessageUpdateKind::Deleted
                } else {
                    MessageUpdateKind::Edited
                };
                self.route_message(
                    member_ids,
                    message(kind, *conversation_id, Some(*message_id), *sender_id),
                )
            }
            DomainEvent::ConversationRead {
                conversation_id,
                user_id,
                message_id,
                member_ids,
            } => self.route_message(
                member_ids,
                message(
                    MessageUpdateKind::Read,
                    *conversation_id,
                    Some(*message_id),
                    *user_id,
                ),
            ),
            DomainEvent::MembersChanged {
                conversation_id,
                actor_id,
                added_ids,
                left_id,
            } => {
                let mut told = added_ids.clone();
                told.push(*actor_id);
                told.extend(left_id.iter().copied());
                self.route_message(
                    &told,
                    message(
                        MessageUpdateKind::MembersChanged,
                        *conversation_id,
                        None,
                        *actor_id,
                    ),
                )
            }
            DomainEvent::NotificationUpserted {
                recipient_id,
                notification_id,
            } => {
                let event = LiveEvent::Notification {
                    notification_id: *notification_id,
                    occurred_at,
                };
                self.deliver(
                    |e| e.filter == Filter::Notifications && e.user == *recipient_id,
                    &event,
                );
                Handled::Applied
            }
            DomainEvent::PostLiked { .. }
            | DomainEvent::UserFollowed { .. }
            | DomainEvent::NotificationPreferencesChanged { .. } => Handled::Ignored,
        })
    }
}

#[async_trait]
impl EventHandler for LiveHub {
    fn name(&self) -> &'static str {
        "live"
    }

    fn topics(&self) -> &'static [Topic] {
        &Topic::ALL
    }

    fn kind(&self) -> HandlerKind {
        HandlerKind::Live
    }

    /// Live delivery is best effort by design (a client that missed something refetches), so
    /// a failed lookup is logged and counted rather than holding up the event path.
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<Handled> {
        match self.route(envelope).await {
            Ok(handled) => Ok(handled),
            Err(error) => {
                metrics::counter!("subscription_routing_failures_total").increment(1);
                tracing::warn!(event_id = %envelope.id, error = format!("{error:#}"), "live routing failed");
                Ok(Handled::Ignored)
            }
        }
    }
}
