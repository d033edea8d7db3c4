//! Admission: the checks a GraphQL document passes before it runs (query limits, then the
//! operation's own refusals), shared by `/graphql` over HTTP and operations over WebSocket.
//!
//! The document is parsed once, here, and handed to the executor with
//! `Request::set_parsed_query`. None of this runs as an executor extension: async-graphql calls
//! every extension's `resolve` hook for every field of every response, a cost paid per field for
//! checks that concern the operation as a whole.

use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt as _};
use async_graphql::{Data, Executor, Request, Response};

use crate::cost::CostTicket;
use crate::ops::{self, Inspection};
use crate::SharedState;

/// Parses the request's document, checks the query limits (charging the ticket's caller when
/// there is a ticket), then inspects the operation. A document that does not parse is left to
/// the executor, which reports the syntax error with its position.
pub(crate) fn admit(
    state: &SharedState,
    request: &mut Request,
    ticket: Option<&CostTicket>,
    via_get: bool,
) -> Inspection {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return Inspection {
            kind: "unknown",
            mutation_over_get: false,
            refusal: None,
        };
    };
    let operation_name = request.operation_name.as_deref();
    let limits = &state.query_limits;
    let inspection = match limits.admit(
        &state.schema_types,
        &doc,
        operation_name,
        &request.variables,
        ticket,
    ) {
        Err(refusal) => Inspection {
            kind: "unknown",
            mutation_over_get: false,
            refusal: Some(refusal),
        },
        Ok(()) => ops::inspect(&doc, operation_name, &request.variables, via_get),
    };
    request.set_parsed_query(doc);
    inspection
}

/// The executor WebSocket operations run on: the schema behind [`admit`] (caps only: a
/// WebSocket carries no per-request cost budget).
#[derive(Clone)]
pub(crate) struct AdmittedExecutor(pub SharedState);

impl Executor for AdmittedExecutor {
    async fn execute(&self, mut request: Request) -> Response {
        match admit(&self.0, &mut request, None, false).refusal {
            Some(refusal) => Response::from_errors(vec![refusal]),
            None => self.0.schema.execute(request).await,
        }
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match admit(&self.0, &mut request, None, false).refusal {
            Some(refusal) => {
                stream::once(async move { Response::from_errors(vec![refusal]) }).boxed()
            }
            None => self
                .0
                .schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default()),
        }
    }
}
