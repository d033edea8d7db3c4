//! Relay connections over keyset pages.

use async_graphql::connection::{Connection, Edge};
use async_graphql::Context;
use nova_core::{Cursor, Page, PageRequest};
use nova_posts::Post;

use crate::error::page_error;
use crate::types::PostObject;

pub(crate) type PostConnection = Connection<String, PostObject>;

/// Parses `first`/`after` for the list named `kind`.
pub(crate) fn page_request(
    first: Option<i32>,
    after: Option<String>,
    kind: &str,
) -> async_graphql::Result<PageRequest> {
    PageRequest::parse(first, after.as_deref(), kind).map_err(page_error)
}

/// Builds a connection whose cursors are the keyset positions of its items.
pub(crate) fn connection<T, N>(
    page: Page<T>,
    kind: &str,
    position: impl Fn(&T) -> nova_core::Id,
    node: impl Fn(T) -> N,
) -> Connection<String, N>
where
    N: async_graphql::OutputType,
{
    let mut connection = Connection::new(false, page.has_next_page);
    connection.edges.extend(page.items.into_iter().map(|item| {
        let cursor = Cursor::new(position(&item)).encode(kind);
        Edge::new(cursor, node(item))
    }));
    connection
}

/// The connection of a page of posts, with the request's loaders primed for what the selection
/// asks of its nodes (authors, counters): see [`crate::loaders::Loaders::prime_posts`].
pub(crate) async fn post_connection(
    ctx: &Context<'_>,
    page: Page<Post>,
    kind: &str,
) -> async_graphql::Result<PostConnection> {
    let node = ctx.look_ahead().field("edges").field("node");
    let wants = crate::loaders::PostRelations {
        author: node.field("author").exists(),
        stats: ["likeCount", "replyCount", "viewerHasLiked"]
            .iter()
            .any(|field| node.field(field).exists()),
    };
    crate::loaders::loaders(ctx)?
        .prime_posts(&page.items, wants)
        .await?;
    Ok(connection(page, kind, |p| p.id, PostObject))
}
