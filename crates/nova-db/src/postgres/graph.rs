//! Follows, blocks and mutes on Postgres.

use crate::error::DbContext as _;
use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_users::model::{FollowEdge, Relationship, UserView};
use nova_users::store::GraphStore;

use super::{ids, lock_pair, PgStore};
use crate::rows::{EdgeRow, USER_COLUMNS};

/// Moves both follow counters of one edge by `delta`.
async fn bump_follow_counters(
    conn: &mut sqlx::PgConnection,
    follower: Id,
    followee: Id,
    delta: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE user_stats SET following_count = following_count + CASE WHEN user_id = $1 THEN $3 ELSE 0 END, \
                               follower_count = follower_count + CASE WHEN user_id = $2 THEN $3 ELSE 0 END \
         WHERE user_id IN ($1, $2)",
    )
    .bind(follower.0)
    .bind(followee.0)
    .bind(delta)
    .execute(conn)
    .await
    .context("update follow counters")?;
    Ok(())
}

async fn remove_follow(
    conn: &mut sqlx::PgConnection,
    follower: Id,
    followee: Id,
) -> anyhow::Result<bool> {
    let deleted = sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
        .bind(follower.0)
        .bind(followee.0)
        .execute(&mut *conn)
        .await
        .context("delete follow")?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    bump_follow_counters(conn, follower, followee, -1).await?;
    Ok(true)
}

impl PgStore {
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
             WHERE f.{filter_column} = $1 AND f.id < COALESCE($2, 9223372036854775807) \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $3 AND b.blocked_id = u.id) \
                                                   OR (b.blocker_id = u.id AND b.blocked_id = $3)) \
             ORDER BY f.id DESC LIMIT $4"
        );
        let rows: Vec<EdgeRow> = sqlx::query_as(&sql)
            .bind(user.0)
            .bind(page.after.map(|a| a.0))
            .bind(viewer.map(|v| v.0))
            .bind(page.fetch_limit())
            .fetch_all(&mut *self.gate.acquire().await?)
            .await
            .context("list follow edges")?;
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
impl GraphStore for PgStore {
    async fn put_follow(
        &self,
        edge_id: Id,
        follower: Id,
        followee: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let mut tx = self.gate.begin().await.context("begin follow")?;
        lock_pair(&mut tx, follower, followee).await?;
        let inserted = sqlx::query(
            "INSERT INTO follows (follower_id, followee_id, id, created_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2) \
                                                                       OR (blocker_id = $2 AND blocked_id = $1)) \
             ON CONFLICT DO NOTHING",
        )
        .bind(follower.0)
        .bind(followee.0)
        .bind(edge_id.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("insert follow")?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        bump_follow_counters(&mut tx, follower, followee, 1).await?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit follow")?;
        self.outbox_signal.notify_one();
        Ok(true)
    }

    async fn delete_follow(&self, follower: Id, followee: Id) -> anyhow::Result<bool> {
        let mut tx = self.gate.begin().await.context("begin unfollow")?;
        let removed = remove_follow(&mut tx, follower, followee).await?;
        tx.commit().await.context("commit unfollow")?;
        Ok(removed)
    }

    async fn put_block(&self, blocker: Id, blocked: Id, now: UnixMillis) -> anyhow::Result<bool> {
        let mut tx = self.gate.begin().await.context("begin block")?;
        lock_pair(&mut tx, blocker, blocked).await?;
        let inserted = sqlx::query("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(blocker.0)
            .bind(blocked.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("insert block")?;
        remove_follow(&mut tx, blocker, blocked).await?;
        remove_follow(&mut tx, blocked, blocker).await?;
        tx.commit().await.context("commit block")?;
        Ok(inserted.rows_affected() > 0)
    }

    async fn delete_block(&self, blocker: Id, blocked: Id) -> anyhow::Result<bool> {
        let deleted = sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
            .bind(blocker.0)
            .bind(blocked.0)
            .execute(&mut *self.gate.acquire().await?)
            .await
            .context("delete block")?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn put_mute(&self, muter: Id, muted: Id, now: UnixMillis) -> anyhow::Result<bool> {
        let inserted = sqlx::query("INSERT INTO mutes (muter_id, muted_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(muter.0)
            .bind(muted.0)
            .bind(now)
            .execute(&mut *self.gate.acquire().await?)
            .await
            .context("insert mute")?;
        Ok(inserted.rows_affected() > 0)
    }

    async fn delete_mute(&self, muter: Id, muted: Id) -> anyhow::Result<bool> {
        let deleted = sqlx::query("DELETE FROM mutes WHERE muter_id = $1 AND muted_id = $2")
            .bind(muter.0)
            .bind(muted.0)
            .execute(&mut *self.gate.acquire().await?)
            .await
            .context("delete mute")?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn feed_audience(&self, author: Id, candidates: &[Id]) -> anyhow::Result<Vec<Id>> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT c.id FROM unnest($2::bigint[]) AS c(id) \
             WHERE c.id = $1 OR (EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = c.id AND f.followee_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = c.id AND m.muted_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = c.id AND b.blocked_id = $1) \
                                                      OR (b.blocker_id = $1 AND b.blocked_id = c.id)))",
        )
        .bind(author.0)
        .bind(ids(candidates))
        .fetch_all(&mut *self.gate.acquire().await?)
        .await
        .context("feed audience")?;
        Ok(rows.into_iter().map(Id).collect())
    }

    async fn get_relationships(
        &self,
        viewer: Id,
        others: &[Id],
    ) -> anyhow::Result<Vec<Relationship>> {
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, bool, bool, bool, bool, bool)> = sqlx::query_as(
            "SELECT o.id, \
               EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = o.id), \
               EXISTS (SELECT 1 FROM follows WHERE follower_id = o.id AND followee_id = $1), \
               EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = o.id), \
               EXISTS (SELECT 1 FROM blocks WHERE blocker_id = o.id AND blocked_id = $1), \
               EXISTS (SELECT 1 FROM mutes WHERE muter_id = $1 AND muted_id = o.id) \
             FROM unnest($2::bigint[]) AS o(id)",
        )
        .bind(viewer.0)
        .bind(ids(others))
        .fetch_all(&mut *self.gate.acquire().await?)
        .await
        .context("get relationships")?;
        let by_id: std::collections::HashMap<i64, Relationship> = rows
            .into_iter()
            .map(
                |(
                    id,
                    viewer_follows,
                    follows_viewer,
                    viewer_blocks,
                    blocks_viewer,
                    viewer_mutes,
                )| {
                    (
                        id,
                        Relationship {
                            viewer_follows,
                            follows_viewer,
                            viewer_blocks,
                            blocks_viewer,
                            viewer_mutes,
                        },
                    )
                },
            )
            .collect();
        Ok(others
            .iter()
            .map(|id| by_id.get(&id.0).copied().unwrap_or_default())
            .collect())
    }

    /// One query for all pairs: `unnest ... WITH ORDINALITY` keeps the callers' order (and
    /// repeated pairs), each flag an index probe on the edge tables' primary keys.
    async fn get_relationship_pairs(
        &self,
        pairs: &[(Id, Id)],
    ) -> anyhow::Result<Vec<Relationship>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let viewers: Vec<i64> = pairs.iter().map(|(v, _)| v.0).collect();
        let others: Vec<i64> = pairs.iter().map(|(_, o)| o.0).collect();
        let rows: Vec<(bool, bool, bool, bool, bool)> = sqlx::query_as(
            "SELECT \
               EXISTS (SELECT 1 FROM follows WHERE follower_id = p.v AND followee_id = p.o), \
               EXISTS (SELECT 1 FROM follows WHERE follower_id = p.o AND followee_id = p.v), \
               EXISTS (SELECT 1 FROM blocks WHERE blocker_id = p.v AND blocked_id = p.o), \
               EXISTS (SELECT 1 FROM blocks WHERE blocker_id = p.o AND blocked_id = p.v), \
               EXISTS (SELECT 1 FROM mutes WHERE muter_id = p.v AND muted_id = p.o) \
             FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS p(v, o, n) \
             ORDER BY p.n",
        )
        .bind(&viewers)
        .bind(&others)
        .fetch_all(&mut *self.gate.acquire().await?)
        .await
        .context("get relationship pairs")?;
        anyhow::ensure!(
            rows.len() == pairs.len(),
            "relationship pairs: {} rows for {} pairs",
            rows.len(),
            pairs.len()
        );
        Ok(rows
            .into_iter()
            .map(
                |(viewer_follows, follows_viewer, viewer_blocks, blocks_viewer, viewer_mutes)| {
                    Relationship {
                        viewer_follows,
                        follows_viewer,
                        viewer_blocks,
                        blocks_viewer,
                        viewer_mutes,
                    }
                },
            )
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
