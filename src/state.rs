//! What every request and job needs, built once at start and shared.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::crypto::Sealer;
use crate::domain::SchedulePolicy;
use crate::events::EventBus;
use crate::outbound::Outbound;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub sealer: Arc<Sealer>,
    pub catalog: Arc<Catalog>,
    pub config: Arc<Config>,
    /// Every request to a provider goes through this.
    pub outbound: Outbound,
    pub events: EventBus,
    pub schedule: SchedulePolicy,
}
