//! Dynamic connections by id, for the flow modules of a page that use one.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;

use super::{TeamKey, by_team};
use crate::domain::{DynamicConnection, DynamicConnectionId};
use crate::error::AppError;
use crate::store;

pub struct DynamicConnectionLoader {
    db: DatabaseConnection,
}

impl DynamicConnectionLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        DynamicConnectionLoader { db }
    }
}

impl Loader<TeamKey<DynamicConnectionId>> for DynamicConnectionLoader {
    /// A dynamic connection of the key's team; a deleted one (or another team's) has no entry.
    type Value = DynamicConnection;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[TeamKey<DynamicConnectionId>],
    ) -> Result<HashMap<TeamKey<DynamicConnectionId>, DynamicConnection>, AppError> {
        let mut found = HashMap::new();
        for (team_id, ids) in by_team(keys) {
            for dynamic in store::dynamic_connections::find_many(&self.db, team_id, &ids).await? {
                found.insert(TeamKey { team_id, id: dynamic.id }, dynamic);
            }
        }
        Ok(found)
    }
}
