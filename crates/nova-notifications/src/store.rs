//! Storage port of the notifications domain. Adapters live in `nova-db`.
//!
//! Error contract: expected outcomes are return values; `Err` means the store failed (and the
//! event handler asks for the event to be delivered again).

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;

use crate::model::{Notification, NotificationKind, Preferences};

/// One actor's activity for one recipient, derived from one event.
#[derive(Debug, Clone)]
pub struct Activity {
    pub recipient_id: Id,
    pub kind: NotificationKind,
    pub target_id: Option<Id>,
    pub actor_id: Id,
    /// The causing event: the group's new sort id (if later than its current one) and the
    /// actor's position among the group's latest actors.
    pub event_id: Id,
    pub at: UnixMillis,
    /// The id a new group gets when the recipient has no unread group of this key.
    pub new_notification_id: Id,
    /// The id of the `NotificationUpserted` event written when the group changed.
    pub upserted_event_id: Id,
}

/// One event's activities, for [`NotificationStore::apply_events`].
#[derive(Debug, Clone)]
pub struct EventActivities {
    pub event_id: Id,
    pub activities: Vec<Activity>,
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// In one transaction: records (`consumer`, `event_id`) as processed and applies every
    /// activity: the actor joins the recipient's most recent unread group of the same
    /// (recipient, kind, target), counted once, or starts a new group; each changed group gets
    /// a `NotificationUpserted` outbox row. Returns false, changing nothing, when the event
    /// was processed before.
    async fn apply_event(
        &self,
        consumer: &str,
        event_id: Id,
        activities: &[Activity],
    ) -> anyhow::Result<bool>;
    /// Applies a batch of events in order, each exactly as [`NotificationStore::apply_event`]
    /// would, and returns one flag per entry: false, changing nothing for it, when the event
    /// was processed before, including by an earlier entry of the same batch. All or nothing:
    /// on `Err` no entry is applied, so the caller can redeliver the whole batch.
    ///
    /// Adapters should write the whole batch in one transaction (one commit, one fsync for
    /// the batch instead of one per event). The default applies the entries one by one with
    /// `apply_event`, one transaction each: correct (a retry after a partial failure finds
    /// the applied entries processed) but as slow as per-event delivery, and not all or
    /// nothing.
    async fn apply_events(
        &self,
        consumer: &str,
        events: &[EventActivities],
    ) -> anyhow::Result<Vec<bool>> {
        let mut applied = Vec::with_capacity(events.len());
        for event in events {
            applied.push(
                self.apply_event(consumer, event.event_id, &event.activities)
                    .await?,
            );
        }
        Ok(applied)
    }
    /// The recipient's groups, latest activity first (keyset on the sort id), each with its
    /// target post when that post is live (visibility is the service's question).
    async fn list_notifications(
        &self,
        recipient: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Notification>>;
    async fn unread_count(&self, recipient: Id) -> anyhow::Result<i64>;
    /// Marks the given groups (or all, for `None`) read. Returns false, marking nothing, when
    /// one of the ids is not one of the recipient's groups.
    async fn mark_read(
        &self,
        recipient: Id,
        ids: Option<&[Id]>,
        now: UnixMillis,
    ) -> anyhow::Result<bool>;
    async fn get_preferences(&self, user: Id) -> anyhow::Result<Option<Preferences>>;
    /// Stores the preferences and `event` (`NotificationPreferencesChanged`) in one transaction.
    async fn put_preferences(
        &self,
        user: Id,
        preferences: &Preferences,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<()>;
}
