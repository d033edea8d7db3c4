//! What resolvers find in the GraphQL context: the services and the request's viewer.

use std::sync::Arc;

use async_graphql::Context;
use nova_core::Viewer;
use nova_messaging::MessagingService;
use nova_notifications::NotificationsService;
use nova_posts::PostsService;
use nova_users::{GraphService, UsersService};

use crate::error::unauthenticated;

/// The domain services, shared by every request.
#[derive(Clone)]
pub struct Services {
    pub users: Arc<UsersService>,
    pub graph: Arc<GraphService>,
    pub posts: Arc<PostsService>,
    pub notifications: Arc<NotificationsService>,
    pub messaging: Arc<MessagingService>,
}

/// The viewer of the current request, if it presented a valid access token.
#[derive(Debug, Clone, Copy)]
pub struct RequestViewer(pub Option<Viewer>);

pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

pub(crate) fn maybe_viewer(ctx: &Context<'_>) -> Option<Viewer> {
    ctx.data_opt::<RequestViewer>().and_then(|v| v.0)
}

pub(crate) fn viewer(ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
    maybe_viewer(ctx).ok_or_else(unauthenticated)
}
