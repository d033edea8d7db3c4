//! Conversations, members, messages and messaging privacy on Postgres. Row types come from the
//! SQLite adapter (same column names).
//!
//! Concurrency across nodes: a direct conversation is created with `ON CONFLICT (direct_key)`,
//! so two nodes racing to start the same pair end with one conversation; member additions lock
//! the conversation row (`FOR UPDATE`) so the member cap holds; sends move the conversation's
//! last message and every member's activity with `GREATEST`, so commits in any order leave the
//! newest message in place.

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

use super::{ids, PgStore};
use crate::error::DbContext as _;
use crate::rows::{
    group_members, view_columns, ConversationRow, MessageRow, ViewRow, CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
};

const MEMBERS: &str = "(SELECT string_agg(x.user_id::text, ',' ORDER BY x.joined_at, x.user_id) \
     FROM conversation_members x WHERE x.conversation_id = cm.conversation_id)";

/// "My conversations": ($1 member, $2 cursor, $3 limit). One range scan of
/// `conversation_members(user_id, last_activity_id DESC)`, then primary-key lookups; members,
/// last message and unread count come in the same statement.
pub(crate) fn conversations_sql() -> String {
    format!(
        "SELECT {} FROM conversation_members cm \
         JOIN conversations c ON c.id = cm.conversation_id \
         LEFT JOIN messages lm ON lm.id = c.last_message_id \
         WHERE cm.user_id = $1 AND cm.last_activity_id < COALESCE($2, 9223372036854775807) \
         ORDER BY cm.last_activity_id DESC LIMIT $3",
        view_columns(MEMBERS)
    )
}

/// A conversation's history: ($1 conversation, $2 cursor, $3 limit), from
/// `messages(conversation_id, id DESC)`.
pub(crate) fn messages_sql() -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m \
         WHERE m.conversation_id = $1 AND m.id < COALESCE($2, 9223372036854775807) \
         ORDER BY m.id DESC LIMIT $3"
    )
}

async fn fetch_message(conn: &mut sqlx::PgConnection, id: Id) -> anyhow::Result<Option<Message>> {
    let row: Option<MessageRow> = sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1"
    ))
    .bind(id.0)
    .fetch_optional(conn)
    .await
    .context("fetch message")?;
    Ok(row.map(Message::from))
}

async fn fetch_conversation(
    conn: &mut sqlx::PgConnection,
    id: i64,
) -> anyhow::Result<Option<Conversation>> {
    let row: Option<ConversationRow> = sqlx::query_as(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .context("fetch conversation")?;
    Ok(row.map(Conversation::from))
}

impl PgStore {
    async fn members_of(&self, conversations: &[Id]) -> anyhow::Result<HashMap<i64, Vec<Id>>> {
        if conversations.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT conversation_id, user_id FROM conversation_members \
             WHERE conversation_id = ANY($1) ORDER BY conversation_id, joined_at, user_id",
        )
        .bind(ids(conversations))
        .fetch_all(&mut *self.gate.acquire().await?)
        .await
        .context("list conversation members")?;
        Ok(group_members(rows))
    }
}

#[async_trait]
impl MessagingStore for PgStore {
    async fn existing_users(&self, user_ids: &[Id]) -> anyhow::Result<Vec<Id>> {
        let rows: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1)")
            .bind(ids(user_ids))
            .fetch_all(&mut *self.gate.acquire().await?)
            .await
            .context("look up users")?;
        Ok(rows.into_iter().map(Id).collect())
    }

    async fn get_privacy(&self, users: &[Id]) -> anyhow::Result<Vec<(Id, MessagingPrivacy)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT user_id, who_can_message FROM messaging_settings WHERE user_id = ANY($1)",
        )
        .bind(ids(users))
        .fetch_all(&mut *self.gate.acquire().await?)
        .await
        .context("get messaging privacy")?;
        Ok(rows
            .into_iter()
            .map(|(id, p)| (Id(id), MessagingPrivacy::from_stored(&p)))
            .collect())
    }

    async fn set_privacy(&self, user: Id, privacy: MessagingPrivacy) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO messaging_settings (user_id, who_can_message) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET who_can_message = EXCLUDED.who_can_message",
        )
        .bind(user.0)
        .bind(privacy.as_str())
        .execute(&mut *self.gate.acquire().await?)
        .await
        .context("set messaging privacy")?;
        Ok(())
    }

    async fn find_direct(&self, direct_key: &str) -> anyhow::Result<Option<Conversation>> {
        let row: Option<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.direct_key = $1"
        ))
        .bind(direct_key)
        .fetch_optional(&mut *self.gate.acquire().await?)
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
            .gate
            .begin()
            .await
            .context("begin create conversation")?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO conversations (id, kind, direct_key, creator_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
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
            // The racing insert has committed (ON CONFLICT waited for it): this statement's
            // snapshot sees it.
            let existing: i64 =
                sqlx::query_scalar("SELECT id FROM conversations WHERE direct_key = $1")
                    .bind(new.direct_key.as_deref())
                    .fetch_one(&mut *tx)
                    .await
                    .context("find existing direct conversation")?;
            let found = fetch_conversation(&mut tx, existing)
                .await?
                .context("direct conversation vanished")?;
            return Ok(CreateConversationOutcome::Existing(found));
        }
        sqlx::query(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
             SELECT $1, u, $3, $1, $1 FROM UNNEST($2::bigint[]) AS u",
        )
        .bind(new.id.0)
        .bind(ids(&new.member_ids))
        .bind(new.created_at)
        .execute(&mut *tx)
        .await
        .context("insert conversation members")?;
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
             WHERE c.id = $1 AND EXISTS (SELECT 1 FROM conversation_members cm \
                                         WHERE cm.conversation_id = c.id AND cm.user_id = $2)"
        ))
        .bind(id.0)
        .bind(member.0)
        .fetch_optional(&mut *self.gate.acquire().await?)
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
        let mut tx = self.gate.begin().await.context("begin send message")?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO messages (id, conversation_id, sender_id, body, idempotency_key, request_fingerprint, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (sender_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
        )
        .bind(message.id.0)
        .bind(message.conversation_id.0)
        .bind(message.sender_id.0)
        .bind(message.body.as_str())
        .bind(message.idempotency_key.as_ref().map(|k| k.as_str()))
        .bind(message.fingerprint.as_deref())
        .bind(message.created_at)
        .fetch_optional(&mut *tx)
        .await
        .context("insert message")?;
        if inserted.is_none() {
            let (id, fingerprint): (i64, Option<String>) = sqlx::query_as(
                "SELECT id, request_fingerprint FROM messages WHERE sender_id = $1 AND idempotency_key = $2",
            )
            .bind(message.sender_id.0)
            .bind(message.idempotency_key.as_ref().map(|k| k.as_str()))
            .fetch_one(&mut *tx)
            .await
            .context("look up idempotency key")?;
            let found = fetch_message(&mut tx, Id(id))
                .await?
                .context("idempotent message vanished")?;
            return Ok(InsertMessageOutcome::Existing(found, fingerprint));
        }
        sqlx::query(
            "UPDATE conversations SET last_message_id = GREATEST(COALESCE(last_message_id, 0), $2) WHERE id = $1",
        )
        .bind(message.conversation_id.0)
        .bind(message.id.0)
        .execute(&mut *tx)
        .await
        .context("move last message")?;
        sqlx::query(
            "UPDATE conversation_members SET last_activity_id = GREATEST(last_activity_id, $2), \
               last_read_id = CASE WHEN user_id = $3 THEN GREATEST(last_read_id, $2) ELSE last_read_id END \
             WHERE conversation_id = $1",
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
        fetch_message(&mut *self.gate.acquire().await?, id).await
    }

    async fn update_message_body(
        &self,
        id: Id,
        body: &MessageBody,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<Option<Message>> {
        let mut tx = self.gate.begin().await.context("begin edit message")?;
        let updated = sqlx::query(
            "UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL",
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
        let mut tx = self.gate.begin().await.context("begin delete message")?;
        let deleted =
            sqlx::query("UPDATE messages SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
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
        let mut tx = self.gate.begin().await.context("begin mark read")?;
        let moved = sqlx::query(
            "UPDATE conversation_members SET last_read_id = $3 \
             WHERE conversation_id = $1 AND user_id = $2 AND last_read_id < $3",
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
        let mut tx = self.gate.begin().await.context("begin add members")?;
        // Member changes of one conversation take turns, so the cap holds across nodes.
        sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(conversation.0)
            .execute(&mut *tx)
            .await
            .context("lock conversation")?;
        let current: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM conversation_members WHERE conversation_id = $1",
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
        sqlx::query(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
             SELECT $1, u, $3, $4, $4 FROM UNNEST($2::bigint[]) AS u",
        )
        .bind(conversation.0)
        .bind(ids(&new))
        .bind(now)
        .bind(joined_id.0)
        .execute(&mut *tx)
        .await
        .context("insert conversation members")?;
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
        let mut tx = self.gate.begin().await.context("begin leave")?;
        sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(conversation.0)
            .execute(&mut *tx)
            .await
            .context("lock conversation")?;
        let removed = sqlx::query(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
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
        let rows: Vec<ViewRow> = sqlx::query_as(&conversations_sql())
            .bind(member.0)
            .bind(page.after.map(|a| a.0))
            .bind(page.fetch_limit())
            .fetch_all(&mut *self.gate.acquire().await?)
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
             WHERE cm.conversation_id = $1 AND cm.user_id = $2",
            view_columns(MEMBERS)
        ))
        .bind(id.0)
        .bind(member.0)
        .fetch_optional(&mut *self.gate.acquire().await?)
        .await
        .context("get conversation view")?;
        Ok(row.map(ViewRow::into_view))
    }

    async fn list_messages(
        &self,
        conversation: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(&messages_sql())
            .bind(conversation.0)
            .bind(page.after.map(|a| a.0))
            .bind(page.fetch_limit())
            .fetch_all(&mut *self.gate.acquire().await?)
            .await
            .context("list messages")?;
        Ok(Page::from_rows(
            rows.into_iter().map(Message::from).collect(),
            page,
        ))
    }
}

/// Plan checks for the messaging hot queries on a seeded database (with `TEST_DATABASE=postgres`;
/// without it the test says so and checks nothing).
#[cfg(test)]
mod plans {
    use sqlx::Row as _;

    use super::{conversations_sql, messages_sql};
    use crate::postgres::{test_database_url, PgStore, PostgresSettings};

    const USERS: i64 = 2_000;
    const CONVERSATIONS: i64 = 10_000;
    const MESSAGES: i64 = 200_000;

    async fn plan(store: &PgStore, sql: &str, subject: i64, cursor: Option<i64>) -> String {
        let rows = sqlx::query(&format!("EXPLAIN {sql}"))
            .bind(subject)
            .bind(cursor)
            .bind(21_i64)
            .fetch_all(store.pool())
            .await
            .expect("explain");
        rows.iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn conversation_list_and_history_use_indexes() {
        let Some(url) = test_database_url("messaging_plans") else {
            eprintln!("skipping plan checks: set TEST_DATABASE=postgres to run them");
            return;
        };
        PgStore::create_database_if_missing(&url)
            .await
            .expect("create database");
        let store = PgStore::open(&PostgresSettings {
            url: url.clone(),
            max_connections: 2,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 120_000,
            reject_above_ratio: 1.0,
            saturation_grace_ms: 0,
        })
        .await
        .expect("open");
        store.migrate().await.expect("migrate");
        // Conversation c joins users c % USERS and (c * 7) % USERS (ten per user); messages are
        // spread over conversations, a few deleted.
        let seed = format!(
            "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
               SELECT g, 'user' || g, 'user' || g || '@example.test', 'x', 0, 0 FROM generate_series(1, {USERS}) g; \
             INSERT INTO conversations (id, kind, creator_id, created_at, last_message_id) \
               SELECT c, 'GROUP', 1 + c % {USERS}, 0, NULL FROM generate_series(1, {CONVERSATIONS}) c; \
             INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) \
               SELECT c, u, 0, c, c FROM generate_series(1, {CONVERSATIONS}) c, \
                 LATERAL (VALUES (1 + c % {USERS}), (1 + (c * 7 + 3) % {USERS})) m(u) ON CONFLICT DO NOTHING; \
             INSERT INTO messages (id, conversation_id, sender_id, body, created_at, deleted_at) \
               SELECT {CONVERSATIONS} + g, 1 + (g * 7919) % {CONVERSATIONS}, 1 + (1 + (g * 7919) % {CONVERSATIONS}) % {USERS}, \
                 'message ' || g, g, CASE WHEN g % 50 = 0 THEN g END FROM generate_series(1, {MESSAGES}) g; \
             UPDATE conversations c SET last_message_id = (SELECT MAX(id) FROM messages m WHERE m.conversation_id = c.id); \
             UPDATE conversation_members cm SET last_activity_id = COALESCE(c.last_message_id, cm.last_activity_id) \
               FROM conversations c WHERE c.id = cm.conversation_id; \
             ANALYZE;"
        );
        sqlx::raw_sql(&seed)
            .execute(store.pool())
            .await
            .expect("seed");
        let cases = [
            (
                "my conversations, first page",
                conversations_sql(),
                42,
                None,
            ),
            (
                "my conversations, next page",
                conversations_sql(),
                42,
                Some(CONVERSATIONS + MESSAGES / 2),
            ),
            ("history, first page", messages_sql(), 4_242, None),
            (
                "history, next page",
                messages_sql(),
                4_242,
                Some(CONVERSATIONS + MESSAGES / 2),
            ),
        ];
        let mut failures = Vec::new();
        for (name, sql, subject, cursor) in cases {
            let plan = plan(&store, &sql, subject, cursor).await;
            println!("-- {name}\n{plan}\n");
            if plan.contains("Seq Scan on messages")
                || plan.contains("Seq Scan on conversation_members")
                || plan.contains("Seq Scan on conversations")
                || !plan.contains("Index")
            {
                failures.push(format!("{name}:\n{plan}"));
            }
        }
        store.close().await;
        PgStore::drop_database(&url).await.expect("drop database");
        assert!(
            failures.is_empty(),
            "queries without index plans:\n{}",
            failures.join("\n\n")
        );
    }
}
