//! GraphQL object types wrapping domain read models.

mod auth;
pub(crate) mod connection;
pub(crate) mod messaging;
pub(crate) mod notification;
mod post;
mod user;

pub use auth::AuthPayload;
pub(crate) use connection::{page_request, post_connection, PostConnection};
pub use post::{PostObject, VisibilityEnum};
pub use user::UserObject;

/// Milliseconds since the epoch as a UTC timestamp.
pub(crate) fn timestamp(millis: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}
