//! Password hashing (argon2id) and tokens: short-lived JWT access tokens and opaque refresh tokens.
//!
//! Access tokens are HS256 JWTs (the algorithm is pinned: `alg: none` or any other algorithm is
//! refused) carrying a key id (`kid`) in the header. Several keys can be active at once so that
//! keys rotate without signing anyone out: one signs, all of them verify; a token naming a key
//! that is not configured is refused. `exp`, `nbf`, `iat`, `iss` and `aud` are checked with a
//! small leeway. Whether the token's session family was revoked is checked by the service
//! ([`crate::UsersService::authenticate`]), not here, because it needs storage.
//!
//! Refresh tokens are 256 random bits; only their SHA-256 is stored, so a database leak does not
//! leak usable tokens. Every refresh rotates the token; the rotated-out token stays on record so
//! that presenting it again is recognised as theft and revokes the whole family.

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
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

/// The key id of the single secret configured the old way (`auth.jwt_secret` or the generated
/// secret file), and of tokens issued before key ids existed.
pub const DEFAULT_KID: &str = "default";

/// Shortest accepted HS256 secret.
pub const MIN_SECRET_BYTES: usize = 32;

/// A verification key: its id and its HS256 secret.
#[derive(Clone)]
pub struct JwtKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Checks a key id: 1 to 64 characters out of `A-Z a-z 0-9 - _ . :`, so it is safe in a JWT
/// header and a log line.
pub fn check_kid(kid: &str) -> Result<(), String> {
    let ok = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key id {kid:?} is not 1 to 64 characters of letters, digits, '-', '_', '.', ':'"
        ))
    }
}

/// Why a secret is too weak for production: shorter than [`MIN_SECRET_BYTES`], or so repetitive
/// (fewer than 16 distinct bytes, e.g. one character repeated) that it was plainly not generated.
pub fn secret_weakness(secret: &[u8]) -> Option<String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "it is {} bytes long; it must be at least {MIN_SECRET_BYTES} bytes",
            secret.len()
        ));
    }
    let mut seen = [false; 256];
    for &b in secret {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < 16 {
        return Some(format!(
            "it has only {distinct} distinct bytes; use at least 32 random bytes (e.g. `openssl rand -hex 32`)"
        ));
    }
    None
}

/// Why an access token was refused. All of them look the same to the client (one 401, one
/// message); the reason is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a JWT, undecodable header or claims, a missing claim, a non-numeric subject.
    Malformed,
    /// An `alg` other than HS256 (including `none`).
    WrongAlgorithm,
    /// The header names a key id that is not configured.
    UnknownKid,
    /// The signature does not match the key the header names.
    BadSignature,
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future, beyond the leeway.
    IssuedInFuture,
    WrongIssuer,
    WrongAudience,
    /// The token's session family was revoked (sign-out, refresh-token reuse).
    Revoked,
}

impl TokenRejection {
    /// A stable snake_case name for logs and metric labels.
    pub fn reason(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "malformed",
            TokenRejection::WrongAlgorithm => "wrong_algorithm",
            TokenRejection::UnknownKid => "unknown_kid",
            TokenRejection::BadSignature => "bad_signature",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not_yet_valid",
            TokenRejection::IssuedInFuture => "issued_in_future",
            TokenRejection::WrongIssuer => "wrong_issuer",
            TokenRejection::WrongAudience => "wrong_audience",
            TokenRejection::Revoked => "revoked",
        }
    }
}

/// A refused token, with the account it names when its signature was valid (a correctly signed
/// but expired token still tells whose it was; a forged one tells nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub reason: TokenRejection,
    pub user_id: Option<Id>,
}

impl From<TokenRejection> for Rejected {
    fn from(reason: TokenRejection) -> Self {
        Rejected {
            reason,
            user_id: None,
        }
    }
}

/// A token whose signature and claims are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user_id: Id,
    /// The session family (`sid`); revocation is checked on it.
    pub family_id: Id,
}

/// Everything the token and password code needs, passed in by the composition root.
#[derive(Clone)]
pub struct AuthConfig {
    /// HS256 secret of the key that signs new tokens (kid [`DEFAULT_KID`] unless
    /// [`TokenService::with_keys`] names another), at least 32 bytes.
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
    signing_kid: String,
    encoding: EncodingKey,
    /// Every key that verifies, by kid (the signing key included).
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    /// The same checks minus the time and audience ones: after a claim check failed, tells
    /// whose the (correctly signed) token was, for the log.
    relaxed: Validation,
    argon2: argon2::Argon2<'static>,
    /// Hash of a random password, verified against when a login is unknown so that response time
    /// does not reveal which logins exist.
    dummy_phc: String,
}

impl TokenService {
    /// One key, `config.jwt_secret`, with kid [`DEFAULT_KID`].
    pub fn new(config: AuthConfig) -> anyhow::Result<Self> {
        Self::with_keys(config, DEFAULT_KID, Vec::new())
    }

    /// `config.jwt_secret` signs new tokens under `signing_kid`; it and every key of `others`
    /// verify. Kids must be distinct (the signing kid may be repeated in `others` with the same
    /// secret) and every secret at least 32 bytes.
    pub fn with_keys(
        config: AuthConfig,
        signing_kid: &str,
        others: Vec<JwtKey>,
    ) -> anyhow::Result<Self> {
        check_kid(signing_kid).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            config.jwt_secret.len() >= MIN_SECRET_BYTES,
            "the JWT secret must be at least {MIN_SECRET_BYTES} bytes"
        );
        let mut decoding = HashMap::new();
        decoding.insert(
            signing_kid.to_owned(),
            DecodingKey::from_secret(&config.jwt_secret),
        );
        for key in &others {
            check_kid(&key.kid).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                key.secret.len() >= MIN_SECRET_BYTES,
                "JWT key {:?} must be at least {MIN_SECRET_BYTES} bytes",
                key.kid
            );
            if key.kid == signing_kid {
                anyhow::ensure!(
                    key.secret == config.jwt_secret,
                    "JWT key id {:?} is configured twice",
                    key.kid
                );
                continue;
            }
            anyhow::ensure!(
                decoding
                    .insert(key.kid.clone(), DecodingKey::from_secret(&key.secret))
                    .is_none(),
                "JWT key id {:?} is configured twice",
                key.kid
            );
        }
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
        let mut relaxed = Validation::new(Algorithm::HS256);
        relaxed.set_required_spec_claims(&["sub"]);
        relaxed.validate_exp = false;
        relaxed.validate_nbf = false;
        relaxed.validate_aud = false;
        let mut service = TokenService {
            signing_kid: signing_kid.to_owned(),
            encoding: EncodingKey::from_secret(&config.jwt_secret),
            decoding,
            validation,
            relaxed,
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

    /// The key id new tokens are signed with.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
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
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding).context("sign access token")?;
        Ok((
            token,
            i64::try_from(exp).unwrap_or(i64::MAX).saturating_mul(1000),
        ))
    }

    /// Verifies an access token's signature and claims (not revocation) and returns the viewer
    /// it stands for.
    pub fn verify_access_token(&self, token: &str) -> Result<Viewer, UserError> {
        self.verify(token, nova_core::now_millis())
            .map(|verified| Viewer {
                user_id: verified.user_id,
            })
            .map_err(|_| UserError::InvalidAccessToken)
    }

    /// Verifies an access token's signature and claims at `now`; revocation is the caller's
    /// business. The error says why, for logs and metrics.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<VerifiedToken, Rejected> {
        if token.is_empty() || token.len() > 4096 {
            return Err(TokenRejection::Malformed.into());
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Rejected::from(rejection_of(&e)))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenRejection::WrongAlgorithm.into());
        }
        // Tokens issued before key ids existed carry none: they were signed with the one key.
        let kid = header.kid.as_deref().unwrap_or(DEFAULT_KID);
        let key = self
            .decoding
            .get(kid)
            .ok_or(Rejected::from(TokenRejection::UnknownKid))?;
        let claims = match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => data.claims,
            Err(error) => {
                let reason = rejection_of(&error);
                // Signed by us but refused on a claim: say whose it was.
                let user_id = match reason {
                    TokenRejection::Expired
                    | TokenRejection::NotYetValid
                    | TokenRejection::WrongIssuer
                    | TokenRejection::WrongAudience => {
                        jsonwebtoken::decode::<Claims>(token, key, &self.relaxed)
                            .ok()
                            .and_then(|data| Id::parse(&data.claims.sub))
                    }
                    _ => None,
                };
                return Err(Rejected { reason, user_id });
            }
        };
        let user_id = Id::parse(&claims.sub).ok_or(Rejected::from(TokenRejection::Malformed))?;
        let rejected = |reason| Rejected {
            reason,
            user_id: Some(user_id),
        };
        // jsonwebtoken checks `exp` and `nbf` but not `iat`: a token issued in the future was
        // not issued by a node with a sane clock.
        let now_secs = u64::try_from(now / 1000).unwrap_or(0);
        if claims.iat > now_secs.saturating_add(self.config.leeway_secs) {
            return Err(rejected(TokenRejection::IssuedInFuture));
        }
        let family_id = Id::parse(&claims.sid).ok_or(rejected(TokenRejection::Malformed))?;
        Ok(VerifiedToken { user_id, family_id })
    }
}

/// The rejection reason of a jsonwebtoken error.
fn rejection_of(error: &jsonwebtoken::errors::Error) -> TokenRejection {
    match error.kind() {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenRejection::WrongAlgorithm
        }
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        _ => TokenRejection::Malformed,
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

    fn key(kid: &str, byte: u8) -> JwtKey {
        JwtKey {
            kid: kid.into(),
            secret: (0..32).map(|i| byte.wrapping_add(i)).collect(),
        }
    }

    fn keyed(signing: &JwtKey, others: Vec<JwtKey>) -> TokenService {
        let mut config = service(60, 0).config().clone();
        config.jwt_secret = signing.secret.clone();
        TokenService::with_keys(config, &signing.kid, others).expect("valid keys")
    }

    #[test]
    fn tokens_name_their_key_and_rotation_keeps_old_tokens_valid() {
        let now = nova_core::now_millis();
        let old = key("2026-10", 1);
        let new = key("2026-11", 100);
        let before = keyed(&old, vec![]);
        let (token, _) = before.issue_access_token(Id(5), Id(6), now).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some("2026-10"));
        assert_eq!(header.alg, Algorithm::HS256);

        // Rotated: the new key signs, the old one still verifies.
        let during = keyed(&new, vec![old.clone()]);
        assert_eq!(
            during.verify(&token, now),
            Ok(VerifiedToken {
                user_id: Id(5),
                family_id: Id(6)
            })
        );
        let (fresh, _) = during.issue_access_token(Id(5), Id(7), now).expect("sign");
        assert_eq!(
            jsonwebtoken::decode_header(&fresh)
                .expect("header")
                .kid
                .as_deref(),
            Some("2026-11")
        );
        // The old key removed: its tokens name an unknown key.
        let after = keyed(&new, vec![]);
        assert_eq!(
            after.verify(&token, now).map_err(|r| r.reason),
            Err(TokenRejection::UnknownKid)
        );
        assert!(after.verify(&fresh, now).is_ok());
    }

    #[test]
    fn a_kid_naming_another_key_fails_the_signature_check() {
        let now = nova_core::now_millis();
        let a = key("a", 1);
        let b = key("b", 100);
        let verifier = keyed(&a, vec![b.clone()]);
        // Signed with a's secret but claiming to be b.
        let mut config = verifier.config().clone();
        config.jwt_secret = a.secret.clone();
        let liar = TokenService::with_keys(config, "b", vec![]).expect("valid");
        let (token, _) = liar.issue_access_token(Id(1), Id(1), now).expect("sign");
        assert_eq!(
            verifier.verify(&token, now).map_err(|r| r.reason),
            Err(TokenRejection::BadSignature)
        );
    }

    #[test]
    fn duplicate_or_short_keys_and_bad_kids_are_refused() {
        let config = service(60, 0).config().clone();
        let mut other = key("other", 3);
        assert!(TokenService::with_keys(config.clone(), "default", vec![other.clone()]).is_ok());
        other.secret.truncate(31);
        assert!(TokenService::with_keys(config.clone(), "default", vec![other]).is_err());
        assert!(
            TokenService::with_keys(config.clone(), "default", vec![key("default", 9)]).is_err()
        );
        assert!(
            TokenService::with_keys(config.clone(), "x", vec![key("y", 1), key("y", 2)]).is_err()
        );
        assert!(TokenService::with_keys(config.clone(), "bad kid", vec![]).is_err());
        assert!(TokenService::with_keys(config, "", vec![]).is_err());
    }

    #[test]
    fn rejections_say_why() {
        let tokens = service(60, 5);
        let now = nova_core::now_millis();
        let reason = |token: &str| tokens.verify(token, now).map_err(|r| r.reason);
        let (expired, _) = tokens
            .issue_access_token(Id(3), Id(1), now - 3_600_000)
            .expect("sign");
        assert_eq!(
            tokens.verify(&expired, now),
            Err(Rejected {
                reason: TokenRejection::Expired,
                user_id: Some(Id(3))
            })
        );
        let (future, _) = tokens
            .issue_access_token(Id(3), Id(1), now + 3_600_000)
            .expect("sign");
        assert_eq!(reason(&future), Err(TokenRejection::NotYetValid));
        assert_eq!(reason(""), Err(TokenRejection::Malformed));
        assert_eq!(reason("a.b.c"), Err(TokenRejection::Malformed));

        // iat in the future, nbf and exp fine: only the iat check catches it.
        let claims = Claims {
            sub: "3".into(),
            sid: "1".into(),
            iss: "nova".into(),
            aud: "nova".into(),
            iat: u64::try_from(now / 1000).unwrap_or(0) + 600,
            nbf: 0,
            exp: u64::try_from(now / 1000).unwrap_or(0) + 60,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(DEFAULT_KID.into());
        let sign = |header: &Header, claims: &Claims| {
            jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(&[7; 32])).expect("sign")
        };
        assert_eq!(
            reason(&sign(&header, &claims)),
            Err(TokenRejection::IssuedInFuture)
        );
        let fine = Claims {
            iat: claims.iat - 600,
            ..claims
        };
        assert!(reason(&sign(&header, &fine)).is_ok());
        let wrong_audience = Claims {
            aud: "elsewhere".into(),
            ..fine
        };
        assert_eq!(
            reason(&sign(&header, &wrong_audience)),
            Err(TokenRejection::WrongAudience)
        );
        let wrong_issuer = Claims {
            aud: "nova".into(),
            iss: "elsewhere".into(),
            ..wrong_audience
        };
        assert_eq!(
            reason(&sign(&header, &wrong_issuer)),
            Err(TokenRejection::WrongIssuer)
        );
        // Same claims under another algorithm with the same secret.
        let fine = Claims {
            iss: "nova".into(),
            ..wrong_issuer
        };
        let mut hs512 = Header::new(Algorithm::HS512);
        hs512.kid = Some(DEFAULT_KID.into());
        assert_eq!(
            reason(&sign(&hs512, &fine)),
            Err(TokenRejection::WrongAlgorithm)
        );
        // No kid: a token from before key ids, verified with the default key.
        assert!(reason(&sign(&Header::new(Algorithm::HS256), &fine)).is_ok());
    }

    #[test]
    fn weak_secrets_are_recognised() {
        assert!(secret_weakness(&[b'a'; 64]).is_some());
        assert!(secret_weakness(b"abababababababababababababababab").is_some());
        assert!(secret_weakness(b"0123456789abcdef0123456789abcde").is_some());
        assert_eq!(secret_weakness(b"0123456789abcdef0123456789abcdef"), None);
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
