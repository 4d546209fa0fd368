//! How deep a query's selections go, measured apart for data and for introspection.
//!
//! Data fields can fan out into the database at every level, so their depth is kept small.
//! Introspection walks a schema that is finite and in memory, and the standard introspection
//! query (`getIntrospectionQuery` of graphql-js) nests type references about a dozen levels
//! deep: it gets a limit of its own, so GraphiQL and code generators are always answered.
//! Fragment spreads are followed (they count as the level of the fragment's selections); a
//! spread cycle is left to validation, which refuses it.
//!
//! Following spreads is also how execution sees a document, so the walk counts the selections
//! it visits: a fragment spread twice in a fragment spread twice, and so on, expands to 2^n
//! selections from a document of a few hundred bytes, and validation, complexity and execution
//! would each walk them all on a GraphQL thread (no await point lets them be cancelled). Past
//! `max_selections` the document is refused.

use std::cell::Cell;
use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Introspection nests `ofType` nine levels below a field's or argument's type.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// `__schema` and `__type` selections in one document. Introspection weighs nothing in the
/// complexity budget, yet a whole schema answers about 60 KB: a tool asks for it once, and a
/// document of two hundred aliased copies would answer 12 MB.
pub const MAX_INTROSPECTION_ROOTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepthRefusal {
    #[error("the query is nested too deep: its selections go deeper than {limit} levels")]
    Data { limit: usize },
    #[error("the introspection query is nested too deep: deeper than {limit} levels")]
    Introspection { limit: usize },
    #[error(
        "the query expands to more than {limit} selections once its fragments are spread; spread large \
         fragments fewer times"
    )]
    Expanded { limit: usize },
    #[error("the query asks for introspection (`__schema`, `__type`) more than {limit} times")]
    IntrospectionRoots { limit: usize },
}

/// Checks every operation of `document`, which may expand to `max_selections` selections in all.
pub fn check(
    document: &ExecutableDocument,
    max_data_depth: usize,
    max_selections: usize,
) -> Result<(), DepthRefusal> {
    let walker = Walker {
        document,
        max_data_depth,
        max_selections,
        visited: Cell::new(0),
        introspections: Cell::new(0),
    };
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
    max_selections: usize,
    /// Selections visited so far, every spread of a fragment counted again.
    visited: Cell<usize>,
    /// Introspection roots met so far, counted the same way.
    introspections: Cell<usize>,
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
            self.visited.set(self.visited.get() + 1);
            if self.visited.get() > self.max_selections {
                return Err(DepthRefusal::Expanded { limit: self.max_selections });
            }
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.selection_set.node.items.is_empty() {
                        continue;
                    }
                    let name = field.name.node.as_str();
                    let (kind, depth) = match kind {
                        Kind::Data if name.starts_with("__") => {
                            self.introspections.set(self.introspections.get() + 1);
                            if self.introspections.get() > MAX_INTROSPECTION_ROOTS {
                                return Err(DepthRefusal::IntrospectionRoots {
                                    limit: MAX_INTROSPECTION_ROOTS,
                                });
                            }
                            (Kind::Introspection, 1)
                        }
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
        check(&parse_query(query).expect("a valid document"), max, 10_000)
    }

    /// `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } ... fragment Fn on Query { __typename }`
    fn doubling_fragments(levels: usize) -> String {
        let mut query = String::from("query { ...F0 }");
        for level in 0..levels {
            query.push_str(&format!(
                " fragment F{level} on Query {{ ...F{next} ...F{next} }}",
                next = level + 1
            ));
        }
        query.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
        query
    }

    #[test]
    fn introspection_is_answered_a_few_times_per_document() {
        let copies =
            |n: usize| (0..n).map(|i| format!("s{i}: __schema {{ types {{ name }} }}")).collect::<Vec<_>>();
        let allowed = format!("{{ {} t: __type(name: \"Query\") {{ name }} }}", copies(9).join(" "));
        assert_eq!(depth_ok(&allowed, 3), Ok(()));
        let refused = format!("{{ {} }}", copies(11).join(" "));
        assert_eq!(
            depth_ok(&refused, 3),
            Err(DepthRefusal::IntrospectionRoots { limit: MAX_INTROSPECTION_ROOTS })
        );
        // Counted where fragments are spread, too.
        let spread = "{ ...F ...F ...F ...F ...F ...F } fragment F on Query { a: __schema { types { name } } b: __schema { types { name } } }";
        assert!(depth_ok(spread, 3).is_err());
    }

    #[test]
    fn fragments_that_expand_past_the_budget_are_refused() {
        let document = parse_query(doubling_fragments(11)).expect("a valid document");
        // 2^11 `__typename` and the 4,095 spreads above them: 6,143 selections.
        assert_eq!(check(&document, 12, 10_000), Ok(()));
        assert_eq!(check(&document, 12, 5_000), Err(DepthRefusal::Expanded { limit: 5_000 }));
        // Sixty levels would be 2^60 selections: refused as soon as the budget is spent.
        let bomb = parse_query(doubling_fragments(60)).expect("a valid document");
        assert_eq!(check(&bomb, 12, 10_000), Err(DepthRefusal::Expanded { limit: 10_000 }));
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
