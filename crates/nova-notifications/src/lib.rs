//! Notifications: who followed, liked, replied to, mentioned or messaged an account, grouped
//! the way people read them ("alice and 12 others liked your post"), and per-account
//! preferences of which of them to receive.
//!
//! Invariants:
//! - notifications are created only by [`NotificationsHandler`], after the event that caused
//!   them was committed (never inside the like/follow/post write);
//! - one event is applied at most once: the notification write and the durable
//!   "processed" record are one store transaction, so a replayed event changes nothing;
//! - never for one's own actions, never from an account the recipient blocked or muted or that
//!   blocked the recipient, never a mention of a post the recipient may not see;
//! - a group is keyed by (recipient, type, target); a new actor joins the recipient's most
//!   recent *unread* group of that key and moves it to the top; an actor counts once per group;
//! - preferences are cached per node and dropped on `NotificationPreferencesChanged`;
//! - this crate never touches SQL, HTTP or GraphQL types.

pub mod error;
pub mod handler;
pub mod model;
pub mod service;
pub mod store;

pub use error::NotificationError;
pub use handler::{NotificationsHandler, PreferencesInvalidation};
pub use model::*;
pub use service::NotificationsService;
pub use store::{Activity, EventActivities, NotificationStore};
