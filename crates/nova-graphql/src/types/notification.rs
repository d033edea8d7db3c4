//! The `Notification` and `NotificationPreferences` types.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use nova_notifications::{Notification, NotificationKind, Preferences, PreferencesPatch, Source};

use crate::loaders::loaders;
use crate::types::{timestamp, PostObject, UserObject};

/// What a notification is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "NotificationType")]
pub enum NotificationTypeEnum {
    /// New followers (all unread ones in one entry).
    Follow,
    /// Likes of one of the viewer's posts (one entry per post).
    Like,
    /// A reply to one of the viewer's posts (`post` is the reply).
    Reply,
    /// A post naming the viewer as `@username` (`post` is that post).
    Mention,
    /// Messages in a conversation (off by default).
    Message,
}

impl From<NotificationKind> for NotificationTypeEnum {
    fn from(kind: NotificationKind) -> Self {
        match kind {
            NotificationKind::Follow => NotificationTypeEnum::Follow,
            NotificationKind::Like => NotificationTypeEnum::Like,
            NotificationKind::Reply => NotificationTypeEnum::Reply,
            NotificationKind::Mention => NotificationTypeEnum::Mention,
            NotificationKind::Message => NotificationTypeEnum::Message,
        }
    }
}

/// From whom notifications are received.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "NotificationSource")]
pub enum NotificationSourceEnum {
    Everyone,
    /// Only accounts the viewer follows.
    Following,
}

impl From<Source> for NotificationSourceEnum {
    fn from(source: Source) -> Self {
        match source {
            Source::Everyone => NotificationSourceEnum::Everyone,
            Source::Following => NotificationSourceEnum::Following,
        }
    }
}

impl From<NotificationSourceEnum> for Source {
    fn from(source: NotificationSourceEnum) -> Self {
        match source {
            NotificationSourceEnum::Everyone => Source::Everyone,
            NotificationSourceEnum::Following => Source::Following,
        }
    }
}

pub struct NotificationObject(pub Notification);

/// One entry of the viewer's notifications: one or more actors doing the same thing to the
/// same target ("alice and 12 others liked your post").
#[Object(name = "Notification")]
impl NotificationObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> NotificationTypeEnum {
        self.0.kind.into()
    }

    /// The latest actors, newest first (at most 3; `actorCount` counts them all).
    async fn actors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserObject>> {
        let mut found = loaders(ctx)?
            .users
            .load_many(self.0.actor_ids.iter().copied())
            .await?;
        Ok(self
            .0
            .actor_ids
            .iter()
            .filter_map(|id| found.remove(id))
            .map(UserObject::new)
            .collect())
    }

    /// Distinct accounts in this entry.
    async fn actor_count(&self) -> i64 {
        self.0.actor_count
    }

    /// The liked post, the reply or the mentioning post; null for other types or when the post
    /// was deleted or is hidden from the viewer.
    async fn post(&self) -> Option<PostObject> {
        self.0.post.clone().map(PostObject)
    }

    /// The conversation of a MESSAGE notification.
    async fn conversation_id(&self) -> Option<ID> {
        match self.0.kind {
            NotificationKind::Message => self.0.target_id.map(|id| ID(id.to_string())),
            _ => None,
        }
    }

    async fn read(&self) -> bool {
        self.0.read
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// When the latest actor joined.
    async fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.updated_at)
    }
}

/// Which notifications the viewer receives.
#[derive(SimpleObject)]
#[graphql(name = "NotificationPreferences")]
pub struct NotificationPreferencesObject {
    follow: bool,
    like: bool,
    reply: bool,
    mention: bool,
    message: bool,
    from: NotificationSourceEnum,
}

impl From<Preferences> for NotificationPreferencesObject {
    fn from(p: Preferences) -> Self {
        NotificationPreferencesObject {
            follow: p.follow,
            like: p.like,
            reply: p.reply,
            mention: p.mention,
            message: p.message,
            from: p.from.into(),
        }
    }
}

/// Changes to the preferences; omitted fields keep their value.
#[derive(InputObject)]
#[graphql(name = "NotificationPreferencesInput")]
pub struct NotificationPreferencesInput {
    follow: Option<bool>,
    like: Option<bool>,
    reply: Option<bool>,
    mention: Option<bool>,
    message: Option<bool>,
    from: Option<NotificationSourceEnum>,
}

impl From<NotificationPreferencesInput> for PreferencesPatch {
    fn from(i: NotificationPreferencesInput) -> Self {
        PreferencesPatch {
            follow: i.follow,
            like: i.like,
            reply: i.reply,
            mention: i.mention,
            message: i.message,
            from: i.from.map(Source::from),
        }
    }
}
