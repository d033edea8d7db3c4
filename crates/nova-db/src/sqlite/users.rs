//! Accounts and sessions on SQLite.

use crate::error::DbContext as _;
use async_trait::async_trait;
use nova_core::{Id, UnixMillis};
use nova_users::model::{ProfilePatch, User, UserView, Username};
use nova_users::store::{
    InsertUserOutcome, NewSession, NewUser, SessionRecord, SessionStore, UserStore,
};
use rusqlite::{params, Connection};

use super::{all, execute, ids_json, one, optional, SqliteStore};
use crate::rows::{is_sqlite_unique_violation, SessionRow, UserRow, SESSION_COLUMNS, USER_COLUMNS};

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &NewUser) -> anyhow::Result<InsertUserOutcome> {
        let user = user.clone();
        self.write(move |tx| {
            let inserted = execute(
                tx,
                "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    user.id.0,
                    user.username.as_str(),
                    user.email.as_str(),
                    user.password_hash,
                    user.created_at
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(e) if is_sqlite_unique_violation(&e, "username") => {
                    return Ok(InsertUserOutcome::UsernameTaken)
                }
                Err(e) if is_sqlite_unique_violation(&e, "email") => {
                    return Ok(InsertUserOutcome::EmailTaken)
                }
                Err(e) => return Err(e).context("insert user"),
            }
            execute(tx, "INSERT INTO user_stats (user_id) VALUES (?1)", [user.id.0])
                .context("insert user stats")?;
            Ok(InsertUserOutcome::Inserted)
        })
        .await
    }

    async fn get_credentials(&self, login: &str) -> anyhow::Result<Option<(Id, String)>> {
        self.read(|conn| {
            optional(
                conn,
                "SELECT id, password_hash FROM users WHERE username = ?1 OR email = ?1 LIMIT 1",
                [login],
                |row| Ok((Id(row.get(0)?), row.get(1)?)),
            )
            .context("get credentials")
        })
        .await
    }

    async fn get_user_views(&self, ids: &[Id]) -> anyhow::Result<Vec<UserView>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let json = ids_json(ids);
        self.read(|conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users u LEFT JOIN user_stats s ON s.user_id = u.id \
                 WHERE u.id IN (SELECT value FROM json_each(?1))"
            );
            let rows = all(conn, &sql, [json], UserRow::from_sqlite).context("get users")?;
            Ok(rows.into_iter().map(UserView::from).collect())
        })
        .await
    }

    async fn get_user_id_by_username(&self, username: &Username) -> anyhow::Result<Option<Id>> {
        self.read(|conn| {
            optional(
                conn,
                "SELECT id FROM users WHERE username = ?1",
                [username.as_str()],
                |row| row.get(0).map(Id),
            )
            .context("get user by username")
        })
        .await
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
        let display_name = patch.display_name.clone();
        let bio = patch.bio.clone();
        let updated = self
            .write(move |tx| {
                execute(
                    tx,
                    "UPDATE users SET display_name = COALESCE(?2, display_name), bio = COALESCE(?3, bio), \
                     avatar_url = CASE WHEN ?4 THEN ?5 ELSE avatar_url END, updated_at = ?6 WHERE id = ?1",
                    params![id.0, display_name, bio, set_avatar, avatar, now],
                )
                .context("update profile")
            })
            .await?;
        if updated == 0 {
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

fn insert_session(conn: &Connection, session: &NewSession) -> anyhow::Result<()> {
    execute(
        conn,
        "INSERT INTO sessions (id, family_id, user_id, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            session.id.0,
            session.family_id.0,
            session.user_id.0,
            session.token_hash,
            session.created_at,
            session.expires_at
        ],
    )
    .context("insert session")?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &NewSession) -> anyhow::Result<()> {
        let session = session.clone();
        self.write(move |tx| insert_session(tx, &session)).await
    }

    async fn get_session_by_hash(
        &self,
        token_hash: &[u8],
    ) -> anyhow::Result<Option<SessionRecord>> {
        // Read through the writer: a refresh must see the rotation that the previous refresh
        // just committed, in the order the writer applied them.
        let token_hash = token_hash.to_vec();
        self.write(move |tx| {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1");
            let row =
                optional(tx, &sql, [token_hash], SessionRow::from_sqlite).context("get session")?;
            Ok(row.map(SessionRecord::from))
        })
        .await
    }

    async fn rotate_session(
        &self,
        old_id: Id,
        next: &NewSession,
        now: UnixMillis,
    ) -> anyhow::Result<bool> {
        let next = next.clone();
        self.write(move |tx| {
            let updated = execute(
                tx,
                "UPDATE sessions SET rotated_at = ?2 WHERE id = ?1 AND rotated_at IS NULL AND revoked_at IS NULL",
                params![old_id.0, now],
            )
            .context("mark session rotated")?;
            if updated == 0 {
                return Ok(false);
            }
            insert_session(tx, &next)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_family(&self, family_id: Id, now: UnixMillis) -> anyhow::Result<()> {
        self.write(move |tx| {
            execute(
                tx,
                "UPDATE sessions SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
                params![family_id.0, now],
            )
            .context("revoke session family")?;
            Ok(())
        })
        .await
    }

    async fn is_family_revoked(&self, family_id: Id) -> anyhow::Result<bool> {
        // The read pool: WAL readers see every committed revocation, and this runs on every
        // authenticated request (behind a short cache), so it must not queue on the writer.
        self.read(|conn| {
            one(
                conn,
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE family_id = ?1 AND revoked_at IS NOT NULL)",
                [family_id.0],
                |row| row.get(0),
            )
            .context("check session family revoked")
        })
        .await
    }
}
