//! An async-graphql extension that records which kind of operation a request runs (for metrics
//! and logs), refuses mutations sent over GET, mutations with more root fields than
//! [`MAX_MUTATION_ROOT_FIELDS`] and requests that leave a required variable without a value,
//! using the parse the executor does anyway.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Positioned, ServerError, ServerResult, Value, Variables};

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

fn selected<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Most root fields (aliases included) one mutation may run. Root mutation fields run one after
/// another and some are deliberately slow (password hashing), so without a cap a single small
/// request could run a thousand sign-in attempts: a brute-force amplifier and a request that
/// outlives its timeout.
pub const MAX_MUTATION_ROOT_FIELDS: usize = 10;

/// Collects the response keys (alias or name) a selection set selects at its own level, through
/// fragments. Fields sharing a key are merged by the executor, so they count once; fragment
/// cycles are skipped here (validation reports them).
fn collect_root_keys<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    visiting: &mut HashSet<&'a str>,
    keys: &mut HashSet<&'a str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let key = field.node.alias.as_ref().unwrap_or(&field.node.name);
                keys.insert(key.node.as_str());
            }
            Selection::InlineFragment(fragment) => {
                collect_root_keys(doc, &fragment.node.selection_set.node, visiting, keys);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if let Some(fragment) = doc.fragments.get(name) {
                    if visiting.insert(name) {
                        collect_root_keys(doc, &fragment.node.selection_set.node, visiting, keys);
                        visiting.remove(name);
                    }
                }
            }
        }
    }
}

fn check_mutation_size(
    doc: &ExecutableDocument,
    operation: &Positioned<OperationDefinition>,
) -> ServerResult<()> {
    if operation.node.ty != OperationType::Mutation {
        return Ok(());
    }
    let mut keys = HashSet::new();
    collect_root_keys(
        doc,
        &operation.node.selection_set.node,
        &mut HashSet::new(),
        &mut keys,
    );
    let count = keys.len();
    if count > MAX_MUTATION_ROOT_FIELDS {
        return Err(ServerError::new(
            format!(
                "a mutation may select at most {MAX_MUTATION_ROOT_FIELDS} root fields; this one selects {count}"
            ),
            Some(operation.pos),
        ));
    }
    Ok(())
}

/// The spec's "coerce variable values" step for what async-graphql leaves to execution time: a
/// variable of non-null type without a default must be given a non-null value. Without this the
/// missing value surfaces mid-execution as an uncoded field error instead of a request error.
fn check_required_variables(
    operation: &Positioned<OperationDefinition>,
    variables: &Variables,
) -> ServerResult<()> {
    for definition in &operation.node.variable_definitions {
        let definition = &definition.node;
        let ty = &definition.var_type.node;
        if !ty.nullable && definition.default_value.is_none() {
            let name = &definition.name.node;
            let given = variables.get(name.as_str());
            if given.is_none() || given == Some(&Value::Null) {
                return Err(ServerError::new(
                    format!("variable ${name} of required type {ty} was not provided"),
                    Some(definition.name.pos),
                ));
            }
        }
    }
    Ok(())
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
            let operation = selected(&doc, info.operation_name.as_deref());
            let ty = operation.map(|op| op.node.ty);
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
            if let Some(operation) = operation {
                check_mutation_size(&doc, operation)?;
                check_required_variables(operation, variables)?;
            }
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_keys(query: &str) -> usize {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        let Some(operation) = selected(&doc, None) else {
            panic!("one operation");
        };
        let mut keys = HashSet::new();
        collect_root_keys(
            &doc,
            &operation.node.selection_set.node,
            &mut HashSet::new(),
            &mut keys,
        );
        keys.len()
    }

    #[test]
    fn root_fields_are_counted_by_response_key_through_fragments_and_cycles() {
        assert_eq!(root_keys("mutation { a: f b: f f }"), 3);
        assert_eq!(root_keys("mutation { f f a: f }"), 2);
        assert_eq!(
            root_keys("mutation { ...F ...F } fragment F on M { a: f b: f }"),
            2
        );
        assert_eq!(
            root_keys("mutation { ... on M { a: f ... { b: f } } c: f }"),
            3
        );
        assert_eq!(
            root_keys("mutation { ...F } fragment F on M { a: f ...F }"),
            1
        );
        assert_eq!(root_keys("mutation { ...Missing }"), 0);
    }
}
