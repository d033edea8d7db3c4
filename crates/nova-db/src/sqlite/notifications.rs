//! Notification groups and preferences on SQLite.
//!
//! One writer serialises every write, so finding the unread group an actor joins and updating
//! it cannot interleave with another event's write. The row type of a listed group
//! ([`NotificationRow`]) is shared with the Postgres adapter.

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_notifications::model::{upserted_event, Notification, Preferences, RecentActors};
use nova_notifications::store::{Activity, NotificationStore};
use rusqlite::params;

use super::{all, execute, ids_json, one, optional, SqliteStore};
use crate::error::DbContext as _;
use crate::rows::{NotificationRow, NOTIFICATION_SELECT};

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn apply_event(
        &self,
        consumer: &str,
        event_id: Id,
        activities: &[Activity],
    ) -> anyhow::Result<bool> {
        let consumer = consumer.to_owned();
        let activities = activities.to_vec();
        self.write(move |tx| {
            let first = execute(
                tx,
                "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                params![consumer, event_id.0, nova_core::now_millis()],
            )
            .context("record processed event")?;
            if first == 0 {
                return Ok(false);
            }
            for activity in &activities {
                let target = activity.target_id.map_or(0, |t| t.0);
                let group: Option<(i64, String)> = optional(
                    tx,
                    "SELECT id, recent_actors FROM notifications \
                     WHERE recipient_id = ?1 AND kind = ?2 AND target_id = ?3 AND read_at IS NULL \
                     ORDER BY sort_id DESC LIMIT 1",
                    params![activity.recipient_id.0, activity.kind.as_str(), target],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .context("find unread notification group")?;
                let changed = match group {
                    Some((id, recent)) => {
                        let joined = execute(
                            tx,
                            "INSERT INTO notification_actors (notification_id, actor_id, event_id) \
                             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                            params![id, activity.actor_id.0, activity.event_id.0],
                        )
                        .context("add notification actor")?;
                        if joined == 0 {
                            // The actor is in the group already: counted once, nothing changes.
                            continue;
                        }
                        let recent = RecentActors::decode(&recent)
                            .with(activity.event_id, activity.actor_id)
                            .encode();
                        execute(
                            tx,
                            "UPDATE notifications SET actor_count = actor_count + 1, recent_actors = ?1, \
                             sort_id = MAX(sort_id, ?2), updated_at = ?3 WHERE id = ?4",
                            params![recent, activity.event_id.0, activity.at, id],
                        )
                        .context("grow notification group")?;
                        Id(id)
                    }
                    None => {
                        let id = activity.new_notification_id;
                        execute(
                            tx,
                            "INSERT INTO notifications (id, recipient_id, kind, target_id, actor_count, \
                             recent_actors, sort_id, created_at, updated_at) \
                             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)",
                            params![
                                id.0,
                                activity.recipient_id.0,
                                activity.kind.as_str(),
                                target,
                                RecentActors::default()
                                    .with(activity.event_id, activity.actor_id)
                                    .encode(),
                                activity.event_id.0,
                                activity.at
                            ],
                        )
                        .context("insert notification")?;
                        execute(
                            tx,
                            "INSERT INTO notification_actors (notification_id, actor_id, event_id) \
                             VALUES (?1, ?2, ?3)",
                            params![id.0, activity.actor_id.0, activity.event_id.0],
                        )
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
                super::events::write_event(tx, &event)?;
            }
            Ok(true)
        })
        .await
    }

    async fn list_notifications(
        &self,
        recipient: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Notification>> {
        let sql = format!(
            "{NOTIFICATION_SELECT} WHERE n.recipient_id = ?1 AND n.sort_id < ?2 \
             ORDER BY n.sort_id DESC LIMIT ?3"
        );
        let rows = self
            .read(|conn| {
                all(
                    conn,
                    &sql,
                    params![
                        recipient.0,
                        page.after.map_or(i64::MAX, |a| a.0),
                        page.fetch_limit()
                    ],
                    NotificationRow::from_sqlite,
                )
                .context("list notifications")
            })
            .await?;
        Ok(Page::from_rows(
            rows.into_iter()
                .filter_map(NotificationRow::into_domain)
                .collect(),
            page,
        ))
    }

    async fn unread_count(&self, recipient: Id) -> anyhow::Result<i64> {
        self.read(|conn| {
            one(
                conn,
                "SELECT COUNT(*) FROM notifications WHERE recipient_id = ?1 AND read_at IS NULL",
                [recipient.0],
                |row| row.get(0),
            )
            .context("count unread notifications")
        })
        .await
    }

    async fn mark_read(
        &self,
        recipient: Id,
        ids: Option<&[Id]>,
        now: UnixMillis,
    ) -> anyhow::Result<bool> {
        let ids = ids.map(<[Id]>::to_vec);
        self.write(move |tx| {
            match ids {
                None => {
                    execute(
                        tx,
                        "UPDATE notifications SET read_at = ?2 WHERE recipient_id = ?1 AND read_at IS NULL",
                        params![recipient.0, now],
                    )
                    .context("mark all notifications read")?;
                }
                Some(ids) => {
                    let json = ids_json(&ids);
                    let owned: i64 = one(
                        tx,
                        "SELECT COUNT(*) FROM notifications WHERE recipient_id = ?1 \
                         AND id IN (SELECT value FROM json_each(?2))",
                        params![recipient.0, json],
                        |row| row.get(0),
                    )
                    .context("check notification ids")?;
                    if usize::try_from(owned).ok() != Some(ids.len()) {
                        return Ok(false);
                    }
                    execute(
                        tx,
                        "UPDATE notifications SET read_at = ?3 WHERE recipient_id = ?1 AND read_at IS NULL \
                         AND id IN (SELECT value FROM json_each(?2))",
                        params![recipient.0, json, now],
                    )
                    .context("mark notifications read")?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn get_preferences(&self, user: Id) -> anyhow::Result<Option<Preferences>> {
        let row: Option<(String, String)> = self
            .read(|conn| {
                optional(
                    conn,
                    "SELECT types, from_whom FROM notification_preferences WHERE user_id = ?1",
                    [user.0],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .context("get notification preferences")
            })
            .await?;
        Ok(row.map(|(types, from)| Preferences::from_stored(&types, &from)))
    }

    async fn put_preferences(
        &self,
        user: Id,
        preferences: &Preferences,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<()> {
        let preferences = *preferences;
        let event = event.clone();
        self.write(move |tx| {
            execute(
                tx,
                "INSERT INTO notification_preferences (user_id, types, from_whom, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id) DO UPDATE SET \
                 types = excluded.types, from_whom = excluded.from_whom, updated_at = excluded.updated_at",
                params![
                    user.0,
                    preferences.stored_types(),
                    preferences.from.as_str(),
                    now
                ],
            )
            .context("store notification preferences")?;
            super::events::write_event(tx, &event)?;
            Ok(())
        })
        .await
    }
}
