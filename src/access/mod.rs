//! Who is calling and what they may do: bearer tokens in, principals and team access out.
//! Tokens are stored only as hashes; a token is shown once, when it is issued. Verified tokens
//! and members' roles are cached for a few seconds (`cache`), so a hot request asks the
//! database nothing to know its caller.

mod scope;
mod sso;
mod tokens;
mod upkeep;

pub use scope::TeamScope;
pub use tokens::{IssuedToken, issue_service_token, issue_user_token};
pub use upkeep::flush_uses;

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::access_cache::{self, AccessCache, CachedToken};
use crate::domain::{Email, Principal, Team, TeamAccess, TeamId};
use crate::error::{AppError, AppResult};
use crate::events::{Event, EventBus};
use crate::state::AppState;
use crate::store;
use crate::store::tokens::TokenKind;

/// An empty cache whose evictions follow `events` and whose uses are written to `db`.
pub fn start_cache(db: DatabaseConnection, events: &EventBus) -> Arc<AccessCache> {
    let cache = Arc::new(AccessCache::default());
    upkeep::start(db, events, cache.clone());
    cache
}

/// Evicts at once what the committed `changes` concern, so this instance's next request sees
/// them; other instances hear of them through the outbox's events.
pub fn changed(cache: &AccessCache, changes: &[Event]) {
    for change in changes {
        if let Event::Access(change) = change {
            forget(cache, change);
        }
    }
}

fn forget(cache: &AccessCache, change: &crate::events::AccessEvent) {
    cache.forget(change.token_id, change.user_id, change.team_id);
}

/// Resolves a bearer credential: a JWT of the trusted identity provider when one is configured
/// and the credential looks like one, else one of our API tokens.
pub async fn identify(state: &AppState, bearer: &str) -> AppResult<Principal> {
    match state.oidc.as_deref() {
        Some(oidc) if crate::oidc::OidcVerifier::looks_like_jwt(bearer) => {
            sso::principal(state, oidc, bearer).await
        }
        _ => authenticate(&state.db, &state.access, bearer).await,
    }
}

/// Resolves a bearer token to its principal, from the cache when it was verified lately.
/// Unknown, revoked, expired or malformed tokens, and tokens whose owner is gone, are all
/// `Unauthenticated` alike.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    cache: &AccessCache,
    bearer: &str,
) -> AppResult<Principal> {
    let Some(hash) = tokens::hash_presented(bearer) else {
        return Err(AppError::Unauthenticated);
    };
    let now = Utc::now();
    if let Some(principal) = cache.token(&hash, now) {
        return Ok(principal);
    }
    let ticket = cache.ticket();
    let stored = store::tokens::find_active_by_hash(db, &hash).await?.ok_or(AppError::Unauthenticated)?;
    let principal = match (stored.kind, stored.user_id, stored.team_id) {
        (TokenKind::User, Some(user_id), _) => {
            let user = store::teams::find_user(db, user_id).await?.ok_or(AppError::Unauthenticated)?;
            Principal::User {
                user_id,
                email: user.email,
                token_id: Some(stored.id),
                expires_at: stored.expires_at,
            }
        }
        (TokenKind::Service, _, Some(team_id)) => Principal::Service {
            team_id,
            token_id: stored.id,
            token_prefix: stored.prefix.clone(),
            expires_at: stored.expires_at,
        },
        _ => return Err(AppError::Unauthenticated),
    };
    // Uses are written in batches by the cache's flusher, at most once a minute per token.
    let mut last_used_at = stored.last_used_at;
    if access_cache::use_is_news(last_used_at, now) {
        cache.note_use(&principal, now);
        last_used_at = Some(now);
    }
    cache.keep_token(ticket, hash, CachedToken { principal: principal.clone(), last_used_at });
    Ok(principal)
}

/// The caller's scope in `team_id`, checked once for the request: what reads of the team's data
/// take. A team the caller cannot see is `NotFound`, exactly like a missing one.
pub async fn scope(state: &AppState, principal: &Principal, team_id: TeamId) -> AppResult<TeamScope> {
    let access = cached_team_access(state, principal, team_id).await?;
    Ok(TeamScope::checked(team_id, access))
}

/// Every team the caller belongs to (a service token: its own team), each with its scope.
pub async fn visible_teams(state: &AppState, principal: &Principal) -> AppResult<Vec<(Team, TeamScope)>> {
    match principal {
        Principal::User { user_id, .. } => Ok(store::teams::teams_of_user(&state.db, *user_id)
            .await?
            .into_iter()
            .map(|(team, role)| {
                let scope = TeamScope::checked(team.id, TeamAccess::Member(role));
                (team, scope)
            })
            .collect()),
        Principal::Service { team_id, .. } => {
            let team = store::teams::find(&state.db, *team_id).await?.ok_or(AppError::Unauthenticated)?;
            Ok(vec![(team, TeamScope::checked(*team_id, TeamAccess::Service))])
        }
    }
}

/// Like `team_access`, but from the cache when the member's role was read lately: for reads
/// outside a transaction. Changes to a role evict it (see `AccessCache`); writes that depend on
/// the role check it with `team_access` inside their transaction instead.
pub async fn cached_team_access(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<TeamAccess> {
    let Principal::User { user_id, .. } = principal else {
        return team_access(&state.db, principal, team_id).await;
    };
    if let Some(role) = state.access.role(*user_id, team_id) {
        return Ok(TeamAccess::Member(role));
    }
    let ticket = state.access.ticket();
    let role =
        store::teams::role_of(&state.db, team_id, *user_id).await?.ok_or(AppError::NotFound("team"))?;
    state.access.keep_role(ticket, *user_id, team_id, role);
    Ok(TeamAccess::Member(role))
}

/// What `principal` may do in `team_id`. A team the caller cannot see is `NotFound`, exactly
/// like a team that does not exist.
pub async fn team_access(
    db: &impl ConnectionTrait,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<TeamAccess> {
    match principal {
        Principal::User { user_id, .. } => store::teams::role_of(db, team_id, *user_id)
            .await?
            .map(TeamAccess::Member)
            .ok_or(AppError::NotFound("team")),
        Principal::Service { team_id: own, .. } if *own == team_id => Ok(TeamAccess::Service),
        Principal::Service { .. } => Err(AppError::NotFound("team")),
    }
}

/// Like `team_access`, but refuses callers that may only read.
pub async fn require_manage(
    db: &impl ConnectionTrait,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<TeamAccess> {
    let access = team_access(db, principal, team_id).await?;
    if !access.can_manage() {
        return Err(AppError::Forbidden(match access {
            TeamAccess::Service => "service tokens cannot change connections; use a member's token".into(),
            TeamAccess::Member(role) => format!(
                "your role in this team is {}, which can read but not change connections; ask an ADMIN",
                role.as_str()
            ),
        }));
    }
    Ok(access)
}

/// Like `team_access`, but only for the team's `ADMIN`s: they alone manage members and service
/// tokens.
pub async fn require_admin(
    db: &impl ConnectionTrait,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<()> {
    let access = team_access(db, principal, team_id).await?;
    TeamScope::checked(team_id, access).require_admin()
}

/// Whether `principal`, established earlier (an open subscription's), may still see `team_id`:
/// its token is neither revoked nor expired and it still belongs to the team.
pub async fn still_allowed(
    db: &impl ConnectionTrait,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<bool> {
    if principal.expires_at().is_some_and(|at| at <= Utc::now()) {
        return Ok(false);
    }
    if let Some(token_id) = principal.token_id()
        && !store::tokens::is_active(db, token_id).await?
    {
        return Ok(false);
    }
    match team_access(db, principal, team_id).await {
        Ok(_) => Ok(true),
        Err(AppError::NotFound(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The e-mail of a user principal, for greeting and audit labels.
pub fn principal_email(principal: &Principal) -> Option<&Email> {
    match principal {
        Principal::User { email, .. } => Some(email),
        Principal::Service { .. } => None,
    }
}
