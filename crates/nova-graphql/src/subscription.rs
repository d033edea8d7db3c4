//! The subscription root: live updates over WebSocket (`graphql-transport-ws`).
//!
//! Every update carries `missedEvents` and `pressure`: when the subscriber's queue overflowed,
//! one update with `pressure: OVERFLOWED`, `missedEvents: n` and no payload comes before the
//! next event, so the client knows to refetch instead of silently missing events.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject, Subscription, ID};
use futures::Stream;

use crate::context::viewer;
use crate::error::api_error;
use crate::live::queue::Received;
use crate::live::{
    Filter, LiveEvent, LiveHub, MessageUpdateKind, QueuePressure, Subscription as LiveSubscription,
};
use crate::types::PostObject;

/// A new post for the home feed, or a missed-events marker.
pub struct HomeFeedUpdate {
    post: Option<PostObject>,
    missed_events: u64,
    pressure: QueuePressure,
}

#[Object]
impl HomeFeedUpdate {
    /// The new post (null on a missed-events marker).
    async fn post(&self) -> Option<&PostObject> {
        self.post.as_ref()
    }
    /// Events dropped because this subscriber fell behind (0 normally).
    async fn missed_events(&self) -> u64 {
        self.missed_events
    }
    /// How full this subscriber's queue was when the update left it.
    async fn pressure(&self) -> QueuePressure {
        self.pressure
    }
}

/// Something happened in one of the viewer's conversations, or a missed-events marker.
#[derive(SimpleObject)]
pub struct MessageUpdate {
    /// Null on a missed-events marker.
    kind: Option<MessageUpdateKind>,
    conversation_id: Option<ID>,
    /// The message sent, edited, deleted or read up to.
    message_id: Option<ID>,
    /// Who sent, edited, read, or changed the members.
    actor_id: Option<ID>,
    missed_events: u64,
    pressure: QueuePressure,
}

/// A notification of the viewer was created or grew, or a missed-events marker.
#[derive(SimpleObject)]
pub struct NotificationUpdate {
    /// Null on a missed-events marker.
    notification_id: Option<ID>,
    missed_events: u64,
    pressure: QueuePressure,
}

/// Registers the viewer's subscription with this node's hub and turns its queue into a stream
/// of updates: `on_event` maps the events this subscription shows, `on_missed` builds the
/// missed-events marker.
fn updates<T: Send + 'static>(
    ctx: &Context<'_>,
    filter: Filter,
    on_event: impl Fn(LiveEvent, QueuePressure) -> Option<T> + Send + 'static,
    on_missed: impl Fn(u64) -> T + Send + 'static,
) -> async_graphql::Result<impl Stream<Item = T>> {
    let viewer = viewer(ctx)?;
    let sub = ctx
        .data::<Arc<LiveHub>>()?
        .subscribe(viewer.user_id, filter)
        .map_err(api_error)?;
    let received = futures::stream::unfold(sub, |mut sub: LiveSubscription| async move {
        let item = sub.next().await?;
        Some((item, sub))
    });
    Ok(futures::StreamExt::filter_map(received, move |item| {
        futures::future::ready(match item {
            Received::Event(event, pressure) => on_event(event, pressure),
            Received::Missed(n) => Some(on_missed(n)),
        })
    }))
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// New posts that enter the signed-in account's home feed (its own posts and those of the
    /// accounts it follows and has not muted), as they are created.
    async fn home_feed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = HomeFeedUpdate>> {
        updates(
            ctx,
            Filter::HomeFeed,
            |event, pressure| match event {
                LiveEvent::Post { post, .. } => Some(HomeFeedUpdate {
                    post: Some(PostObject(*post)),
                    missed_events: 0,
                    pressure,
                }),
                _ => None,
            },
            |n| HomeFeedUpdate {
                post: None,
                missed_events: n,
                pressure: QueuePressure::Overflowed,
            },
        )
    }

    /// Messages sent, edited or deleted, read markers and member changes in the signed-in
    /// account's conversations (or only in `conversationId`).
    async fn message_updates(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = MessageUpdate>> {
        let only = conversation_id
            .map(|id| {
                nova_core::Id::parse(&id)
                    .ok_or_else(|| crate::error::invalid("conversationId is not a valid id"))
            })
            .transpose()?;
        updates(
            ctx,
            Filter::Messages(only),
            |event, pressure| match event {
                LiveEvent::Message {
                    kind,
                    conversation_id,
                    message_id,
                    actor_id,
                    ..
                } => Some(MessageUpdate {
                    kind: Some(kind),
                    conversation_id: Some(ID(conversation_id.to_string())),
                    message_id: message_id.map(|m| ID(m.to_string())),
                    actor_id: Some(ID(actor_id.to_string())),
                    missed_events: 0,
                    pressure,
                }),
                _ => None,
            },
            |n| MessageUpdate {
                kind: None,
                conversation_id: None,
                message_id: None,
                actor_id: None,
                missed_events: n,
                pressure: QueuePressure::Overflowed,
            },
        )
    }

    /// The signed-in account's notifications as they are created or grow.
    async fn notification_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = NotificationUpdate>> {
        updates(
            ctx,
            Filter::Notifications,
            |event, pressure| match event {
                LiveEvent::Notification {
                    notification_id, ..
                } => Some(NotificationUpdate {
                    notification_id: Some(ID(notification_id.to_string())),
                    missed_events: 0,
                    pressure,
                }),
                _ => None,
            },
            |n| NotificationUpdate {
                notification_id: None,
                missed_events: n,
                pressure: QueuePressure::Overflowed,
            },
        )
    }
}
