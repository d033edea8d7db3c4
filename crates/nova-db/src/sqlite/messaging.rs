//! Conversations, members, messages and messaging privacy on SQLite. The row types are shared
//! with the Postgres adapter (both select the same column names).

use std::collections::HashMap;

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_messaging::model::{
    Conversation, ConversationKind, ConversationView, Message, MessageBody, MessagingPrivacy,
};
use nova_messaging::store::{
    AddMembersOutcome, CreateConversationOutcome, InsertMessageOutcome, MessagingStore,
    NewConversation, NewMessage,
};

use super::{ids_json, SqliteStore};
use crate::error::DbContext as _;

pub(crate) const MESSAGE_COLUMNS: &str =
    "m.id, m.conversation_id, m.sender_id, m.body, m.created_at, m.edited_at, m.deleted_at";

pub(crate) const CONVERSATION_COLUMNS: &str = "c.id, c.kind, c.creator_id, c.created_at";

/// One member's view of a conversation (`c` conversations, `cm` the member's row, `lm` the last
/// message), `members` being the dialect's expression for the comma-separated member ids in
/// join order: one statement gives everything a conversation shows, whatever the page size.
pub(crate) fn view_columns(members: &str) -> String {
    format!(
        "c.id, c.kind, c.creator_id, c.created_at, cm.last_activity_id, cm.last_read_id, \
         lm.id AS lm_id, lm.sender_id AS lm_sender_id, lm.body AS lm_body, lm.created_at AS lm_created_at, \
         lm.edited_at AS lm_edited_at, lm.deleted_at AS lm_deleted_at, \
         (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = cm.conversation_id \
            AND u.id > cm.last_read_id AND u.sender_id <> cm.user_id AND u.deleted_at IS NULL) AS unread_count, \
         {members} AS member_ids"
    )
}

const MEMBERS: &str =
    "(SELECT group_concat(x.user_id) FROM (SELECT user_id FROM conversation_members x \
     WHERE x.conversation_id = cm.conversation_id ORDER BY x.joined_at, x.user_id) x)";

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    conversation_id: i64,
    sender_id: i64,
    body: String,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            id: Id(r.id),
            conversation_id: Id(r.conversation_id),
            sender_id: Id(r.sender_id),
            body: r.body,
            created_at: r.created_at,
            edited_at: r.edited_at,
            deleted_at: r.deleted_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConversationRow {
    id: i64,
    kind: String,
    creator_id: i64,
    created_at: i64,
}

impl From<ConversationRow> for Conversation {
    fn from(r: ConversationRow) -> Self {
        Conversation {
            id: Id(r.id),
            kind: ConversationKind::from_stored(&r.kind),
            creator_id: Id(r.creator_id),
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ViewRow {
    #[sqlx(flatten)]
    conversation: ConversationRow,
    last_activity_id: i64,
    last_read_id: i64,
    lm_id: Option<i64>,
    lm_sender_id: Option<i64>,
    lm_body: Option<String>,
    lm_created_at: Option<i64>,
    lm_edited_at: Option<i64>,
    lm_deleted_at: Option<i64>,
    unread_count: i64,
    member_ids: Option<String>,
}

impl ViewRow {
    pub(crate) fn into_view(self) -> ConversationView {
        let conversation = Conversation::from(self.conversation);
        let last_message = match (self.lm_id, self.lm_sender_id, self.lm_created_at) {
            (Some(id), Some(sender_id), Some(created_at)) => Some(Message {
                id: Id(id),
                conversation_id: conversation.id,
                sender_id: Id(sender_id),
                body: self.lm_body.unwrap_or_default(),
                created_at,
                edited_at: self.lm_edited_at,
                deleted_at: self.lm_deleted_at,
            }),
            _ => None,
        };
        ConversationView {
            member_ids: self
                .member_ids
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter_map(Id::parse)
                .collect(),
            conversation,
            activity_id: Id(self.last_activity_id),
            last_read_id: Id(self.last_read_id),
            last_message,
            unread_count: self.unread_count,
        }
    }
}

/// Groups `(conversation_id, user_id)` rows by conversation, members in join order.
pub(crate) fn group_members(rows: Vec<(i64, i64)>) -> HashMap<i64, Vec<Id>> {
    let mut members: HashMap<i64, Vec<Id>> = HashMap::new();
    for (conversation, user) in rows {
        members.entry(conversation).or_default().push(Id(user));
    }
    members
}

async fn fetch_message(
    conn: &mut sqlx::SqliteConnection,
    id: Id,
) -> anyhow::Result<Option<Message>> {
    let row: Option<MessageRow> = sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1"
    ))
    .bind(id.0)
    .fetch_optional(conn)
    .await
    .context("fetch message")?;
    Ok(row.map(Message::from))
}

async fn fetch_conversation(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
) -> anyhow::Result<Option<Conversation>> {
    let row: Option<ConversationRow> = sqlx::query_as(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .context("fetch conversation")?;
    Ok(row.map(Conversation::from))
}

impl SqliteStore {
    async fn members_of(&self, conversations: &[Id]) -> anyhow::Result<HashMap<i64, Vec<Id>>> {
        if conversations.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT conversation_id, user_id FROM conversation_members \
             WHERE conversation_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY conversation_id, joined_at, user_id",
        )
        .bind(ids_json(conversations))
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("list conversation members")?;
        Ok(group_members(rows))
    }
}

#[async_trait]
impl MessagingStore for SqliteStore {
    async fn existing_users(&self, ids: &[Id]) -> anyhow::Result<Vec<Id>> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM users WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("look up users")?;
        Ok(rows.into_iter().map(Id).collect())
    }

    async fn get_privacy(&self, users: &[Id]) -> anyhow::Result<Vec<(Id, MessagingPrivacy)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT user_id, who_can_message FROM messaging_settings \
             WHERE user_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(ids_json(users))
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("get messaging privacy")?;
        Ok(rows
            .into_iter()
            .map(|(id, p)| (Id(id), MessagingPrivacy::from_stored(&p)))
            .collect())
    }

    async fn set_privacy(&self, user: Id, privacy: MessagingPrivacy) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO messaging_settings (user_id, who_can_message) VALUES (?1, ?2) \
             ON CONFLICT (user_id) DO UPDATE SET who_can_message = excluded.who_can_message",
        )
        .bind(user.0)
        .bind(privacy.as_str())
        .execute(&mut *self.writer.acquire().await?)
        .await
        .context("set messaging privacy")?;
        Ok(())
    }

    async fn find_direct(&self, direct_key: &str) -> anyhow::Result<Option<Conversation>> {
        let row: Option<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.direct_key = ?1"
        ))
        .bind(direct_key)
        .fetch_optional(&mut *self.reader.acquire().await?)
        .await
        .context("find direct conversation")?;
        Ok(row.map(Conversation::from))
    }

    async fn create_conversation(
        &self,
        new: &NewConversation,
        event: &EventRecord,
    ) -> anyhow::Result<CreateConversationOutcome> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("begin create conversation")?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO conversations (id, kind, direct_key, creator_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        )
        .bind(new.id.0)
        .bind(new.kind.as_str())
        .bind(new.direct_key.as_deref())
        .bind(new.creator_id.0)
        .bind(new.created_at)
        .fetch_optional(&mut *tx)
        .await
        .context("insert conversation")?;
        if inserted.is_none() {
            let existing: i64 =
                sqlx::query_scalar("SELECT id FROM conversations WHERE direct_key = ?1")
                    .bind(new.direct_key.as_deref())
                    .fetch_one(&mut *tx)
                    .await
                    .context("find existing direct conversation")?;
            let found = fetch_conversation(&mut tx, existing)
                .await?
                .context("direct conversation vanished")?;
            return Ok(CreateConversationOutcome::Existing(found));
        }
        for member in &new.member_ids {
            sqlx::query(
                "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
                 VALUES (?1, ?2, ?3, ?1, ?1)",
            )
            .bind(new.id.0)
            .bind(member.0)
            .bind(new.created_at)
            .execute(&mut *tx)
            .await
            .context("insert conversation member")?;
        }
        let created = fetch_conversation(&mut tx, new.id.0)
            .await?
            .context("inserted conversation vanished")?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit create conversation")?;
        self.outbox_signal.notify_one();
        Ok(CreateConversationOutcome::Created(created))
    }

    async fn get_conversation(
        &self,
        id: Id,
        member: Id,
    ) -> anyhow::Result<Option<(Conversation, Vec<Id>)>> {
        let row: Option<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c \
             WHERE c.id = ?1 AND EXISTS (SELECT 1 FROM conversation_members cm \
                                         WHERE cm.conversation_id = c.id AND cm.user_id = ?2)"
        ))
        .bind(id.0)
        .bind(member.0)
        .fetch_optional(&mut *self.reader.acquire().await?)
        .await
        .context("get conversation")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut members = self.members_of(&[id]).await?;
        Ok(Some((
            Conversation::from(row),
            members.remove(&id.0).unwrap_or_default(),
        )))
    }

    async fn insert_message(
        &self,
        message: &NewMessage,
        event: &EventRecord,
    ) -> anyhow::Result<InsertMessageOutcome> {
        let mut tx = self.writer.begin().await.context("begin send message")?;
        if let Some(key) = &message.idempotency_key {
            let existing: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT id, request_fingerprint FROM messages WHERE sender_id = ?1 AND idempotency_key = ?2",
            )
            .bind(message.sender_id.0)
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("look up idempotency key")?;
            if let Some((id, fingerprint)) = existing {
                let found = fetch_message(&mut tx, Id(id))
                    .await?
                    .context("idempotent message vanished")?;
                return Ok(InsertMessageOutcome::Existing(found, fingerprint));
            }
        }
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, sender_id, body, idempotency_key, request_fingerprint, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(message.id.0)
        .bind(message.conversation_id.0)
        .bind(message.sender_id.0)
        .bind(message.body.as_str())
        .bind(message.idempotency_key.as_ref().map(|k| k.as_str()))
        .bind(message.fingerprint.as_deref())
        .bind(message.created_at)
        .execute(&mut *tx)
        .await
        .context("insert message")?;
        sqlx::query(
            "UPDATE conversations SET last_message_id = MAX(COALESCE(last_message_id, 0), ?2) WHERE id = ?1",
        )
        .bind(message.conversation_id.0)
        .bind(message.id.0)
        .execute(&mut *tx)
        .await
        .context("move last message")?;
        sqlx::query(
            "UPDATE conversation_members SET last_activity_id = MAX(last_activity_id, ?2), \
               last_read_id = CASE WHEN user_id = ?3 THEN MAX(last_read_id, ?2) ELSE last_read_id END \
             WHERE conversation_id = ?1",
        )
        .bind(message.conversation_id.0)
        .bind(message.id.0)
        .bind(message.sender_id.0)
        .execute(&mut *tx)
        .await
        .context("move member activity")?;
        let created = fetch_message(&mut tx, message.id)
            .await?
            .context("inserted message vanished")?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit send message")?;
        self.outbox_signal.notify_one();
        Ok(InsertMessageOutcome::Created(created))
    }

    async fn get_message(&self, id: Id) -> anyhow::Result<Option<Message>> {
        fetch_message(&mut *self.reader.acquire().await?, id).await
    }

    async fn update_message_body(
        &self,
        id: Id,
        body: &MessageBody,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<Option<Message>> {
        let mut tx = self.writer.begin().await.context("begin edit message")?;
        let updated = sqlx::query(
            "UPDATE messages SET body = ?2, edited_at = ?3 WHERE id = ?1 AND deleted_at IS NULL",
        )
        .bind(id.0)
        .bind(body.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("edit message")?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let message = fetch_message(&mut tx, id).await?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit edit message")?;
        self.outbox_signal.notify_one();
        Ok(message)
    }

    async fn delete_message(
        &self,
        id: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin delete message")?;
        let deleted =
            sqlx::query("UPDATE messages SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")
                .bind(id.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("soft delete message")?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit delete message")?;
        self.outbox_signal.notify_one();
        Ok(true)
    }

    async fn mark_read(
        &self,
        conversation: Id,
        user: Id,
        up_to: Id,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin mark read")?;
        let moved = sqlx::query(
            "UPDATE conversation_members SET last_read_id = ?3 \
             WHERE conversation_id = ?1 AND user_id = ?2 AND last_read_id < ?3",
        )
        .bind(conversation.0)
        .bind(user.0)
        .bind(up_to.0)
        .execute(&mut *tx)
        .await
        .context("move read marker")?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit mark read")?;
        self.outbox_signal.notify_one();
        Ok(true)
    }

    async fn add_members(
        &self,
        conversation: Id,
        user_ids: &[Id],
        joined_id: Id,
        now: UnixMillis,
        max_members: usize,
        event: &EventRecord,
    ) -> anyhow::Result<AddMembersOutcome> {
        // The single writer connection serialises member changes.
        let mut tx = self.writer.begin().await.context("begin add members")?;
        let current: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM conversation_members WHERE conversation_id = ?1",
        )
        .bind(conversation.0)
        .fetch_all(&mut *tx)
        .await
        .context("count members")?;
        let new: Vec<Id> = user_ids
            .iter()
            .copied()
            .filter(|id| !current.contains(&id.0))
            .collect();
        if current.len() + new.len() > max_members {
            return Ok(AddMembersOutcome::TooMany);
        }
        if new.is_empty() {
            return Ok(AddMembersOutcome::Added(Vec::new()));
        }
        for member in &new {
            sqlx::query(
                "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )
            .bind(conversation.0)
            .bind(member.0)
            .bind(now)
            .bind(joined_id.0)
            .execute(&mut *tx)
            .await
            .context("insert conversation member")?;
        }
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit add members")?;
        self.outbox_signal.notify_one();
        Ok(AddMembersOutcome::Added(new))
    }

    async fn remove_member(
        &self,
        conversation: Id,
        user: Id,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin leave")?;
        let removed = sqlx::query(
            "DELETE FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2",
        )
        .bind(conversation.0)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .context("remove member")?;
        if removed.rows_affected() == 0 {
            return Ok(false);
        }
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit leave")?;
        self.outbox_signal.notify_one();
        Ok(true)
    }

    async fn list_conversations(
        &self,
        member: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<ConversationView>> {
        let rows: Vec<ViewRow> = sqlx::query_as(&format!(
            "SELECT {} FROM conversation_members cm \
             JOIN conversations c ON c.id = cm.conversation_id \
             LEFT JOIN messages lm ON lm.id = c.last_message_id \
             WHERE cm.user_id = ?1 AND cm.last_activity_id < COALESCE(?2, 9223372036854775807) \
             ORDER BY cm.last_activity_id DESC LIMIT ?3",
            view_columns(MEMBERS)
        ))
        .bind(member.0)
        .bind(page.after.map(|a| a.0))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("list conversations")?;
        Ok(Page::from_rows(
            rows.into_iter().map(ViewRow::into_view).collect(),
            page,
        ))
    }

    async fn get_conversation_view(
        &self,
        id: Id,
        member: Id,
    ) -> anyhow::Result<Option<ConversationView>> {
        let row: Option<ViewRow> = sqlx::query_as(&format!(
            "SELECT {} FROM conversation_members cm \
             JOIN conversations c ON c.id = cm.conversation_id \
             LEFT JOIN messages lm ON lm.id = c.last_message_id \
             WHERE cm.conversation_id = ?1 AND cm.user_id = ?2",
            view_columns(MEMBERS)
        ))
        .bind(id.0)
        .bind(member.0)
        .fetch_optional(&mut *self.reader.acquire().await?)
        .await
        .context("get conversation view")?;
        Ok(row.map(ViewRow::into_view))
    }

    async fn list_messages(
        &self,
        conversation: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.conversation_id = ?1 AND m.id < COALESCE(?2, 9223372036854775807) \
             ORDER BY m.id DESC LIMIT ?3"
        ))
        .bind(conversation.0)
        .bind(page.after.map(|a| a.0))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("list messages")?;
        Ok(Page::from_rows(
            rows.into_iter().map(Message::from).collect(),
            page,
        ))
    }
}
