//! Row types shared by the SQL adapters: both dialects select the same column names, so one
//! type per read model serves both, decoded by sqlx's `FromRow` on Postgres and by
//! `from_sqlite` on SQLite.
//!
//! `from_sqlite` reads columns by position, in field order, which is the order of the column
//! lists below (`USER_COLUMNS`, `POST_COLUMNS`, ...): positions cost nothing per row, where
//! looking a name up scans every column. The `sqlite_rows` test checks the names behind the
//! positions against the migrated schema.

use std::collections::HashMap;

use nova_core::Id;
use nova_events::{EventRecord, Topic};
use nova_messaging::model::{Conversation, ConversationKind, ConversationView, Message};
use nova_notifications::model::{Notification, NotificationKind, RecentActors};
use nova_posts::model::{Post, Visibility};
use nova_users::model::{Email, User, UserView, Username};
use nova_users::store::SessionRecord;

/// The columns every user read selects, in [`UserRow`] order (`u` = users, `s` = user_stats).
pub(crate) const USER_COLUMNS: &str = "u.id, u.username, u.email, u.display_name, u.bio, u.avatar_url, u.created_at, \
     COALESCE(s.follower_count, 0) AS follower_count, COALESCE(s.following_count, 0) AS following_count, \
     COALESCE(s.post_count, 0) AS post_count";

pub(crate) const POST_COLUMNS: &str =
    "p.id, p.author_id, p.body, p.visibility, p.reply_to_id, p.created_at, p.edited_at";

/// Reads the columns of a rusqlite row one after another, from a starting position.
pub(crate) struct Columns<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: usize,
}

impl<'r, 's> Columns<'r, 's> {
    pub(crate) fn new(row: &'r rusqlite::Row<'s>, start: usize) -> Self {
        Columns { row, next: start }
    }

    pub(crate) fn next<T: rusqlite::types::FromSql>(&mut self) -> rusqlite::Result<T> {
        let value = self.row.get(self.next);
        self.next += 1;
        value
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    username: String,
    email: String,
    display_name: String,
    bio: String,
    avatar_url: Option<String>,
    created_at: i64,
    follower_count: i64,
    following_count: i64,
    post_count: i64,
}

impl UserRow {
    /// [`USER_COLUMNS`] from position `start`.
    pub(crate) fn from_sqlite_at(row: &rusqlite::Row, start: usize) -> rusqlite::Result<Self> {
        let mut c = Columns::new(row, start);
        Ok(UserRow {
            id: c.next()?,
            username: c.next()?,
            email: c.next()?,
            display_name: c.next()?,
            bio: c.next()?,
            avatar_url: c.next()?,
            created_at: c.next()?,
            follower_count: c.next()?,
            following_count: c.next()?,
            post_count: c.next()?,
        })
    }

    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        Self::from_sqlite_at(row, 0)
    }
}

impl From<UserRow> for UserView {
    fn from(row: UserRow) -> Self {
        UserView {
            user: User {
                id: Id(row.id),
                username: Username::from_trusted(row.username),
                email: Email::from_trusted(row.email),
                display_name: row.display_name,
                bio: row.bio,
                avatar_url: row.avatar_url,
                created_at: row.created_at,
            },
            follower_count: row.follower_count,
            following_count: row.following_count,
            post_count: row.post_count,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EdgeRow {
    pub edge_id: i64,
    #[sqlx(flatten)]
    pub user: UserRow,
}

impl EdgeRow {
    /// `edge_id` then [`USER_COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        Ok(EdgeRow {
            edge_id: row.get(0)?,
            user: UserRow::from_sqlite_at(row, 1)?,
        })
    }
}

/// The columns a [`SessionRow`] reads.
pub(crate) const SESSION_COLUMNS: &str =
    "id, family_id, user_id, expires_at, rotated_at, revoked_at";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: i64,
    family_id: i64,
    user_id: i64,
    expires_at: i64,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl SessionRow {
    /// [`SESSION_COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        let mut c = Columns::new(row, 0);
        Ok(SessionRow {
            id: c.next()?,
            family_id: c.next()?,
            user_id: c.next()?,
            expires_at: c.next()?,
            rotated_at: c.next()?,
            revoked_at: c.next()?,
        })
    }
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        SessionRecord {
            id: Id(r.id),
            family_id: Id(r.family_id),
            user_id: Id(r.user_id),
            expires_at: r.expires_at,
            rotated_at: r.rotated_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PostRow {
    id: i64,
    author_id: i64,
    body: String,
    visibility: String,
    reply_to_id: Option<i64>,
    created_at: i64,
    edited_at: Option<i64>,
}

impl PostRow {
    /// [`POST_COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        let mut c = Columns::new(row, 0);
        Ok(PostRow {
            id: c.next()?,
            author_id: c.next()?,
            body: c.next()?,
            visibility: c.next()?,
            reply_to_id: c.next()?,
            created_at: c.next()?,
            edited_at: c.next()?,
        })
    }
}

impl From<PostRow> for Post {
    fn from(row: PostRow) -> Self {
        Post {
            id: Id(row.id),
            author_id: Id(row.author_id),
            body: row.body,
            visibility: Visibility::from_stored(&row.visibility),
            reply_to_id: row.reply_to_id.map(Id),
            created_at: row.created_at,
            edited_at: row.edited_at,
        }
    }
}

/// Whether `error` is a unique violation whose message or constraint names `needle`
/// (SQLite says `users.email`, Postgres `users_email_key`).
pub(crate) fn is_unique_violation(error: &sqlx::Error, needle: &str) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                && (db.message().contains(needle)
                    || db.constraint().is_some_and(|c| c.contains(needle)))
        }
        _ => false,
    }
}

/// The SQLite flavour of [`is_unique_violation`]: SQLite names the column (`users.email`).
pub(crate) fn is_sqlite_unique_violation(error: &rusqlite::Error, needle: &str) -> bool {
    match error {
        rusqlite::Error::SqliteFailure(e, message) => {
            matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) && message.as_deref().is_some_and(|m| m.contains(needle))
        }
        _ => false,
    }
}

/// An outbox row as both dialects select it: id, topic, key, payload, created_at.
pub(crate) type OutboxRow = (i64, String, i64, Vec<u8>, i64);

/// An [`OutboxRow`] from `id, topic, key, payload, created_at`.
pub(crate) fn outbox_row_from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<OutboxRow> {
    let mut c = Columns::new(row, 0);
    Ok((c.next()?, c.next()?, c.next()?, c.next()?, c.next()?))
}

/// The outbox row as the relay hands it to a publisher.
pub(crate) fn record_from_row(row: OutboxRow) -> anyhow::Result<EventRecord> {
    let (id, topic, key, payload, created_at) = row;
    let topic = Topic::from_name(&topic)
        .ok_or_else(|| anyhow::anyhow!("outbox row {id} has unknown topic {topic}"))?;
    Ok(EventRecord {
        id: Id(id),
        topic,
        key: Id(key),
        payload,
        created_at,
    })
}

// Messaging read models.

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

impl MessageRow {
    /// [`MESSAGE_COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        let mut c = Columns::new(row, 0);
        Ok(MessageRow {
            id: c.next()?,
            conversation_id: c.next()?,
            sender_id: c.next()?,
            body: c.next()?,
            created_at: c.next()?,
            edited_at: c.next()?,
            deleted_at: c.next()?,
        })
    }
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

impl ConversationRow {
    /// [`CONVERSATION_COLUMNS`] from position `start`.
    pub(crate) fn from_sqlite_at(row: &rusqlite::Row, start: usize) -> rusqlite::Result<Self> {
        let mut c = Columns::new(row, start);
        Ok(ConversationRow {
            id: c.next()?,
            kind: c.next()?,
            creator_id: c.next()?,
            created_at: c.next()?,
        })
    }

    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        Self::from_sqlite_at(row, 0)
    }
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
    /// [`view_columns`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        let conversation = ConversationRow::from_sqlite_at(row, 0)?;
        let mut c = Columns::new(row, 4);
        Ok(ViewRow {
            conversation,
            last_activity_id: c.next()?,
            last_read_id: c.next()?,
            lm_id: c.next()?,
            lm_sender_id: c.next()?,
            lm_body: c.next()?,
            lm_created_at: c.next()?,
            lm_edited_at: c.next()?,
            lm_deleted_at: c.next()?,
            unread_count: c.next()?,
            member_ids: c.next()?,
        })
    }

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

// Notification read models.

/// Selects notification groups as [`NotificationRow`]s; callers add WHERE/ORDER/LIMIT.
pub(crate) const NOTIFICATION_SELECT: &str = "SELECT n.id, n.recipient_id, n.kind, n.target_id, \
     n.actor_count, n.recent_actors, n.sort_id, n.created_at, n.updated_at, n.read_at, \
     p.id AS post_id, p.author_id AS post_author_id, p.body AS post_body, \
     p.visibility AS post_visibility, p.reply_to_id AS post_reply_to_id, \
     p.created_at AS post_created_at, p.edited_at AS post_edited_at \
     FROM notifications n \
     LEFT JOIN posts p ON p.id = n.target_id AND n.kind IN ('LIKE', 'REPLY', 'MENTION') \
                      AND p.deleted_at IS NULL";

#[derive(sqlx::FromRow)]
pub(crate) struct NotificationRow {
    id: i64,
    recipient_id: i64,
    kind: String,
    target_id: i64,
    actor_count: i64,
    recent_actors: String,
    sort_id: i64,
    created_at: i64,
    updated_at: i64,
    read_at: Option<i64>,
    post_id: Option<i64>,
    post_author_id: Option<i64>,
    post_body: Option<String>,
    post_visibility: Option<String>,
    post_reply_to_id: Option<i64>,
    post_created_at: Option<i64>,
    post_edited_at: Option<i64>,
}

impl NotificationRow {
    /// [`NOTIFICATION_SELECT`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row) -> rusqlite::Result<Self> {
        let mut c = Columns::new(row, 0);
        Ok(NotificationRow {
            id: c.next()?,
            recipient_id: c.next()?,
            kind: c.next()?,
            target_id: c.next()?,
            actor_count: c.next()?,
            recent_actors: c.next()?,
            sort_id: c.next()?,
            created_at: c.next()?,
            updated_at: c.next()?,
            read_at: c.next()?,
            post_id: c.next()?,
            post_author_id: c.next()?,
            post_body: c.next()?,
            post_visibility: c.next()?,
            post_reply_to_id: c.next()?,
            post_created_at: c.next()?,
            post_edited_at: c.next()?,
        })
    }

    /// The domain value; None for a row of a kind this build does not know.
    pub(crate) fn into_domain(self) -> Option<Notification> {
        let kind = NotificationKind::from_stored(&self.kind)?;
        let post = match (
            self.post_id,
            self.post_author_id,
            self.post_body,
            self.post_visibility,
            self.post_created_at,
        ) {
            (Some(id), Some(author), Some(body), Some(visibility), Some(created_at)) => {
                Some(Post {
                    id: Id(id),
                    author_id: Id(author),
                    body,
                    visibility: Visibility::from_stored(&visibility),
                    reply_to_id: self.post_reply_to_id.map(Id),
                    created_at,
                    edited_at: self.post_edited_at,
                })
            }
            _ => None,
        };
        Some(Notification {
            id: Id(self.id),
            recipient_id: Id(self.recipient_id),
            kind,
            target_id: (self.target_id != 0).then_some(Id(self.target_id)),
            actor_ids: RecentActors::decode(&self.recent_actors).actor_ids(),
            actor_count: self.actor_count,
            read: self.read_at.is_some(),
            sort_id: Id(self.sort_id),
            created_at: self.created_at,
            updated_at: self.updated_at,
            post,
        })
    }
}

#[cfg(test)]
mod tests {
    //! `from_sqlite` reads by position: the names behind the positions must be the fields.

    use super::*;

    fn names(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
        let statement = conn.prepare(sql).expect("prepare");
        statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn sqlite_rows_read_the_columns_their_fields_name() {
        let (_dir, store, conn) = crate::sqlite::testing::migrated().await;
        let user = [
            "id",
            "username",
            "email",
            "display_name",
            "bio",
            "avatar_url",
            "created_at",
            "follower_count",
            "following_count",
            "post_count",
        ];
        assert_eq!(
            names(
                &conn,
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u LEFT JOIN user_stats s ON s.user_id = u.id"
                )
            ),
            user
        );
        assert_eq!(
            names(&conn, &format!("SELECT {POST_COLUMNS} FROM posts p")),
            [
                "id",
                "author_id",
                "body",
                "visibility",
                "reply_to_id",
                "created_at",
                "edited_at"
            ]
        );
        assert_eq!(
            names(&conn, &format!("SELECT {SESSION_COLUMNS} FROM sessions")),
            [
                "id",
                "family_id",
                "user_id",
                "expires_at",
                "rotated_at",
                "revoked_at"
            ]
        );
        assert_eq!(
            names(&conn, &format!("SELECT {MESSAGE_COLUMNS} FROM messages m")),
            [
                "id",
                "conversation_id",
                "sender_id",
                "body",
                "created_at",
                "edited_at",
                "deleted_at"
            ]
        );
        assert_eq!(
            names(
                &conn,
                &format!(
                    "SELECT {} FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id \
                     LEFT JOIN messages lm ON lm.id = c.last_message_id",
                    view_columns("''")
                )
            ),
            [
                "id",
                "kind",
                "creator_id",
                "created_at",
                "last_activity_id",
                "last_read_id",
                "lm_id",
                "lm_sender_id",
                "lm_body",
                "lm_created_at",
                "lm_edited_at",
                "lm_deleted_at",
                "unread_count",
                "member_ids"
            ]
        );
        assert_eq!(
            names(&conn, NOTIFICATION_SELECT),
            [
                "id",
                "recipient_id",
                "kind",
                "target_id",
                "actor_count",
                "recent_actors",
                "sort_id",
                "created_at",
                "updated_at",
                "read_at",
                "post_id",
                "post_author_id",
                "post_body",
                "post_visibility",
                "post_reply_to_id",
                "post_created_at",
                "post_edited_at"
            ]
        );
        drop(conn);
        store.close().await;
    }
}
