//! Accounts, sign-in sessions, profiles and the social graph (follows, blocks, mutes).
//!
//! Invariants:
//! - usernames are stored NFKC-normalised and lower-cased, so uniqueness is case-insensitive;
//! - passwords are only ever stored as argon2id PHC strings, refresh tokens only as SHA-256 hashes;
//! - a block removes follows in both directions in the same write, and no follow can be created
//!   while a block exists either way;
//! - this crate never touches SQL, HTTP or GraphQL types: storage is reached through [`store`] ports.

pub mod auth;
pub mod error;
pub mod graph;
pub mod model;
pub mod service;
pub mod store;

pub use auth::{
    Argon2Params, AuthConfig, Claims, JwtKey, Rejected, TokenRejection, TokenService, Tokens,
    VerifiedToken, DEFAULT_KID,
};
pub use error::UserError;
pub use graph::{GraphAction, GraphService};
pub use model::*;
pub use service::{AuthFailure, UsersService};
pub use store::{GraphStore, NewSession, SessionRecord, SessionStore, UserStore};
