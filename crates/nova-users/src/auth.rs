//! Password hashing (argon2id) and tokens: short-lived JWT access tokens and opaque refresh tokens.
//!
//! Refresh tokens are 256 random bits; only their SHA-256 is stored, so a database leak does not
//! leak usable tokens. Every refresh rotates the token; the rotated-out token stays on record so
//! that presenting it again is recognised as theft and revokes the whole family.

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nova_core::{Id, UnixMillis, Viewer};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::UserError;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Everything the token and password code needs, passed in by the composition root.
#[derive(Clone)]
pub struct AuthConfig {
    /// HS256 signing secret, at least 32 bytes (checked at start-up).
    pub jwt_secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub leeway_secs: u64,
    pub argon2: Argon2Params,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .finish_non_exhaustive()
    }
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Account id, decimal.
    pub sub: String,
    /// Session family id, decimal.
    pub sid: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

/// What sign-in, registration and refresh return.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub access_token_expires_at: UnixMillis,
    pub refresh_token: String,
    pub refresh_token_expires_at: UnixMillis,
}

/// Signs and verifies access tokens; hashes and verifies passwords.
pub struct TokenService {
    config: AuthConfig,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    argon2: argon2::Argon2<'static>,
    /// Hash of a random password, verified against when a login is unknown so that response time
    /// does not reveal which logins exist.
    dummy_phc: String,
}

impl TokenService {
    pub fn new(config: AuthConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.jwt_secret.len() >= 32,
            "the JWT secret must be at least 32 bytes"
        );
        let params = argon2::Params::new(
            config.argon2.memory_kib,
            config.argon2.iterations,
            config.argon2.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let argon2 =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        // Pinned algorithm: a token that names any other `alg` (including `none`) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = config.leeway_secs;
        let mut service = TokenService {
            encoding: EncodingKey::from_secret(&config.jwt_secret),
            decoding: DecodingKey::from_secret(&config.jwt_secret),
            validation,
            argon2,
            config,
            dummy_phc: String::new(),
        };
        let (random_password, _) = new_refresh_token();
        service.dummy_phc = service.hash_password(&random_password)?;
        Ok(service)
    }

    /// A valid hash that no password the client knows matches.
    pub fn dummy_phc(&self) -> &str {
        &self.dummy_phc
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Hashes a password into a PHC string. CPU-heavy: call from a blocking thread.
    pub fn hash_password(&self, password: &str) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    }

    /// Verifies a password against a stored PHC string. CPU-heavy: call from a blocking thread.
    pub fn verify_password(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon2
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Issues an access token for an account within a session family.
    pub fn issue_access_token(
        &self,
        user_id: Id,
        family_id: Id,
        now: UnixMillis,
    ) -> anyhow::Result<(String, UnixMillis)> {
        let now_secs = u64::try_from(now / 1000).unwrap_or(0);
        let exp = now_secs + self.config.access_token_ttl_secs;
        let claims = Claims {
            sub: user_id.to_string(),
            sid: family_id.to_string(),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            iat: now_secs,
            nbf: now_secs,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("sign access token")?;
        Ok((
            token,
            i64::try_from(exp).unwrap_or(i64::MAX).saturating_mul(1000),
        ))
    }

    /// Verifies an access token and returns the viewer it stands for.
    pub fn verify_access_token(&self, token: &str) -> Result<Viewer, UserError> {
        if token.len() > 4096 {
            return Err(UserError::InvalidAccessToken);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| UserError::InvalidAccessToken)?;
        let user_id = Id::parse(&data.claims.sub).ok_or(UserError::InvalidAccessToken)?;
        Ok(Viewer { user_id })
    }
}

/// A new random refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(ttl: u64, leeway: u64) -> TokenService {
        TokenService::new(AuthConfig {
            jwt_secret: vec![7; 32],
            issuer: "nova".into(),
            audience: "nova".into(),
            access_token_ttl_secs: ttl,
            refresh_token_ttl_secs: 3600,
            leeway_secs: leeway,
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        })
        .expect("valid config")
    }

    #[test]
    fn short_secrets_are_refused() {
        let mut config = service(60, 0).config().clone();
        config.jwt_secret = vec![1; 31];
        assert!(TokenService::new(config).is_err());
    }

    #[test]
    fn access_tokens_round_trip_and_expire() {
        let tokens = service(60, 0);
        let now = nova_core::now_millis();
        let (token, _) = tokens.issue_access_token(Id(42), Id(1), now).expect("sign");
        assert_eq!(
            tokens.verify_access_token(&token).ok(),
            Some(Viewer { user_id: Id(42) })
        );
        let (old, _) = tokens
            .issue_access_token(Id(42), Id(1), now - 120_000)
            .expect("sign");
        assert!(
            tokens.verify_access_token(&old).is_err(),
            "expired token accepted"
        );
        let (future, _) = tokens
            .issue_access_token(Id(42), Id(1), now + 120_000)
            .expect("sign");
        assert!(
            tokens.verify_access_token(&future).is_err(),
            "not-yet-valid token accepted"
        );
    }

    #[test]
    fn tokens_signed_otherwise_are_refused() {
        let tokens = service(60, 0);
        let mut other_config = tokens.config().clone();
        other_config.jwt_secret = vec![9; 32];
        let other = TokenService::new(other_config).expect("valid");
        let (foreign, _) = other
            .issue_access_token(Id(1), Id(1), nova_core::now_millis())
            .expect("sign");
        assert!(tokens.verify_access_token(&foreign).is_err());
        // alg: none with the same claims.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = foreign.split('.').nth(1).unwrap_or_default();
        assert!(tokens
            .verify_access_token(&format!("{header}.{body}."))
            .is_err());
        assert!(tokens.verify_access_token("garbage").is_err());
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let tokens = service(60, 0);
        let phc = tokens.hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(tokens.verify_password("correct horse", &phc));
        assert!(!tokens.verify_password("wrong horse", &phc));
    }
}
