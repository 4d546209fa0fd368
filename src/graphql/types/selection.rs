//! Answering an object's selection in place: the fields whose values are already in memory are
//! written straight into the answer, and only the others go through the type's own (derived)
//! resolver, concurrently, as async-graphql would run them.
//!
//! async-graphql's executor boxes one future per selected field and merges their results; for a
//! page of 50 connections that is most of the cost of the request. This module mirrors what its
//! executor does (`resolver_utils::container`): fragments and their type conditions, response
//! keys (aliases), repeated keys merged, `__typename`, and a failing field reported with its path
//! and left out of its object. `@skip` and `@include` are removed from the document before
//! execution starts. The schema registers no extension and no custom directive (see
//! `AppSchema`); a field carrying any other directive is left to the executor.

use async_graphql::indexmap::{self, IndexMap};
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::{ContainerType, ContextSelectionSet, Name, Positioned, Value};
use futures_util::future::join_all;

/// One selected field of an object, in selection order.
pub(super) enum Entry<'a> {
    /// Answered in place, under its response key.
    Ready(Name, Value),
    /// Left to the type's own resolver.
    Later(&'a Positioned<Field>),
}

/// The fields selected on an object of type `type_name`, fragments expanded, in order. `None`
/// when a field carries a directive, which only the executor knows how to apply.
pub(super) fn fields<'a>(
    ctx: &ContextSelectionSet<'a>,
    type_name: &str,
) -> Option<Vec<&'a Positioned<Field>>> {
    let mut out = Vec::with_capacity(ctx.item.node.items.len());
    collect(ctx, &ctx.item.node, type_name, &mut out).then_some(out)
}

fn collect<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    type_name: &str,
    out: &mut Vec<&'a Positioned<Field>>,
) -> bool {
    for selection in &set.items {
        let (condition, set) = match &selection.node {
            Selection::Field(field) => {
                if !field.node.directives.is_empty() {
                    return false;
                }
                out.push(field);
                continue;
            }
            Selection::FragmentSpread(spread) => {
                // Validation rejects an unknown fragment; the executor would say so too.
                let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node) else {
                    return false;
                };
                (Some(&fragment.node.type_condition), &fragment.node.selection_set)
            }
            Selection::InlineFragment(fragment) => {
                (fragment.node.type_condition.as_ref(), &fragment.node.selection_set)
            }
        };
        let applies = condition.is_none_or(|condition| {
            let on = condition.node.on.node.as_str();
            on == type_name
                || ctx.schema_env.registry.implements.get(type_name).is_some_and(|i| i.contains(on))
        });
        if applies && !collect(ctx, &set.node, type_name, out) {
            return false;
        }
    }
    true
}

/// The answer for `object`: the ready entries as they are, the later ones resolved by `object`
/// (all at once, so data loaders still batch across the page), merged in selection order.
pub(super) async fn finish<'a, T: ContainerType>(
    ctx: &ContextSelectionSet<'a>,
    object: &'a T,
    entries: Vec<Entry<'a>>,
) -> Value {
    let later: Vec<_> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Later(field) => Some(*field),
            Entry::Ready(..) => None,
        })
        .map(|field| {
            let ctx = ctx.clone();
            async move {
                let ctx_field = ctx.with_field(field);
                object.resolve_field(&ctx_field).await.map(Option::unwrap_or_default)
            }
        })
        .collect();
    let mut later = if later.is_empty() { Vec::new() } else { join_all(later).await }.into_iter();
    let mut results = IndexMap::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Entry::Ready(key, value) => insert_value(&mut results, key, value),
            Entry::Later(field) => match later.next().expect("one result per later field") {
                Ok(value) => insert_value(&mut results, field.node.response_key().node.clone(), value),
                Err(error) => ctx.add_error(error),
            },
        }
    }
    if results.is_empty() { Value::Null } else { Value::Object(results) }
}

/// A key selected twice keeps its first value, its objects merged (as async-graphql does).
pub(super) fn insert_value(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    let previous = match target.entry(name) {
        indexmap::map::Entry::Vacant(entry) => {
            entry.insert(value);
            return;
        }
        indexmap::map::Entry::Occupied(entry) => entry.into_mut(),
    };
    match (previous, value) {
        (Value::Object(target), Value::Object(object)) => {
            for (key, value) in object {
                insert_value(target, key, value);
            }
        }
        (Value::List(target), Value::List(list)) => {
            for (item, value) in target.iter_mut().zip(list) {
                if let (Value::Object(target), Value::Object(object)) = (item, value) {
                    for (key, value) in object {
                        insert_value(target, key, value);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The fields selected on an object, under their response keys, read once for the page.
pub(super) struct Shape<F> {
    fields: Vec<(Name, F)>,
    /// The answer's keys with no values yet, cloned for every answer so that no key is hashed
    /// again; `None` when a key repeats, and answers merge their values as the executor does.
    blank: Option<IndexMap<Name, Value>>,
}

impl<F> Shape<F> {
    pub(super) fn new(fields: Vec<(Name, F)>) -> Self {
        let blank: IndexMap<Name, Value> = fields.iter().map(|(key, _)| (key.clone(), Value::Null)).collect();
        let blank = (blank.len() == fields.len()).then_some(blank);
        Shape { fields, blank }
    }

    /// The fields, in selection order.
    pub(super) fn fields(&self) -> impl Iterator<Item = &F> {
        self.fields.iter().map(|(_, field)| field)
    }

    /// The object `value` answers field by field, a repeated key merged by `insert_value`. An
    /// empty object is null, as the executor answers it.
    pub(super) fn answer(&self, mut value: impl FnMut(&F) -> Value) -> Value {
        let object = match &self.blank {
            Some(blank) => {
                let mut object = blank.clone();
                for ((_, field), slot) in self.fields.iter().zip(object.values_mut()) {
                    *slot = value(field);
                }
                object
            }
            None => {
                let mut object = IndexMap::with_capacity(self.fields.len());
                for (key, field) in &self.fields {
                    insert_value(&mut object, key.clone(), value(field));
                }
                object
            }
        };
        if object.is_empty() { Value::Null } else { Value::Object(object) }
    }
}
