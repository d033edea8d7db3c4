//! Conversations, members, messages and messaging privacy on SQLite. The row types are shared
//! with the Postgres adapter (`crate::rows`; both select the same column names).

use std::collections::HashMap;

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_messaging::model::{
    Conversation, ConversationView, Message, MessageBody, MessagingPrivacy,
};
use nova_messaging::store::{
    AddMembersOutcome, CreateConversationOutcome, InsertMessageOutcome, MessagingStore,
    NewConversation, NewMessage,
};
use rusqlite::{params, Connection};

use super::{all, execute, ids_json, one, optional, SqliteStore};
use crate::error::DbContext as _;
use crate::rows::{
    group_members, view_columns, ConversationRow, MessageRow, ViewRow, CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
};

/// The SQLite expression for a conversation's member ids in join order.
const MEMBERS: &str =
    "(SELECT group_concat(x.user_id) FROM (SELECT user_id FROM conversation_members x \
     WHERE x.conversation_id = cm.conversation_id ORDER BY x.joined_at, x.user_id) x)";

fn fetch_message(conn: &Connection, id: Id) -> anyhow::Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1");
    let row = optional(conn, &sql, [id.0], MessageRow::from_sqlite).context("fetch message")?;
    Ok(row.map(Message::from))
}

fn fetch_conversation(conn: &Connection, id: i64) -> anyhow::Result<Option<Conversation>> {
    let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?1");
    let row =
        optional(conn, &sql, [id], ConversationRow::from_sqlite).context("fetch conversation")?;
    Ok(row.map(Conversation::from))
}

fn members_of(conn: &Connection, conversations: &[Id]) -> anyhow::Result<HashMap<i64, Vec<Id>>> {
    if conversations.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = all(
        conn,
        "SELECT conversation_id, user_id FROM conversation_members \
         WHERE conversation_id IN (SELECT value FROM json_each(?1)) \
         ORDER BY conversation_id, joined_at, user_id",
        [ids_json(conversations)],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .context("list conversation members")?;
    Ok(group_members(rows))
}

#[async_trait]
impl MessagingStore for SqliteStore {
    async fn existing_users(&self, ids: &[Id]) -> anyhow::Result<Vec<Id>> {
        let json = ids_json(ids);
        self.read(|conn| {
            all(
                conn,
                "SELECT id FROM users WHERE id IN (SELECT value FROM json_each(?1))",
                [json],
                |row| row.get(0).map(Id),
            )
            .context("look up users")
        })
        .await
    }

    async fn get_privacy(&self, users: &[Id]) -> anyhow::Result<Vec<(Id, MessagingPrivacy)>> {
        let json = ids_json(users);
        self.read(|conn| {
            all(
                conn,
                "SELECT user_id, who_can_message FROM messaging_settings \
                 WHERE user_id IN (SELECT value FROM json_each(?1))",
                [json],
                |row| {
                    let privacy: String = row.get(1)?;
                    Ok((Id(row.get(0)?), MessagingPrivacy::from_stored(&privacy)))
                },
            )
            .context("get messaging privacy")
        })
        .await
    }

    async fn set_privacy(&self, user: Id, privacy: MessagingPrivacy) -> anyhow::Result<()> {
        self.write(move |tx| {
            execute(
                tx,
                "INSERT INTO messaging_settings (user_id, who_can_message) VALUES (?1, ?2) \
                 ON CONFLICT (user_id) DO UPDATE SET who_can_message = excluded.who_can_message",
                params![user.0, privacy.as_str()],
            )
            .context("set messaging privacy")?;
            Ok(())
        })
        .await
    }

    async fn find_direct(&self, direct_key: &str) -> anyhow::Result<Option<Conversation>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.direct_key = ?1"
            );
            let row = optional(conn, &sql, [direct_key], ConversationRow::from_sqlite)
                .context("find direct conversation")?;
            Ok(row.map(Conversation::from))
        })
        .await
    }

    async fn create_conversation(
        &self,
        new: &NewConversation,
        event: &EventRecord,
    ) -> anyhow::Result<CreateConversationOutcome> {
        let new = new.clone();
        let event = event.clone();
        self.write(move |tx| {
            let inserted: Option<i64> = optional(
                tx,
                "INSERT INTO conversations (id, kind, direct_key, creator_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
                params![
                    new.id.0,
                    new.kind.as_str(),
                    new.direct_key.as_deref(),
                    new.creator_id.0,
                    new.created_at
                ],
                |row| row.get(0),
            )
            .context("insert conversation")?;
            if inserted.is_none() {
                let existing: i64 = one(
                    tx,
                    "SELECT id FROM conversations WHERE direct_key = ?1",
                    [new.direct_key.as_deref()],
                    |row| row.get(0),
                )
                .context("find existing direct conversation")?;
                let found =
                    fetch_conversation(tx, existing)?.context("direct conversation vanished")?;
                return Ok(CreateConversationOutcome::Existing(found));
            }
            for member in &new.member_ids {
                execute(
                    tx,
                    "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
                     VALUES (?1, ?2, ?3, ?1, ?1)",
                    params![new.id.0, member.0, new.created_at],
                )
                .context("insert conversation member")?;
            }
            let created =
                fetch_conversation(tx, new.id.0)?.context("inserted conversation vanished")?;
            super::events::write_event(tx, &event)?;
            Ok(CreateConversationOutcome::Created(created))
        })
        .await
    }

    async fn get_conversation(
        &self,
        id: Id,
        member: Id,
    ) -> anyhow::Result<Option<(Conversation, Vec<Id>)>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations c \
                 WHERE c.id = ?1 AND EXISTS (SELECT 1 FROM conversation_members cm \
                                             WHERE cm.conversation_id = c.id AND cm.user_id = ?2)"
            );
            let row = optional(
                conn,
                &sql,
                params![id.0, member.0],
                ConversationRow::from_sqlite,
            )
            .context("get conversation")?;
            let Some(row) = row else {
                return Ok(None);
            };
            let mut members = members_of(conn, &[id])?;
            Ok(Some((
                Conversation::from(row),
                members.remove(&id.0).unwrap_or_default(),
            )))
        })
        .await
    }

    async fn insert_message(
        &self,
        message: &NewMessage,
        event: &EventRecord,
    ) -> anyhow::Result<InsertMessageOutcome> {
        let message = message.clone();
        let event = event.clone();
        self.write(move |tx| {
            if let Some(key) = &message.idempotency_key {
                let existing: Option<(i64, Option<String>)> = optional(
                    tx,
                    "SELECT id, request_fingerprint FROM messages WHERE sender_id = ?1 AND idempotency_key = ?2",
                    params![message.sender_id.0, key.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .context("look up idempotency key")?;
                if let Some((id, fingerprint)) = existing {
                    let found =
                        fetch_message(tx, Id(id))?.context("idempotent message vanished")?;
                    return Ok(InsertMessageOutcome::Existing(found, fingerprint));
                }
            }
            execute(
                tx,
                "INSERT INTO messages (id, conversation_id, sender_id, body, idempotency_key, request_fingerprint, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    message.id.0,
                    message.conversation_id.0,
                    message.sender_id.0,
                    message.body.as_str(),
                    message.idempotency_key.as_ref().map(|k| k.as_str()),
                    message.fingerprint.as_deref(),
                    message.created_at
                ],
            )
            .context("insert message")?;
            execute(
                tx,
                "UPDATE conversations SET last_message_id = MAX(COALESCE(last_message_id, 0), ?2) WHERE id = ?1",
                params![message.conversation_id.0, message.id.0],
            )
            .context("move last message")?;
            execute(
                tx,
                "UPDATE conversation_members SET last_activity_id = MAX(last_activity_id, ?2), \
                   last_read_id = CASE WHEN user_id = ?3 THEN MAX(last_read_id, ?2) ELSE last_read_id END \
                 WHERE conversation_id = ?1",
                params![message.conversation_id.0, message.id.0, message.sender_id.0],
            )
            .context("move member activity")?;
            let created =
                fetch_message(tx, message.id)?.context("inserted message vanished")?;
            super::events::write_event(tx, &event)?;
            Ok(InsertMessageOutcome::Created(created))
        })
        .await
    }

    async fn get_message(&self, id: Id) -> anyhow::Result<Option<Message>> {
        self.read(|conn| fetch_message(conn, id)).await
    }

    async fn update_message_body(
        &self,
        id: Id,
        body: &MessageBody,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<Option<Message>> {
        let body = body.clone();
        let event = event.clone();
        self.write(move |tx| {
            let updated = execute(
                tx,
                "UPDATE messages SET body = ?2, edited_at = ?3 WHERE id = ?1 AND deleted_at IS NULL",
                params![id.0, body.as_str(), now],
            )
            .context("edit message")?;
            if updated == 0 {
                return Ok(None);
            }
            let message = fetch_message(tx, id)?;
            super::events::write_event(tx, &event)?;
            Ok(message)
        })
        .await
    }

    async fn delete_message(
        &self,
        id: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let event = event.clone();
        self.write(move |tx| {
            let deleted = execute(
                tx,
                "UPDATE messages SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                params![id.0, now],
            )
            .context("soft delete message")?;
            if deleted == 0 {
                return Ok(false);
            }
            super::events::write_event(tx, &event)?;
            Ok(true)
        })
        .await
    }

    async fn mark_read(
        &self,
        conversation: Id,
        user: Id,
        up_to: Id,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let event = event.clone();
        self.write(move |tx| {
            let moved = execute(
                tx,
                "UPDATE conversation_members SET last_read_id = ?3 \
                 WHERE conversation_id = ?1 AND user_id = ?2 AND last_read_id < ?3",
                params![conversation.0, user.0, up_to.0],
            )
            .context("move read marker")?;
            if moved == 0 {
                return Ok(false);
            }
            super::events::write_event(tx, &event)?;
            Ok(true)
        })
        .await
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
        let user_ids = user_ids.to_vec();
        let event = event.clone();
        // The single writer serialises member changes.
        self.write(move |tx| {
            let current: Vec<i64> = all(
                tx,
                "SELECT user_id FROM conversation_members WHERE conversation_id = ?1",
                [conversation.0],
                |row| row.get(0),
            )
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
                execute(
                    tx,
                    "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![conversation.0, member.0, now, joined_id.0],
                )
                .context("insert conversation member")?;
            }
            super::events::write_event(tx, &event)?;
            Ok(AddMembersOutcome::Added(new))
        })
        .await
    }

    async fn remove_member(
        &self,
        conversation: Id,
        user: Id,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let event = event.clone();
        self.write(move |tx| {
            let removed = execute(
                tx,
                "DELETE FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2",
                params![conversation.0, user.0],
            )
            .context("remove member")?;
            if removed == 0 {
                return Ok(false);
            }
            super::events::write_event(tx, &event)?;
            Ok(true)
        })
        .await
    }

    async fn list_conversations(
        &self,
        member: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<ConversationView>> {
        let sql = format!(
            "SELECT {} FROM conversation_members cm \
             JOIN conversations c ON c.id = cm.conversation_id \
             LEFT JOIN messages lm ON lm.id = c.last_message_id \
             WHERE cm.user_id = ?1 AND cm.last_activity_id < COALESCE(?2, 9223372036854775807) \
             ORDER BY cm.last_activity_id DESC LIMIT ?3",
            view_columns(MEMBERS)
        );
        let rows = self
            .read(|conn| {
                all(
                    conn,
                    &sql,
                    params![member.0, page.after.map(|a| a.0), page.fetch_limit()],
                    ViewRow::from_sqlite,
                )
                .context("list conversations")
            })
            .await?;
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
        let sql = format!(
            "SELECT {} FROM conversation_members cm \
             JOIN conversations c ON c.id = cm.conversation_id \
             LEFT JOIN messages lm ON lm.id = c.last_message_id \
             WHERE cm.conversation_id = ?1 AND cm.user_id = ?2",
            view_columns(MEMBERS)
        );
        let row = self
            .read(|conn| {
                optional(conn, &sql, params![id.0, member.0], ViewRow::from_sqlite)
                    .context("get conversation view")
            })
            .await?;
        Ok(row.map(ViewRow::into_view))
    }

    async fn list_messages(
        &self,
        conversation: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.conversation_id = ?1 AND m.id < COALESCE(?2, 9223372036854775807) \
             ORDER BY m.id DESC LIMIT ?3"
        );
        let rows = self
            .read(|conn| {
                all(
                    conn,
                    &sql,
                    params![conversation.0, page.after.map(|a| a.0), page.fetch_limit()],
                    MessageRow::from_sqlite,
                )
                .context("list messages")
            })
            .await?;
        Ok(Page::from_rows(
            rows.into_iter().map(Message::from).collect(),
            page,
        ))
    }
}
