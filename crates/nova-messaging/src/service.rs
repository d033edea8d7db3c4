//! The messaging service: the only entry point to conversations, messages and read markers.

use std::sync::Arc;

use nova_core::{now_millis, Id, IdGenerator, Page, PageRequest, Viewer};
use nova_events::{DomainEvent, Envelope};
use nova_users::GraphService;

use crate::model::{
    direct_key, request_fingerprint, Conversation, ConversationKind, ConversationView,
    IdempotencyKey, Message, MessageBody, MessagingLimits, MessagingPrivacy,
};
use crate::store::{
    AddMembersOutcome, CreateConversationOutcome, InsertMessageOutcome, MessagingStore,
    NewConversation, NewMessage,
};
use crate::MessagingError;

/// Raw input of `sendMessage`.
#[derive(Debug, Clone)]
pub struct SendMessageInput<'a> {
    pub conversation_id: Id,
    pub body: &'a str,
    pub idempotency_key: Option<&'a str>,
}

pub struct MessagingService {
    store: Arc<dyn MessagingStore>,
    graph: Arc<GraphService>,
    ids: Arc<IdGenerator>,
    limits: MessagingLimits,
}

const CONVERSATION: MessagingError = MessagingError::NotFound("conversation");
const MESSAGE: MessagingError = MessagingError::NotFound("message");
const USER: MessagingError = MessagingError::NotFound("user");

impl MessagingService {
    pub fn new(
        store: Arc<dyn MessagingStore>,
        graph: Arc<GraphService>,
        ids: Arc<IdGenerator>,
        limits: MessagingLimits,
    ) -> Self {
        MessagingService {
            store,
            graph,
            ids,
            limits,
        }
    }

    pub fn limits(&self) -> MessagingLimits {
        self.limits
    }

    fn envelope(&self, now: i64, event: DomainEvent) -> nova_events::EventRecord {
        Envelope::new(self.ids.next_id(), now, event).record()
    }

    fn too_many(&self) -> MessagingError {
        MessagingError::invalid(format!(
            "a conversation holds at most {} members",
            self.limits.max_group_members
        ))
    }

    /// Who may message the viewer.
    pub async fn privacy(&self, viewer: Viewer) -> Result<MessagingPrivacy, MessagingError> {
        Ok(self
            .store
            .get_privacy(&[viewer.user_id])
            .await?
            .into_iter()
            .next()
            .map(|(_, p)| p)
            .unwrap_or_default())
    }

    pub async fn set_privacy(
        &self,
        viewer: Viewer,
        privacy: MessagingPrivacy,
    ) -> Result<MessagingPrivacy, MessagingError> {
        self.store.set_privacy(viewer.user_id, privacy).await?;
        Ok(privacy)
    }

    /// Refuses unless every target exists, neither side blocks the other and, when
    /// `check_privacy`, each target's messaging privacy admits the viewer. A target that blocks
    /// the viewer is reported like a missing account.
    async fn check_contact(
        &self,
        viewer: Viewer,
        targets: &[Id],
        check_privacy: bool,
    ) -> Result<(), MessagingError> {
        if targets.is_empty() {
            return Ok(());
        }
        let existing = self.store.existing_users(targets).await?;
        if targets.iter().any(|t| !existing.contains(t)) {
            return Err(USER);
        }
        let relationships = self.graph.relationships(viewer.user_id, targets).await?;
        if relationships.iter().any(|r| r.blocks_viewer) {
            return Err(USER);
        }
        if relationships.iter().any(|r| r.viewer_blocks) {
            return Err(MessagingError::Forbidden(
                "unblock this account before messaging it",
            ));
        }
        if !check_privacy {
            return Ok(());
        }
        let privacy = self.store.get_privacy(targets).await?;
        for (target, relationship) in targets.iter().zip(&relationships) {
            let setting = privacy
                .iter()
                .find(|(id, _)| id == target)
                .map(|(_, p)| *p)
                .unwrap_or_default();
            match setting {
                MessagingPrivacy::Everyone => {}
                MessagingPrivacy::Following if relationship.follows_viewer => {}
                MessagingPrivacy::Following => {
                    return Err(MessagingError::Forbidden(
                        "this account only accepts messages from accounts it follows",
                    ))
                }
                MessagingPrivacy::Nobody => {
                    return Err(MessagingError::Forbidden(
                        "this account does not accept messages",
                    ))
                }
            }
        }
        Ok(())
    }

    /// Starts a conversation with `member_ids` (the viewer is always a member): one other
    /// account gives the direct conversation of the pair (the existing one if there is one),
    /// several give a new group.
    pub async fn start_conversation(
        &self,
        viewer: Viewer,
        member_ids: &[Id],
    ) -> Result<ConversationView, MessagingError> {
        let mut others: Vec<Id> = Vec::with_capacity(member_ids.len());
        for id in member_ids {
            if *id != viewer.user_id && !others.contains(id) {
                others.push(*id);
            }
        }
        if others.is_empty() {
            return Err(MessagingError::invalid(
                "memberIds must name at least one other account",
            ));
        }
        if others.len() + 1 > self.limits.max_group_members {
            return Err(self.too_many());
        }
        let (kind, key) = if others.len() == 1 {
            let key = direct_key(viewer.user_id, others[0]);
            if let Some(existing) = self.store.find_direct(&key).await? {
                // Existing conversations keep working: blocks are checked, privacy is not.
                self.check_contact(viewer, &others, false).await?;
                return self.view(viewer, existing.id).await;
            }
            (ConversationKind::Direct, Some(key))
        } else {
            (ConversationKind::Group, None)
        };
        self.check_contact(viewer, &others, true).await?;
        let now = now_millis();
        let mut members = vec![viewer.user_id];
        members.extend(&others);
        let conversation = NewConversation {
            id: self.ids.next_id(),
            kind,
            direct_key: key,
            creator_id: viewer.user_id,
            member_ids: members,
            created_at: now,
        };
        let event = self.envelope(
            now,
            DomainEvent::MembersChanged {
                conversation_id: conversation.id,
                actor_id: viewer.user_id,
                added_ids: others,
                left_id: None,
            },
        );
        let id = match self
            .store
            .create_conversation(&conversation, &event)
            .await?
        {
            CreateConversationOutcome::Created(c) | CreateConversationOutcome::Existing(c) => c.id,
        };
        self.view(viewer, id).await
    }

    async fn view(&self, viewer: Viewer, id: Id) -> Result<ConversationView, MessagingError> {
        self.store
            .get_conversation_view(id, viewer.user_id)
            .await?
            .ok_or(CONVERSATION)
    }

    /// A conversation the viewer belongs to, or NotFound.
    pub async fn conversation(
        &self,
        viewer: Viewer,
        id: Id,
    ) -> Result<ConversationView, MessagingError> {
        self.view(viewer, id).await
    }

    /// The viewer's conversations, most recent activity first.
    pub async fn conversations(
        &self,
        viewer: Viewer,
        page: &PageRequest,
    ) -> Result<Page<ConversationView>, MessagingError> {
        Ok(self.store.list_conversations(viewer.user_id, page).await?)
    }

    async fn membership(
        &self,
        viewer: Viewer,
        id: Id,
    ) -> Result<(Conversation, Vec<Id>), MessagingError> {
        self.store
            .get_conversation(id, viewer.user_id)
            .await?
            .ok_or(CONVERSATION)
    }

    /// A conversation's messages (deleted ones as placeholders), newest first.
    pub async fn messages(
        &self,
        viewer: Viewer,
        conversation: Id,
        page: &PageRequest,
    ) -> Result<Page<Message>, MessagingError> {
        self.membership(viewer, conversation).await?;
        Ok(self.store.list_messages(conversation, page).await?)
    }

    /// The messages of a conversation the viewer was shown: a view comes only from this
    /// service's membership-checked reads, so it needs no second check.
    pub async fn messages_in(
        &self,
        view: &ConversationView,
        page: &PageRequest,
    ) -> Result<Page<Message>, MessagingError> {
        Ok(self.store.list_messages(view.conversation.id, page).await?)
    }

    pub async fn send(
        &self,
        viewer: Viewer,
        input: SendMessageInput<'_>,
    ) -> Result<Message, MessagingError> {
        let body = MessageBody::parse(input.body)?;
        let idempotency_key = input
            .idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?;
        let (conversation, members) = self.membership(viewer, input.conversation_id).await?;
        let recipients: Vec<Id> = members
            .into_iter()
            .filter(|m| *m != viewer.user_id)
            .collect();
        if conversation.kind == ConversationKind::Direct {
            let relationships = self
                .graph
                .relationships(viewer.user_id, &recipients)
                .await?;
            if relationships.iter().any(|r| r.blocked_either_way()) {
                return Err(MessagingError::Forbidden("you cannot message this account"));
            }
        }
        let fingerprint = idempotency_key
            .as_ref()
            .map(|_| request_fingerprint(conversation.id, &body));
        let message = NewMessage {
            id: self.ids.next_id(),
            conversation_id: conversation.id,
            sender_id: viewer.user_id,
            body,
            idempotency_key,
            fingerprint: fingerprint.clone(),
            created_at: now_millis(),
        };
        let event = self.envelope(
            message.created_at,
            DomainEvent::MessageSent {
                conversation_id: conversation.id,
                message_id: message.id,
                sender_id: viewer.user_id,
                recipient_ids: recipients,
            },
        );
        match self.store.insert_message(&message, &event).await? {
            InsertMessageOutcome::Created(m) => Ok(m),
            InsertMessageOutcome::Existing(m, stored) => {
                if stored.is_some() && stored == fingerprint {
                    Ok(m)
                } else {
                    Err(MessagingError::IdempotencyConflict)
                }
            }
        }
    }

    /// A message in a conversation the viewer belongs to, with its members.
    async fn visible_message(
        &self,
        viewer: Viewer,
        id: Id,
    ) -> Result<(Message, Vec<Id>), MessagingError> {
        let message = self.store.get_message(id).await?.ok_or(MESSAGE)?;
        let (_, members) = self
            .membership(viewer, message.conversation_id)
            .await
            .map_err(|_| MESSAGE)?;
        Ok((message, members))
    }

    async fn own_live_message(
        &self,
        viewer: Viewer,
        id: Id,
    ) -> Result<(Message, Vec<Id>), MessagingError> {
        let (message, members) = self.visible_message(viewer, id).await?;
        if message.sender_id != viewer.user_id {
            return Err(MessagingError::Forbidden(
                "only the sender can change this message",
            ));
        }
        Ok((message, members))
    }

    /// Replaces the body of one of the viewer's messages; it is marked edited.
    pub async fn edit(
        &self,
        viewer: Viewer,
        id: Id,
        body: &str,
    ) -> Result<Message, MessagingError> {
        let body = MessageBody::parse(body)?;
        let (message, members) = self.own_live_message(viewer, id).await?;
        if message.deleted_at.is_some() {
            return Err(MESSAGE);
        }
        if message.body == body.as_str() {
            return Ok(message);
        }
        let now = now_millis();
        let event = self.envelope(
            now,
            DomainEvent::MessageChanged {
                conversation_id: message.conversation_id,
                message_id: id,
                sender_id: viewer.user_id,
                member_ids: members,
                deleted: false,
            },
        );
        self.store
            .update_message_body(id, &body, now, &event)
            .await?
            .ok_or(MESSAGE)
    }

    /// Soft-deletes one of the viewer's messages (idempotent); it stays in the history without
    /// its body.
    pub async fn delete(&self, viewer: Viewer, id: Id) -> Result<Message, MessagingError> {
        let (message, members) = self.own_live_message(viewer, id).await?;
        if message.deleted_at.is_none() {
            let now = now_millis();
            let event = self.envelope(
                now,
                DomainEvent::MessageChanged {
                    conversation_id: message.conversation_id,
                    message_id: id,
                    sender_id: viewer.user_id,
                    member_ids: members,
                    deleted: true,
                },
            );
            self.store.delete_message(id, now, &event).await?;
        }
        self.store.get_message(id).await?.ok_or(MESSAGE)
    }

    /// Moves the viewer's read marker forward to `message_id` (never back).
    pub async fn mark_read(
        &self,
        viewer: Viewer,
        conversation: Id,
        message_id: Id,
    ) -> Result<ConversationView, MessagingError> {
        let (_, members) = self.membership(viewer, conversation).await?;
        let message = self.store.get_message(message_id).await?.ok_or(MESSAGE)?;
        if message.conversation_id != conversation {
            return Err(MESSAGE);
        }
        let event = self.envelope(
            now_millis(),
            DomainEvent::ConversationRead {
                conversation_id: conversation,
                user_id: viewer.user_id,
                message_id,
                member_ids: members,
            },
        );
        self.store
            .mark_read(conversation, viewer.user_id, message_id, &event)
            .await?;
        self.view(viewer, conversation).await
    }

    /// Leaves a group conversation.
    pub async fn leave(&self, viewer: Viewer, conversation: Id) -> Result<(), MessagingError> {
        let (found, _) = self.membership(viewer, conversation).await?;
        if found.kind != ConversationKind::Group {
            return Err(MessagingError::Forbidden(
                "you cannot leave a direct conversation",
            ));
        }
        let event = self.envelope(
            now_millis(),
            DomainEvent::MembersChanged {
                conversation_id: conversation,
                actor_id: viewer.user_id,
                added_ids: Vec::new(),
                left_id: Some(viewer.user_id),
            },
        );
        if !self
            .store
            .remove_member(conversation, viewer.user_id, &event)
            .await?
        {
            return Err(CONVERSATION);
        }
        Ok(())
    }

    /// Adds accounts to a group conversation the viewer belongs to. Accounts already in it are
    /// skipped; each new one must accept messages from the viewer and not block or be blocked.
    pub async fn add_members(
        &self,
        viewer: Viewer,
        conversation: Id,
        user_ids: &[Id],
    ) -> Result<ConversationView, MessagingError> {
        if user_ids.is_empty() {
            return Err(MessagingError::invalid(
                "userIds must name at least one account",
            ));
        }
        if user_ids.len() > self.limits.max_group_members {
            return Err(self.too_many());
        }
        let (found, members) = self.membership(viewer, conversation).await?;
        if found.kind != ConversationKind::Group {
            return Err(MessagingError::Forbidden(
                "members can only be added to group conversations",
            ));
        }
        let mut new: Vec<Id> = Vec::new();
        for id in user_ids {
            if !members.contains(id) && !new.contains(id) {
                new.push(*id);
            }
        }
        if new.is_empty() {
            return self.view(viewer, conversation).await;
        }
        if members.len() + new.len() > self.limits.max_group_members {
            return Err(self.too_many());
        }
        self.check_contact(viewer, &new, true).await?;
        let now = now_millis();
        let event = self.envelope(
            now,
            DomainEvent::MembersChanged {
                conversation_id: conversation,
                actor_id: viewer.user_id,
                added_ids: new.clone(),
                left_id: None,
            },
        );
        let joined_id = self.ids.next_id();
        match self
            .store
            .add_members(
                conversation,
                &new,
                joined_id,
                now,
                self.limits.max_group_members,
                &event,
            )
            .await?
        {
            AddMembersOutcome::Added(_) => self.view(viewer, conversation).await,
            AddMembersOutcome::TooMany => Err(self.too_many()),
        }
    }
}
