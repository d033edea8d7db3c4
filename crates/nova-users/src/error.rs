//! Errors of the accounts and graph services, each sorted into a stable [`Code`].

use nova_core::code::Unavailable;
use nova_core::{Code, Coded};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A field failed validation; the message names the field and the rule.
    #[error("{0}")]
    InvalidInput(String),
    #[error("username is already taken")]
    UsernameTaken,
    #[error("email is already registered")]
    EmailTaken,
    #[error("invalid username/email or password")]
    InvalidCredentials,
    #[error("refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("access token is invalid or expired")]
    InvalidAccessToken,
    #[error("sign in required")]
    Unauthenticated,
    #[error("user not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl UserError {
    pub fn invalid(message: impl Into<String>) -> Self {
        UserError::InvalidInput(message.into())
    }
}

impl Coded for UserError {
    fn code(&self) -> Code {
        match self {
            UserError::InvalidInput(_) => Code::InvalidInput,
            UserError::UsernameTaken | UserError::EmailTaken => Code::Conflict,
            UserError::InvalidCredentials
            | UserError::InvalidRefreshToken
            | UserError::InvalidAccessToken
            | UserError::Unauthenticated => Code::Unauthenticated,
            UserError::NotFound => Code::NotFound,
            UserError::Forbidden(_) => Code::Forbidden,
            UserError::Internal(error) if error.downcast_ref::<Unavailable>().is_some() => {
                Code::Unavailable
            }
            UserError::Internal(_) => Code::Internal,
        }
    }
}
