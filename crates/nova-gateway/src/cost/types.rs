//! The schema facts the cost analysis needs, read once from the schema's SDL.
//!
//! The analysis runs in the handler, before the executor (so the document is parsed once and no
//! executor extension has to run for every field); async-graphql keeps its own type registry to
//! itself outside extensions, so the edge derives this table from the SDL the schema prints.

use std::collections::HashMap;

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

use super::analyze::{FieldInfo, TypeInfo};

#[derive(Debug, Default)]
struct TypeEntry {
    composite: bool,
    fields: HashMap<String, FieldInfo>,
}

/// Object, interface and union types with their fields, and the root type names.
#[derive(Debug)]
pub struct SchemaTypes {
    query: String,
    mutation: Option<String>,
    types: HashMap<String, TypeEntry>,
}

impl SchemaTypes {
    /// Reads the types from a schema's SDL (`Schema::sdl()`).
    pub fn from_sdl(sdl: &str) -> anyhow::Result<SchemaTypes> {
        let document = async_graphql::parser::parse_schema(sdl)
            .map_err(|error| anyhow::anyhow!("parse the schema's SDL: {error}"))?;
        let mut schema = SchemaTypes {
            query: "Query".to_owned(),
            mutation: None,
            types: HashMap::new(),
        };
        let mut mutation_named = false;
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(roots) => {
                    if let Some(query) = &roots.node.query {
                        schema.query = query.node.to_string();
                    }
                    if let Some(mutation) = &roots.node.mutation {
                        schema.mutation = Some(mutation.node.to_string());
                        mutation_named = true;
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let (composite, fields) = match ty.kind {
                        TypeKind::Object(object) => (true, object.fields),
                        TypeKind::Interface(interface) => (true, interface.fields),
                        TypeKind::Union(_) => (true, Vec::new()),
                        _ => (false, Vec::new()),
                    };
                    let fields = fields
                        .into_iter()
                        .map(|field| {
                            let field = field.node;
                            let sliced = field.arguments.iter().any(|argument| {
                                matches!(argument.node.name.node.as_str(), "first" | "last")
                            });
                            let info = FieldInfo {
                                ty: field.ty.node.to_string(),
                                sliced,
                            };
                            (field.name.node.to_string(), info)
                        })
                        .collect();
                    schema
                        .types
                        .insert(ty.name.node.to_string(), TypeEntry { composite, fields });
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        if !mutation_named && schema.types.contains_key("Mutation") {
            schema.mutation = Some("Mutation".to_owned());
        }
        anyhow::ensure!(
            schema.types.contains_key(&schema.query),
            "the SDL has no query type {}",
            schema.query
        );
        Ok(schema)
    }
}

impl TypeInfo for SchemaTypes {
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo> {
        self.types.get(type_name)?.fields.get(field).cloned()
    }

    fn is_composite(&self, type_name: &str) -> bool {
        self.types
            .get(type_name)
            .is_some_and(|entry| entry.composite)
    }

    fn query_type(&self) -> &str {
        &self.query
    }

    fn mutation_type(&self) -> Option<&str> {
        self.mutation.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_graphql::extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery,
    };
    use async_graphql::parser::types::ExecutableDocument;
    use async_graphql::{SchemaEnv, ServerResult, Variables};

    use super::*;

    /// Keeps a copy of the registry the executor uses, so the SDL-derived table can be compared
    /// with it field by field.
    #[derive(Clone, Default)]
    struct CaptureRegistry(Arc<Mutex<Option<SchemaEnv>>>);

    impl ExtensionFactory for CaptureRegistry {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(self.clone())
        }
    }

    #[async_trait::async_trait]
    impl Extension for CaptureRegistry {
        async fn parse_query(
            &self,
            ctx: &ExtensionContext<'_>,
            query: &str,
            variables: &Variables,
            next: NextParseQuery<'_>,
        ) -> ServerResult<ExecutableDocument> {
            if let Ok(mut slot) = self.0.lock() {
                *slot = Some(ctx.schema_env.clone());
            }
            next.run(ctx, query, variables).await
        }
    }

    #[tokio::test]
    async fn the_sdl_table_agrees_with_the_executors_registry_on_every_field() {
        let capture = CaptureRegistry::default();
        let schema = async_graphql::Schema::build(
            nova_graphql::QueryRoot::default(),
            nova_graphql::MutationRoot::default(),
            nova_graphql::SubscriptionRoot,
        )
        .extension(capture.clone())
        .finish();
        let table = SchemaTypes::from_sdl(&schema.sdl()).expect("the SDL parses");
        let _ = schema.execute("{ __typename }").await;
        let env = capture
            .0
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .expect("the extension saw the schema");
        let registry = &env.registry;
        assert_eq!(table.query_type(), registry.query_type);
        assert_eq!(table.mutation_type(), registry.mutation_type.as_deref());
        let mut checked = 0;
        for (name, meta) in &registry.types {
            if name.starts_with("__") {
                continue;
            }
            assert_eq!(table.is_composite(name), meta.is_composite(), "{name}");
            if let Some(fields) = meta.fields() {
                for (field, field_meta) in fields {
                    if field.starts_with("__") {
                        continue;
                    }
                    let expected = FieldInfo {
                        ty: field_meta.ty.clone(),
                        sliced: field_meta.args.contains_key("first")
                            || field_meta.args.contains_key("last"),
                    };
                    assert_eq!(table.field(name, field), Some(expected), "{name}.{field}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} fields compared");
        assert_eq!(table.field("QueryRoot", "noSuchField"), None);
    }
}
