//! Accounts and sessions on SQLite.

use crate::error::DbContext as _;
use async_trait::async_trait;
use nova_core::{Id, UnixMillis};
use nova_users::model::{ProfilePatch, User, UserView, Username};
use nova_users::store::{
    InsertUserOutcome, NewSession, NewUser, SessionRecord, SessionStore, UserStore,
};

use super::{ids_json, SqliteStore};
use crate::rows::{is_unique_violation, SessionRow, UserRow, USER_COLUMNS};

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &NewUser) -> anyhow::Result<InsertUserOutcome> {
        let mut tx = self.writer.begin().await.context("begin insert user")?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )
        .bind(user.id.0)
        .bind(user.username.as_str())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e, "username") => {
                return Ok(InsertUserOutcome::UsernameTaken)
            }
            Err(e) if is_unique_violation(&e, "email") => return Ok(InsertUserOutcome::EmailTaken),
            Err(e) => return Err(anyhow::Error::new(e).context("insert user")),
        }
        sqlx::query("INSERT INTO user_stats (user_id) VALUES (?1)")
            .bind(user.id.0)
            .execute(&mut *tx)
            .await
            .context("insert user stats")?;
        tx.commit().await.context("commit insert user")?;
        Ok(InsertUserOutcome::Inserted)
    }

    async fn get_credentials(&self, login: &str) -> anyhow::Result<Option<(Id, String)>> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE username = ?1 OR email = ?1 LIMIT 1",
        )
        .bind(login)
        .fetch_optional(&mut *self.reader.acquire().await?)
        .await
        .context("get credentials")?;
        Ok(row.map(|(id, hash)| (Id(id), hash)))
    }

    async fn get_user_views(&self, ids: &[Id]) -> anyhow::Result<Vec<UserView>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN user_stats s ON s.user_id = u.id \
             WHERE u.id IN (SELECT value FROM json_each(?1))"
        );
        let rows: Vec<UserRow> = sqlx::query_as(&sql)
            .bind(ids_json(ids))
            .fetch_all(&mut *self.reader.acquire().await?)
            .await
            .context("get users")?;
        Ok(rows.into_iter().map(UserView::from).collect())
    }

    async fn get_user_id_by_username(&self, username: &Username) -> anyhow::Result<Option<Id>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = ?1")
            .bind(username.as_str())
            .fetch_optional(&mut *self.reader.acquire().await?)
            .await
            .context("get user by username")?;
        Ok(id.map(Id))
    }

    async fn update_profile(
        &self,
        id: Id,
        patch: &ProfilePatch,
        now: UnixMillis,
    ) -> anyhow::Result<Option<User>> {
        let (set_avatar, avatar) = match &patch.avatar_url {
            None => (false, None),
            Some(value) => (true, value.clone()),
        };
        let updated = sqlx::query(
            "UPDATE users SET display_name = COALESCE(?2, display_name), bio = COALESCE(?3, bio), \
             avatar_url = CASE WHEN ?4 THEN ?5 ELSE avatar_url END, updated_at = ?6 WHERE id = ?1",
        )
        .bind(id.0)
        .bind(patch.display_name.as_deref())
        .bind(patch.bio.as_deref())
        .bind(set_avatar)
        .bind(avatar)
        .bind(now)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .context("update profile")?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(self
            .get_user_views(&[id])
            .await?
            .into_iter()
            .next()
            .map(|v| v.user))
    }
}

async fn insert_session<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    session: &NewSession,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, family_id, user_id, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(session.id.0)
    .bind(session.family_id.0)
    .bind(session.user_id.0)
    .bind(&session.token_hash)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(executor)
    .await
    .context("insert session")?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &NewSession) -> anyhow::Result<()> {
        insert_session(&mut *self.writer.acquire().await?, session).await
    }

    async fn get_session_by_hash(
        &self,
        token_hash: &[u8],
    ) -> anyhow::Result<Option<SessionRecord>> {
        // Read from the writer: a refresh must see the rotation that the previous refresh just committed.
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT id, family_id, user_id, expires_at, rotated_at, revoked_at FROM sessions WHERE token_hash = ?1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *self.writer.acquire().await?)
        .await
        .context("get session")?;
        Ok(row.map(SessionRecord::from))
    }

    async fn rotate_session(
        &self,
        old_id: Id,
        next: &NewSession,
        now: UnixMillis,
    ) -> anyhow::Result<bool> {
        let mut tx = self.writer.begin().await.context("begin rotate session")?;
        let updated = sqlx::query(
            "UPDATE sessions SET rotated_at = ?2 WHERE id = ?1 AND rotated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(old_id.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("mark session rotated")?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        insert_session(&mut *tx, next).await?;
        tx.commit().await.context("commit rotate session")?;
        Ok(true)
    }

    async fn revoke_family(&self, family_id: Id, now: UnixMillis) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        )
        .bind(family_id.0)
        .bind(now)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .context("revoke session family")?;
        Ok(())
    }

    async fn is_family_revoked(&self, family_id: Id) -> anyhow::Result<bool> {
        // The read pool: WAL readers see every committed revocation, and this runs on every
        // authenticated request (behind a short cache), so it must not queue on the writer.
        let revoked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE family_id = ?1 AND revoked_at IS NOT NULL)",
        )
        .bind(family_id.0)
        .fetch_one(&mut *self.reader.acquire().await?)
        .await
        .context("check session family revoked")?;
        Ok(revoked)
    }
}
