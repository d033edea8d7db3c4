//! The event consumers of the notifications domain: the durable one that turns feed and
//! messaging events into notifications, and the live one that drops cached preferences.

use std::sync::Arc;

use async_trait::async_trait;
use nova_events::{DomainEvent, Envelope, EventHandler, Handled, HandlerKind, Topic};

use crate::NotificationsService;

/// Creates notifications from `PostCreated`, `PostLiked`, `UserFollowed` and `MessageSent`.
/// Durable: one node applies each event, and the store's processed record (written with the
/// notifications) makes a redelivery a no-op. Batches are applied with one store call.
pub struct NotificationsHandler(pub Arc<NotificationsService>);

impl NotificationsHandler {
    pub const NAME: &'static str = "notifications";
}

#[async_trait]
impl EventHandler for NotificationsHandler {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Feed, Topic::Messaging]
    }

    fn kind(&self) -> HandlerKind {
        HandlerKind::Durable
    }

    async fn handle(&self, event: &Envelope) -> anyhow::Result<Handled> {
        self.0
            .handle_event(Self::NAME, event)
            .await
            .map_err(anyhow::Error::new)
    }

    /// The whole batch in one store call: one transaction instead of one per event.
    async fn handle_batch(&self, events: &[Envelope]) -> anyhow::Result<Vec<Handled>> {
        self.0
            .handle_events(Self::NAME, events)
            .await
            .map_err(anyhow::Error::new)
    }
}

/// Drops this node's cached preferences of an account when it changed them. Live: every node
/// holds its own cache, so every node must see every change.
pub struct PreferencesInvalidation(pub Arc<NotificationsService>);

#[async_trait]
impl EventHandler for PreferencesInvalidation {
    fn name(&self) -> &'static str {
        "notification-preferences-cache"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Notification]
    }

    fn kind(&self) -> HandlerKind {
        HandlerKind::Live
    }

    async fn handle(&self, event: &Envelope) -> anyhow::Result<Handled> {
        match event.event {
            DomainEvent::NotificationPreferencesChanged { user_id } => {
                self.0.invalidate(user_id).await;
                Ok(Handled::Applied)
            }
            _ => Ok(Handled::Ignored),
        }
    }
}
