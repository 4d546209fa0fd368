//! The edges of a connection page, answered in one loop when every field selected on them is
//! plain (held by the connection's row, see `listed`): the selection is read once for the page
//! rather than once per edge, and no edge gets a future of its own.
//!
//! Registers as `[ConnectionEdge!]!`, as a `Vec` of edges would. Any other selection (a field
//! that needs a resolver, a directive the executor applies) goes edge by edge through
//! `ListedEdge`, so a failing field is still reported at its edge's path.
//!
//! `ConnectionList`, the page, lives here too, so that the connection types do not import the
//! page that imports them.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, ServerResult, SimpleObject, Value,
};

use super::listed::{ListedEdge, Plain, VerificationField};
use super::selection::{self, Shape};
use crate::domain::{ConnectionPart, ConnectionParts};
use crate::error::AppError;

// A page of `Team.connections` (a doc comment would become the type's description).
#[derive(SimpleObject)]
pub struct ConnectionList {
    pub edges: ListedEdges,
    pub page_info: super::PageInfo,
    /// How many connections match the filters, across all pages.
    pub total_count: u64,
}

/// The edges of `Team.connections`.
pub struct ListedEdges {
    pub edges: Vec<ListedEdge>,
    /// What was read of each connection: `parts_shown` of this selection.
    pub parts: ConnectionParts,
}

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
            return Ok(Value::List(self.edges.iter().map(|edge| answer_edge(&plan, edge)).collect()));
        }
        if self.parts != ConnectionParts::ALL {
            // `parts_shown` saw the same selection: only a bug here would get this far.
            let bug = anyhow::anyhow!("a page read in part was asked for more than it read");
            return Err(async_graphql::Error::from(AppError::from(bug)).into_server_error(field.pos));
        }
        OutputType::resolve(&self.edges, ctx, field).await
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

/// The parts of a connection that the `edges` selected on a page show, when every field on them
/// is plain (see `listed`); `ALL` otherwise, for a field a resolver answers gets the whole
/// connection. `ctx` is `Team.connections`'.
pub fn parts_shown(ctx: &Context<'_>) -> ConnectionParts {
    let list = ctx.with_selection_set(&ctx.item.node.selection_set);
    let Some(fields) = selection::fields(&list, "ConnectionList") else {
        return ConnectionParts::ALL;
    };
    let mut parts = ConnectionParts::IDENTITY;
    for field in fields.into_iter().filter(|field| field.node.name.node == "edges") {
        let ctx_field = list.with_field(field);
        let Some(plan) = edge_plan(&ctx_field.with_selection_set(&field.node.selection_set)) else {
            return ConnectionParts::ALL;
        };
        for edge_field in plan.fields() {
            let EdgeField::Node(node) = edge_field else { continue };
            for field in node.fields() {
                let part = match field {
                    NodeField::Plain(plain) => plain.part(),
                    NodeField::LastVerification(_) => Some(ConnectionPart::LastVerification),
                };
                parts = part.map_or(parts, |part| parts.with(part));
            }
        }
    }
    parts
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
