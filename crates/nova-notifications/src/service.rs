//! The notifications service: the only entry point to notifications and their preferences, and
//! the rules deciding who is notified of an event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nova_core::{now_millis, Id, IdGenerator, Page, PageRequest, Viewer};
use nova_events::{DomainEvent, Envelope, Handled};
use nova_posts::can_view;
use nova_users::{GraphService, Relationship, UsersService};

use crate::model::{
    Notification, NotificationKind, Preferences, PreferencesPatch, Source, MAX_MARK_READ_IDS,
};
use crate::store::{Activity, EventActivities, NotificationStore};
use crate::NotificationError;

/// How long a cached preferences entry may live without an invalidation: a safety net only,
/// `NotificationPreferencesChanged` drops entries on every node as soon as they change.
const PREFERENCES_TTL: Duration = Duration::from_secs(300);
const PREFERENCES_CAPACITY: u64 = 100_000;

/// Someone who may be notified of an event, before the rules are applied.
struct Candidate {
    recipient: Id,
    kind: NotificationKind,
    target: Option<Id>,
    actor: Id,
    /// The target post is FOLLOWERS-only: only the author's followers may be told of it.
    followers_only: bool,
}

pub struct NotificationsService {
    store: Arc<dyn NotificationStore>,
    users: Arc<UsersService>,
    graph: Arc<GraphService>,
    ids: Arc<IdGenerator>,
    preferences: moka::future::Cache<Id, Preferences>,
}

impl NotificationsService {
    pub fn new(
        store: Arc<dyn NotificationStore>,
        users: Arc<UsersService>,
        graph: Arc<GraphService>,
        ids: Arc<IdGenerator>,
    ) -> Self {
        NotificationsService {
            store,
            users,
            graph,
            ids,
            preferences: moka::future::Cache::builder()
                .max_capacity(PREFERENCES_CAPACITY)
                .time_to_live(PREFERENCES_TTL)
                .build(),
        }
    }

    /// The viewer's notification groups, latest activity first. A target post the viewer may
    /// no longer see (deleted, or hidden since by a block) is left out (`post` is None).
    pub async fn list(
        &self,
        viewer: Viewer,
        page: &PageRequest,
    ) -> Result<Page<Notification>, NotificationError> {
        let mut page = self.store.list_notifications(viewer.user_id, page).await?;
        let mut authors: Vec<Id> = page
            .items
            .iter()
            .filter_map(|n| n.post.as_ref().map(|p| p.author_id))
            .filter(|a| *a != viewer.user_id)
            .collect();
        authors.sort_unstable();
        authors.dedup();
        if !authors.is_empty() {
            let relationships = self.graph.relationships(viewer.user_id, &authors).await?;
            let by_author: HashMap<Id, _> = authors.into_iter().zip(relationships).collect();
            for item in &mut page.items {
                let visible = item.post.as_ref().is_none_or(|post| {
                    can_view(
                        post,
                        Some(viewer.user_id),
                        &by_author.get(&post.author_id).copied().unwrap_or_default(),
                    )
                });
                if !visible {
                    item.post = None;
                }
            }
        }
        Ok(page)
    }

    pub async fn unread_count(&self, viewer: Viewer) -> Result<i64, NotificationError> {
        Ok(self.store.unread_count(viewer.user_id).await?)
    }

    /// Marks the given notifications (all when `None`) read; returns the unread count after.
    /// An id that is not one of the viewer's notifications fails the whole call (NOT_FOUND)
    /// and marks nothing.
    pub async fn mark_read(
        &self,
        viewer: Viewer,
        ids: Option<Vec<Id>>,
    ) -> Result<i64, NotificationError> {
        let ids = ids.map(|mut ids| {
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        if let Some(ids) = &ids {
            if ids.len() > MAX_MARK_READ_IDS {
                return Err(NotificationError::InvalidInput(format!(
                    "at most {MAX_MARK_READ_IDS} ids at a time"
                )));
            }
        }
        if !ids.as_ref().is_some_and(Vec::is_empty)
            && !self
                .store
                .mark_read(viewer.user_id, ids.as_deref(), now_millis())
                .await?
        {
            return Err(NotificationError::NotFound);
        }
        self.unread_count(viewer).await
    }

    /// An account's preferences (the defaults until it changed them), from this node's cache.
    pub async fn preferences(&self, user: Id) -> Result<Preferences, NotificationError> {
        if let Some(cached) = self.preferences.get(&user).await {
            return Ok(cached);
        }
        let stored = self.store.get_preferences(user).await?.unwrap_or_default();
        self.preferences.insert(user, stored).await;
        Ok(stored)
    }

    /// Changes the viewer's preferences. The change and its `NotificationPreferencesChanged`
    /// event are one write; this node's cache entry is dropped at once, the other nodes' when
    /// the event reaches them.
    pub async fn update_preferences(
        &self,
        viewer: Viewer,
        patch: &PreferencesPatch,
    ) -> Result<Preferences, NotificationError> {
        let current = self
            .store
            .get_preferences(viewer.user_id)
            .await?
            .unwrap_or_default();
        let updated = current.apply(patch);
        let now = now_millis();
        let event = Envelope::new(
            self.ids.next_id(),
            now,
            DomainEvent::NotificationPreferencesChanged {
                user_id: viewer.user_id,
            },
        );
        self.store
            .put_preferences(viewer.user_id, &updated, now, &event.record())
            .await?;
        self.invalidate(viewer.user_id).await;
        Ok(updated)
    }

    /// Drops the cached preferences of `user` on this node.
    pub async fn invalidate(&self, user: Id) {
        self.preferences.invalidate(&user).await;
    }

    /// Who an event may notify, before preferences and relationships are consulted.
    async fn candidates(&self, event: &DomainEvent) -> Result<Vec<Candidate>, NotificationError> {
        Ok(match event {
            DomainEvent::PostCreated {
                post_id,
                author_id,
                reply_to_author_id,
                visibility,
                mentions,
                ..
            } => {
                let followers_only = visibility == "FOLLOWERS";
                let mut found = Vec::new();
                if let Some(parent_author) = reply_to_author_id {
                    found.push(Candidate {
                        recipient: *parent_author,
                        kind: NotificationKind::Reply,
                        target: Some(*post_id),
                        actor: *author_id,
                        followers_only,
                    });
                }
                for name in mentions {
                    let Some(id) = self.users.find_by_username(name).await? else {
                        continue;
                    };
                    // The parent's author told of a reply is not told again of the mention.
                    if found.iter().any(|c: &Candidate| c.recipient == id) {
                        continue;
                    }
                    found.push(Candidate {
                        recipient: id,
                        kind: NotificationKind::Mention,
                        target: Some(*post_id),
                        actor: *author_id,
                        followers_only,
                    });
                }
                found
            }
            DomainEvent::PostLiked {
                post_id,
                post_author_id,
                liker_id,
            } => vec![Candidate {
                recipient: *post_author_id,
                kind: NotificationKind::Like,
                target: Some(*post_id),
                actor: *liker_id,
                followers_only: false,
            }],
            DomainEvent::UserFollowed {
                follower_id,
                followee_id,
            } => vec![Candidate {
                recipient: *followee_id,
                kind: NotificationKind::Follow,
                target: None,
                actor: *follower_id,
                followers_only: false,
            }],
            DomainEvent::MessageSent {
                conversation_id,
                sender_id,
                recipient_ids,
                ..
            } => recipient_ids
                .iter()
                .map(|recipient| Candidate {
                    recipient: *recipient,
                    kind: NotificationKind::Message,
                    target: Some(*conversation_id),
                    actor: *sender_id,
                    followers_only: false,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// The activities each of `envelopes` causes under the rules, in order, before anything is
    /// stored. The rules' lookups are made for the whole batch at once: the checks that need no
    /// relationship first (not one's own action, the type on in the recipient's preferences,
    /// from this node's cache), then the relationships of every remaining (recipient, actor)
    /// pair in one store call instead of one query per candidate.
    async fn activities(
        &self,
        envelopes: &[Envelope],
    ) -> Result<Vec<Vec<Activity>>, NotificationError> {
        let mut pending: Vec<(usize, Candidate, Preferences)> = Vec::new();
        for (at, envelope) in envelopes.iter().enumerate() {
            for candidate in self.candidates(&envelope.event).await? {
                if candidate.recipient == candidate.actor {
                    continue;
                }
                let preferences = self.preferences(candidate.recipient).await?;
                if preferences.enabled(candidate.kind) {
                    pending.push((at, candidate, preferences));
                }
            }
        }
        let pairs: Vec<(Id, Id)> = pending
            .iter()
            .map(|(_, c, _)| (c.recipient, c.actor))
            .collect();
        let relationships = if pairs.is_empty() {
            Vec::new()
        } else {
            self.graph.relationship_pairs(&pairs).await?
        };
        let mut activities = vec![Vec::new(); envelopes.len()];
        for ((at, candidate, preferences), relationship) in pending.into_iter().zip(relationships) {
            if !admits(&candidate, &preferences, &relationship) {
                continue;
            }
            activities[at].push(Activity {
                recipient_id: candidate.recipient,
                kind: candidate.kind,
                target_id: candidate.target,
                actor_id: candidate.actor,
                event_id: envelopes[at].id,
                at: now_millis(),
                new_notification_id: self.ids.next_id(),
                upserted_event_id: self.ids.next_id(),
            });
        }
        Ok(activities)
    }

    /// Applies one event for the consumer `consumer`: derives its notifications and stores them
    /// with the durable processed record, so a second delivery changes nothing.
    pub async fn handle_event(
        &self,
        consumer: &str,
        envelope: &Envelope,
    ) -> Result<Handled, NotificationError> {
        let activities = self
            .activities(std::slice::from_ref(envelope))
            .await?
            .pop()
            .unwrap_or_default();
        if activities.is_empty() {
            return Ok(Handled::Ignored);
        }
        Ok(
            if self
                .store
                .apply_event(consumer, envelope.id, &activities)
                .await?
            {
                Handled::Applied
            } else {
                Handled::AlreadyApplied
            },
        )
    }

    /// Applies a batch of events for `consumer`: derives each event's notifications, then
    /// stores all of them with their processed records in one store call (one transaction on
    /// adapters that implement `apply_events`). Returns one outcome per event, in order; an
    /// event seen before, or earlier in the batch, is `AlreadyApplied` and changes nothing.
    pub async fn handle_events(
        &self,
        consumer: &str,
        envelopes: &[Envelope],
    ) -> Result<Vec<Handled>, NotificationError> {
        let mut handled = vec![Handled::Ignored; envelopes.len()];
        let mut batch = Vec::new();
        let mut positions = Vec::new();
        let derived = self.activities(envelopes).await?;
        for (at, (envelope, activities)) in envelopes.iter().zip(derived).enumerate() {
            if !activities.is_empty() {
                batch.push(EventActivities {
                    event_id: envelope.id,
                    activities,
                });
                positions.push(at);
            }
        }
        if batch.is_empty() {
            return Ok(handled);
        }
        let applied = self.store.apply_events(consumer, &batch).await?;
        if applied.len() != batch.len() {
            return Err(NotificationError::Internal(anyhow::anyhow!(
                "apply_events returned {} outcomes for {} events",
                applied.len(),
                batch.len()
            )));
        }
        for (at, applied) in positions.into_iter().zip(applied) {
            handled[at] = if applied {
                Handled::Applied
            } else {
                Handled::AlreadyApplied
            };
        }
        Ok(handled)
    }
}

/// Whether the rules let `candidate` be notified, given the recipient's preferences (the type
/// already checked) and its relationship towards the actor: no block either way, no mute, the
/// actor followed when the recipient asked for that, and the post visible to the recipient.
fn admits(candidate: &Candidate, preferences: &Preferences, relationship: &Relationship) -> bool {
    if relationship.blocked_either_way() || relationship.viewer_mutes {
        return false;
    }
    if preferences.from == Source::Following && !relationship.viewer_follows {
        return false;
    }
    // A FOLLOWERS-only post is told of only to the author's followers.
    !candidate.followers_only || relationship.viewer_follows
}
