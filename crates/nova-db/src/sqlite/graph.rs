//! Follows, blocks and mutes on SQLite.

use crate::error::DbContext as _;
use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_users::model::{FollowEdge, Relationship, UserView};
use nova_users::store::GraphStore;
use rusqlite::{params, Connection};

use super::{all, execute, ids_json, SqliteStore};
use crate::rows::{EdgeRow, USER_COLUMNS};

/// Moves both follow counters of one edge by `delta`.
fn bump_follow_counters(
    conn: &Connection,
    follower: Id,
    followee: Id,
    delta: i64,
) -> anyhow::Result<()> {
    execute(
        conn,
        "UPDATE user_stats SET following_count = following_count + ?2 WHERE user_id = ?1",
        params![follower.0, delta],
    )
    .context("update following count")?;
    execute(
        conn,
        "UPDATE user_stats SET follower_count = follower_count + ?2 WHERE user_id = ?1",
        params![followee.0, delta],
    )
    .context("update follower count")?;
    Ok(())
}

fn remove_follow(conn: &Connection, follower: Id, followee: Id) -> anyhow::Result<bool> {
    let deleted = execute(
        conn,
        "DELETE FROM follows WHERE follower_id = ?1 AND followee_id = ?2",
        params![follower.0, followee.0],
    )
    .context("delete follow")?;
    if deleted == 0 {
        return Ok(false);
    }
    bump_follow_counters(conn, follower, followee, -1)?;
    Ok(true)
}

impl SqliteStore {
    async fn list_edges(
        &self,
        join_column: &str,
        filter_column: &str,
        user: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<FollowEdge>> {
        let sql = format!(
            "SELECT f.id AS edge_id, {USER_COLUMNS} FROM follows f \
             JOIN users u ON u.id = f.{join_column} LEFT JOIN user_stats s ON s.user_id = u.id \
             WHERE f.{filter_column} = ?1 AND f.id < COALESCE(?2, 9223372036854775807) \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = ?3 AND b.blocked_id = u.id) \
                                                   OR (b.blocker_id = u.id AND b.blocked_id = ?3)) \
             ORDER BY f.id DESC LIMIT ?4"
        );
        let rows = self
            .read(|conn| {
                all(
                    conn,
                    &sql,
                    params![
                        user.0,
                        page.after.map(|a| a.0),
                        viewer.map(|v| v.0),
                        page.fetch_limit()
                    ],
                    EdgeRow::from_sqlite,
                )
                .context("list follow edges")
            })
            .await?;
        let edges = rows
            .into_iter()
            .map(|row| FollowEdge {
                edge_id: Id(row.edge_id),
                user: UserView::from(row.user),
            })
            .collect();
        Ok(Page::from_rows(edges, page))
    }
}

#[async_trait]
impl GraphStore for SqliteStore {
    async fn put_follow(
        &self,
        edge_id: Id,
        follower: Id,
        followee: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let event = event.clone();
        self.write(move |tx| {
            let inserted = execute(
                tx,
                "INSERT INTO follows (follower_id, followee_id, id, created_at) \
                 SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2) \
                                                                           OR (blocker_id = ?2 AND blocked_id = ?1)) \
                 ON CONFLICT DO NOTHING",
                params![follower.0, followee.0, edge_id.0, now],
            )
            .context("insert follow")?;
            if inserted == 0 {
                return Ok(false);
            }
            bump_follow_counters(tx, follower, followee, 1)?;
            super::events::write_event(tx, &event)?;
            Ok(true)
        })
        .await
    }

    async fn delete_follow(&self, follower: Id, followee: Id) -> anyhow::Result<bool> {
        self.write(move |tx| remove_follow(tx, follower, followee))
            .await
    }

    async fn put_block(&self, blocker: Id, blocked: Id, now: UnixMillis) -> anyhow::Result<bool> {
        self.write(move |tx| {
            let inserted = execute(
                tx,
                "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![blocker.0, blocked.0, now],
            )
            .context("insert block")?;
            remove_follow(tx, blocker, blocked)?;
            remove_follow(tx, blocked, blocker)?;
            Ok(inserted > 0)
        })
        .await
    }

    async fn delete_block(&self, blocker: Id, blocked: Id) -> anyhow::Result<bool> {
        let deleted = self
            .write(move |tx| {
                execute(
                    tx,
                    "DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2",
                    params![blocker.0, blocked.0],
                )
                .context("delete block")
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn put_mute(&self, muter: Id, muted: Id, now: UnixMillis) -> anyhow::Result<bool> {
        let inserted = self
            .write(move |tx| {
                execute(
                    tx,
                    "INSERT INTO mutes (muter_id, muted_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![muter.0, muted.0, now],
                )
                .context("insert mute")
            })
            .await?;
        Ok(inserted > 0)
    }

    async fn delete_mute(&self, muter: Id, muted: Id) -> anyhow::Result<bool> {
        let deleted = self
            .write(move |tx| {
                execute(
                    tx,
                    "DELETE FROM mutes WHERE muter_id = ?1 AND muted_id = ?2",
                    params![muter.0, muted.0],
                )
                .context("delete mute")
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn feed_audience(&self, author: Id, candidates: &[Id]) -> anyhow::Result<Vec<Id>> {
        let json = ids_json(candidates);
        self.read(|conn| {
            all(
                conn,
                "SELECT c.value FROM json_each(?2) AS c \
                 WHERE c.value = ?1 OR (EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = c.value AND f.followee_id = ?1) \
                   AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = c.value AND m.muted_id = ?1) \
                   AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = c.value AND b.blocked_id = ?1) \
                                                          OR (b.blocker_id = ?1 AND b.blocked_id = c.value)))",
                params![author.0, json],
                |row| row.get(0).map(Id),
            )
            .context("feed audience")
        })
        .await
    }

    async fn get_relationships(
        &self,
        viewer: Id,
        others: &[Id],
    ) -> anyhow::Result<Vec<Relationship>> {
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let json = ids_json(others);
        let rows: Vec<(i64, Relationship)> = self
            .read(|conn| {
                all(
                    conn,
                    "SELECT o.value, \
                       EXISTS (SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = o.value), \
                       EXISTS (SELECT 1 FROM follows WHERE follower_id = o.value AND followee_id = ?1), \
                       EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = o.value), \
                       EXISTS (SELECT 1 FROM blocks WHERE blocker_id = o.value AND blocked_id = ?1), \
                       EXISTS (SELECT 1 FROM mutes WHERE muter_id = ?1 AND muted_id = o.value) \
                     FROM json_each(?2) o",
                    params![viewer.0, json],
                    |row| {
                        Ok((
                            row.get(0)?,
                            Relationship {
                                viewer_follows: row.get(1)?,
                                follows_viewer: row.get(2)?,
                                viewer_blocks: row.get(3)?,
                                blocks_viewer: row.get(4)?,
                                viewer_mutes: row.get(5)?,
                            },
                        ))
                    },
                )
                .context("get relationships")
            })
            .await?;
        let by_id: std::collections::HashMap<i64, Relationship> = rows.into_iter().collect();
        Ok(others
            .iter()
            .map(|id| by_id.get(&id.0).copied().unwrap_or_default())
            .collect())
    }

    async fn list_followers(
        &self,
        user: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<FollowEdge>> {
        self.list_edges("follower_id", "followee_id", user, viewer, page)
            .await
    }

    async fn list_following(
        &self,
        user: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<FollowEdge>> {
        self.list_edges("followee_id", "follower_id", user, viewer, page)
            .await
    }
}
