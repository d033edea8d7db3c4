//! Direct messages: conversations between two or more accounts, messages with edits and soft
//! deletes, read markers and unread counts, and who may message whom.
//!
//! Invariants:
//! - only members read or write a conversation; to anyone else it does not exist (NOT_FOUND);
//! - two accounts have at most one direct conversation (the store keys it by the ordered pair);
//! - bodies are stored NFC-normalised and hold 1–5,000 grapheme clusters;
//! - a deleted message keeps its row and its place in the history (`deleted_at` set) but its
//!   body is never returned;
//! - blocks (either way) and the target's messaging privacy are checked when a conversation is
//!   started or members are added; a direct conversation also refuses new messages across a block;
//! - every change writes its event to the outbox in the same store transaction;
//! - this crate never touches SQL, HTTP or GraphQL types.

pub mod error;
pub mod model;
pub mod service;
pub mod store;

pub use error::MessagingError;
pub use model::*;
pub use service::{MessagingService, SendMessageInput};
pub use store::{
    AddMembersOutcome, CreateConversationOutcome, InsertMessageOutcome, MessagingStore,
    NewConversation, NewMessage,
};
