//! Posts, versions, likes and feeds on SQLite.

use crate::error::DbContext as _;
use async_trait::async_trait;
use nova_core::{Id, Page, PageRequest, UnixMillis};
use nova_events::EventRecord;
use nova_posts::model::{Post, PostBody, PostStats, PostVersion};
use nova_posts::store::{InsertPostOutcome, NewPost, PostStore};

use super::{ids_json, SqliteStore};
use crate::rows::{PostRow, POST_COLUMNS};

/// `?V` may see post `p` by visibility and blocks (the viewer may be NULL for anonymous reads).
const VISIBLE_TO_V: &str = "(p.visibility = 'PUBLIC' OR p.author_id = ?V \
       OR EXISTS (SELECT 1 FROM follows vf WHERE vf.follower_id = ?V AND vf.followee_id = p.author_id)) \
     AND NOT EXISTS (SELECT 1 FROM blocks vb WHERE (vb.blocker_id = ?V AND vb.blocked_id = p.author_id) \
                                               OR (vb.blocker_id = p.author_id AND vb.blocked_id = ?V))";

async fn fetch_post(conn: &mut sqlx::SqliteConnection, id: Id) -> anyhow::Result<Option<Post>> {
    let row: Option<PostRow> = sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts p WHERE p.id = ?1"
    ))
    .bind(id.0)
    .fetch_optional(conn)
    .await
    .context("fetch post")?;
    Ok(row.map(Post::from))
}

impl SqliteStore {
    async fn list_posts(
        &self,
        sql: &str,
        first: i64,
        second: Option<i64>,
        viewer: Option<i64>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Post>> {
        let rows: Vec<PostRow> = sqlx::query_as(&sql.replace("?V", "?3"))
            .bind(first)
            .bind(second)
            .bind(viewer)
            .bind(page.fetch_limit())
            .fetch_all(&mut *self.reader.acquire().await?)
            .await
            .context("list posts")?;
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
        let mut tx = self.writer.begin().await.context("begin insert post")?;
        if let Some(key) = &post.idempotency_key {
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM posts WHERE author_id = ?1 AND idempotency_key = ?2",
            )
            .bind(post.author_id.0)
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("look up idempotency key")?;
            if let Some(id) = existing {
                let found = fetch_post(&mut tx, Id(id))
                    .await?
                    .context("idempotent post vanished")?;
                return Ok(InsertPostOutcome::Existing(found));
            }
        }
        sqlx::query(
            "INSERT INTO posts (id, author_id, body, visibility, reply_to_id, idempotency_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(post.id.0)
        .bind(post.author_id.0)
        .bind(post.body.as_str())
        .bind(post.visibility.as_str())
        .bind(post.reply_to_id.map(|id| id.0))
        .bind(post.idempotency_key.as_ref().map(|k| k.as_str()))
        .bind(post.created_at)
        .execute(&mut *tx)
        .await
        .context("insert post")?;
        sqlx::query("INSERT INTO post_stats (post_id) VALUES (?1)")
            .bind(post.id.0)
            .execute(&mut *tx)
            .await
            .context("insert post stats")?;
        sqlx::query("UPDATE user_stats SET post_count = post_count + 1 WHERE user_id = ?1")
            .bind(post.author_id.0)
            .execute(&mut *tx)
            .await
            .context("count post")?;
        if let Some(parent) = post.reply_to_id {
            sqlx::query("UPDATE post_stats SET reply_count = reply_count + 1 WHERE post_id = ?1")
                .bind(parent.0)
                .execute(&mut *tx)
                .await
                .context("count reply")?;
        }
        let created = fetch_post(&mut tx, post.id)
            .await?
            .context("inserted post vanished")?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit insert post")?;
        self.outbox_signal.notify_one();
        Ok(InsertPostOutcome::Created(created))
    }

    async fn get_post(&self, id: Id) -> anyhow::Result<Option<Post>> {
        let row: Option<PostRow> = sqlx::query_as(&format!(
            "SELECT {POST_COLUMNS} FROM posts p WHERE p.id = ?1 AND p.deleted_at IS NULL"
        ))
        .bind(id.0)
        .fetch_optional(&mut *self.reader.acquire().await?)
        .await
        .context("get post")?;
        Ok(row.map(Post::from))
    }

    async fn update_post_body(
        &self,
        id: Id,
        body: &PostBody,
        now: UnixMillis,
    ) -> anyhow::Result<Option<Post>> {
        let mut tx = self.writer.begin().await.context("begin edit post")?;
        // The version row keeps the body being replaced, stamped with when that body was written.
        let saved = sqlx::query(
            "INSERT INTO post_versions (post_id, version, body, created_at) \
             SELECT p.id, (SELECT COUNT(*) FROM post_versions v WHERE v.post_id = p.id) + 1, p.body, \
                    COALESCE(p.edited_at, p.created_at) \
             FROM posts p WHERE p.id = ?1 AND p.deleted_at IS NULL",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .context("save post version")?;
        if saved.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("UPDATE posts SET body = ?2, edited_at = ?3 WHERE id = ?1")
            .bind(id.0)
            .bind(body.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("update post body")?;
        let post = fetch_post(&mut tx, id).await?;
        tx.commit().await.context("commit edit post")?;
        Ok(post)
    }

    async fn delete_post(&self, id: Id, now: UnixMillis) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin delete post")?;
        let deleted: Option<(i64, Option<i64>)> = sqlx::query_as(
            "UPDATE posts SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL RETURNING author_id, reply_to_id",
        )
        .bind(id.0)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context("soft delete post")?;
        let Some((author_id, reply_to_id)) = deleted else {
            return Ok(false);
        };
        sqlx::query("UPDATE user_stats SET post_count = post_count - 1 WHERE user_id = ?1")
            .bind(author_id)
            .execute(&mut *tx)
            .await
            .context("uncount post")?;
        if let Some(parent) = reply_to_id {
            sqlx::query("UPDATE post_stats SET reply_count = reply_count - 1 WHERE post_id = ?1")
                .bind(parent)
                .execute(&mut *tx)
                .await
                .context("uncount reply")?;
        }
        tx.commit().await.context("commit delete post")?;
        Ok(true)
    }

    async fn put_like(
        &self,
        post_id: Id,
        user_id: Id,
        now: UnixMillis,
        event: &EventRecord,
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin like")?;
        let inserted = sqlx::query("INSERT INTO likes (post_id, user_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
            .bind(post_id.0)
            .bind(user_id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("insert like")?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE post_stats SET like_count = like_count + 1 WHERE post_id = ?1")
            .bind(post_id.0)
            .execute(&mut *tx)
            .await
            .context("count like")?;
        super::events::write_event(&mut tx, event).await?;
        tx.commit().await.context("commit like")?;
        self.outbox_signal.notify_one();
        Ok(true)
    }

    async fn delete_like(&self, post_id: Id, user_id: Id) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin unlike")?;
        let deleted = sqlx::query("DELETE FROM likes WHERE post_id = ?1 AND user_id = ?2")
            .bind(post_id.0)
            .bind(user_id.0)
            .execute(&mut *tx)
            .await
            .context("delete like")?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE post_stats SET like_count = like_count - 1 WHERE post_id = ?1")
            .bind(post_id.0)
            .execute(&mut *tx)
            .await
            .context("uncount like")?;
        tx.commit().await.context("commit unlike")?;
        Ok(true)
    }

    async fn get_stats(
        &self,
        post_ids: &[Id],
        viewer: Option<Id>,
    ) -> anyhow::Result<Vec<(Id, PostStats)>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64, i64, bool)> = sqlx::query_as(
            "SELECT s.post_id, s.like_count, s.reply_count, \
               EXISTS (SELECT 1 FROM likes l WHERE l.post_id = s.post_id AND l.user_id = ?2) \
             FROM post_stats s WHERE s.post_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(ids_json(post_ids))
        .bind(viewer.map(|v| v.0))
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("get post stats")?;
        Ok(rows
            .into_iter()
            .map(|(id, like_count, reply_count, viewer_has_liked)| {
                (
                    Id(id),
                    PostStats {
                        like_count,
                        reply_count,
                        viewer_has_liked,
                    },
                )
            })
            .collect())
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
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, body, created_at FROM post_versions WHERE post_id = ?1 AND version < COALESCE(?2, 9223372036854775807) \
             ORDER BY version DESC LIMIT ?3",
        )
        .bind(post_id.0)
        .bind(page.after.map(|a| a.0))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self.reader.acquire().await?)
        .await
        .context("list post versions")?;
        let versions = rows
            .into_iter()
            .map(|(version, body, created_at)| PostVersion {
                post_id,
                version,
                body,
                created_at,
            })
            .collect();
        Ok(Page::from_rows(versions, page))
    }
}
