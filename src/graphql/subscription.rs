//! Live events for dashboards, over WebSocket (`graphql-transport-ws`, or the legacy
//! `graphql-ws`). A subscriber names a team it can see and receives only that team's events.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures_util::Stream;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::Sleep;

use super::ids::parse_id;
use super::rechecks::{Recheck, Rechecks};
use super::shared::Listening;
use super::types::app::AppHealth;
use super::types::connection::Verification;
use super::types::enums::ConnectionStatus;
use super::{caller, state};
use crate::access;
use crate::domain::{Principal, TeamId};
use crate::error::{AppError, AppResult};
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
    ) -> async_graphql::Result<impl Stream<Item = AppResult<VerificationEvent>>> {
        Ok(team_stream(ctx, team_id, |event, team_id| match event {
            Event::Verification(e) => Some(VerificationEvent {
                connection_id: ID(e.connection_id.to_string()),
                team_id: team_id.clone(),
                phase: e.phase.into(),
                verification: e.verification().map(Verification::from),
            }),
            Event::Connection(_) | Event::App(_) | Event::Access(_) => None,
        })
        .await?)
    }

    /// Connections of the team created, updated, deleted, or changing status.
    async fn connection_events(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = AppResult<ConnectionEvent>>> {
        Ok(team_stream(ctx, team_id, |event, team_id| match event {
            Event::Connection(e) => Some(ConnectionEvent {
                connection_id: ID(e.connection_id.to_string()),
                team_id: team_id.clone(),
                kind: e.kind.into(),
                status: e.status.map(Into::into),
                previous_status: e.previous_status.map(Into::into),
            }),
            Event::Verification(_) | Event::App(_) | Event::Access(_) => None,
        })
        .await?)
    }

    /// An app the team's connections use became `DEGRADED` (many of its connections failing
    /// transiently) or `HEALTHY` again: one event for the whole app.
    async fn app_health_events(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = AppResult<AppHealthEvent>>> {
        Ok(team_stream(ctx, team_id, |event, team_id| match event {
            Event::App(e) => {
                let health = crate::domain::AppHealth {
                    status: e.status,
                    since: e.since,
                    last_error: e.last_error.clone(),
                };
                Some(AppHealthEvent { team_id: team_id.clone(), app: e.app.clone(), health: health.into() })
            }
            Event::Verification(_) | Event::Connection(_) | Event::Access(_) => None,
        })
        .await?)
    }
}

/// The team's events that `pick` turns into items of one subscription, ending with the error
/// that ended the watch (access lost).
async fn team_stream<T: Send + 'static>(
    ctx: &Context<'_>,
    team_id: ID,
    pick: fn(&Event, &ID) -> Option<T>,
) -> AppResult<impl Stream<Item = AppResult<T>> + use<T>> {
    let receiver = team_events(ctx, &team_id).await?;
    Ok(receiver.filter_map(move |event| {
        let item = match event {
            Ok(event) => pick(&event, &team_id).map(Ok),
            Err(ended) => Some(Err(ended)),
        };
        std::future::ready(item)
    }))
}

/// The events of a team the caller can see; another team is `NOT_FOUND`.
async fn team_events(
    ctx: &Context<'_>,
    team_id: &ID,
) -> AppResult<impl Stream<Item = AppResult<Arc<Event>>> + use<>> {
    let team: TeamId = parse_id(team_id, "teamId")?;
    let state = state(ctx)?;
    let principal = caller(ctx)?.clone();
    let rechecks = ctx
        .data::<Arc<Rechecks>>()
        .map_err(|_| {
            AppError::internal(anyhow::anyhow!("the schema was built without its access re-checks"))
        })?
        .clone();
    // Listening first, then the access check: an access change committed between the two is
    // either seen by the check or heard as an event, which makes the subscription check again.
    // The other way round, a member removed in that window kept hearing the team.
    let (receiver, closing) = state.events.subscribe();
    access::team_access(&state.db, &principal, team).await?;
    if let Some(listening) = ctx.data_opt::<Listening>() {
        listening.started();
    }
    let closing = Box::pin(shutdown(closing));
    let expiry = principal.expires_at().map(|deadline| Box::pin(sleep_until(deadline)));
    let watch = Watch { receiver, closing, expiry, team, principal, rechecks, ended: false };
    Ok(of_team(watch))
}

/// One subscription's view of the bus, and who it answers to.
struct Watch {
    receiver: broadcast::Receiver<Arc<Event>>,
    /// The service's shutdown and the caller's token expiry, each waited for by one future for
    /// the subscription's life: waiting anew at every event registered and dropped a waiter and
    /// a timer per subscriber per event.
    closing: Pin<Box<dyn Future<Output = ()> + Send>>,
    expiry: Option<Pin<Box<Sleep>>>,
    team: TeamId,
    principal: Principal,
    /// Shared with every subscription: many of them ask at once (see `rechecks`).
    rechecks: Arc<Rechecks>,
    ended: bool,
}

/// The team's events until the service shuts down, or until the caller may no longer see them
/// (token revoked or expired, removed from the team): then one error, and the end.
fn of_team(watch: Watch) -> impl Stream<Item = AppResult<Arc<Event>>> {
    stream::unfold(watch, |mut watch| async move {
        if watch.ended {
            return None;
        }
        loop {
            // In this order: nothing is delivered once the service is closing or the token expired.
            let received = tokio::select! {
                biased;
                _ = watch.closing.as_mut() => return None,
                _ = expired(&mut watch.expiry) => {
                    watch.ended = true;
                    return Some((Err(AppError::Unauthenticated), watch));
                }
                received = watch.receiver.recv() => received,
            };
            let recheck = match received {
                Ok(event) => match &*event {
                    Event::Access(change) => {
                        change.concerns(watch.principal.user_id(), watch.principal.token_id())
                    }
                    _ if event.team_id() == Some(watch.team) => return Some((Ok(event), watch)),
                    _ => false,
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, team_id = %watch.team, "a slow subscriber missed events");
                    // What was missed may have been an access change.
                    true
                }
                Err(RecvError::Closed) => return None,
            };
            if !recheck {
                continue;
            }
            // A database hiccup (`Unknown`) is no reason to cut a dashboard off; the next change
            // checks again.
            let answer = watch.rechecks.still_allowed(&watch.principal, watch.team).await;
            if answer == Recheck::Refused {
                watch.ended = true;
                return Some((Err(refused()), watch));
            }
        }
    })
}

/// What a subscription whose caller may no longer see its team ends with.
fn refused() -> AppError {
    AppError::Forbidden(
        "this subscription ended: its token was revoked or expired, or its user left the team".into(),
    )
}

/// Completes when the service starts shutting down.
async fn shutdown(mut closing: watch::Receiver<bool>) {
    // An error means the signal's sender is gone: the service is going away all the same.
    let _ = closing.wait_for(|closing| *closing).await;
}

/// A timer that fires at `deadline` (at once when it is past).
fn sleep_until(deadline: DateTime<Utc>) -> Sleep {
    let left = (deadline - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left)
}

/// Completes when `expiry` fires, or never when there is none.
async fn expired(expiry: &mut Option<Pin<Box<Sleep>>>) {
    match expiry {
        Some(expiry) => expiry.as_mut().await,
        None => std::future::pending().await,
    }
}
