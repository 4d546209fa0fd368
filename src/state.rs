//! What every request and job needs, built once at start and shared.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::access_cache::AccessCache;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::crypto::Sealer;
use crate::domain::{ConnectionId, SchedulePolicy};
use crate::events::EventBus;
use crate::oauth::{OAuthClients, SingleFlight, TokenProblem};
use crate::outbound::Outbound;
use secrecy::SecretString;

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
    /// The operator's OAuth client per app.
    pub oauth_clients: Arc<OAuthClients>,
    /// Token refreshes in flight, one per connection.
    pub token_flights: Arc<SingleFlight<ConnectionId, Result<SecretString, TokenProblem>>>,
    /// Provider calls in flight per team, bounded so one team cannot starve another.
    pub provider_gate: Arc<crate::outbound::ProviderGate>,
    /// Verified tokens and members' roles, kept briefly (see `access_cache`).
    pub access: Arc<AccessCache>,
    /// Turns between background writers on SQLite (the sweep, the outbox dispatcher).
    pub background_writes: crate::store::WriteTurns,
    /// The identity provider whose JWTs are accepted, when `PLUGBOARD_OIDC_ISSUER` is set.
    pub oidc: Option<Arc<crate::oidc::OidcVerifier>>,
}
