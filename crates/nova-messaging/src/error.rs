//! Errors of the messaging service, each sorted into a stable [`Code`].

use nova_core::code::Unavailable;
use nova_core::{Code, Coded};
use nova_users::UserError;

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("{0}")]
    InvalidInput(String),
    /// Missing, or the viewer is not a member (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("idempotency key was already used for a different message")]
    IdempotencyConflict,
    #[error(transparent)]
    Users(#[from] UserError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl MessagingError {
    pub fn invalid(message: impl Into<String>) -> Self {
        MessagingError::InvalidInput(message.into())
    }
}

impl Coded for MessagingError {
    fn code(&self) -> Code {
        match self {
            MessagingError::InvalidInput(_) => Code::InvalidInput,
            MessagingError::NotFound(_) => Code::NotFound,
            MessagingError::Forbidden(_) => Code::Forbidden,
            MessagingError::IdempotencyConflict => Code::Conflict,
            MessagingError::Users(inner) => inner.code(),
            MessagingError::Internal(error) if error.downcast_ref::<Unavailable>().is_some() => {
                Code::Unavailable
            }
            MessagingError::Internal(_) => Code::Internal,
        }
    }
}
