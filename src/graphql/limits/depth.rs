//! How deep a query's selections go, measured apart for data and for introspection.
//!
//! Data fields can fan out into the database at every level, so their depth is kept small.
//! Introspection walks a schema that is finite and in memory, and the standard introspection
//! query (`getIntrospectionQuery` of graphql-js) nests type references about a dozen levels
//! deep: it gets a limit of its own, so GraphiQL and code generators are always answered.
//! Fragment spreads are followed (they count as the level of the fragment's selections); a
//! spread cycle is left to validation, which refuses it.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Introspection nests `ofType` nine levels below a field's or argument's type.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepthRefusal {
    #[error("the query is nested too deep: its selections go deeper than {limit} levels")]
    Data { limit: usize },
    #[error("the introspection query is nested too deep: deeper than {limit} levels")]
    Introspection { limit: usize },
}

/// Checks every operation of `document`.
pub fn check(document: &ExecutableDocument, max_data_depth: usize) -> Result<(), DepthRefusal> {
    let walker = Walker { document, max_data_depth };
    for (_, operation) in document.operations.iter() {
        walker.selection_set(&operation.node.selection_set.node, 1, Kind::Data, &mut HashSet::new())?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Introspection,
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    max_data_depth: usize,
}

impl<'a> Walker<'a> {
    /// `depth` is the level of the fields in `set`; `path` holds the fragments being expanded.
    fn selection_set(
        &self,
        set: &'a SelectionSet,
        depth: usize,
        kind: Kind,
        path: &mut HashSet<&'a str>,
    ) -> Result<(), DepthRefusal> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.selection_set.node.items.is_empty() {
                        continue;
                    }
                    let name = field.name.node.as_str();
                    let (kind, depth) = match kind {
                        Kind::Data if name.starts_with("__") => (Kind::Introspection, 1),
                        _ => (kind, depth),
                    };
                    self.admit(kind, depth + 1)?;
                    self.selection_set(&field.selection_set.node, depth + 1, kind, path)?;
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node, depth, kind, path)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node) else {
                        continue;
                    };
                    if !path.insert(name) {
                        continue;
                    }
                    self.selection_set(&fragment.node.selection_set.node, depth, kind, path)?;
                    path.remove(name);
                }
            }
        }
        Ok(())
    }

    fn admit(&self, kind: Kind, depth: usize) -> Result<(), DepthRefusal> {
        match kind {
            Kind::Data if depth > self.max_data_depth => {
                Err(DepthRefusal::Data { limit: self.max_data_depth })
            }
            Kind::Introspection if depth > MAX_INTROSPECTION_DEPTH => {
                Err(DepthRefusal::Introspection { limit: MAX_INTROSPECTION_DEPTH })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn depth_ok(query: &str, max: usize) -> Result<(), DepthRefusal> {
        check(&parse_query(query).expect("a valid document"), max)
    }

    #[test]
    fn data_depth_counts_levels_of_selections() {
        assert_eq!(depth_ok("{ a { b { c } } }", 3), Ok(()));
        assert_eq!(depth_ok("{ a { b { c { d } } } }", 3), Err(DepthRefusal::Data { limit: 3 }));
    }

    #[test]
    fn fragments_count_where_they_are_spread() {
        let query = "{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { d } }";
        assert_eq!(depth_ok(query, 4), Ok(()));
        assert!(depth_ok(query, 3).is_err());
    }

    #[test]
    fn spread_cycles_end_the_walk() {
        let query = "{ a { ...F } } fragment F on T { b { ...F } }";
        assert_eq!(depth_ok(query, 5), Ok(()));
    }

    #[test]
    fn introspection_has_its_own_limit() {
        let mut type_ref = String::from("name");
        for _ in 0..9 {
            type_ref = format!("kind name ofType {{ {type_ref} }}");
        }
        let query = format!("{{ __schema {{ types {{ fields {{ args {{ type {{ {type_ref} }} }} }} }} }} }}");
        assert_eq!(depth_ok(&query, 3), Ok(()));
        let mut too_deep = String::from("name");
        for _ in 0..MAX_INTROSPECTION_DEPTH {
            too_deep = format!("ofType {{ {too_deep} }}");
        }
        let query = format!("{{ __type(name: \"Query\") {{ {too_deep} }} }}");
        assert!(matches!(depth_ok(&query, 3), Err(DepthRefusal::Introspection { .. })));
    }
}
