//! Errors of the posts service, each sorted into a stable [`Code`].

use nova_core::code::Unavailable;
use nova_core::{Code, Coded};
use nova_users::UserError;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("post not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("idempotency key was already used for a different post")]
    IdempotencyConflict,
    #[error("sign in required")]
    Unauthenticated,
    #[error(transparent)]
    Users(#[from] UserError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl PostError {
    pub fn invalid(message: impl Into<String>) -> Self {
        PostError::InvalidInput(message.into())
    }
}

impl Coded for PostError {
    fn code(&self) -> Code {
        match self {
            PostError::InvalidInput(_) => Code::InvalidInput,
            PostError::NotFound => Code::NotFound,
            PostError::Forbidden(_) => Code::Forbidden,
            PostError::IdempotencyConflict => Code::Conflict,
            PostError::Unauthenticated => Code::Unauthenticated,
            PostError::Users(inner) => inner.code(),
            PostError::Internal(error) if error.downcast_ref::<Unavailable>().is_some() => {
                Code::Unavailable
            }
            PostError::Internal(_) => Code::Internal,
        }
    }
}
