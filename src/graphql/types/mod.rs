//! GraphQL object types. Each wraps a domain value; no entity or secret reaches this layer.

pub mod access;
pub mod api_call;
pub mod app;
pub mod audit;
pub mod connection;
pub mod enums;
pub mod flow;
mod listed;
mod listed_page;
mod selection;
pub mod team;
pub mod viewer;
pub mod webhook;

use async_graphql::SimpleObject;

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` (or `before`, for newest-first lists) to get the next page.
    pub end_cursor: Option<String>,
}
