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
pub mod limits;
pub mod live;
mod loaders;
mod messaging;
mod mutation;
mod notifications;
mod query;
mod subscription;
mod types;

use async_graphql::Schema;

pub use context::{RequestViewer, Services};
pub use error::api_error;
pub use limits::{LimitRefusal, LimitedOperation, OperationLimits, RequestLimits};

/// Every read operation.
// One object per area, merged: each area (messaging, notifications, ...) adds its own here.
#[derive(async_graphql::MergedObject, Default)]
pub struct QueryRoot(
    query::CoreQuery,
    notifications::NotificationsQuery,
    messaging::MessagingQuery,
);

/// Every write operation.
// Merged like `QueryRoot`.
#[derive(async_graphql::MergedObject, Default)]
pub struct MutationRoot(
    mutation::CoreMutation,
    notifications::NotificationsMutation,
    messaging::MessagingMutation,
);

pub use live::{LiveHub, LiveSettings};
pub use subscription::SubscriptionRoot;

pub type NovaSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Limits applied to every request before execution.
#[derive(Debug, Clone, Copy)]
pub struct SchemaLimits {
    /// Deepest selection nesting. The gateway's query limits enforce it with introspection
    /// exempt; async-graphql's own check here counts introspection fields too, so it is applied
    /// as a backstop no lower than [`INTROSPECTION_QUERY_DEPTH`].
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Whether `__schema` and `__type` may be queried.
    pub introspection: bool,
}

/// Depth of the standard introspection query GraphiQL sends (its `ofType` chain included),
/// with room to spare; async-graphql's depth backstop never goes below it.
pub const INTROSPECTION_QUERY_DEPTH: usize = 16;

impl Default for SchemaLimits {
    fn default() -> Self {
        SchemaLimits {
            max_depth: 10,
            max_complexity: 5_000,
            introspection: true,
        }
    }
}

pub type NovaSchemaBuilder =
    async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema around the services it resolves with; `customize` lets the edge add its
/// extensions (operation tracking, later cost limits) without this crate knowing HTTP.
pub fn build_schema(
    services: Services,
    limits: SchemaLimits,
    customize: impl FnOnce(NovaSchemaBuilder) -> NovaSchemaBuilder,
) -> NovaSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(services)
    .limit_depth(limits.max_depth.max(INTROSPECTION_QUERY_DEPTH))
    .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    customize(builder).finish()
}

/// The schema's SDL without services (for the checked-in `schema.graphql`).
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}

/// The state of one WebSocket connection (its viewer and DataLoaders), set once
/// `connection_init` authenticated it.
pub fn connection_data(services: &Services, viewer: nova_core::Viewer) -> async_graphql::Data {
    let mut data = async_graphql::Data::default();
    data.insert(RequestViewer(Some(viewer)));
    data.insert(loaders::Loaders::new(services, Some(viewer)));
    data
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
