//! Messaging roots: `MessagingQuery` (my conversations, one conversation, my messaging privacy)
//! and `MessagingMutation` (start, send, edit, delete, read, leave, add members, privacy),
//! merged into the schema's roots.

use crate::limits::WriteLimit;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use nova_messaging::{MessagingError, SendMessageInput as DomainSend};

use crate::context::{services, viewer};
use crate::error::{api_error, invalid, parse_id};
use crate::types::messaging::{
    conversation_connection, ConversationConnection, ConversationObject, MessageObject,
    MessagingPrivacyEnum, CONVERSATIONS,
};
use crate::types::page_request;

/// Most ids one member list argument may carry before it is looked at (the service applies the
/// configured group cap below this).
const MAX_IDS: usize = 1_000;

fn parse_ids(raw: &[ID], field: &str) -> async_graphql::Result<Vec<nova_core::Id>> {
    if raw.len() > MAX_IDS {
        return Err(invalid(format!("{field} may hold at most {MAX_IDS} ids")));
    }
    raw.iter().map(|id| parse_id(id, field)).collect()
}

#[derive(Default)]
pub struct MessagingQuery;

#[Object]
impl MessagingQuery {
    /// The viewer's conversations, most recent activity first.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ConversationConnection> {
        let viewer = viewer(ctx)?;
        let page = page_request(first, after, CONVERSATIONS)?;
        let found = services(ctx)
            .messaging
            .conversations(viewer, &page)
            .await
            .map_err(api_error)?;
        Ok(conversation_connection(found))
    }

    /// A conversation the viewer belongs to. NOT_FOUND (with null) when it does not exist or the
    /// viewer is not a member: the two are indistinguishable.
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<ConversationObject>> {
        let viewer = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        let view = services(ctx)
            .messaging
            .conversation(viewer, id)
            .await
            .map_err(api_error)?;
        Ok(Some(ConversationObject(view)))
    }

    /// Who may start a conversation with the viewer or add the viewer to one.
    async fn messaging_privacy(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<MessagingPrivacyEnum> {
        let viewer = viewer(ctx)?;
        Ok(services(ctx)
            .messaging
            .privacy(viewer)
            .await
            .map_err(api_error)?
            .into())
    }
}

#[derive(InputObject)]
pub struct SendMessageInput {
    conversation_id: ID,
    /// 1–5000 characters (grapheme clusters), not blank.
    body: String,
    /// Retrying a send with the same key returns the first message instead of sending a second;
    /// reusing it for a different message is a CONFLICT.
    idempotency_key: Option<String>,
}

#[derive(InputObject)]
pub struct EditMessageInput {
    id: ID,
    body: String,
}

#[derive(SimpleObject)]
pub struct LeaveConversationPayload {
    left_conversation_id: ID,
}

#[derive(Default)]
pub struct MessagingMutation;

#[Object]
impl MessagingMutation {
    /// Starts a conversation with the given accounts (the viewer is added). One other account
    /// gives the direct conversation of the pair, the existing one if any; several give a new
    /// group. Refused for accounts that block the viewer or that the viewer blocks, and for
    /// accounts whose messaging privacy does not admit the viewer.
    #[graphql(guard = "WriteLimit")]
    async fn start_conversation(
        &self,
        ctx: &Context<'_>,
        member_ids: Vec<ID>,
    ) -> async_graphql::Result<ConversationObject> {
        let viewer = viewer(ctx)?;
        let ids = parse_ids(&member_ids, "memberIds")?;
        let view = services(ctx)
            .messaging
            .start_conversation(viewer, &ids)
            .await
            .map_err(api_error)?;
        Ok(ConversationObject(view))
    }

    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<MessageObject> {
        let viewer = viewer(ctx)?;
        let conversation_id = parse_id(&input.conversation_id, "conversationId")?;
        let message = services(ctx)
            .messaging
            .send(
                viewer,
                DomainSend {
                    conversation_id,
                    body: &input.body,
                    idempotency_key: input.idempotency_key.as_deref(),
                },
            )
            .await
            .map_err(api_error)?;
        Ok(MessageObject(message))
    }

    /// Replaces the body of one of the viewer's messages; `editedAt` is set.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        input: EditMessageInput,
    ) -> async_graphql::Result<MessageObject> {
        let viewer = viewer(ctx)?;
        let id = parse_id(&input.id, "id")?;
        let message = services(ctx)
            .messaging
            .edit(viewer, id, &input.body)
            .await
            .map_err(api_error)?;
        Ok(MessageObject(message))
    }

    /// Deletes one of the viewer's messages: it stays in the history without its body.
    /// Idempotent.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<MessageObject> {
        let viewer = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        let message = services(ctx)
            .messaging
            .delete(viewer, id)
            .await
            .map_err(api_error)?;
        Ok(MessageObject(message))
    }

    /// Moves the viewer's read marker up to `messageId` (never back).
    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        message_id: ID,
    ) -> async_graphql::Result<ConversationObject> {
        let viewer = viewer(ctx)?;
        let conversation = parse_id(&conversation_id, "conversationId")?;
        let message = parse_id(&message_id, "messageId")?;
        let view = services(ctx)
            .messaging
            .mark_read(viewer, conversation, message)
            .await
            .map_err(api_error)?;
        Ok(ConversationObject(view))
    }

    /// Leaves a group conversation.
    #[graphql(guard = "WriteLimit")]
    async fn leave_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<LeaveConversationPayload> {
        let viewer = viewer(ctx)?;
        let conversation = parse_id(&conversation_id, "conversationId")?;
        services(ctx)
            .messaging
            .leave(viewer, conversation)
            .await
            .map_err(api_error)?;
        Ok(LeaveConversationPayload {
            left_conversation_id: conversation_id,
        })
    }

    /// Adds accounts to a group conversation the viewer belongs to (same rules as starting one).
    #[graphql(guard = "WriteLimit")]
    async fn add_conversation_members(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        user_ids: Vec<ID>,
    ) -> async_graphql::Result<ConversationObject> {
        let viewer = viewer(ctx)?;
        let conversation = parse_id(&conversation_id, "conversationId")?;
        let ids = parse_ids(&user_ids, "userIds")?;
        let view = services(ctx)
            .messaging
            .add_members(viewer, conversation, &ids)
            .await
            .map_err(api_error)?;
        Ok(ConversationObject(view))
    }

    /// Chooses who may start a conversation with the viewer or add the viewer to one.
    /// Conversations that exist already are not affected.
    #[graphql(guard = "WriteLimit")]
    async fn set_messaging_privacy(
        &self,
        ctx: &Context<'_>,
        who: MessagingPrivacyEnum,
    ) -> async_graphql::Result<MessagingPrivacyEnum> {
        let viewer = viewer(ctx)?;
        let privacy: Result<_, MessagingError> = services(ctx)
            .messaging
            .set_privacy(viewer, who.into())
            .await;
        Ok(privacy.map_err(api_error)?.into())
    }
}
