//! Posts, versions, likes and feeds on SQLite.

use crate::error::DbContext as _;
use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_posts::model::{Post, PostBody, PostStats, PostVersion};
use nova_posts::store::{InsertPostOutcome, NewPost, PostStore};
use rusqlite::{params, Connection};

use super::{all, execute, ids_json, optional, SqliteStore};
use crate::rows::{PostRow, POST_COLUMNS};

/// `?V` may see post `p` by visibility and blocks (the viewer may be NULL for anonymous reads).
const VISIBLE_TO_V: &str = "(p.visibility = 'PUBLIC' OR p.author_id = ?V \
       OR EXISTS (SELECT 1 FROM follows vf WHERE vf.follower_id = ?V AND vf.followee_id = p.author_id)) \
     AND NOT EXISTS (SELECT 1 FROM blocks vb WHERE (vb.blocker_id = ?V AND vb.blocked_id = p.author_id) \
                                               OR (vb.blocker_id = p.author_id AND vb.blocked_id = ?V))";

fn fetch_post(conn: &Connection, id: Id) -> anyhow::Result<Option<Post>> {
    let sql = format!("SELECT {POST_COLUMNS} FROM posts p WHERE p.id = ?1");
    let row = optional(conn, &sql, [id.0], PostRow::from_sqlite).context("fetch post")?;
    Ok(row.map(Post::from))
}

impl SqliteStore {
    /// Runs a post list: ?1 `first`, ?2 `second`, ?V (as ?3) the viewer, ?4 the fetch limit.
    async fn list_posts(
        &self,
        sql: &str,
        first: i64,
        second: Option<i64>,
        viewer: Option<i64>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Post>> {
        let sql = sql.replace("?V", "?3");
        let rows = self
            .read(|conn| {
                all(
                    conn,
                    &sql,
                    params![first, second, viewer, page.fetch_limit()],
                    PostRow::from_sqlite,
                )
                .context("list posts")
            })
            .await?;
        Ok(Page::from_rows(
            rows.into_iter().map(Post::from).collect(),
            page,
        ))
    }
}

#[async_trait]
impl PostStore for SqliteStore {
    async fn insert_post(
        &self,
        post: &NewPost,
        event: &EventRecord,
    ) -> anyhow::Result<InsertPostOutcome> {
        let post = post.clone();
        let event = event.clone();
        self.write(move |tx| {
            if let Some(key) = &post.idempotency_key {
                let existing: Option<i64> = optional(
                    tx,
                    "SELECT id FROM posts WHERE author_id = ?1 AND idempotency_key = ?2",
                    params![post.author_id.0, key.as_str()],
                    |row| row.get(0),
                )
                .context("look up idempotency key")?;
                if let Some(id) = existing {
                    let found = fetch_post(tx, Id(id))?.context("idempotent post vanished")?;
                    return Ok(InsertPostOutcome::Existing(found));
                }
            }
            execute(
                tx,
                "INSERT INTO posts (id, author_id, body, visibility, reply_to_id, idempotency_key, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    post.id.0,
                    post.author_id.0,
                    post.body.as_str(),
                    post.visibility.as_str(),
                    post.reply_to_id.map(|id| id.0),
                    post.idempotency_key.as_ref().map(|k| k.as_str()),
                    post.created_at
                ],
            )
            .context("insert post")?;
            execute(tx, "INSERT INTO post_stats (post_id) VALUES (?1)", [post.id.0])
                .context("insert post stats")?;
            execute(
                tx,
                "UPDATE user_stats SET post_count = post_count + 1 WHERE user_id = ?1",
                [post.author_id.0],
            )
            .context("count post")?;
            if let Some(parent) = post.reply_to_id {
                execute(
                    tx,
                    "UPDATE post_stats SET reply_count = reply_count + 1 WHERE post_id = ?1",
                    [parent.0],
                )
                .context("count reply")?;
            }
            let created = fetch_post(tx, post.id)?.context("inserted post vanished")?;
            super::events::write_event(tx, &event)?;
            Ok(InsertPostOutcome::Created(created))
        })
        .await
    }

    async fn get_post(&self, id: Id) -> anyhow::Result<Option<Post>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {POST_COLUMNS} FROM posts p WHERE p.id = ?1 AND p.deleted_at IS NULL"
            );
            let row = optional(conn, &sql, [id.0], PostRow::from_sqlite).context("get post")?;
            Ok(row.map(Post::from))
        })
        .await
    }

    async fn update_post_body(
        &self,
        id: Id,
        body: &PostBody,
        now: UnixMillis,
    ) -> anyhow::Result<Option<Post>> {
        let body = body.clone();
        self.write(move |tx| {
            // The version row keeps the body being replaced, stamped with when that body was written.
            let saved = execute(
                tx,
                "INSERT INTO post_versions (post_id, version, body, created_at) \
                 SELECT p.id, (SELECT COUNT(*) FROM post_versions v WHERE v.post_id = p.id) + 1, p.body, \
                        COALESCE(p.edited_at, p.created_at) \
                 FROM posts p WHERE p.id = ?1 AND p.deleted_at IS NULL",
                [id.0],
            )
            .context("save post version")?;
            if saved == 0 {
                return Ok(None);
            }
            execute(
                tx,
                "UPDATE posts SET body = ?2, edited_at = ?3 WHERE id = ?1",
                params![id.0, body.as_str(), now],
            )
            .context("update post body")?;
            fetch_post(tx, id)
        })
        .await
    }

    async fn delete_post(&self, id: Id, now: UnixMillis) -> anyhow::Result<bool> {
        self.write(move |tx| {
            let deleted: Option<(i64, Option<i64>)> = optional(
                tx,
                "UPDATE posts SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL RETURNING author_id, reply_to_id",
                params![id.0, now],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .context("soft delete post")?;
            let Some((author_id, reply_to_id)) = deleted else {
                return Ok(false);
            };
            execute(
                tx,
                "UPDATE user_stats SET post_count = post_count - 1 WHERE user_id = ?1",
                [author_id],
            )
            .context("uncount post")?;
            if let Some(parent) = reply_to_id {
                execute(
                    tx,
                    "UPDATE post_stats SET reply_count = reply_count - 1 WHERE post_id = ?1",
                    [parent],
                )
                .context("uncount reply")?;
            }
            Ok(true)
        })
        .await
    }

    async fn put_like(
        &self,
        post_id: Id,
        user_id: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let event = event.clone();
        self.write(move |tx| {
            let inserted = execute(
                tx,
                "INSERT INTO likes (post_id, user_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![post_id.0, user_id.0, now],
            )
            .context("insert like")?;
            if inserted == 0 {
                return Ok(false);
            }
            execute(
                tx,
                "UPDATE post_stats SET like_count = like_count + 1 WHERE post_id = ?1",
                [post_id.0],
            )
            .context("count like")?;
            super::events::write_event(tx, &event)?;
            Ok(true)
        })
        .await
    }

    async fn delete_like(&self, post_id: Id, user_id: Id) -> anyhow::Result<bool> {
        self.write(move |tx| {
            let deleted = execute(
                tx,
                "DELETE FROM likes WHERE post_id = ?1 AND user_id = ?2",
                params![post_id.0, user_id.0],
            )
            .context("delete like")?;
            if deleted == 0 {
                return Ok(false);
            }
            execute(
                tx,
                "UPDATE post_stats SET like_count = like_count - 1 WHERE post_id = ?1",
                [post_id.0],
            )
            .context("uncount like")?;
            Ok(true)
        })
        .await
    }

    async fn get_stats(
        &self,
        post_ids: &[Id],
        viewer: Option<Id>,
    ) -> anyhow::Result<Vec<(Id, PostStats)>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        let json = ids_json(post_ids);
        self.read(|conn| {
            all(
                conn,
                "SELECT s.post_id, s.like_count, s.reply_count, \
                   EXISTS (SELECT 1 FROM likes l WHERE l.post_id = s.post_id AND l.user_id = ?2) \
                 FROM post_stats s WHERE s.post_id IN (SELECT value FROM json_each(?1))",
                params![json, viewer.map(|v| v.0)],
                |row| {
                    Ok((
                        Id(row.get(0)?),
                        PostStats {
                            like_count: row.get(1)?,
                            reply_count: row.get(2)?,
                            viewer_has_liked: row.get(3)?,
                        },
                    ))
                },
            )
            .context("get post stats")
        })
        .await
    }

    async fn list_home_feed(&self, viewer: Id, page: &PageRequest) -> anyhow::Result<Page<Post>> {
        // Every author here is the viewer or someone they follow, and a block removes follows in
        // both directions, so visibility and blocks need no check. The ids are picked first from
        // the author index and only the page's rows are read afterwards.
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts p WHERE p.id IN ( \
               SELECT c.id FROM posts c \
               WHERE c.author_id IN (SELECT followee_id FROM follows WHERE follower_id = ?1 UNION ALL SELECT ?1) \
                 AND c.deleted_at IS NULL AND c.id < COALESCE(?2, 9223372036854775807) \
                 AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = ?V AND m.muted_id = c.author_id) \
               ORDER BY c.id DESC LIMIT ?4) \
             ORDER BY p.id DESC"
        );
        self.list_posts(
            &sql,
            viewer.0,
            page.after.map(|a| a.0),
            Some(viewer.0),
            page,
        )
        .await
    }

    async fn list_author_posts(
        &self,
        author: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Post>> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts p \
             WHERE p.author_id = ?1 AND p.deleted_at IS NULL AND p.id < COALESCE(?2, 9223372036854775807) AND {VISIBLE_TO_V} \
             ORDER BY p.id DESC LIMIT ?4"
        );
        self.list_posts(
            &sql,
            author.0,
            page.after.map(|a| a.0),
            viewer.map(|v| v.0),
            page,
        )
        .await
    }

    async fn list_replies(
        &self,
        parent: Id,
        viewer: Option<Id>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Post>> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts p \
             WHERE p.reply_to_id = ?1 AND p.deleted_at IS NULL AND p.id > COALESCE(?2, 0) AND {VISIBLE_TO_V} \
             ORDER BY p.id ASC LIMIT ?4"
        );
        self.list_posts(
            &sql,
            parent.0,
            page.after.map(|a| a.0),
            viewer.map(|v| v.0),
            page,
        )
        .await
    }

    async fn list_versions(
        &self,
        post_id: Id,
        page: &PageRequest,
    ) -> anyhow::Result<Page<PostVersion>> {
        let versions = self
            .read(|conn| {
                all(
                    conn,
                    "SELECT version, body, created_at FROM post_versions WHERE post_id = ?1 AND version < COALESCE(?2, 9223372036854775807) \
                     ORDER BY version DESC LIMIT ?3",
                    params![post_id.0, page.after.map(|a| a.0), page.fetch_limit()],
                    |row| {
                        Ok(PostVersion {
                            post_id,
                            version: row.get(0)?,
                            body: row.get(1)?,
                            created_at: row.get(2)?,
                        })
                    },
                )
                .context("list post versions")
            })
            .await?;
        Ok(Page::from_rows(versions, page))
    }
}
