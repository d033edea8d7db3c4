//! Relay connections over keyset pages.

use async_graphql::connection::{Connection, Edge};
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

pub(crate) fn post_connection(page: Page<Post>, kind: &str) -> PostConnection {
    connection(page, kind, |p| p.id, PostObject)
}
