//! Renewing a connection's tokens without holding the database while the provider answers, and
//! without ever losing a refresh token the provider already rotated.
//!
//! 1. Take the connection's refresh lease (one short statement); another instance holding it
//!    is waited for, and its result used.
//! 2. With the database released, ask the token endpoint (within the team's provider permits).
//! 3. Store the new tokens in one write guarded by the token generation read in step 1, and
//!    give the lease back. A failed write is retried, never dropped; a panic while preparing it
//!    falls back to storing the tokens as they came. A dead grant is flagged under the same
//!    guard, so a late failure never overwrites a fresh reauthorization.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use secrecy::{ExposeSecret, SecretString};

use super::granted::{expiry, grant_details, grant_expiry, token_client, usable};
use super::record::{self, Change, Fact, Write};
use super::secrets::StoredSecrets;
use crate::catalog::{App, FormValues};
use crate::domain::{Actor, AuthType, Connection, Verification, VerificationOutcome};
use crate::oauth::{self, OAuthClients, TokenError, TokenProblem, TokenSet};
use crate::state::AppState;
use crate::store;
use crate::store::token_leases::{LeaseClaim, RefreshedTokens};

/// Between two looks at a lease someone else holds.
const LEASE_POLL: Duration = Duration::from_millis(100);
/// How long a refresh keeps trying to store tokens the provider issued before it gives up
/// (and says so loudly): long enough to ride out a database restart.
const WRITE_PATIENCE: Duration = Duration::from_secs(3600);
const WRITE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long a refresh lease holds: the provider's whole answer twice over, and some room.
fn lease_length(state: &AppState) -> Duration {
    state.config.http_timeout.saturating_mul(2) + Duration::from_secs(15)
}

/// How long a caller waits for a refresh: its lease, and a lease it may wait for first.
pub(super) fn patience(state: &AppState) -> Duration {
    lease_length(state).saturating_mul(2)
}

/// What a caller needs of the token it asks for.
#[derive(Clone)]
pub(super) enum Need {
    /// One good for longer than the skew.
    Usable,
    /// A newer one than the tokens of this generation (a forced renewal).
    NewerThan(i32),
    /// Another one than this, which the provider just refused.
    Not(SecretString),
}

impl Need {
    /// The stored token, if it meets the need without a refresh.
    fn met_by(
        &self,
        state: &AppState,
        current: &Connection,
        secrets: &StoredSecrets,
    ) -> Option<SecretString> {
        let token = usable(state, current, secrets)?;
        let met = match self {
            Need::Usable => true,
            Need::NewerThan(generation) => current.token_generation != *generation,
            Need::Not(refused) => token.expose_secret() != refused.expose_secret(),
        };
        met.then_some(token)
    }
}

#[tracing::instrument(skip_all, fields(connection_id = %connection.id, app = %connection.app_key))]
pub(super) async fn refresh(
    state: &AppState,
    connection: &Connection,
    need: Need,
) -> Result<SecretString, TokenProblem> {
    let lease = format!("refresh-{}", uuid::Uuid::now_v7());
    // The permit first: waiting for it must not eat into the lease.
    let permit = state.provider_gate.enter(connection.team_id).await;
    let (current, sealed) = match take_lease(state, connection, &lease, &need).await? {
        Taken::Held(current, sealed) => (*current, sealed),
        Taken::RenewedMeanwhile(token) => return Ok(token),
    };
    let release = || async {
        if let Err(err) = store::token_leases::release(&state.db, current.team_id, current.id, &lease).await {
            tracing::warn!(error = %err, "could not give a refresh lease back; it lapses on its own");
        }
    };
    let secrets = match StoredSecrets::open(&state.sealer, current.team_id, current.id, sealed.as_deref()) {
        Ok(secrets) => secrets,
        Err(err) => {
            release().await;
            return Err(TokenProblem::internal(format!("{err:#}")));
        }
    };
    // Renewed by someone else since the caller looked, or good enough already: use that.
    if let Some(token) = need.met_by(state, &current, &secrets) {
        release().await;
        return Ok(token);
    }
    let Some(app) = state.catalog.get(&current.app_key) else {
        release().await;
        return Err(TokenProblem::internal(format!("app {} is not in the catalog", current.app_key)));
    };
    let form = FormValues::from_parts(current.public_fields.clone(), secrets.form.clone());
    let answer = request_tokens(state, app, &form, &current, &secrets).await;
    drop(permit);
    match answer {
        Ok(tokens) => {
            crate::metrics::refresh(app.key(), "ok");
            keep(state, app, &current, &lease, secrets, tokens).await
        }
        Err(err) => {
            crate::metrics::refresh(app.key(), refresh_result(&err));
            let own_client = current.auth_type == AuthType::OAuth2ClientCredentials
                || OAuthClients::brings_own_client(&form);
            let problem = on_token_error(state, app, &current, err, own_client).await;
            // A flagged connection's lease went back with the flag; this covers the rest.
            release().await;
            Err(problem)
        }
    }
}

enum Taken {
    Held(Box<Connection>, Option<Vec<u8>>),
    RenewedMeanwhile(SecretString),
}

/// Takes the connection's refresh lease, waiting while another instance holds it. If that one
/// renewed the tokens meanwhile, answers its token instead.
async fn take_lease(
    state: &AppState,
    connection: &Connection,
    lease: &str,
    need: &Need,
) -> Result<Taken, TokenProblem> {
    // Long enough for a lease held by a crashed instance to lapse.
    let deadline = Instant::now() + lease_length(state) + Duration::from_secs(5);
    loop {
        let now = Utc::now();
        let until =
            now + chrono::Duration::from_std(lease_length(state)).unwrap_or(chrono::Duration::minutes(1));
        let claim =
            store::token_leases::claim(&state.db, connection.team_id, connection.id, lease, now, until)
                .await
                .map_err(TokenProblem::internal)?;
        match claim {
            LeaseClaim::Held(current, sealed) => return Ok(Taken::Held(Box::new(current), sealed)),
            LeaseClaim::Gone => return Err(TokenProblem::Gone),
            LeaseClaim::Busy(current, sealed) => {
                if current.token_generation != connection.token_generation {
                    let secrets =
                        StoredSecrets::open(&state.sealer, current.team_id, current.id, sealed.as_deref())
                            .map_err(|err| TokenProblem::internal(format!("{err:#}")))?;
                    if let Some(token) = need.met_by(state, &current, &secrets) {
                        return Ok(Taken::RenewedMeanwhile(token));
                    }
                }
                if Instant::now() > deadline {
                    return Err(TokenProblem::Unavailable(
                        "another instance is renewing the access token; try again shortly".into(),
                    ));
                }
                tokio::time::sleep(LEASE_POLL).await;
            }
        }
    }
}

/// A refresh with the refresh token, or for client-credentials apps a new token.
async fn request_tokens(
    state: &AppState,
    app: &App,
    form: &FormValues,
    connection: &Connection,
    secrets: &StoredSecrets,
) -> Result<TokenSet, TokenError> {
    let client = state.oauth_clients.for_app(app, form).map_err(|err| TokenError::Rejected {
        error: "no_client".into(),
        description: Some(err.to_string()),
        status: 0,
    })?;
    let http = token_client(state, app, form)?;
    match (connection.auth_type, &secrets.refresh_token) {
        (AuthType::OAuth2ClientCredentials, _) => {
            oauth::client_credentials(&http, app, form, &client, &connection.scopes).await
        }
        (_, Some(refresh_token)) => oauth::refresh(&http, app, form, &client, refresh_token).await,
        // Reached only when the provider refused the token: without a refresh token it is dead.
        (_, None) => Err(TokenError::InvalidGrant {
            description: Some(
                "the provider refused the access token and gave no refresh token to renew it".into(),
            ),
        }),
    }
}

/// Stores what the provider issued. Preparing the write is guarded against panics (a fallback
/// stores the tokens as they came); the write is retried until it lands or newer credentials
/// make it moot. Answers the new access token.
async fn keep(
    state: &AppState,
    app: &App,
    current: &Connection,
    lease: &str,
    secrets: StoredSecrets,
    tokens: TokenSet,
) -> Result<SecretString, TokenProblem> {
    let write = guarded(
        || prepare(state, app, current, &secrets, &tokens),
        || fallback(state, current, &secrets, &tokens),
    )
    .map_err(|err| lost(format!("{err:#}")))?;
    let started = Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = AssertUnwindSafe(store::token_leases::store_refreshed(
            &state.db,
            current.team_id,
            current.id,
            current.token_generation,
            &write,
        ))
        .catch_unwind()
        .await;
        match attempt {
            Ok(Ok(true)) => {
                tracing::info!(
                    expires_at = ?write.expires_at,
                    rotated = tokens.refresh_token.is_some(),
                    "access token refreshed"
                );
                return Ok(tokens.access_token);
            }
            Ok(Ok(false)) => {
                // Reauthorized, edited or deleted meanwhile: those credentials are newer.
                tracing::info!("the connection's credentials changed while refreshing; the new ones stay");
                if let Err(err) =
                    store::token_leases::release(&state.db, current.team_id, current.id, lease).await
                {
                    tracing::warn!(error = %err, "could not give a refresh lease back; it lapses on its own");
                }
                return Ok(tokens.access_token);
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "could not store refreshed tokens yet; retrying"),
            Err(_) => tracing::error!("storing refreshed tokens panicked; retrying"),
        }
        if started.elapsed() > WRITE_PATIENCE {
            return Err(lost("the database refused the write for too long".into()));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(WRITE_BACKOFF_MAX);
    }
}

/// `prepare`'s answer, or if it panics `fallback`'s: a panic after the provider rotated the
/// refresh token must not lose it.
fn guarded<T>(
    prepare: impl FnOnce() -> anyhow::Result<T>,
    fallback: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(prepare)) {
        Ok(prepared) => prepared,
        Err(_) => {
            tracing::error!("preparing refreshed tokens panicked; storing them as they came");
            fallback()
        }
    }
}

/// The write of refreshed tokens: the rotated refresh token replaces the old one, a missing one
/// keeps it (RFC 6749 §6).
fn prepare(
    state: &AppState,
    app: &App,
    current: &Connection,
    secrets: &StoredSecrets,
    tokens: &TokenSet,
) -> anyhow::Result<RefreshedTokens> {
    let now = Utc::now();
    let mut secrets = secrets.clone();
    secrets.access_token = Some(tokens.access_token.clone());
    if let Some(rotated) = &tokens.refresh_token {
        secrets.refresh_token = Some(rotated.clone());
    }
    let sealed = secrets
        .seal(&state.sealer, current.team_id, current.id)?
        .ok_or_else(|| anyhow::anyhow!("nothing to seal"))?;
    Ok(RefreshedTokens {
        sealed,
        expires_at: expiry(now, tokens.expires_in),
        grant_expires_at: grant_expiry(now, tokens),
        scopes: tokens.scopes.clone(),
        details: grant_details(app, tokens),
    })
}

/// The least that keeps the tokens: sealed, with no expiry (so they are renewed only when the
/// provider refuses them) and nothing else changed.
fn fallback(
    state: &AppState,
    current: &Connection,
    secrets: &StoredSecrets,
    tokens: &TokenSet,
) -> anyhow::Result<RefreshedTokens> {
    let secrets = StoredSecrets {
        form: secrets.form.clone(),
        access_token: Some(tokens.access_token.clone()),
        refresh_token: tokens.refresh_token.clone().or_else(|| secrets.refresh_token.clone()),
    };
    let sealed = secrets
        .seal(&state.sealer, current.team_id, current.id)?
        .ok_or_else(|| anyhow::anyhow!("nothing to seal"))?;
    Ok(RefreshedTokens { sealed, expires_at: None, grant_expires_at: None, scopes: None, details: None })
}

fn lost(reason: String) -> TokenProblem {
    tracing::error!(%reason, "TOKENS ISSUED BY THE PROVIDER COULD NOT BE STORED; the connection may need reauthorization");
    TokenProblem::Internal
}

fn refresh_result(err: &TokenError) -> &'static str {
    match err {
        TokenError::InvalidGrant { .. } => "invalid_grant",
        TokenError::Unavailable { .. } => "unavailable",
        TokenError::Rejected { .. } | TokenError::Setup(_) => "rejected",
    }
}

/// Turns a failed refresh into a problem, flagging the connection when its grant is dead.
/// Only a refusal of what the connection holds changes its status: an answer that is no OAuth
/// answer, or a refusal of the operator's client (`own_client` false), is reported without one.
async fn on_token_error(
    state: &AppState,
    app: &App,
    connection: &Connection,
    err: TokenError,
    own_client: bool,
) -> TokenProblem {
    let app_name = app.name();
    if err.is_unclear_answer() {
        tracing::warn!(error = %err, "the token endpoint's answer was no OAuth answer; status unchanged");
        return TokenProblem::Unavailable(format!(
            "{app_name} answered the token renewal with something that is no OAuth answer ({err}); it is tried \
             again later and the status is unchanged"
        ));
    }
    if err.refuses_the_client() && !own_client {
        tracing::error!(error = %err, "the provider refused the operator's OAuth client; status unchanged");
        return TokenProblem::Unavailable(format!(
            "{app_name} refused the operator's OAuth client ({err}): the operator must check {} and {}; the \
             connection's status is unchanged",
            OAuthClients::id_variable(app.key()),
            OAuthClients::secret_variable(app.key()),
        ));
    }
    match err {
        TokenError::Unavailable { reason } => {
            tracing::warn!(%reason, "token refresh failed for now; status unchanged");
            TokenProblem::Unavailable(format!(
                "{app_name} could not renew the access token right now ({reason}); the status is unchanged"
            ))
        }
        TokenError::InvalidGrant { description } => {
            let message = format!(
                "{app_name} no longer accepts this connection's grant{}; reauthorize the connection",
                description.map(|d| format!(" ({d})")).unwrap_or_default()
            );
            match flag_dead_grant(state, connection, &message).await {
                Flagged::Yes | Flagged::Failed => TokenProblem::NeedsReauthorization(message),
                Flagged::Stale => TokenProblem::Unavailable(
                    "the connection was reauthorized or edited while its token was renewed; try again".into(),
                ),
            }
        }
        other => TokenProblem::Rejected(format!("{app_name} refused to renew the access token: {other}")),
    }
}

enum Flagged {
    Yes,
    /// Newer credentials were stored meanwhile: the failure concerned tokens no longer held.
    Stale,
    Failed,
}

/// Records a dead grant, with its audit entry and events, if the tokens refused are still the
/// stored ones.
async fn flag_dead_grant(state: &AppState, connection: &Connection, message: &str) -> Flagged {
    let note = Verification::noted(VerificationOutcome::NeedsReauthorization, message);
    let change = Change {
        actor: &Actor::system("token refresh"),
        fact: Fact::GrantDied,
        before: Some(connection),
        write: Write::DeadGrant { generation: connection.token_generation },
        check: Some(&note),
    };
    let result = record::record_alone(state, change).await;
    match result {
        Ok(Some(_)) => Flagged::Yes,
        Ok(None) => {
            tracing::info!("a refresh failed on tokens replaced meanwhile; nothing flagged");
            Flagged::Stale
        }
        Err(err) => {
            tracing::error!(error = %err, "could not flag a connection after a refresh");
            Flagged::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_preparing_falls_back_to_storing_the_tokens_as_they_came() {
        let stored =
            guarded(|| -> anyhow::Result<&str> { panic!("chrono overflowed") }, || Ok("as they came"));
        assert_eq!(stored.unwrap(), "as they came");
        let stored = guarded(|| Ok("prepared"), || -> anyhow::Result<&str> { panic!("not called") });
        assert_eq!(stored.unwrap(), "prepared");
        let failed = guarded(|| -> anyhow::Result<&str> { anyhow::bail!("could not seal") }, || Ok("unused"));
        assert!(failed.is_err(), "an error is no panic: it is reported, not papered over");
    }
}
