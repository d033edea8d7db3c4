//! The single conversion from domain errors to GraphQL errors.

use async_graphql::ErrorExtensions as _;
use nova_core::{Code, Coded, PageRequestError};

/// A GraphQL error with `extensions.code`. Internal errors are logged here (inside the request's
/// span, so with its request id) and shown to the client only as "internal error".
pub fn api_error<E>(error: E) -> async_graphql::Error
where
    E: Coded + std::fmt::Display + std::fmt::Debug,
{
    let code = error.code();
    let message = if code == Code::Internal {
        tracing::error!(error = %format!("{error:#}"), "internal error");
        "internal error".to_owned()
    } else {
        error.to_string()
    };
    coded(code, message)
}

pub fn coded(code: Code, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

pub fn invalid(message: impl Into<String>) -> async_graphql::Error {
    coded(Code::InvalidInput, message)
}

pub fn unauthenticated() -> async_graphql::Error {
    coded(Code::Unauthenticated, "sign in required")
}

pub fn page_error(error: PageRequestError) -> async_graphql::Error {
    invalid(error.to_string())
}

/// Parses a client-supplied ID argument.
pub fn parse_id(raw: &async_graphql::ID, field: &str) -> async_graphql::Result<nova_core::Id> {
    nova_core::Id::parse(raw.as_str()).ok_or_else(|| invalid(format!("{field} is not a valid ID")))
}
