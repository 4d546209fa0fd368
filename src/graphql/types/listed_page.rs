//! The edges of a connection page, answered in one loop when every field selected on them is
//! plain (held by the connection's row, see `listed`): the selection is read once for the page
//! rather than once per edge, and no edge gets a future of its own.
//!
//! Registers as `[ConnectionEdge!]!`, as a `Vec` of edges would. Any other selection (a field
//! that needs a resolver, a directive the executor applies) goes edge by edge through
//! `ListedEdge`, so a failing field is still reported at its edge's path.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

use super::listed::{ListedEdge, Plain, VerificationField};
use super::selection::{self, Shape};

/// The edges of `Team.connections`.
pub struct ListedEdges(pub Vec<ListedEdge>);

impl OutputType for ListedEdges {
    fn type_name() -> Cow<'static, str> {
        <Vec<ListedEdge> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<ListedEdge> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<ListedEdge> as OutputType>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        // No per-item extension to call: the schema registers none (see `selection`).
        if let Some(plan) = edge_plan(ctx) {
            return Ok(Value::List(self.0.iter().map(|edge| answer_edge(&plan, edge)).collect()));
        }
        OutputType::resolve(&self.0, ctx, field).await
    }
}

/// A field selected on an edge, all of whose answer the edge holds.
enum EdgeField {
    Typename,
    Cursor,
    Node(Shape<NodeField>),
}

/// A field selected on a listed connection, all of whose answer its row holds.
enum NodeField {
    Plain(Plain),
    LastVerification(Shape<VerificationField>),
}

/// The selection on every edge of the page; `None` when any part of it is not plain.
fn edge_plan(ctx: &ContextSelectionSet<'_>) -> Option<Shape<EdgeField>> {
    let fields = selection::fields(ctx, "ConnectionEdge")?;
    let mut plan = Vec::with_capacity(fields.len());
    for field in fields {
        let kind = match field.node.name.node.as_str() {
            "__typename" => EdgeField::Typename,
            "cursor" => EdgeField::Cursor,
            "node" => {
                let ctx_field = ctx.with_field(field);
                EdgeField::Node(node_plan(&ctx_field.with_selection_set(&field.node.selection_set))?)
            }
            _ => return None,
        };
        plan.push((field.node.response_key().node.clone(), kind));
    }
    Some(Shape::new(plan))
}

fn node_plan(ctx: &ContextSelectionSet<'_>) -> Option<Shape<NodeField>> {
    let fields = selection::fields(ctx, "Connection")?;
    let mut plan = Vec::with_capacity(fields.len());
    for field in fields {
        let name = field.node.name.node.as_str();
        let kind = if name == "lastVerification" {
            let ctx_field = ctx.with_field(field);
            let verification =
                VerificationField::plan(&ctx_field.with_selection_set(&field.node.selection_set))?;
            NodeField::LastVerification(Shape::new(verification))
        } else {
            NodeField::Plain(Plain::of(name)?)
        };
        plan.push((field.node.response_key().node.clone(), kind));
    }
    Some(Shape::new(plan))
}

/// One edge as the executor would answer it.
fn answer_edge(plan: &Shape<EdgeField>, edge: &ListedEdge) -> Value {
    let edge = &edge.0;
    let c = &edge.node.0;
    plan.answer(|field| match field {
        EdgeField::Typename => Value::String("ConnectionEdge".to_owned()),
        EdgeField::Cursor => Value::String(edge.cursor.clone()),
        EdgeField::Node(plan) => plan.answer(|field| match field {
            NodeField::Plain(plain) => plain.value(c),
            NodeField::LastVerification(plan) => {
                c.last_verification.as_ref().map_or(Value::Null, |v| plan.answer(|field| field.value(v)))
            }
        }),
    })
}
