//! Live events for dashboards, over WebSocket (`graphql-transport-ws`, or the legacy
//! `graphql-ws`). A subscriber names a team it can see and receives only that team's events.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures_util::Stream;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::ids::parse_id;
use super::types::app::AppHealth;
use super::types::connection::Verification;
use super::types::enums::ConnectionStatus;
use super::{caller, state};
use crate::access;
use crate::domain::TeamId;
use crate::error::AppResult;
use crate::events::{self, Event};

pub struct SubscriptionRoot;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "events::VerificationPhase")]
pub enum VerificationPhase {
    Started,
    Finished,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "events::ConnectionEventKind")]
pub enum ConnectionEventKind {
    Created,
    Updated,
    Deleted,
    StatusChanged,
    /// The grant ends soon: within a week, then within a day.
    Expiring,
}

#[derive(SimpleObject)]
pub struct VerificationEvent {
    connection_id: ID,
    team_id: ID,
    phase: VerificationPhase,
    /// The result, once `FINISHED`.
    verification: Option<Verification>,
}

#[derive(SimpleObject)]
pub struct ConnectionEvent {
    connection_id: ID,
    team_id: ID,
    kind: ConnectionEventKind,
    /// The status after the change; null after a delete.
    status: Option<ConnectionStatus>,
    /// The status before the change (for `STATUS_CHANGED` and `DELETED`).
    previous_status: Option<ConnectionStatus>,
}

#[derive(SimpleObject)]
pub struct AppHealthEvent {
    team_id: ID,
    /// The app's key.
    app: String,
    health: AppHealth,
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// `STARTED` and then `FINISHED` for every check of the team's connections, manual or
    /// scheduled.
    async fn verification_events(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = VerificationEvent>> {
        let receiver = team_events(ctx, &team_id).await?;
        let team = team_id.clone();
        Ok(receiver.filter_map(move |event| {
            let team = team.clone();
            async move {
                match &*event {
                    Event::Verification(e) => Some(VerificationEvent {
                        connection_id: ID(e.connection_id.to_string()),
                        team_id: team,
                        phase: e.phase.into(),
                        verification: e.verification().map(Verification::from),
                    }),
                    Event::Connection(_) | Event::App(_) => None,
                }
            }
        }))
    }

    /// Connections of the team created, updated, deleted, or changing status.
    async fn connection_events(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ConnectionEvent>> {
        let receiver = team_events(ctx, &team_id).await?;
        let team = team_id.clone();
        Ok(receiver.filter_map(move |event| {
            let team = team.clone();
            async move {
                match &*event {
                    Event::Connection(e) => Some(ConnectionEvent {
                        connection_id: ID(e.connection_id.to_string()),
                        team_id: team,
                        kind: e.kind.into(),
                        status: e.status().map(Into::into),
                        previous_status: e.previous_status().map(Into::into),
                    }),
                    Event::Verification(_) | Event::App(_) => None,
                }
            }
        }))
    }

    /// An app the team's connections use became `DEGRADED` (many of its connections failing
    /// transiently) or `HEALTHY` again: one event for the whole app.
    async fn app_health_events(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = AppHealthEvent>> {
        let receiver = team_events(ctx, &team_id).await?;
        let team = team_id.clone();
        Ok(receiver.filter_map(move |event| {
            let team = team.clone();
            async move {
                match &*event {
                    Event::App(e) => Some(AppHealthEvent {
                        team_id: team,
                        app: e.app.clone(),
                        health: crate::domain::AppHealth {
                            status: crate::domain::AppHealthStatus::parse(&e.status)?,
                            since: e.since,
                            last_error: e.last_error.clone(),
                        }
                        .into(),
                    }),
                    Event::Verification(_) | Event::Connection(_) => None,
                }
            }
        }))
    }
}

/// The events of a team the caller can see; another team is `NOT_FOUND`.
async fn team_events(ctx: &Context<'_>, team_id: &ID) -> AppResult<impl Stream<Item = Arc<Event>> + use<>> {
    let team: TeamId = parse_id(team_id, "teamId")?;
    let state = state(ctx)?;
    access::team_access(&state.db, caller(ctx)?, team).await?;
    let (receiver, closing) = state.events.subscribe();
    Ok(of_team(receiver, closing, team))
}

/// The team's events until the service shuts down.
fn of_team(
    receiver: broadcast::Receiver<Arc<Event>>,
    closing: watch::Receiver<bool>,
    team: TeamId,
) -> impl Stream<Item = Arc<Event>> {
    stream::unfold((receiver, closing), move |(mut receiver, mut closing)| async move {
        loop {
            if *closing.borrow() {
                return None;
            }
            let received = tokio::select! {
                received = receiver.recv() => received,
                _ = closing.changed() => return None,
            };
            match received {
                Ok(event) if event.team_id() == team => return Some((event, (receiver, closing))),
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, team_id = %team, "a slow subscriber missed events");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
