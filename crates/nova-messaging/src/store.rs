//! Storage port of the messaging domain. Adapters live in `nova-db`.
//!
//! Error contract: expected outcomes are return values; `Err` means the store failed. Every
//! write that changes what members see takes the event announcing it and writes it to the
//! outbox in the same transaction.

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;

use crate::model::{
    Conversation, ConversationKind, ConversationView, IdempotencyKey, Message, MessageBody,
    MessagingPrivacy,
};

#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: Id,
    pub kind: ConversationKind,
    /// `"minId:maxId"` for a direct conversation (unique), `None` for a group.
    pub direct_key: Option<String>,
    pub creator_id: Id,
    /// Every member, the creator included.
    pub member_ids: Vec<Id>,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone)]
pub enum CreateConversationOutcome {
    Created(Conversation),
    /// The direct conversation of this pair already existed (no event was written).
    Existing(Conversation),
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Id,
    pub conversation_id: Id,
    pub sender_id: Id,
    pub body: MessageBody,
    pub idempotency_key: Option<IdempotencyKey>,
    /// [`crate::model::request_fingerprint`] of the send, stored with the key.
    pub fingerprint: Option<String>,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone)]
pub enum InsertMessageOutcome {
    Created(Message),
    /// The sender already used this idempotency key: the earlier message and its fingerprint.
    Existing(Message, Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddMembersOutcome {
    /// The accounts that were not members yet and now are (empty: nothing changed, no event).
    Added(Vec<Id>),
    /// The conversation would exceed the member limit; nothing was stored.
    TooMany,
}

#[async_trait]
pub trait MessagingStore: Send + Sync {
    /// Which of `ids` are existing accounts.
    async fn existing_users(&self, ids: &[Id]) -> anyhow::Result<Vec<Id>>;
    async fn get_privacy(&self, users: &[Id]) -> anyhow::Result<Vec<(Id, MessagingPrivacy)>>;
    async fn set_privacy(&self, user: Id, privacy: MessagingPrivacy) -> anyhow::Result<()>;

    /// The direct conversation with this key, if any.
    async fn find_direct(&self, direct_key: &str) -> anyhow::Result<Option<Conversation>>;
    /// Inserts the conversation, its members (read markers and activity at the conversation's
    /// id) and `event`, in one transaction; for a direct key that exists already, returns that
    /// conversation and writes nothing.
    async fn create_conversation(
        &self,
        conversation: &NewConversation,
        event: &EventRecord,
    ) -> anyhow::Result<CreateConversationOutcome>;
    /// The conversation, if `member` is one of its members.
    async fn get_conversation(
        &self,
        id: Id,
        member: Id,
    ) -> anyhow::Result<Option<(Conversation, Vec<Id>)>>;

    /// Inserts the message, moves the conversation's last message and every member's activity to
    /// it, the sender's read marker too, and writes `event`, in one transaction; unless the sender
    /// already used the idempotency key.
    async fn insert_message(
        &self,
        message: &NewMessage,
        event: &EventRecord,
    ) -> anyhow::Result<InsertMessageOutcome>;
    /// A message, deleted or not.
    async fn get_message(&self, id: Id) -> anyhow::Result<Option<Message>>;
    /// Replaces a live message's body and sets `edited_at`, with `event`; `None` if it is gone.
    async fn update_message_body(
        &self,
        id: Id,
        body: &MessageBody,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<Option<Message>>;
    /// Soft-deletes a live message with `event`; false (and no event) if it was deleted already.
    async fn delete_message(
        &self,
        id: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool>;
    /// Moves `user`'s read marker forward to `up_to` with `event`; false (no event) when the
    /// marker was already there or further.
    async fn mark_read(
        &self,
        conversation: Id,
        user: Id,
        up_to: Id,
        event: &EventRecord,
    ) -> anyhow::Result<bool>;
    /// Adds the accounts that are not members yet (read marker and activity at `joined_id`),
    /// unless the conversation would then have more than `max_members`; writes `event` when
    /// someone was added. Serialised with other member changes of the conversation.
    async fn add_members(
        &self,
        conversation: Id,
        user_ids: &[Id],
        joined_id: Id,
        now: UnixMillis,
        max_members: usize,
        event: &EventRecord,
    ) -> anyhow::Result<AddMembersOutcome>;
    /// Removes a member with `event`; false (no event) if it was not a member.
    async fn remove_member(
        &self,
        conversation: Id,
        user: Id,
        event: &EventRecord,
    ) -> anyhow::Result<bool>;

    /// The member's conversations, most recent activity first.
    async fn list_conversations(
        &self,
        member: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<ConversationView>>;
    /// One conversation as `member` sees it, if a member.
    async fn get_conversation_view(
        &self,
        id: Id,
        member: Id,
    ) -> anyhow::Result<Option<ConversationView>>;
    /// A conversation's messages, deleted ones included, newest first.
    async fn list_messages(
        &self,
        conversation: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Message>>;
}
