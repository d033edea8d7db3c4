//! Notification groups and preferences on SQLite.
//!
//! One writer serialises every write, so finding the unread group an actor joins and updating
//! it cannot interleave with another event's write. A batch of events (`apply_events`) is one
//! writer job: one savepoint inside the writer's group transaction, so the batch is applied all
//! or nothing and shares one commit (one fsync) instead of one per event. The row type of a
//! listed group ([`NotificationRow`]) is shared with the Postgres adapter.

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_notifications::model::{upserted_event, Notification, Preferences, RecentActors};
use nova_notifications::store::{Activity, EventActivities, NotificationStore};
use rusqlite::params;

use super::{all, execute, ids_json, one, optional, SqliteStore, Tx};
use crate::error::DbContext as _;
use crate::rows::{NotificationRow, NOTIFICATION_SELECT};

impl SqliteStore {
    /// The path behind both `apply_event` and `apply_events`: the whole batch is one writer job.
    /// A failing entry fails the job, whose savepoint is rolled back: no entry is applied and
    /// the caller redelivers the batch. The writer wakes the relay after the commit when an
    /// outbox row was written.
    async fn apply_batch(
        &self,
        consumer: &str,
        events: Vec<EventActivities>,
    ) -> anyhow::Result<Vec<bool>> {
        let consumer = consumer.to_owned();
        self.write(move |tx| {
            let now = nova_core::now_millis();
            let mut applied = Vec::with_capacity(events.len());
            for event in &events {
                applied.push(apply_recorded(tx, &consumer, now, event)?);
            }
            Ok(applied)
        })
        .await
    }
}

/// Records `event` as processed by `consumer`, then applies its activities. False, changing
/// nothing, when the record existed: processed before, or by an earlier entry of the same batch
/// (whose insert this transaction already sees).
fn apply_recorded(
    tx: &mut Tx<'_>,
    consumer: &str,
    now: UnixMillis,
    event: &EventActivities,
) -> anyhow::Result<bool> {
    let first = execute(
        tx,
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING",
        params![consumer, event.event_id.0, now],
    )
    .context("record processed event")?;
    if first == 0 {
        return Ok(false);
    }
    for activity in &event.activities {
        if let Some(changed) = apply_activity(tx, activity)? {
            let upserted = upserted_event(
                activity.upserted_event_id,
                activity.at,
                activity.recipient_id,
                changed,
            );
            super::events::write_event(tx, &upserted)?;
        }
    }
    Ok(true)
}

/// The actor joins the recipient's most recent unread group of the activity's key, or starts a
/// new one. The id of the group that changed, or `None` when the actor was in it already
/// (counted once, nothing changes).
fn apply_activity(tx: &Tx<'_>, activity: &Activity) -> anyhow::Result<Option<Id>> {
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
    let Some((id, recent)) = group else {
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
        return Ok(Some(id));
    };
    let joined = execute(
        tx,
        "INSERT INTO notification_actors (notification_id, actor_id, event_id) \
         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![id, activity.actor_id.0, activity.event_id.0],
    )
    .context("add notification actor")?;
    if joined == 0 {
        return Ok(None);
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
    Ok(Some(Id(id)))
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn apply_event(
        &self,
        consumer: &str,
        event_id: Id,
        activities: &[Activity],
    ) -> anyhow::Result<bool> {
        let event = EventActivities {
            event_id,
            activities: activities.to_vec(),
        };
        // The one-entry batch: one flag back.
        Ok(self.apply_batch(consumer, vec![event]).await? == [true])
    }

    /// The whole batch in one writer job, so one commit (see `apply_batch`).
    async fn apply_events(
        &self,
        consumer: &str,
        events: &[EventActivities],
    ) -> anyhow::Result<Vec<bool>> {
        self.apply_batch(consumer, events.to_vec()).await
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nova_core::Id;
    use nova_notifications::model::NotificationKind;
    use nova_notifications::store::{Activity, EventActivities, NotificationStore};

    use crate::sqlite::testing::migrated;
    use crate::sqlite::{all, execute, one, SqliteStore};

    const ALICE: i64 = 1;
    const POST: i64 = 500;

    /// Event `event`: actor `actor` liked Alice's post (or, with `recipient`, someone else's).
    fn liked(event: i64, actor: i64, recipient: i64) -> EventActivities {
        EventActivities {
            event_id: Id(event),
            activities: vec![Activity {
                recipient_id: Id(recipient),
                kind: NotificationKind::Like,
                target_id: Some(Id(POST)),
                actor_id: Id(actor),
                event_id: Id(event),
                at: event,
                new_notification_id: Id(event * 10),
                upserted_event_id: Id(event * 10 + 1),
            }],
        }
    }

    /// (actor_count, recent_actors, sort_id) of every group, the oldest first.
    async fn groups(store: &SqliteStore) -> Vec<(i64, String, i64)> {
        store
            .read(|conn| {
                Ok(all(
                    conn,
                    "SELECT actor_count, recent_actors, sort_id FROM notifications ORDER BY id",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )?)
            })
            .await
            .expect("groups")
    }

    /// Rows of `table`.
    async fn count(store: &SqliteStore, table: &'static str) -> i64 {
        store
            .read(move |conn| {
                Ok(one(
                    conn,
                    &format!("SELECT COUNT(*) FROM {table}"),
                    [],
                    |row| row.get(0),
                )?)
            })
            .await
            .expect("count")
    }

    /// Whether the writer woke the relay since the last call.
    async fn woken(store: &SqliteStore) -> bool {
        tokio::time::timeout(Duration::from_millis(50), store.outbox_signal().notified())
            .await
            .is_ok()
    }

    /// One writer job for a batch: an event processed before and an event twice in the batch
    /// are applied once; an entry that fails (its recipient does not exist) leaves the whole
    /// batch unapplied, so its redelivery finds every event new.
    #[tokio::test]
    async fn a_batch_applies_each_new_event_once_and_all_or_nothing() {
        let (_dir, store, _conn) = migrated().await;
        store
            .write(|tx| {
                execute(
                    tx,
                    "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
                     VALUES (?1, 'alice', 'alice@example.test', 'x', 0, 0)",
                    [ALICE],
                )?;
                Ok(())
            })
            .await
            .expect("user");
        let before = liked(100, 11, ALICE);
        assert!(store
            .apply_event("notifications", before.event_id, &before.activities)
            .await
            .expect("first"));
        assert!(woken(&store).await, "the outbox row wakes the relay");

        let batch = [
            before.clone(),
            liked(101, 12, ALICE),
            liked(101, 12, ALICE),
            liked(102, 13, ALICE),
        ];
        assert_eq!(
            store
                .apply_events("notifications", &batch)
                .await
                .expect("batch"),
            [false, true, false, true]
        );
        assert!(woken(&store).await);
        let applied = vec![(3, "102:13,101:12,100:11".to_owned(), 102)];
        assert_eq!(groups(&store).await, applied);
        assert_eq!(count(&store, "processed_events").await, 3);
        assert_eq!(
            count(&store, "outbox").await,
            3,
            "one upserted row per applied event"
        );

        // 104's recipient does not exist: the batch fails as a whole, 103 included.
        let failing = [liked(103, 14, ALICE), liked(104, 15, 999)];
        store
            .apply_events("notifications", &failing)
            .await
            .expect_err("unknown recipient");
        assert!(!woken(&store).await, "nothing committed, nothing to relay");
        assert_eq!(groups(&store).await, applied);
        assert_eq!(count(&store, "processed_events").await, 3);
        assert_eq!(count(&store, "outbox").await, 3);

        // Redelivered without the bad entry: 103 is new, the rest was processed.
        assert_eq!(
            store
                .apply_events("notifications", &[failing[0].clone(), batch[1].clone()])
                .await
                .expect("redelivery"),
            [true, false]
        );
        assert_eq!(groups(&store).await[0].0, 4);
        assert_eq!(count(&store, "outbox").await, 4);
        store.close().await;
    }
}
