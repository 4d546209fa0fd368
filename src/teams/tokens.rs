//! API tokens over the API: a person's own tokens, and a team's service tokens (managed by its
//! `ADMIN`s). The value is shown once, in the answer that creates it. Revoking takes effect at
//! once on every instance: the token is refused from then on, and open subscriptions that used
//! it end.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::audit;
use crate::access::{self, IssuedToken, TeamScope};
use crate::domain::{Actor, AuditAction, Principal, TeamId, TokenId, UserId};
use crate::error::{AppError, AppResult};
use crate::events::{self, AccessEvent};
use crate::state::AppState;
use crate::store;
pub use crate::store::tokens::TokenKind;

/// A token as its owner sees it: never its value.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    pub kind: TokenKind,
    pub prefix: String,
    pub team_id: Option<TeamId>,
    pub user_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<store::tokens::StoredToken> for ApiToken {
    fn from(stored: store::tokens::StoredToken) -> Self {
        ApiToken {
            id: stored.id,
            name: stored.name,
            kind: stored.kind,
            prefix: stored.prefix,
            team_id: stored.team_id,
            user_id: stored.user_id,
            created_at: stored.created_at,
            last_used_at: stored.last_used_at,
            expires_at: stored.expires_at,
            revoked_at: stored.revoked_at,
        }
    }
}

pub struct NewApiToken {
    pub name: String,
    pub kind: TokenKind,
    /// The team of a service token; none for a user token.
    pub team_id: Option<TeamId>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issues a token: a user token for the calling person, or a service token for a team the
/// caller is `ADMIN` of.
pub async fn create_api_token(
    state: &AppState,
    principal: &Principal,
    new: NewApiToken,
) -> AppResult<(IssuedToken, ApiToken)> {
    let name = token_name(&new.name)?;
    if new.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::bad_input("expiresAt", "must be in the future"));
    }
    let txn = store::begin(&state.db).await?;
    let issued = match (new.kind, new.team_id) {
        (TokenKind::User, Some(_)) => {
            return Err(AppError::bad_input(
                "teamId",
                "a USER token acts in all its user's teams; leave teamId out",
            ));
        }
        (TokenKind::User, None) => {
            let Some(user_id) = principal.user_id() else {
                return Err(AppError::Forbidden("a service token cannot create USER tokens".into()));
            };
            access::issue_user_token(&txn, user_id, &name, new.expires_at).await?
        }
        (TokenKind::Service, None) => {
            return Err(AppError::bad_input("teamId", "a SERVICE token is bound to a team; give teamId"));
        }
        (TokenKind::Service, Some(team_id)) => {
            access::require_admin(&txn, principal, team_id).await?;
            issue_service_token(&txn, &principal.actor(), team_id, &name, new.expires_at).await?
        }
    };
    let stored = store::tokens::find(&txn, issued.id).await?.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("a token vanished in the transaction that issued it"))
    })?;
    txn.commit().await?;
    if new.kind == TokenKind::User {
        tracing::info!(token_id = %issued.id, prefix = %issued.prefix, "a user token was issued");
    }
    Ok((issued, stored.into()))
}

/// Issues a service token and records it in the team's audit trail; the CLI's `service-token`
/// uses this too.
pub async fn issue_service_token(
    db: &impl ConnectionTrait,
    actor: &Actor,
    team_id: TeamId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<IssuedToken> {
    let issued = access::issue_service_token(db, team_id, name, expires_at).await?;
    audit::record(
        db,
        team_id,
        actor,
        AuditAction::ServiceTokenCreated,
        json!({ "token_id": issued.id.to_string(), "name": name, "prefix": issued.prefix, "expires_at": expires_at }),
    )
    .await?;
    Ok(issued)
}

/// Revokes a token the caller owns (its own user tokens) or manages (its team's service
/// tokens, as `ADMIN`). Anything else is `NOT_FOUND`, like a token that does not exist.
pub async fn revoke_api_token(state: &AppState, principal: &Principal, id: TokenId) -> AppResult<ApiToken> {
    let txn = store::begin(&state.db).await?;
    let stored = store::tokens::find(&txn, id).await?.ok_or(AppError::NotFound("token"))?;
    match (stored.kind, stored.user_id, stored.team_id) {
        (TokenKind::User, Some(owner), _) if principal.user_id() == Some(owner) => {}
        (TokenKind::Service, _, Some(team_id)) => match access::require_admin(&txn, principal, team_id).await
        {
            Ok(()) => {}
            // The caller's own token may be revoked by itself, whatever its role.
            Err(_) if principal.token_id() == Some(id) => {}
            Err(AppError::Forbidden(message)) => return Err(AppError::Forbidden(message)),
            Err(_) => return Err(AppError::NotFound("token")),
        },
        _ => return Err(AppError::NotFound("token")),
    }
    let now = Utc::now();
    let revoked = store::tokens::revoke(&txn, id, now).await?;
    if revoked && let Some(team_id) = stored.team_id {
        audit::record(
            &txn,
            team_id,
            &principal.actor(),
            AuditAction::ServiceTokenRevoked,
            json!({ "token_id": id.to_string(), "name": stored.name, "prefix": stored.prefix }),
        )
        .await?;
    }
    let changes = [AccessEvent::token_revoked(id)];
    if revoked {
        events::stage(&txn, &changes).await?;
    }
    txn.commit().await?;
    access::changed(&state.access, &changes);
    state.events.wake_dispatcher();
    let mut token = ApiToken::from(stored);
    token.revoked_at = token.revoked_at.or(Some(now));
    Ok(token)
}

/// The calling person's own tokens that are not revoked; none for a service token.
pub async fn viewer_tokens(state: &AppState, principal: &Principal) -> AppResult<Vec<ApiToken>> {
    let Some(user_id) = principal.user_id() else {
        return Ok(Vec::new());
    };
    Ok(store::tokens::of_user(&state.db, user_id).await?.into_iter().map(ApiToken::from).collect())
}

/// A team's service tokens that are not revoked, for its `ADMIN`s.
pub async fn service_tokens(state: &AppState, scope: &TeamScope) -> AppResult<Vec<ApiToken>> {
    scope.require_admin()?;
    Ok(store::tokens::service_tokens_of_team(&state.db, scope.team())
        .await?
        .into_iter()
        .map(ApiToken::from)
        .collect())
}

fn token_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "name",
            "a token name has 1 to 100 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}
