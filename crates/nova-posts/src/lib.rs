//! Posts, replies, edits, likes and the feeds that list them.
//!
//! Invariants:
//! - bodies are stored NFC-normalised and hold 1–500 grapheme clusters;
//! - a deleted post keeps its row (`deleted_at` set) but is absent from every read;
//! - an edit stores the previous body as a version in the same write;
//! - a post is shown to a viewer only if neither blocked the other and, for FOLLOWERS posts, the
//!   viewer is the author or follows the author;
//! - counters live outside the `posts` row, so likes never rewrite the rows feeds scan;
//! - this crate never touches SQL, HTTP or GraphQL types.

pub mod error;
pub mod model;
pub mod service;
pub mod store;

pub use error::PostError;
pub use model::*;
pub use service::{can_view, CreatePostInput, PostsService};
pub use store::{InsertPostOutcome, NewPost, PostStore};
