//! What kind of operation a request runs (for metrics and logs), and the refusals that follow
//! from the operation itself: mutations sent over GET, mutations with more root fields than
//! [`MAX_MUTATION_ROOT_FIELDS`] and requests that leave a required variable without a value.
//! Checked on the document the handler parses once, before the executor runs.

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Positioned, ServerError, ServerResult, Value, Variables};

/// What the handler learns about the operation a request selected.
#[derive(Debug)]
pub struct Inspection {
    /// `query`, `mutation`, `subscription`, or `unknown` when no operation matches.
    pub kind: &'static str,
    /// A mutation sent over GET: refused with 405.
    pub mutation_over_get: bool,
    /// Why the operation is refused before it runs, if it is.
    pub refusal: Option<ServerError>,
}

/// Inspects the operation `doc` selects by `operation_name`.
pub fn inspect(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    via_get: bool,
) -> Inspection {
    let operation = selected(doc, operation_name);
    let ty = operation.map(|op| op.node.ty);
    let kind = match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    };
    let mut inspection = Inspection {
        kind,
        mutation_over_get: false,
        refusal: None,
    };
    if via_get && ty == Some(OperationType::Mutation) {
        inspection.mutation_over_get = true;
        inspection.refusal = Some(ServerError::new("mutations must be sent with POST", None));
    } else if let Some(operation) = operation {
        inspection.refusal = check_mutation_size(doc, operation)
            .and_then(|()| check_required_variables(operation, variables))
            .err();
    }
    inspection
}

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
