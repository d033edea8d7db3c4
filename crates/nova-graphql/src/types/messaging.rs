//! The `Conversation` and `Message` types and the messaging enums.

use async_graphql::{Context, Enum, Object, ID};
use nova_messaging::{ConversationKind, ConversationView, Message, MessagingPrivacy};

use crate::context::services;
use crate::error::{api_error, coded};
use crate::loaders::loaders;
use crate::types::connection::connection;
use crate::types::{page_request, timestamp, UserObject};

/// Cursor kinds of the two messaging lists.
pub(crate) const CONVERSATIONS: &str = "conversations";
pub(crate) const MESSAGES: &str = "messages";

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ConversationKind")]
pub enum ConversationKindEnum {
    /// Two accounts; one per pair. Nobody joins or leaves.
    Direct,
    /// Several accounts; members may add others (up to the configured cap) and leave.
    Group,
}

impl From<ConversationKind> for ConversationKindEnum {
    fn from(kind: ConversationKind) -> Self {
        match kind {
            ConversationKind::Direct => ConversationKindEnum::Direct,
            ConversationKind::Group => ConversationKindEnum::Group,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MessagingPrivacy")]
pub enum MessagingPrivacyEnum {
    /// Anyone who is not blocked may start a conversation with the account or add it (default).
    Everyone,
    /// Only accounts it follows.
    Following,
    /// Nobody.
    Nobody,
}

impl From<MessagingPrivacyEnum> for MessagingPrivacy {
    fn from(p: MessagingPrivacyEnum) -> Self {
        match p {
            MessagingPrivacyEnum::Everyone => MessagingPrivacy::Everyone,
            MessagingPrivacyEnum::Following => MessagingPrivacy::Following,
            MessagingPrivacyEnum::Nobody => MessagingPrivacy::Nobody,
        }
    }
}

impl From<MessagingPrivacy> for MessagingPrivacyEnum {
    fn from(p: MessagingPrivacy) -> Self {
        match p {
            MessagingPrivacy::Everyone => MessagingPrivacyEnum::Everyone,
            MessagingPrivacy::Following => MessagingPrivacyEnum::Following,
            MessagingPrivacy::Nobody => MessagingPrivacyEnum::Nobody,
        }
    }
}

pub struct MessageObject(pub Message);

#[Object(name = "Message")]
impl MessageObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn conversation_id(&self) -> ID {
        ID(self.0.conversation_id.to_string())
    }

    async fn sender(&self, ctx: &Context<'_>) -> async_graphql::Result<UserObject> {
        let sender = loaders(ctx)?.users.load_one(self.0.sender_id).await?;
        sender
            .map(UserObject::new)
            .ok_or_else(|| coded(nova_core::Code::NotFound, "sender not found"))
    }

    /// Plain text, NFC-normalised, at most 5000 characters. Null once the message was deleted:
    /// deleted messages keep their place in the history, without their body.
    async fn body(&self) -> Option<&str> {
        self.0.visible_body()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// Set when the body was edited.
    async fn edited_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.edited_at.map(timestamp)
    }

    /// Set when the sender deleted the message.
    async fn deleted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.deleted_at.map(timestamp)
    }
}

pub(crate) type MessageConnection = async_graphql::connection::Connection<String, MessageObject>;

pub(crate) type ConversationConnection =
    async_graphql::connection::Connection<String, ConversationObject>;

pub(crate) fn conversation_connection(
    page: nova_core::Page<ConversationView>,
) -> ConversationConnection {
    connection(page, CONVERSATIONS, |v| v.activity_id, ConversationObject)
}

/// A conversation as the viewer (a member) sees it. Its members, last message and unread count
/// come with it from the store (a page of conversations costs two queries), member profiles
/// through the per-request user loader.
pub struct ConversationObject(pub ConversationView);

#[Object(name = "Conversation")]
impl ConversationObject {
    async fn id(&self) -> ID {
        ID(self.0.conversation.id.to_string())
    }

    async fn kind(&self) -> ConversationKindEnum {
        self.0.conversation.kind.into()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.conversation.created_at)
    }

    /// Every member, the viewer included, in the order they joined.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserObject>> {
        let found = loaders(ctx)?
            .users
            .load_many(self.0.member_ids.iter().copied())
            .await?;
        Ok(self
            .0
            .member_ids
            .iter()
            .filter_map(|id| found.get(id).cloned().map(UserObject::new))
            .collect())
    }

    /// The newest message (possibly deleted: then without its body).
    async fn last_message(&self) -> Option<MessageObject> {
        self.0.last_message.clone().map(MessageObject)
    }

    /// Messages after the viewer's read marker, not sent by the viewer and not deleted.
    async fn unread_count(&self) -> i64 {
        self.0.unread_count
    }

    /// Messages, newest first; deleted ones stay in place without their body.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MessageConnection> {
        let page = page_request(first, after, MESSAGES)?;
        let found = services(ctx)
            .messaging
            .messages_in(&self.0, &page)
            .await
            .map_err(api_error)?;
        Ok(connection(found, MESSAGES, |m| m.id, MessageObject))
    }
}
