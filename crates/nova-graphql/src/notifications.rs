//! The notifications area of the schema: the viewer's notification list, unread count and
//! preferences, and the mutations marking them read and changing the preferences.

use crate::limits::WriteLimit;
use async_graphql::{Context, Object, ID};

use crate::context::{services, viewer};
use crate::error::{api_error, invalid, parse_id};
use crate::types::connection::connection;
use crate::types::notification::{
    NotificationObject, NotificationPreferencesInput, NotificationPreferencesObject,
};
use crate::types::page_request;

/// The cursor kind of the notification list (cursors name their list).
const CURSOR_KIND: &str = "notifications";

type NotificationConnection = async_graphql::connection::Connection<String, NotificationObject>;

#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// The viewer's notifications, latest activity first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<NotificationConnection> {
        let viewer = viewer(ctx)?;
        let page = page_request(first, after, CURSOR_KIND)?;
        let page = services(ctx)
            .notifications
            .list(viewer, &page)
            .await
            .map_err(api_error)?;
        Ok(connection(
            page,
            CURSOR_KIND,
            |n| n.sort_id,
            NotificationObject,
        ))
    }

    /// How many of the viewer's notifications are unread.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let viewer = viewer(ctx)?;
        services(ctx)
            .notifications
            .unread_count(viewer)
            .await
            .map_err(api_error)
    }

    /// Which notifications the viewer receives.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<NotificationPreferencesObject> {
        let viewer = viewer(ctx)?;
        Ok(services(ctx)
            .notifications
            .preferences(viewer.user_id)
            .await
            .map_err(api_error)?
            .into())
    }
}

#[derive(Default)]
pub struct NotificationsMutation;

#[Object]
impl NotificationsMutation {
    /// Marks the given notifications read (all of them when `ids` is omitted) and returns the
    /// unread count after. NOT_FOUND, marking nothing, when an id is not one of the viewer's
    /// notifications; at most 100 ids.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<i64> {
        let viewer = viewer(ctx)?;
        let ids = match ids {
            None => None,
            Some(ids) => {
                if ids.len() > nova_notifications::MAX_MARK_READ_IDS {
                    return Err(invalid(format!(
                        "at most {} ids at a time",
                        nova_notifications::MAX_MARK_READ_IDS
                    )));
                }
                Some(
                    ids.iter()
                        .map(|id| parse_id(id, "ids"))
                        .collect::<async_graphql::Result<Vec<_>>>()?,
                )
            }
        };
        services(ctx)
            .notifications
            .mark_read(viewer, ids)
            .await
            .map_err(api_error)
    }

    /// Changes which notifications the viewer receives; takes effect for the next event.
    #[graphql(guard = "WriteLimit")]
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: NotificationPreferencesInput,
    ) -> async_graphql::Result<NotificationPreferencesObject> {
        let viewer = viewer(ctx)?;
        Ok(services(ctx)
            .notifications
            .update_preferences(viewer, &input.into())
            .await
            .map_err(api_error)?
            .into())
    }
}
