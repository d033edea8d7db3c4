//! The accounts service: registration, sign-in, token refresh and sign-out, authentication of
//! access tokens (signature, claims and revocation), profiles.
//!
//! Revocation: an access token names its session family (`sid`); once the family is revoked
//! (sign-out, refresh-token reuse) the token is refused. The check reads the sessions table
//! behind a small in-process cache whose entries live `revocation_check_ttl` (a few seconds):
//! a revocation made on this node is seen at once, one made on another node sharing the
//! database within that TTL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nova_core::{now_millis, Id, IdGenerator, Viewer};

use crate::auth::{
    hash_refresh_token, new_refresh_token, Rejected, TokenRejection, TokenService, VerifiedToken,
};
use crate::model::{Email, Password, ProfilePatch, UserView, Username};
use crate::store::{InsertUserOutcome, NewSession, NewUser, SessionStore, UserStore};
use crate::{Tokens, UserError};

/// A freshly signed-in account with its tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: Id,
    pub tokens: Tokens,
}

/// Why [`UsersService::authenticate`] did not accept a token.
#[derive(Debug, Clone)]
pub enum AuthFailure {
    /// The token is invalid, expired or revoked.
    Rejected(Rejected),
    /// The revocation check could not reach storage.
    Unavailable(Arc<anyhow::Error>),
}

/// How long a revocation check result is reused when nothing else is configured.
pub const DEFAULT_REVOCATION_CHECK_TTL: Duration = Duration::from_secs(2);

/// Most session families whose revocation state is cached at once.
const REVOCATION_CACHE_CAPACITY: u64 = 100_000;

pub struct UsersService {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    tokens: Arc<TokenService>,
    ids: Arc<IdGenerator>,
    /// Session family → revoked, for `revocation_check_ttl`; `None` when the TTL is zero (every
    /// request asks storage).
    revoked: Option<moka::future::Cache<Id, bool>>,
}

fn revocation_cache(ttl: Duration) -> Option<moka::future::Cache<Id, bool>> {
    (!ttl.is_zero()).then(|| {
        moka::future::Cache::builder()
            .max_capacity(REVOCATION_CACHE_CAPACITY)
            .time_to_live(ttl)
            .build()
    })
}

impl UsersService {
    pub fn new(
        users: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        tokens: Arc<TokenService>,
        ids: Arc<IdGenerator>,
    ) -> Self {
        UsersService {
            users,
            sessions,
            tokens,
            ids,
            revoked: revocation_cache(DEFAULT_REVOCATION_CHECK_TTL),
        }
    }

    /// Sets how long a revocation check is reused (zero: never). A revocation made on another
    /// node is seen here within this time.
    pub fn with_revocation_check_ttl(mut self, ttl: Duration) -> Self {
        self.revoked = revocation_cache(ttl);
        self
    }

    /// Verifies an access token: signature and key, claims, and that its session family was
    /// not revoked.
    pub async fn authenticate(&self, access_token: &str) -> Result<VerifiedToken, AuthFailure> {
        let verified = self
            .tokens
            .verify(access_token, now_millis())
            .map_err(AuthFailure::Rejected)?;
        let family_id = verified.family_id;
        let revoked = match &self.revoked {
            // Concurrent checks of one family share a single query.
            Some(cache) => {
                let sessions = Arc::clone(&self.sessions);
                cache
                    .try_get_with(family_id, async move {
                        sessions.is_family_revoked(family_id).await
                    })
                    .await
                    .map_err(AuthFailure::Unavailable)?
            }
            None => self
                .sessions
                .is_family_revoked(family_id)
                .await
                .map_err(|e| AuthFailure::Unavailable(Arc::new(e)))?,
        };
        if revoked {
            return Err(AuthFailure::Rejected(Rejected {
                reason: TokenRejection::Revoked,
                user_id: Some(verified.user_id),
            }));
        }
        Ok(verified)
    }

    /// Revokes a session family and remembers it locally, so this node refuses its access
    /// tokens at once (other nodes within the revocation check TTL).
    async fn revoke_family(&self, family_id: Id, now: i64) -> Result<(), UserError> {
        self.sessions.revoke_family(family_id, now).await?;
        if let Some(cache) = &self.revoked {
            cache.insert(family_id, true).await;
        }
        Ok(())
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// Creates an account and signs it in.
    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<SignedIn, UserError> {
        let username = Username::parse(username)?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let tokens = Arc::clone(&self.tokens);
        let password_hash =
            tokio::task::spawn_blocking(move || tokens.hash_password(password.expose()))
                .await
                .context("password hashing task")??;
        let now = now_millis();
        let user = NewUser {
            id: self.ids.next_id(),
            username,
            email,
            password_hash,
            created_at: now,
        };
        match self.users.insert_user(&user).await? {
            InsertUserOutcome::Inserted => {}
            InsertUserOutcome::UsernameTaken => return Err(UserError::UsernameTaken),
            InsertUserOutcome::EmailTaken => return Err(UserError::EmailTaken),
        }
        let tokens = self.start_session(user.id, self.ids.next_id(), now).await?;
        Ok(SignedIn {
            user_id: user.id,
            tokens,
        })
    }

    /// Signs in with a username or an email and a password.
    pub async fn sign_in(&self, login: &str, password: &str) -> Result<SignedIn, UserError> {
        if login.len() > Email::MAX_LEN || password.len() > 4 * Password::MAX_CHARS {
            return Err(UserError::InvalidCredentials);
        }
        let login = match Username::parse(login) {
            Ok(username) => username.as_str().to_owned(),
            Err(_) => Email::parse(login)
                .map_err(|_| UserError::InvalidCredentials)?
                .as_str()
                .to_owned(),
        };
        let found = self.users.get_credentials(&login).await?;
        let tokens = Arc::clone(&self.tokens);
        let password = password.to_owned();
        let (user_id, phc) = match found {
            Some((id, phc)) => (Some(id), phc),
            None => (None, self.tokens.dummy_phc().to_owned()),
        };
        let verified = tokio::task::spawn_blocking(move || tokens.verify_password(&password, &phc))
            .await
            .context("password verification task")?;
        match (user_id, verified) {
            (Some(user_id), true) => {
                let tokens = self
                    .start_session(user_id, self.ids.next_id(), now_millis())
                    .await?;
                Ok(SignedIn { user_id, tokens })
            }
            _ => Err(UserError::InvalidCredentials),
        }
    }

    /// Exchanges a refresh token for a new pair. Presenting a token that was already rotated is
    /// treated as theft: the whole session family is revoked.
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, UserError> {
        if refresh_token.len() > 256 {
            return Err(UserError::InvalidRefreshToken);
        }
        let now = now_millis();
        let record = self
            .sessions
            .get_session_by_hash(&hash_refresh_token(refresh_token))
            .await?
            .ok_or(UserError::InvalidRefreshToken)?;
        if record.revoked_at.is_some() || record.expires_at <= now {
            return Err(UserError::InvalidRefreshToken);
        }
        if record.rotated_at.is_some() {
            self.revoke_family(record.family_id, now).await?;
            return Err(UserError::InvalidRefreshToken);
        }
        let (token, token_hash) = new_refresh_token();
        let next = self.new_session(record.user_id, record.family_id, token_hash, now);
        if !self.sessions.rotate_session(record.id, &next, now).await? {
            // Someone rotated it between our read and our write: same as reuse.
            self.revoke_family(record.family_id, now).await?;
            return Err(UserError::InvalidRefreshToken);
        }
        let tokens = self.tokens_for(record.user_id, record.family_id, token, &next, now)?;
        Ok(SignedIn {
            user_id: record.user_id,
            tokens,
        })
    }

    /// Revokes the session family of a refresh token. Unknown tokens are ignored (idempotent).
    pub async fn sign_out(&self, refresh_token: &str) -> Result<(), UserError> {
        if refresh_token.len() > 256 {
            return Err(UserError::InvalidRefreshToken);
        }
        if let Some(record) = self
            .sessions
            .get_session_by_hash(&hash_refresh_token(refresh_token))
            .await?
        {
            self.revoke_family(record.family_id, now_millis()).await?;
        }
        Ok(())
    }

    pub async fn get_users(&self, ids: &[Id]) -> Result<Vec<UserView>, UserError> {
        Ok(self.users.get_user_views(ids).await?)
    }

    pub async fn get_user(&self, id: Id) -> Result<Option<UserView>, UserError> {
        Ok(self.users.get_user_views(&[id]).await?.into_iter().next())
    }

    /// Looks up an account by username; malformed usernames simply match nothing.
    pub async fn find_by_username(&self, raw: &str) -> Result<Option<Id>, UserError> {
        match Username::parse(raw) {
            Ok(username) => Ok(self.users.get_user_id_by_username(&username).await?),
            Err(_) => Ok(None),
        }
    }

    pub async fn update_profile(
        &self,
        viewer: Viewer,
        display_name: Option<&str>,
        bio: Option<&str>,
        avatar_url: Option<Option<&str>>,
    ) -> Result<UserView, UserError> {
        let patch = ProfilePatch::parse(display_name, bio, avatar_url)?;
        self.users
            .update_profile(viewer.user_id, &patch, now_millis())
            .await?
            .ok_or(UserError::NotFound)?;
        self.get_user(viewer.user_id)
            .await?
            .ok_or(UserError::NotFound)
    }

    async fn start_session(
        &self,
        user_id: Id,
        family_id: Id,
        now: i64,
    ) -> Result<Tokens, UserError> {
        let (token, token_hash) = new_refresh_token();
        let session = self.new_session(user_id, family_id, token_hash, now);
        self.sessions.insert_session(&session).await?;
        self.tokens_for(user_id, family_id, token, &session, now)
    }

    fn new_session(&self, user_id: Id, family_id: Id, token_hash: Vec<u8>, now: i64) -> NewSession {
        let ttl_ms = i64::try_from(
            self.tokens
                .config()
                .refresh_token_ttl_secs
                .saturating_mul(1000),
        )
        .unwrap_or(i64::MAX);
        NewSession {
            id: self.ids.next_id(),
            family_id,
            user_id,
            token_hash,
            created_at: now,
            expires_at: now.saturating_add(ttl_ms),
        }
    }

    fn tokens_for(
        &self,
        user_id: Id,
        family_id: Id,
        refresh_token: String,
        session: &NewSession,
        now: i64,
    ) -> Result<Tokens, UserError> {
        let (access_token, access_token_expires_at) =
            self.tokens.issue_access_token(user_id, family_id, now)?;
        Ok(Tokens {
            access_token,
            access_token_expires_at,
            refresh_token,
            refresh_token_expires_at: session.expires_at,
        })
    }
}
