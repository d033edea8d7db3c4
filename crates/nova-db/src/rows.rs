//! Row types shared by the SQL adapters: both dialects select the same column names, so one
//! `FromRow` type per read model serves both.

use nova_core::Id;
use nova_events::{EventRecord, Topic};
use nova_posts::model::{Post, Visibility};
use nova_users::model::{Email, User, UserView, Username};
use nova_users::store::SessionRecord;

/// The columns every user read selects, in [`UserRow`] order (`u` = users, `s` = user_stats).
pub(crate) const USER_COLUMNS: &str = "u.id, u.username, u.email, u.display_name, u.bio, u.avatar_url, u.created_at, \
     COALESCE(s.follower_count, 0) AS follower_count, COALESCE(s.following_count, 0) AS following_count, \
     COALESCE(s.post_count, 0) AS post_count";

pub(crate) const POST_COLUMNS: &str =
    "p.id, p.author_id, p.body, p.visibility, p.reply_to_id, p.created_at, p.edited_at";

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

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: i64,
    family_id: i64,
    user_id: i64,
    expires_at: i64,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
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

/// An outbox row as both dialects select it: id, topic, key, payload, created_at.
pub(crate) type OutboxRow = (i64, String, i64, Vec<u8>, i64);

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
