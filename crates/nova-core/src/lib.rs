//! Nova's shared vocabulary: time-ordered ids, opaque cursors, page requests, the viewer and the
//! stable error-code table.
//!
//! Invariant: this crate does no I/O and depends on no runtime and no other nova crate, so every
//! other crate can use it without pulling anything in.

pub mod code;
pub mod cursor;
pub mod id;
pub mod page;

pub use code::Coded;

pub use code::Code;
pub use cursor::{Cursor, CursorError};
pub use id::{Id, IdGenerator};
pub use page::{Page, PageRequest, PageRequestError};

/// The authenticated account on whose behalf a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Id,
}

/// Milliseconds since the Unix epoch, the one timestamp unit used across storage and domains.
pub type UnixMillis = i64;

/// Current wall-clock time in milliseconds.
pub fn now_millis() -> UnixMillis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
