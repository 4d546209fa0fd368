//! Data loaders: what the nodes of one answer look up, gathered into one query for all of them
//! (a page of 50 connections asks once for the flows that use them, not 50 times).
//!
//! One `Loaders` is registered with every operation (see `AppSchema`); each loader starts on
//! first use. They hold no values across operations, so nothing read here can go stale.

mod connections;
mod dynamic_connections;
mod usages;

use std::collections::HashMap;
use std::sync::OnceLock;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;

pub use connections::ConnectionLoader;
pub use dynamic_connections::DynamicConnectionLoader;
pub use usages::UsageLoader;

use crate::domain::TeamId;
use crate::error::{AppError, AppResult};
use crate::graphql::state;

/// A connection or another team-owned row, named with its team so no look-up forgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeamKey<Id> {
    pub team_id: TeamId,
    pub id: Id,
}

/// The loaders of one operation (or one subscription: its loaders live as long as it does).
#[derive(Default)]
pub struct Loaders {
    usages: OnceLock<DataLoader<UsageLoader>>,
    connections: OnceLock<DataLoader<ConnectionLoader>>,
    dynamic_connections: OnceLock<DataLoader<DynamicConnectionLoader>>,
}

impl Loaders {
    pub fn usages(&self, ctx: &Context<'_>) -> AppResult<&DataLoader<UsageLoader>> {
        let db = &state(ctx)?.db;
        Ok(self.usages.get_or_init(|| DataLoader::new(UsageLoader::new(db.clone()), tokio::spawn)))
    }

    pub fn connections(&self, ctx: &Context<'_>) -> AppResult<&DataLoader<ConnectionLoader>> {
        let db = &state(ctx)?.db;
        Ok(self.connections.get_or_init(|| DataLoader::new(ConnectionLoader::new(db.clone()), tokio::spawn)))
    }

    pub fn dynamic_connections(&self, ctx: &Context<'_>) -> AppResult<&DataLoader<DynamicConnectionLoader>> {
        let db = &state(ctx)?.db;
        Ok(self
            .dynamic_connections
            .get_or_init(|| DataLoader::new(DynamicConnectionLoader::new(db.clone()), tokio::spawn)))
    }
}

/// The operation's loaders.
pub fn loaders<'a>(ctx: &Context<'a>) -> AppResult<&'a Loaders> {
    ctx.data::<Loaders>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("an operation ran without its data loaders")))
}

/// Groups `keys` by team, for loaders whose queries are scoped to one team.
fn by_team<Id: Copy>(keys: &[TeamKey<Id>]) -> HashMap<TeamId, Vec<Id>> {
    let mut teams: HashMap<TeamId, Vec<Id>> = HashMap::new();
    for key in keys {
        teams.entry(key.team_id).or_default().push(key.id);
    }
    teams
}
