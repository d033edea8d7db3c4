//! Static analysis of one operation before it runs: depth, fields per selection level, aliases,
//! root fields and the estimated cost (IBM GraphQL cost directive conventions: objects 1,
//! scalars and enums 0, root mutation fields 10, a list costs its element times the page size
//! given by `first`/`last` on it or on the connection that holds it, [`DEFAULT_PAGE_SIZE`] when
//! neither is given; nested lists multiply).
//!
//! Fragments and inline fragments are expanded and fields sharing a response key are merged, as
//! the executor does. Introspection (`__schema`, `__type`, `__typename`) is exempt from depth and
//! cost, but its fields still count towards the width and alias caps. The work is bounded: at
//! most [`MAX_STEPS`] field visits and [`MAX_NESTING`] levels, whatever fragments do.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Name, Positioned, Value, Variables};

/// Page size assumed for a list when the client gives neither `first` nor `last`; the server's
/// own default page size.
pub const DEFAULT_PAGE_SIZE: u64 = nova_core::PageRequest::DEFAULT_LIMIT as u64;

/// Largest page the server returns (`first`/`last` above it are refused by the resolvers), so
/// the largest page size the estimate uses.
pub const MAX_PAGE_SIZE: u64 = nova_core::PageRequest::MAX_LIMIT as u64;

/// Cost of each root field of a mutation (instead of the object weight 1).
pub const MUTATION_WEIGHT: u64 = 10;

/// Most field visits one analysis may make (fragments spread many times multiply the work).
pub const MAX_STEPS: usize = 50_000;

/// Deepest nesting the analysis follows, introspection included (a hard backstop: the
/// configured depth limit applies to everything else).
pub const MAX_NESTING: usize = 64;

/// What the analysis needs to know about the schema's types.
pub trait TypeInfo {
    /// The declared type of `field` on the composite type `type_name` (`"[Post!]!"` style), and
    /// whether it takes a `first` or `last` argument; `None` when there is no such field.
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo>;
    /// Whether the named type is an object, interface or union.
    fn is_composite(&self, type_name: &str) -> bool;
    fn query_type(&self) -> &str;
    fn mutation_type(&self) -> Option<&str>;
}

/// The schema facts about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// The declared type, e.g. `"[PostEdge!]!"`.
    pub ty: String,
    /// The field takes `first`/`last` (a paginated list or connection).
    pub sliced: bool,
}

impl FieldInfo {
    fn is_list(&self) -> bool {
        self.ty.contains('[')
    }

    fn named_type(&self) -> &str {
        self.ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
    }
}

/// The configured caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub max_depth: usize,
    pub max_fields_per_level: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_cost: u64,
}

/// The facts about an operation the caps are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Deepest field nesting outside introspection (`{ me { id } }` is 2).
    pub depth: usize,
    /// Most distinct response keys in one selection set.
    pub widest_level: usize,
    /// Fields selected under an alias, counted as often as fragments expand them.
    pub aliases: usize,
    /// Distinct response keys at the root.
    pub root_fields: usize,
    /// Estimated cost.
    pub cost: u64,
    pub is_mutation: bool,
    /// Root response keys that are introspection fields (`__schema`, `__type`): their data is
    /// left out of the actual cost.
    pub introspection_keys: Vec<String>,
}

/// Why an operation is refused before it runs; the `Display` text is the client's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooDeep { depth: usize, max: usize },
    TooWide { fields: usize, max: usize },
    TooManyAliases { aliases: usize, max: usize },
    TooManyRootFields { fields: usize, max: usize },
    TooCostly { cost: u64, max: u64 },
    TooLarge,
    FragmentCycle { name: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooDeep { depth, max } => {
                write!(f, "query depth {depth} exceeds the maximum of {max}")
            }
            Refusal::TooWide { fields, max } => write!(
                f,
                "a selection set selects {fields} fields; at most {max} are allowed at one level"
            ),
            Refusal::TooManyAliases { aliases, max } => write!(
                f,
                "the query uses {aliases} aliases; at most {max} are allowed"
            ),
            Refusal::TooManyRootFields { fields, max } => write!(
                f,
                "the query selects {fields} root fields; at most {max} are allowed"
            ),
            Refusal::TooCostly { cost, max } => write!(
                f,
                "query cost {cost} exceeds the maximum of {max} per request"
            ),
            Refusal::TooLarge => f.write_str("the query is too large to analyse"),
            Refusal::FragmentCycle { name } => {
                write!(
                    f,
                    "fragment {name} spreads itself, directly or through other fragments"
                )
            }
        }
    }
}

impl Analysis {
    /// The first cap the operation exceeds.
    pub fn check(&self, caps: &Caps) -> Result<(), Refusal> {
        if self.depth > caps.max_depth {
            return Err(Refusal::TooDeep {
                depth: self.depth,
                max: caps.max_depth,
            });
        }
        if self.widest_level > caps.max_fields_per_level {
            return Err(Refusal::TooWide {
                fields: self.widest_level,
                max: caps.max_fields_per_level,
            });
        }
        if self.aliases > caps.max_aliases {
            return Err(Refusal::TooManyAliases {
                aliases: self.aliases,
                max: caps.max_aliases,
            });
        }
        if self.root_fields > caps.max_root_fields {
            return Err(Refusal::TooManyRootFields {
                fields: self.root_fields,
                max: caps.max_root_fields,
            });
        }
        if self.cost > caps.max_cost {
            return Err(Refusal::TooCostly {
                cost: self.cost,
                max: caps.max_cost,
            });
        }
        Ok(())
    }
}

/// The operation a request runs: the named one, or the only one.
pub fn select_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

struct Walker<'a, T: TypeInfo> {
    doc: &'a ExecutableDocument,
    types: &'a T,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    steps: usize,
    analysis: Analysis,
}

/// Fields selected at one level, merged by response key (in order of first appearance), each
/// with the type it was selected on.
type Merged<'a> = Vec<(&'a str, Vec<(&'a Field, Rc<str>)>)>;

impl<'a, T: TypeInfo> Walker<'a, T> {
    /// Expands fragments and inline fragments of `sets` (each selected on a type) into fields
    /// merged by response key. Fragment cycles are cut (validation reports them).
    fn collect(&mut self, sets: &[(&'a SelectionSet, Rc<str>)]) -> Result<Merged<'a>, Refusal> {
        let mut merged: Merged<'a> = Vec::new();
        let mut index = HashMap::new();
        for (set, on) in sets {
            let mut visiting = HashSet::new();
            self.collect_into(set, on, 0, &mut visiting, &mut index, &mut merged)?;
        }
        Ok(merged)
    }

    fn collect_into(
        &mut self,
        set: &'a SelectionSet,
        on: &Rc<str>,
        nesting: usize,
        visiting: &mut HashSet<&'a str>,
        index: &mut HashMap<&'a str, usize>,
        merged: &mut Merged<'a>,
    ) -> Result<(), Refusal> {
        if nesting > MAX_NESTING {
            return Err(Refusal::TooLarge);
        }
        for item in &set.items {
            self.step()?;
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.alias.is_some() {
                        self.analysis.aliases += 1;
                    }
                    let key = field.response_key().node.as_str();
                    match index.get(key).and_then(|&i| merged.get_mut(i)) {
                        Some((_, fields)) => fields.push((field, Rc::clone(on))),
                        None => {
                            index.insert(key, merged.len());
                            merged.push((key, vec![(field, Rc::clone(on))]));
                        }
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let on = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map_or_else(|| Rc::clone(on), |c| Rc::from(c.node.on.node.as_str()));
                    self.collect_into(
                        &fragment.node.selection_set.node,
                        &on,
                        nesting + 1,
                        visiting,
                        index,
                        merged,
                    )?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.doc.fragments.get(name) else {
                        continue;
                    };
                    if !visiting.insert(name) {
                        // Validation would refuse it too, but only after async-graphql's
                        // recursion check has expanded it (exponentially when it spreads
                        // itself twice).
                        return Err(Refusal::FragmentCycle {
                            name: name.to_owned(),
                        });
                    }
                    {
                        let on = Rc::from(fragment.node.type_condition.node.on.node.as_str());
                        self.collect_into(
                            &fragment.node.selection_set.node,
                            &on,
                            nesting + 1,
                            visiting,
                            index,
                            merged,
                        )?;
                        visiting.remove(name);
                    }
                }
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), Refusal> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            Err(Refusal::TooLarge)
        } else {
            Ok(())
        }
    }

    /// The page size a field's `first`/`last` argument asks for, variables resolved.
    fn page_size(&self, field: &Field) -> Option<u64> {
        let mut size = None;
        for (name, value) in &field.arguments {
            if name.node != "first" && name.node != "last" {
                continue;
            }
            let value = value
                .node
                .clone()
                .into_const_with(|name| self.variable(&name).ok_or(()))
                .ok();
            if let Some(Value::Number(n)) = value {
                // Pages never hold more than the server's maximum; a larger `first` is refused
                // by the resolver with its own, clearer message.
                let n = n
                    .as_i64()
                    .map_or(MAX_PAGE_SIZE, |n| u64::try_from(n.max(0)).unwrap_or(0))
                    .min(MAX_PAGE_SIZE);
                size = Some(size.map_or(n, |s: u64| s.max(n)));
            }
        }
        size
    }

    fn variable(&self, name: &Name) -> Option<Value> {
        if let Some(value) = self.variables.get(name) {
            return Some(value.clone());
        }
        self.operation
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node == *name)
            .and_then(|d| d.node.default_value.as_ref())
            .map(|v| v.node.clone())
    }

    /// Analyses the fields merged at one level, `level` deep (the root's fields are level 1).
    /// Returns their cost. `page` is the page size of the connection they belong to.
    fn level(
        &mut self,
        fields: &Merged<'a>,
        level: usize,
        page: Option<u64>,
        root_mutation: bool,
    ) -> Result<u64, Refusal> {
        if level > MAX_NESTING {
            return Err(Refusal::TooDeep {
                depth: level,
                max: MAX_NESTING,
            });
        }
        self.analysis.widest_level = self.analysis.widest_level.max(fields.len());
        let mut total: u64 = 0;
        for (key, group) in fields {
            let Some((first, on)) = group.first() else {
                continue;
            };
            let name = first.name.node.as_str();
            if name.starts_with("__") {
                if level == 1 && name != "__typename" {
                    self.analysis.introspection_keys.push((*key).to_owned());
                }
                // Exempt from depth and cost; still walked for the width and alias caps.
                self.untyped(group, level)?;
                continue;
            }
            self.analysis.depth = self.analysis.depth.max(level);
            let Some(info) = self.types.field(on.as_ref(), name) else {
                // Unknown field: validation reports it; its selections are still bounded.
                self.untyped(group, level)?;
                continue;
            };
            let own_page = if info.sliced {
                Some(
                    group
                        .iter()
                        .filter_map(|(f, _)| self.page_size(f))
                        .max()
                        .unwrap_or(DEFAULT_PAGE_SIZE),
                )
            } else {
                None
            };
            let named = info.named_type().to_owned();
            let composite = self.types.is_composite(&named);
            let weight = if root_mutation {
                MUTATION_WEIGHT
            } else {
                u64::from(composite)
            };
            let children = if composite {
                let named: Rc<str> = Rc::from(named.as_str());
                let sets: Vec<(&'a SelectionSet, Rc<str>)> = group
                    .iter()
                    .map(|(f, _)| (&f.selection_set.node, Rc::clone(&named)))
                    .collect();
                let merged = self.collect(&sets)?;
                self.level(&merged, level + 1, own_page, false)?
            } else {
                // A leaf with selections is invalid; still bounded.
                self.untyped(group, level)?;
                0
            };
            let multiplier = if info.is_list() {
                own_page.or(page).unwrap_or(DEFAULT_PAGE_SIZE)
            } else {
                1
            };
            total =
                total.saturating_add(multiplier.saturating_mul(weight.saturating_add(children)));
        }
        Ok(total)
    }

    /// Walks selections without schema types (introspection, unknown fields): the width,
    /// alias, nesting and work bounds apply, depth and cost do not.
    fn untyped(&mut self, group: &[(&'a Field, Rc<str>)], level: usize) -> Result<(), Refusal> {
        let mut stack: Vec<(Vec<&'a SelectionSet>, usize)> = vec![(
            group.iter().map(|(f, _)| &f.selection_set.node).collect(),
            level + 1,
        )];
        while let Some((sets, level)) = stack.pop() {
            if level > MAX_NESTING {
                return Err(Refusal::TooDeep {
                    depth: level,
                    max: MAX_NESTING,
                });
            }
            let none: Rc<str> = Rc::from("");
            let sets: Vec<(&'a SelectionSet, Rc<str>)> =
                sets.into_iter().map(|s| (s, Rc::clone(&none))).collect();
            let merged = self.collect(&sets)?;
            self.analysis.widest_level = self.analysis.widest_level.max(merged.len());
            for (_, fields) in merged {
                let children: Vec<&'a SelectionSet> = fields
                    .iter()
                    .map(|(f, _)| &f.selection_set.node)
                    .filter(|s| !s.items.is_empty())
                    .collect();
                if !children.is_empty() {
                    stack.push((children, level + 1));
                }
            }
        }
        Ok(())
    }
}

/// Analyses the operation `operation_name` selects in `doc` (nothing when it selects none:
/// execution reports that).
pub fn analyze<T: TypeInfo>(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    types: &T,
) -> Result<Analysis, Refusal> {
    let Some(operation) = select_operation(doc, operation_name) else {
        return Ok(Analysis::default());
    };
    let operation = &operation.node;
    let root: Rc<str> = match operation.ty {
        OperationType::Query => Rc::from(types.query_type()),
        OperationType::Mutation => Rc::from(types.mutation_type().unwrap_or_default()),
        OperationType::Subscription => Rc::from(""),
    };
    let mut walker = Walker {
        doc,
        types,
        operation,
        variables,
        steps: 0,
        analysis: Analysis {
            is_mutation: operation.ty == OperationType::Mutation,
            ..Analysis::default()
        },
    };
    let merged = walker.collect(&[(&operation.selection_set.node, root)])?;
    walker.analysis.root_fields = merged.len();
    let cost = walker.level(&merged, 1, None, walker.analysis.is_mutation)?;
    walker.analysis.cost = cost;
    Ok(walker.analysis)
}

/// The cost of what a response actually returned: every object in `data` costs 1, every root
/// field of a mutation 10 instead; the data of root introspection fields is left out.
pub fn actual_cost(data: &Value, analysis: &Analysis) -> u64 {
    let Value::Object(root) = data else {
        return 0;
    };
    let mut total: u64 = 0;
    for (key, value) in root {
        if analysis
            .introspection_keys
            .iter()
            .any(|k| k == key.as_str())
        {
            continue;
        }
        let objects = count_objects(value);
        total = total.saturating_add(if analysis.is_mutation {
            let own = u64::from(matches!(value, Value::Object(_)));
            MUTATION_WEIGHT.saturating_add(objects.saturating_sub(own))
        } else {
            objects
        });
    }
    total
}

fn count_objects(value: &Value) -> u64 {
    let mut count: u64 = 0;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                count = count.saturating_add(1);
                stack.extend(map.values());
            }
            Value::List(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A miniature of Nova's schema.
    struct Types(HashMap<&'static str, Vec<(&'static str, &'static str, bool)>>);

    fn types() -> Types {
        let mut map = HashMap::new();
        map.insert(
            "Q",
            vec![
                ("me", "User!", false),
                ("homeFeed", "PostConnection!", true),
                ("post", "Post", false),
            ],
        );
        map.insert(
            "M",
            vec![("createPost", "Post!", false), ("ok", "Boolean!", false)],
        );
        map.insert(
            "User",
            vec![
                ("id", "ID!", false),
                ("username", "String!", false),
                ("followers", "UserConnection!", true),
            ],
        );
        map.insert(
            "UserConnection",
            vec![
                ("edges", "[UserEdge!]!", false),
                ("nodes", "[User!]!", false),
                ("pageInfo", "PageInfo!", false),
            ],
        );
        map.insert(
            "UserEdge",
            vec![("node", "User!", false), ("cursor", "String!", false)],
        );
        map.insert(
            "PostConnection",
            vec![
                ("edges", "[PostEdge!]!", false),
                ("nodes", "[Post!]!", false),
                ("pageInfo", "PageInfo!", false),
            ],
        );
        map.insert(
            "PostEdge",
            vec![("node", "Post!", false), ("cursor", "String!", false)],
        );
        map.insert(
            "Post",
            vec![
                ("id", "ID!", false),
                ("author", "User!", false),
                ("body", "String!", false),
            ],
        );
        map.insert("PageInfo", vec![("hasNextPage", "Boolean!", false)]);
        Types(map)
    }

    impl TypeInfo for Types {
        fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo> {
            self.0
                .get(type_name)?
                .iter()
                .find(|(name, _, _)| *name == field)
                .map(|(_, ty, sliced)| FieldInfo {
                    ty: (*ty).to_owned(),
                    sliced: *sliced,
                })
        }
        fn is_composite(&self, type_name: &str) -> bool {
            self.0.contains_key(type_name)
        }
        fn query_type(&self) -> &str {
            "Q"
        }
        fn mutation_type(&self) -> Option<&str> {
            Some("M")
        }
    }

    fn run(query: &str, variables: serde_json::Value) -> Result<Analysis, Refusal> {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        analyze(&doc, None, &Variables::from_json(variables), &types())
    }

    fn cost(query: &str) -> u64 {
        run(query, serde_json::json!({})).expect("analyses").cost
    }

    #[test]
    fn objects_cost_one_scalars_nothing_and_lists_multiply_by_their_page() {
        assert_eq!(cost("{ me { id username } }"), 1);
        // 1 connection + 20 edges × (edge + post + author).
        assert_eq!(
            cost("{ homeFeed(first: 20) { edges { node { id author { username } } } } }"),
            61
        );
        // The default page size when `first` is omitted.
        assert_eq!(cost("{ homeFeed { nodes { id } } }"), 21);
        assert_eq!(
            cost("{ homeFeed(first: 100) { nodes { id } pageInfo { hasNextPage } } }"),
            102
        );
        // Beyond the largest page the estimate stops growing (the resolver refuses the page).
        assert_eq!(cost("{ homeFeed(first: 1000000) { nodes { id } } }"), 101);
        // Nested lists multiply: me + connection + 10 × (edge + user + connection + 5 users).
        assert_eq!(
            cost("{ me { followers(first: 10) { edges { node { followers(first: 5) { nodes { id } } } } } } }"),
            1 + 1 + 10 * (1 + 1 + 1 + 5)
        );
    }

    #[test]
    fn variables_and_their_defaults_give_the_page_size() {
        let q = "query($n: Int = 50) { homeFeed(first: $n) { nodes { id } } }";
        assert_eq!(run(q, serde_json::json!({ "n": 5 })).expect("ok").cost, 6);
        assert_eq!(run(q, serde_json::json!({})).expect("ok").cost, 51);
        assert_eq!(
            run(
                "{ homeFeed(last: -3) { nodes { id } } }",
                serde_json::json!({})
            )
            .expect("ok")
            .cost,
            1
        );
    }

    #[test]
    fn mutations_cost_ten_per_root_field() {
        let analysis = run(
            "mutation { a: createPost { id author { id } } b: ok }",
            serde_json::json!({}),
        )
        .expect("ok");
        assert_eq!(analysis.cost, 10 + 1 + 10);
        assert_eq!(analysis.root_fields, 2);
        assert_eq!(analysis.aliases, 2);
    }

    #[test]
    fn fragments_expand_and_fields_sharing_a_key_merge() {
        let q = "{ ...F me { username } } fragment F on Q { me { id ... on User { id } } }";
        let analysis = run(q, serde_json::json!({})).expect("ok");
        assert_eq!(analysis.cost, 1);
        assert_eq!(analysis.root_fields, 1);
        assert_eq!(analysis.depth, 2);
        assert_eq!(analysis.widest_level, 2);
    }

    #[test]
    fn introspection_is_exempt_from_depth_and_cost() {
        let q = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } me { id } }";
        let analysis = run(q, serde_json::json!({})).expect("ok");
        assert_eq!(analysis.depth, 2);
        assert_eq!(analysis.cost, 1);
        assert_eq!(analysis.introspection_keys, vec!["__schema".to_owned()]);
    }

    #[test]
    fn cycles_and_fragment_explosions_are_bounded() {
        // A cycle is refused before async-graphql's recursion check expands it.
        assert_eq!(
            run(
                "{ ...A } fragment A on Q { ...A ...A me { id } }",
                serde_json::json!({})
            ),
            Err(Refusal::FragmentCycle { name: "A".into() })
        );
        // Unknown fields are walked too.
        let mut q = String::from("{ ...F0 }");
        for i in 0..25 {
            q.push_str(&format!(
                " fragment F{i} on Q {{ nope {{ ...F{n} ...F{n} }} }}",
                n = i + 1
            ));
        }
        q.push_str(" fragment F25 on Q { me { id } }");
        assert_eq!(run(&q, serde_json::json!({})), Err(Refusal::TooLarge));
        // 25 fragments each spreading the next twice would be 2^25 expansions.
        let mut q = String::from("{ ...F0 }");
        for i in 0..25 {
            q.push_str(&format!(
                " fragment F{i} on Q {{ me {{ id }} a{i}: me {{ id }} ...F{next} ...F{next} }}",
                next = i + 1
            ));
        }
        q.push_str(" fragment F25 on Q { me { id } }");
        let started = std::time::Instant::now();
        let result = run(&q, serde_json::json!({}));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(matches!(result, Err(Refusal::TooLarge)), "{result:?}");
    }

    #[test]
    fn caps_are_checked_in_order() {
        let caps = Caps {
            max_depth: 3,
            max_fields_per_level: 2,
            max_aliases: 1,
            max_root_fields: 1,
            max_cost: 10,
        };
        let deep = run(
            "{ me { followers { nodes { id } } } }",
            serde_json::json!({}),
        )
        .expect("ok");
        assert_eq!(deep.depth, 4);
        assert_eq!(
            deep.check(&caps),
            Err(Refusal::TooDeep { depth: 4, max: 3 })
        );
        let wide = run("{ post { id author { id } body } }", serde_json::json!({})).expect("ok");
        assert_eq!(
            wide.check(&caps),
            Err(Refusal::TooWide { fields: 3, max: 2 })
        );
        let aliased = run("{ a: me { id } }", serde_json::json!({})).expect("ok");
        assert!(aliased.check(&caps).is_ok());
        let aliased = run("{ a: me { x: id } }", serde_json::json!({})).expect("ok");
        assert_eq!(
            aliased.check(&caps),
            Err(Refusal::TooManyAliases { aliases: 2, max: 1 })
        );
        let roots = run("{ me { id } post { id } }", serde_json::json!({})).expect("ok");
        assert_eq!(
            roots.check(&caps),
            Err(Refusal::TooManyRootFields { fields: 2, max: 1 })
        );
        let costly = run("{ homeFeed { nodes { id } } }", serde_json::json!({})).expect("ok");
        assert_eq!(
            costly.check(&caps),
            Err(Refusal::TooCostly { cost: 21, max: 10 })
        );
    }

    #[test]
    fn the_actual_cost_counts_the_objects_returned() {
        let query = Analysis::default();
        let value = |json: serde_json::Value| Value::from_json(json).expect("valid JSON");
        let data = value(serde_json::json!({
            "homeFeed": { "edges": [
                { "node": { "id": "1", "author": { "username": "a" } } },
                { "node": { "id": "2", "author": { "username": "b" } } }
            ] },
            "me": null
        }));
        assert_eq!(actual_cost(&data, &query), 1 + 2 * 3);
        let mutation = Analysis {
            is_mutation: true,
            ..Analysis::default()
        };
        let data =
            value(serde_json::json!({ "a": { "id": "1", "author": { "id": "2" } }, "b": true }));
        assert_eq!(actual_cost(&data, &mutation), 10 + 1 + 10);
        let introspection = Analysis {
            introspection_keys: vec!["s".into()],
            ..Analysis::default()
        };
        assert_eq!(
            actual_cost(
                &value(serde_json::json!({ "s": { "types": [{}, {}] } })),
                &introspection
            ),
            0
        );
    }
}
