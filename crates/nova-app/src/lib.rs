//! The composition root: typed settings, and `App::build`, which wires storage adapters into
//! domain services and the services into the GraphQL schema and the HTTP gateway.
//!
//! Invariant: this is the only crate that names concrete adapters.

pub mod app;
pub mod events;
pub mod settings;
pub mod testing;

pub use app::{migrate, App};
pub use settings::{CliOverrides, LogFormat, Settings};
