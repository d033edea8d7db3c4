//! Notification groups and preferences on Postgres, where several nodes apply events at once.
//!
//! Applying events takes a transaction-scoped advisory lock per recipient (in key order, so two
//! transactions never wait on each other in a cycle): two events for the same recipient on
//! different nodes would otherwise both find no unread group and start two. A batch of events
//! (`apply_events`) is one transaction with a fixed number of statements, whatever its size:
//! one processed-records insert, one lock round trip, two reads (the keys' unread groups, the
//! actors already in them), three set-based writes (`unnest`: started groups, actor rows, grown
//! groups), one outbox insert for all `NotificationUpserted` rows, one commit.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_notifications::model::{upserted_event, Notification, Preferences, RecentActors};
use nova_notifications::store::{Activity, EventActivities, NotificationStore};

use super::{ids, PgStore};
use crate::error::DbContext as _;
use crate::rows::{NotificationRow, NOTIFICATION_SELECT};

/// Advisory-lock namespace of notification recipients (the first key of the two-key form).
const RECIPIENT_LOCK: i32 = 0x6e6f_7466; // "notf"

/// A page of a recipient's groups: `$1` recipient, `$2` exclusive upper sort id, `$3` limit.
fn list_sql() -> String {
    format!(
        "{NOTIFICATION_SELECT} WHERE n.recipient_id = $1 AND n.sort_id < $2 \
         ORDER BY n.sort_id DESC LIMIT $3"
    )
}

/// The most recent unread group of each key: `$1` recipients, `$2` kinds, `$3` targets (one
/// key per position). Per key the same probe as one activity's lookup, on `notifications_unread`.
const FIND_GROUPS_SQL: &str = "SELECT k.r, k.kind, k.t, g.id, g.recent_actors \
     FROM unnest($1::int8[], $2::text[], $3::int8[]) AS k(r, kind, t) \
     CROSS JOIN LATERAL (SELECT id, recent_actors FROM notifications \
       WHERE recipient_id = k.r AND kind = k.kind AND target_id = k.t AND read_at IS NULL \
       ORDER BY sort_id DESC LIMIT 1) AS g";

const UNREAD_SQL: &str =
    "SELECT COUNT(*) FROM notifications WHERE recipient_id = $1 AND read_at IS NULL";

/// Takes the recipients' advisory locks for the rest of the transaction, in lock-key order
/// (the same order on every node, so two batches never wait on each other in a cycle), in
/// one round trip: `unnest` yields the sorted keys in array order.
async fn lock_recipients(
    conn: &mut sqlx::PgConnection,
    activities: impl Iterator<Item = &Activity>,
) -> anyhow::Result<()> {
    let mut keys: Vec<i32> = activities
        .map(|a| (a.recipient_id.0 & 0x7fff_ffff) as i32)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock($1::int4, k) FROM unnest($2::int4[]) AS k")
        .bind(RECIPIENT_LOCK)
        .bind(&keys)
        .execute(conn)
        .await
        .context("lock notification recipients")?;
    Ok(())
}

/// A group's (recipient, kind, target) key; the target is 0 for groups without one.
type GroupKey = (i64, &'static str, i64);

fn group_key(activity: &Activity) -> GroupKey {
    (
        activity.recipient_id.0,
        activity.kind.as_str(),
        activity.target_id.map_or(0, |t| t.0),
    )
}

/// A group as the batch leaves it: found unread in the table, or started by the batch.
struct BatchGroup {
    id: i64,
    key: GroupKey,
    recent: RecentActors,
    /// Actors that joined in this batch (the new row's count, or the existing row's increment).
    joined: i64,
    /// Largest event id among the batch's joins (the sort id moves forward only).
    sort_id: i64,
    created_at: UnixMillis,
    updated_at: UnixMillis,
    started: bool,
}

/// Applies the activities, in order, inside the caller's transaction (the recipients are
/// locked), with a fixed number of statements whatever the batch size: one query finds the
/// most recent unread group of every key, one which of the batch's actors are in those groups
/// already; the joins are then worked out in memory, exactly as one-by-one application would
/// (an actor counted once per group, a group started by the batch joined by its later
/// activities), and written with one insert of the started groups, one of the actor rows and
/// one update of the grown groups. Returns per activity the changed group, or None when the
/// actor was in the group already (nothing changes).
async fn apply_activities(
    conn: &mut sqlx::PgConnection,
    activities: &[&Activity],
) -> anyhow::Result<Vec<Option<Id>>> {
    let mut keys: Vec<GroupKey> = activities.iter().map(|a| group_key(a)).collect();
    keys.sort_unstable();
    keys.dedup();
    let found: Vec<(i64, String, i64, i64, String)> = sqlx::query_as(FIND_GROUPS_SQL)
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1.to_owned()).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.2).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await
        .context("find unread notification groups")?;
    let mut groups: Vec<BatchGroup> = Vec::with_capacity(keys.len());
    let mut by_key: HashMap<GroupKey, usize> = HashMap::with_capacity(keys.len());
    for (recipient, kind, target, id, recent) in found {
        // The key comes back as sent; map it onto the batch's own (static) kind string.
        let Some(key) = keys
            .binary_search_by(|k| (k.0, k.1, k.2).cmp(&(recipient, kind.as_str(), target)))
            .ok()
            .map(|at| keys[at])
        else {
            continue;
        };
        by_key.insert(key, groups.len());
        groups.push(BatchGroup {
            id,
            key,
            recent: RecentActors::decode(&recent),
            joined: 0,
            sort_id: i64::MIN,
            created_at: 0,
            updated_at: 0,
            started: false,
        });
    }
    let (probe_groups, probe_actors): (Vec<i64>, Vec<i64>) = activities
        .iter()
        .filter_map(|a| {
            by_key
                .get(&group_key(a))
                .map(|&g| (groups[g].id, a.actor_id.0))
        })
        .unzip();
    let mut members: HashSet<(i64, i64)> = if probe_groups.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_as(
            "SELECT notification_id, actor_id FROM notification_actors \
             WHERE (notification_id, actor_id) IN \
               (SELECT * FROM unnest($1::int8[], $2::int8[]))",
        )
        .bind(&probe_groups)
        .bind(&probe_actors)
        .fetch_all(&mut *conn)
        .await
        .context("find notification actors")?
        .into_iter()
        .collect()
    };
    let mut changed = Vec::with_capacity(activities.len());
    let (mut actor_groups, mut actor_ids, mut actor_events) = (Vec::new(), Vec::new(), Vec::new());
    for activity in activities {
        let key = group_key(activity);
        let at = match by_key.get(&key) {
            Some(&at) => at,
            None => {
                by_key.insert(key, groups.len());
                groups.push(BatchGroup {
                    id: activity.new_notification_id.0,
                    key,
                    recent: RecentActors::default(),
                    joined: 0,
                    sort_id: i64::MIN,
                    created_at: activity.at,
                    updated_at: activity.at,
                    started: true,
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[at];
        if !members.insert((group.id, activity.actor_id.0)) {
            changed.push(None);
            continue;
        }
        group.recent = std::mem::take(&mut group.recent).with(activity.event_id, activity.actor_id);
        group.joined += 1;
        group.sort_id = group.sort_id.max(activity.event_id.0);
        group.updated_at = activity.at;
        actor_groups.push(group.id);
        actor_ids.push(activity.actor_id.0);
        actor_events.push(activity.event_id.0);
        changed.push(Some(Id(group.id)));
    }
    let (started, grown): (Vec<&BatchGroup>, Vec<&BatchGroup>) = groups
        .iter()
        .filter(|g| g.joined > 0)
        .partition(|g| g.started);
    if !started.is_empty() {
        sqlx::query(
            "INSERT INTO notifications (id, recipient_id, kind, target_id, actor_count, \
             recent_actors, sort_id, created_at, updated_at) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[], \
                                  $6::text[], $7::int8[], $8::int8[], $9::int8[])",
        )
        .bind(started.iter().map(|g| g.id).collect::<Vec<_>>())
        .bind(started.iter().map(|g| g.key.0).collect::<Vec<_>>())
        .bind(
            started
                .iter()
                .map(|g| g.key.1.to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(started.iter().map(|g| g.key.2).collect::<Vec<_>>())
        .bind(started.iter().map(|g| g.joined).collect::<Vec<_>>())
        .bind(
            started
                .iter()
                .map(|g| g.recent.encode())
                .collect::<Vec<_>>(),
        )
        .bind(started.iter().map(|g| g.sort_id).collect::<Vec<_>>())
        .bind(started.iter().map(|g| g.created_at).collect::<Vec<_>>())
        .bind(started.iter().map(|g| g.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .context("insert notifications")?;
    }
    if !actor_groups.is_empty() {
        // No ON CONFLICT: the recipients are locked and their memberships were read under the
        // lock, so a conflict would be a bug; failing the batch (redelivered) beats miscounting.
        sqlx::query(
            "INSERT INTO notification_actors (notification_id, actor_id, event_id) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[])",
        )
        .bind(&actor_groups)
        .bind(&actor_ids)
        .bind(&actor_events)
        .execute(&mut *conn)
        .await
        .context("insert notification actors")?;
    }
    if !grown.is_empty() {
        sqlx::query(
            "UPDATE notifications AS n SET actor_count = n.actor_count + u.joined, \
               recent_actors = u.recent, sort_id = GREATEST(n.sort_id, u.sort_id), \
               updated_at = u.updated_at \
             FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[]) \
               AS u(id, joined, recent, sort_id, updated_at) \
             WHERE n.id = u.id",
        )
        .bind(grown.iter().map(|g| g.id).collect::<Vec<_>>())
        .bind(grown.iter().map(|g| g.joined).collect::<Vec<_>>())
        .bind(grown.iter().map(|g| g.recent.encode()).collect::<Vec<_>>())
        .bind(grown.iter().map(|g| g.sort_id).collect::<Vec<_>>())
        .bind(grown.iter().map(|g| g.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .context("grow notification groups")?;
    }
    Ok(changed)
}

impl PgStore {
    /// The batch path behind both `apply_event` and `apply_events`: one transaction for the
    /// whole batch. The processed records go first, in one statement; only the events whose
    /// record is new (not processed before, not an earlier entry of this batch) are applied.
    async fn apply_batch(
        &self,
        consumer: &str,
        events: &[(Id, &[Activity])],
    ) -> anyhow::Result<Vec<bool>> {
        let mut tx = self.gate.begin().await.context("begin notifications")?;
        let mut ids: Vec<i64> = events.iter().map(|(id, _)| id.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let fresh: HashSet<i64> = sqlx::query_scalar(
            "INSERT INTO processed_events (consumer, event_id, processed_at) \
             SELECT $1, e, $3 FROM unnest($2::int8[]) AS e ON CONFLICT DO NOTHING \
             RETURNING event_id",
        )
        .bind(consumer)
        .bind(&ids)
        .bind(nova_core::now_millis())
        .fetch_all(&mut *tx)
        .await
        .context("record processed events")?
        .into_iter()
        .collect();
        let mut taken = HashSet::with_capacity(fresh.len());
        let applied: Vec<bool> = events
            .iter()
            .map(|(id, _)| fresh.contains(&id.0) && taken.insert(id.0))
            .collect();
        if fresh.is_empty() {
            return Ok(applied);
        }
        let to_apply = || {
            events
                .iter()
                .zip(&applied)
                .filter(|(_, applied)| **applied)
                .flat_map(|((_, activities), _)| activities.iter())
        };
        lock_recipients(&mut tx, to_apply()).await?;
        let activities: Vec<&Activity> = to_apply().collect();
        let changed = if activities.is_empty() {
            Vec::new()
        } else {
            apply_activities(&mut tx, &activities).await?
        };
        let upserted: Vec<_> = activities
            .iter()
            .zip(changed)
            .filter_map(|(activity, changed)| {
                changed.map(|group| {
                    upserted_event(
                        activity.upserted_event_id,
                        activity.at,
                        activity.recipient_id,
                        group,
                    )
                })
            })
            .collect();
        super::events::write_events(&mut tx, &upserted).await?;
        tx.commit().await.context("commit notifications")?;
        if !upserted.is_empty() {
            self.outbox_signal.notify_one();
        }
        Ok(applied)
    }
}

#[async_trait]
impl NotificationStore for PgStore {
    async fn apply_event(
        &self,
        consumer: &str,
        event_id: Id,
        activities: &[Activity],
    ) -> anyhow::Result<bool> {
        let applied = self
            .apply_batch(consumer, &[(event_id, activities)])
            .await?;
        Ok(applied.first().copied().unwrap_or(false))
    }

    /// One transaction for the whole batch (see `apply_batch`).
    async fn apply_events(
        &self,
        consumer: &str,
        events: &[EventActivities],
    ) -> anyhow::Result<Vec<bool>> {
        let events: Vec<(Id, &[Activity])> = events
            .iter()
            .map(|e| (e.event_id, e.activities.as_slice()))
            .collect();
        self.apply_batch(consumer, &events).await
    }

    async fn list_notifications(
        &self,
        recipient: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Notification>> {
        let rows: Vec<NotificationRow> = sqlx::query_as(&list_sql())
            .bind(recipient.0)
            .bind(page.after.map_or(i64::MAX, |a| a.0))
            .bind(page.fetch_limit())
            .fetch_all(&mut *self.gate.acquire().await?)
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
        sqlx::query_scalar(UNREAD_SQL)
            .bind(recipient.0)
            .fetch_one(&mut *self.gate.acquire().await?)
            .await
            .context("count unread notifications")
    }

    async fn mark_read(
        &self,
        recipient: Id,
        only: Option<&[Id]>,
        now: UnixMillis,
    ) -> anyhow::Result<bool> {
        let mut tx = self.gate.begin().await.context("begin mark read")?;
        match only {
            None => {
                sqlx::query(
                    "UPDATE notifications SET read_at = $2 WHERE recipient_id = $1 AND read_at IS NULL",
                )
                .bind(recipient.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("mark all notifications read")?;
            }
            Some(only) => {
                let owned: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM notifications WHERE recipient_id = $1 AND id = ANY($2)",
                )
                .bind(recipient.0)
                .bind(ids(only))
                .fetch_one(&mut *tx)
                .await
                .context("check notification ids")?;
                if usize::try_from(owned).ok() != Some(only.len()) {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE notifications SET read_at = $3 WHERE recipient_id = $1 AND read_at IS NULL \
                     AND id = ANY($2)",
                )
                .bind(recipient.0)
                .bind(ids(only))
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
            "SELECT types, from_whom FROM notification_preferences WHERE user_id = $1",
        )
        .bind(user.0)
        .fetch_optional(&mut *self.gate.acquire().await?)
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
        let mut tx = self.gate.begin().await.context("begin preferences")?;
        sqlx::query(
            "INSERT INTO notification_preferences (user_id, types, from_whom, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
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

/// Plan checks of the notification queries (with `TEST_DATABASE=postgres`): on a table with
/// enough rows, the list, the unread count and a batch's group lookup use their indexes.
#[cfg(test)]
mod plans {
    use sqlx::Row as _;

    use super::{list_sql, FIND_GROUPS_SQL, UNREAD_SQL};
    use crate::postgres::{PgStore, PostgresSettings};

    async fn explain(store: &PgStore, sql: &str, binds: &[i64]) -> String {
        let sql = format!("EXPLAIN {sql}");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(store.pool()).await.expect("explain");
        rows.iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn the_list_and_the_unread_count_use_their_indexes() {
        let Some(url) = crate::postgres::test_database_url("notifplans") else {
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
        // 1,000 recipients with 100 groups each, a third of them unread.
        sqlx::raw_sql(
            "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
               SELECT g, 'user' || g, 'user' || g || '@example.test', 'x', 0, 0 FROM generate_series(1, 1000) g; \
             INSERT INTO notifications (id, recipient_id, kind, target_id, actor_count, recent_actors, \
                                        sort_id, created_at, updated_at, read_at) \
               SELECT g, 1 + g % 1000, 'LIKE', g, 1, '', g, 0, 0, CASE WHEN g % 3 = 0 THEN NULL ELSE 1 END \
               FROM generate_series(1, 100000) g; \
             ANALYZE;",
        )
        .execute(store.pool())
        .await
        .expect("seed");
        let cases = [
            (
                "list, first page",
                explain(&store, &list_sql(), &[42, i64::MAX, 21]).await,
            ),
            (
                "list, deep page",
                explain(&store, &list_sql(), &[42, 50_000, 21]).await,
            ),
            ("unread count", explain(&store, UNREAD_SQL, &[42]).await),
            ("a batch's unread groups", {
                let rows = sqlx::query(&format!("EXPLAIN {FIND_GROUPS_SQL}"))
                    .bind(vec![42_i64, 43, 44])
                    .bind(vec!["LIKE".to_owned(); 3])
                    .bind(vec![42_i64, 1_043, 7])
                    .fetch_all(store.pool())
                    .await
                    .expect("explain");
                rows.iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        ];
        store.close().await;
        PgStore::drop_database(&url).await.expect("drop database");
        for (name, plan) in cases {
            println!("-- {name}\n{plan}\n");
            assert!(
                plan.contains("Index") && !plan.contains("Seq Scan on notifications"),
                "{name} does not use an index:\n{plan}"
            );
        }
    }
}
