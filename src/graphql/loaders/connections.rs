//! Connections by id, for nodes that name one (a flow module, a dynamic connection's default).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;

use super::{TeamKey, by_team};
use crate::domain::{Connection, ConnectionId};
use crate::error::AppError;
use crate::store;

pub struct ConnectionLoader {
    db: DatabaseConnection,
}

impl ConnectionLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        ConnectionLoader { db }
    }
}

impl Loader<TeamKey<ConnectionId>> for ConnectionLoader {
    /// A connection of the key's team; a deleted one (or another team's) has no entry.
    type Value = Connection;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[TeamKey<ConnectionId>],
    ) -> Result<HashMap<TeamKey<ConnectionId>, Connection>, AppError> {
        let mut found = HashMap::new();
        for (team_id, ids) in by_team(keys) {
            for connection in store::connections::find_many(&self.db, team_id, &ids).await? {
                found.insert(TeamKey { team_id, id: connection.id }, connection);
            }
        }
        Ok(found)
    }
}
