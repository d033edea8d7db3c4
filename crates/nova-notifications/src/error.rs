//! Errors of the notifications service, each sorted into a stable [`Code`].

use nova_core::code::Unavailable;
use nova_core::{Code, Coded};
use nova_users::UserError;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("{0}")]
    InvalidInput(String),
    /// An id given to `markNotificationsRead` is not one of the viewer's notifications.
    #[error("notification not found")]
    NotFound,
    #[error(transparent)]
    Users(#[from] UserError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Coded for NotificationError {
    fn code(&self) -> Code {
        match self {
            NotificationError::InvalidInput(_) => Code::InvalidInput,
            NotificationError::NotFound => Code::NotFound,
            NotificationError::Users(inner) => inner.code(),
            NotificationError::Internal(error) if error.downcast_ref::<Unavailable>().is_some() => {
                Code::Unavailable
            }
            NotificationError::Internal(_) => Code::Internal,
        }
    }
}
