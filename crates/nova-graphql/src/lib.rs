//! The GraphQL API: schema, resolvers, DataLoaders and the one conversion from domain errors to
//! GraphQL errors with a stable `extensions.code`.
//!
//! Invariants:
//! - GraphQL types live only here; domain types never derive GraphQL traits;
//! - resolvers parse input, call one service and map the result, nothing more;
//! - every domain error reaches the client through [`error::api_error`]; an execution error
//!   without a code is treated as INTERNAL by the gateway, never shown raw.
//! - no HTTP here: schema tests run with `Schema::execute`.

pub mod context;
pub mod error;
mod loaders;
mod mutation;
mod query;
mod types;

use async_graphql::{EmptySubscription, Schema};

pub use context::{RequestViewer, Services};
pub use error::api_error;
pub use mutation::MutationRoot;
pub use query::QueryRoot;

pub type NovaSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Limits applied to every request before execution.
#[derive(Debug, Clone, Copy)]
pub struct SchemaLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        SchemaLimits {
            max_depth: 12,
            max_complexity: 5_000,
        }
    }
}

pub type NovaSchemaBuilder =
    async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema around the services it resolves with; `customize` lets the edge add its
/// extensions (operation tracking, later cost limits) without this crate knowing HTTP.
pub fn build_schema(
    services: Services,
    limits: SchemaLimits,
    customize: impl FnOnce(NovaSchemaBuilder) -> NovaSchemaBuilder,
) -> NovaSchema {
    let builder = Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(services)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity);
    customize(builder).finish()
}

/// The schema's SDL without services (for the checked-in `schema.graphql`).
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .finish()
        .sdl()
}

/// Attaches the per-request state (viewer and DataLoaders) to a request.
pub fn prepare_request(
    request: async_graphql::Request,
    services: &Services,
    viewer: Option<nova_core::Viewer>,
) -> async_graphql::Request {
    request
        .data(RequestViewer(viewer))
        .data(loaders::Loaders::new(services, viewer))
}
