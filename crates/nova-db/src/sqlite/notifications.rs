//! Notification groups and preferences on SQLite.
//!
//! One writer connection serialises every write, so finding the unread group an actor joins
//! and updating it cannot interleave with another event's write. The row type of a listed
//! group ([`NotificationRow`]) is shared with the Postgres adapter.

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_notifications::model::{
    upserted_event, Notification, NotificationKind, Preferences, RecentActors,
};
use nova_notifications::store::{Activity, NotificationStore};
use nova_posts::{Post, Visibility};

use super::{ids_json, SqliteStore};
use crate::error::DbContext as _;

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn apply_event(
        &self,
        consumer: &str,
        event_id: Id,
        activities: &[Activity],
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin notification")?;
        let first = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id.0)
        .bind(nova_core::now_millis())
        .execute(&mut *tx)
        .await
        .context("record processed event")?;
        if first.rows_affected() == 0 {
            return Ok(false);
        }
        for activity in activities {
            let target = activity.target_id.map_or(0, |t| t.0);
            let group: Option<(i64, String)> = sqlx::query_as(
                "SELECT id, recent_actors FROM notifications \
                 WHERE recipient_id = ?1 AND kind = ?2 AND target_id = ?3 AND read_at IS NULL \
                 ORDER BY sort_id DESC LIMIT 1",
            )
            .bind(activity.recipient_id.0)
            .bind(activity.kind.as_str())
            .bind(target)
            .fetch_optional(&mut *tx)
            .await
            .context("find unread notification group")?;
            let changed = match group {
                Some((id, recent)) => {
                    let joined = sqlx::query(
                        "INSERT INTO notification_actors (notification_id, actor_id, event_id) \
                         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(activity.actor_id.0)
                    .bind(activity.event_id.0)
                    .execute(&mut *tx)
                    .await
                    .context("add notification actor")?;
                    if joined.rows_affected() == 0 {
                        // The actor is in the group already: counted once, nothing changes.
                        continue;
                    }
                    let recent = RecentActors::decode(&recent)
                        .with(activity.event_id, activity.actor_id)
                        .encode();
                    sqlx::query(
                        "UPDATE notifications SET actor_count = actor_count + 1, recent_actors = ?1, \
                         sort_id = MAX(sort_id, ?2), updated_at = ?3 WHERE id = ?4",
                    )
                    .bind(recent)
                    .bind(activity.event_id.0)
                    .bind(activity.at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .context("grow notification group")?;
                    Id(id)
                }
                None => {
                    let id = activity.new_notification_id;
                    sqlx::query(
                        "INSERT INTO notifications (id, recipient_id, kind, target_id, actor_count, \
                         recent_actors, sort_id, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)",
                    )
                    .bind(id.0)
                    .bind(activity.recipient_id.0)
                    .bind(activity.kind.as_str())
                    .bind(target)
                    .bind(
                        RecentActors::default()
                            .with(activity.event_id, activity.actor_id)
                            .encode(),
                    )
                    .bind(activity.event_id.0)
                    .bind(activity.at)
                    .execute(&mut *tx)
                    .await
                    .context("insert notification")?;
                    sqlx::query(
                        "INSERT INTO notification_actors (notification_id, actor_id, event_id) \
                         VALUES (?1, ?2, ?3)",
                    )
                    .bind(id.0)
                    .bind(activity.actor_id.0)
                    .bind(activity.event_id.0)
                    .execute(&mut *tx)
                    .await
                    .context("insert notification actor")?;
                    id
                }
            };
            let event = upserted_event(
                activity.upserted_event_id,
                activity.at,
                activity.recipient_id,
                changed,
            );
            super::events::write_event(&mut tx, &event).await?;
        }
        tx.commit().await.context("commit notification")?;
        self.outbox_signal.notify_one();
        Ok(true)
    }

    async fn list_notifications(
        &self,
        recipient: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Notification>> {
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "{NOTIFICATION_SELECT} WHERE n.recipient_id = ?1 AND n.sort_id < ?2 \
             ORDER BY n.sort_id DESC LIMIT ?3"
        ))
        .bind(recipient.0)
        .bind(page.after.map_or(i64::MAX, |a| a.0))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("list notifications")?;
        Ok(Page::from_rows(
            rows.into_iter()
                .filter_map(NotificationRow::into_domain)
                .collect(),
            page,
        ))
    }

    async fn unread_count(&self, recipient: Id) -> anyhow::Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE recipient_id = ?1 AND read_at IS NULL",
        )
        .bind(recipient.0)
        .fetch_one(&mut *self.reader.acquire().await?)
        .await
        .context("count unread notifications")
    }

    async fn mark_read(
        &self,
        recipient: Id,
        ids: Option<&[Id]>,
        now: UnixMillis,
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin mark read")?;
        match ids {
            None => {
                sqlx::query(
                    "UPDATE notifications SET read_at = ?2 WHERE recipient_id = ?1 AND read_at IS NULL",
                )
                .bind(recipient.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("mark all notifications read")?;
            }
            Some(ids) => {
                let json = ids_json(ids);
                let owned: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM notifications WHERE recipient_id = ?1 \
                     AND id IN (SELECT value FROM json_each(?2))",
                )
                .bind(recipient.0)
                .bind(&json)
                .fetch_one(&mut *tx)
                .await
                .context("check notification ids")?;
                if usize::try_from(owned).ok() != Some(ids.len()) {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE notifications SET read_at = ?3 WHERE recipient_id = ?1 AND read_at IS NULL \
                     AND id IN (SELECT value FROM json_each(?2))",
                )
                .bind(recipient.0)
                .bind(&json)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("mark notifications read")?;
            }
        }
        tx.commit().await.context("commit mark read")?;
        Ok(true)
    }

    async fn get_preferences(&self, user: Id) -> anyhow::Result<Option<Preferences>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT types, from_whom FROM notification_preferences WHERE user_id = ?1",
        )
        .bind(user.0)
        .fetch_optional(&mut *self.reader.acquire().await?)
        .await
        .context("get notification preferences")?;
        Ok(row.map(|(types, from)| Preferences::from_stored(&types, &from)))
    }

    async fn put_preferences(
        &self,
        user: Id,
        preferences: &Preferences,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<()> {
        let mut tx = self.writer.begin().await.context("begin preferences")?;
        sqlx::query(
            "INSERT INTO notification_preferences (user_id, types, from_whom, updated_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id) DO UPDATE SET \
             types = excluded.types, from_whom = excluded.from_whom, updated_at = excluded.updated_at",
        )
        .bind(user.0)
        .bind(preferences.stored_types())
        .bind(preferences.from.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("store notification preferences")?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit preferences")?;
        self.outbox_signal.notify_one();
        Ok(())
    }
}

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
