//! An async-graphql extension that records which kind of operation a request runs (for metrics
//! and logs) and refuses mutations sent over GET, using the parse the executor does anyway.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{ServerError, ServerResult, Variables};

/// Per-request slot the handler reads after execution.
#[derive(Debug, Default)]
pub struct OperationInfo {
    pub operation_name: Option<String>,
    pub via_get: bool,
    pub kind: Mutex<Option<&'static str>>,
    pub mutation_over_get: Mutex<bool>,
}

impl OperationInfo {
    pub fn kind(&self) -> &'static str {
        self.kind.lock().ok().and_then(|k| *k).unwrap_or("unknown")
    }

    pub fn mutation_over_get(&self) -> bool {
        self.mutation_over_get.lock().map(|v| *v).unwrap_or(false)
    }
}

pub struct OperationTracker;

impl ExtensionFactory for OperationTracker {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationTrackerExtension)
    }
}

struct OperationTrackerExtension;

fn selected(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op.node.ty),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[async_trait::async_trait]
impl Extension for OperationTrackerExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(info) = ctx.data_opt::<Arc<OperationInfo>>() {
            let ty = selected(&doc, info.operation_name.as_deref());
            let kind = match ty {
                Some(OperationType::Query) => "query",
                Some(OperationType::Mutation) => "mutation",
                Some(OperationType::Subscription) => "subscription",
                None => "unknown",
            };
            if let Ok(mut slot) = info.kind.lock() {
                *slot = Some(kind);
            }
            if info.via_get && ty == Some(OperationType::Mutation) {
                if let Ok(mut flag) = info.mutation_over_get.lock() {
                    *flag = true;
                }
                return Err(ServerError::new("mutations must be sent with POST", None));
            }
        }
        Ok(doc)
    }
}
