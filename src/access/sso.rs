//! Callers who present the identity provider's JWT: the user is the issuer's `sub`, created on
//! first sight with the token's `email` (or linked to the existing user with that e-mail). With
//! `PLUGBOARD_OIDC_TEAMS_CLAIM`, memberships follow the claim's team names: named teams are
//! joined as `MEMBER`, others left (never the last `ADMIN` of a team).

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::domain::{
    Actor, AuditAction, AuditEvent, AuditEventId, Email, Principal, TeamId, TeamName, TeamRole, User,
};
use crate::error::{AppError, AppResult};
use crate::events::AccessEvent;
use crate::oidc::{Identity, OidcVerifier, Refused};
use crate::state::AppState;
use crate::store;

pub async fn principal(state: &AppState, oidc: &OidcVerifier, token: &str) -> AppResult<Principal> {
    let db = &state.db;
    let identity = match oidc.verify(token).await {
        Ok(identity) => identity,
        Err(Refused::KeysUnavailable(err)) => {
            tracing::error!(
                error = format!("{err:#}"),
                "cannot verify a JWT: the identity provider's keys are unavailable"
            );
            return Err(AppError::Unauthenticated);
        }
        Err(refused) => {
            tracing::info!(reason = %refused, "refused a JWT");
            return Err(AppError::Unauthenticated);
        }
    };
    // The usual request: a known user and no claim to follow, so nothing to write.
    if !oidc.teams_claim_configured()
        && let Some(user) = store::teams::find_user_by_subject(db, &identity.subject).await?
    {
        return Ok(principal_of(user, &identity));
    }
    let txn = store::begin(db).await?;
    let user = user_of(&txn, &identity).await?;
    let mut left = Vec::new();
    if oidc.teams_claim_configured()
        && let Some(teams) = &identity.teams
    {
        left = follow_teams_claim(&txn, &user, teams).await?;
    }
    let changes: Vec<_> =
        left.iter().map(|team_id| AccessEvent::membership_changed(*team_id, user.id)).collect();
    if !changes.is_empty() {
        crate::events::stage(&txn, &changes).await?;
    }
    txn.commit().await?;
    if !changes.is_empty() {
        super::changed(&state.access, &changes);
        state.events.wake_dispatcher();
    }
    Ok(principal_of(user, &identity))
}

fn principal_of(user: User, identity: &Identity) -> Principal {
    Principal::User {
        user_id: user.id,
        email: user.email,
        token_id: None,
        expires_at: Some(identity.expires_at),
    }
}

async fn user_of(db: &impl ConnectionTrait, identity: &Identity) -> AppResult<User> {
    if let Some(user) = store::teams::find_user_by_subject(db, &identity.subject).await? {
        return Ok(user);
    }
    let Some(email) = identity.email.as_deref().filter(|_| identity.email_verified) else {
        tracing::info!("refused a JWT for a new user without a verified `email` claim");
        return Err(AppError::Unauthenticated);
    };
    let email = Email::parse(email).map_err(|_| AppError::Unauthenticated)?;
    let user = store::teams::find_or_insert_user(db, &email).await?;
    // Only a user not yet linked to another subject is taken over.
    if store::teams::find_user_by_subject(db, &identity.subject).await?.is_none() {
        store::teams::set_subject(db, user.id, &identity.subject).await?;
    }
    match store::teams::find_user_by_subject(db, &identity.subject).await? {
        Some(linked) if linked.id == user.id => Ok(linked),
        _ => {
            tracing::warn!("refused a JWT: its e-mail belongs to a user signed in under another subject");
            Err(AppError::Unauthenticated)
        }
    }
}

/// Answers the teams the user left.
async fn follow_teams_claim(
    db: &impl ConnectionTrait,
    user: &User,
    names: &[String],
) -> AppResult<Vec<TeamId>> {
    let mut wanted: HashSet<TeamId> = HashSet::new();
    for name in names {
        let Ok(name) = TeamName::parse(name) else { continue };
        if let Some(team) = store::teams::find_by_name(db, &name).await? {
            wanted.insert(team.id);
        }
    }
    let current = store::teams::teams_of_user(db, user.id).await?;
    let have: HashSet<TeamId> = current.iter().map(|(team, _)| team.id).collect();
    let mut left = Vec::new();
    for team_id in wanted.difference(&have) {
        store::teams::set_membership(db, *team_id, user.id, TeamRole::Member).await?;
        record(db, *team_id, AuditAction::MemberAdded, user, TeamRole::Member).await?;
    }
    for (team, role) in current.iter().filter(|(team, _)| !wanted.contains(&team.id)) {
        store::teams::lock(db, team.id).await?;
        if *role == TeamRole::Admin && store::teams::count_admins(db, team.id).await? <= 1 {
            continue;
        }
        store::teams::remove_membership(db, team.id, user.id).await?;
        record(db, team.id, AuditAction::MemberRemoved, user, *role).await?;
        left.push(team.id);
    }
    Ok(left)
}

async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    action: AuditAction,
    user: &User,
    role: TeamRole,
) -> AppResult<()> {
    let event = AuditEvent {
        id: AuditEventId::new(),
        team_id,
        actor: Actor::system("identity provider (teams claim)"),
        action,
        connection_id: None,
        connection_name: None,
        detail: json!({ "user_id": user.id.to_string(), "email": user.email.as_str(), "role": role.as_str() }),
        created_at: Utc::now(),
    };
    store::audit::record(db, &event).await?;
    Ok(())
}
