//! Which flow modules use each connection of a page.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;

use super::{TeamKey, by_team};
use crate::domain::ConnectionId;
use crate::error::AppError;
use crate::flows::usage::{ModuleUse, modules_using};

pub struct UsageLoader {
    db: DatabaseConnection,
}

impl UsageLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        UsageLoader { db }
    }
}

impl Loader<TeamKey<ConnectionId>> for UsageLoader {
    /// The modules using the connection; a connection no module uses has no entry.
    type Value = Vec<ModuleUse>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[TeamKey<ConnectionId>],
    ) -> Result<HashMap<TeamKey<ConnectionId>, Vec<ModuleUse>>, AppError> {
        let mut found = HashMap::new();
        for (team_id, ids) in by_team(keys) {
            for (id, uses) in modules_using(&self.db, team_id, &ids).await? {
                found.insert(TeamKey { team_id, id }, uses);
            }
        }
        Ok(found)
    }
}
