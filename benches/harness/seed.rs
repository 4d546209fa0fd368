//! Connections written straight into the store in batches, with real sealed secrets, so a
//! scenario can start with 100,000 of them in seconds instead of creating each over GraphQL.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use plugboard::crypto::{Binding, Sealer};
use plugboard::domain::{AuthType, ConnectionId, ConnectionStatus, TeamId, VerificationOutcome};
use plugboard::state::AppState;
use plugboard::store::entities::connection::{ActiveModel, Entity};
use sea_orm::ActiveValue::Set;
use sea_orm::{EntityTrait, TransactionTrait};
use secrecy::ExposeSecret;
use serde_json::json;

/// Rows per INSERT (28 columns each stays under SQLite's and PostgreSQL's parameter limits).
const ROWS_PER_INSERT: usize = 500;
/// Rows per transaction.
const ROWS_PER_TRANSACTION: usize = 20 * ROWS_PER_INSERT;

/// `count` active OpenAI connections (an API-key app), checked a day ago and due now when
/// `due`, else tomorrow. Answers their ids in creation order.
pub async fn api_key_connections(
    state: &AppState,
    team_id: TeamId,
    count: usize,
    due: bool,
) -> anyhow::Result<Vec<ConnectionId>> {
    let now = Utc::now();
    let next_check_at =
        if due { now - chrono::Duration::minutes(1) } else { now + chrono::Duration::days(1) };
    let mut ids = Vec::with_capacity(count);
    let mut rows = Vec::with_capacity(ROWS_PER_TRANSACTION);
    for i in 0..count {
        let id = ConnectionId::new();
        let key = format!("sk-bench-{i:07}");
        let sealed = seal(&state.sealer, team_id, id, &BTreeMap::from([("api_key", key.as_str())]))?;
        rows.push(
            Row {
                id,
                team_id,
                app_key: "openai",
                auth_type: AuthType::ApiKey,
                name: format!("OpenAI {i:07}"),
                secret_fields: vec!["api_key"],
                sealed,
                scopes: vec![],
                expires_at: None,
                next_check_at,
            }
            .into_model(state.sealer.active_key_id().to_string(), now),
        );
        ids.push(id);
        if rows.len() == ROWS_PER_TRANSACTION {
            insert(state, std::mem::replace(&mut rows, Vec::with_capacity(ROWS_PER_TRANSACTION))).await?;
        }
    }
    insert(state, rows).await?;
    if let Some(first) = ids.first() {
        opens(state, team_id, *first, "api_key").await?;
    }
    settle(state).await?;
    Ok(ids)
}

/// On PostgreSQL, analyses and vacuums the connections just seeded. A table in use has long been
/// analysed by autovacuum; seconds after a bulk insert it has not, and PostgreSQL would plan on
/// empty statistics (it counted a team's 10,000 connections through the heap, not the index)
/// with an empty visibility map. The scenarios measure the service, not that moment.
async fn settle(state: &AppState) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait;
    if state.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        state
            .db
            .execute_unprepared("VACUUM ANALYZE connections")
            .await
            .context("VACUUM ANALYZE connections")?;
    }
    Ok(())
}

/// One active `bench-oauth` connection whose access token expired a minute ago and whose refresh
/// token still works.
pub async fn expired_oauth_connection(state: &AppState, team_id: TeamId) -> anyhow::Result<ConnectionId> {
    let now = Utc::now();
    let id = ConnectionId::new();
    let secrets =
        BTreeMap::from([("access_token", "bench-access-expired"), ("refresh_token", "bench-refresh-0")]);
    let row = Row {
        id,
        team_id,
        app_key: "bench-oauth",
        auth_type: AuthType::OAuth2,
        name: "Bench OAuth".into(),
        secret_fields: vec![],
        sealed: seal(&state.sealer, team_id, id, &secrets)?,
        scopes: vec!["profile"],
        expires_at: Some(now - chrono::Duration::minutes(1)),
        next_check_at: now + chrono::Duration::days(1),
    };
    insert(state, vec![row.into_model(state.sealer.active_key_id().to_string(), now)]).await?;
    opens(state, team_id, id, "refresh_token").await?;
    Ok(id)
}

/// What differs between seeded connections.
struct Row {
    id: ConnectionId,
    team_id: TeamId,
    app_key: &'static str,
    auth_type: AuthType,
    name: String,
    secret_fields: Vec<&'static str>,
    sealed: Vec<u8>,
    scopes: Vec<&'static str>,
    expires_at: Option<DateTime<Utc>>,
    next_check_at: DateTime<Utc>,
}

impl Row {
    fn into_model(self, key_id: String, now: DateTime<Utc>) -> ActiveModel {
        let checked_at = now - chrono::Duration::days(1);
        ActiveModel {
            id: Set(self.id),
            team_id: Set(self.team_id),
            app_key: Set(self.app_key.to_owned()),
            name: Set(self.name),
            auth_type: Set(self.auth_type),
            status: Set(ConnectionStatus::Active),
            public_fields: Set(json!({})),
            secret_fields: Set(json!(self.secret_fields)),
            sealed_secrets: Set(Some(self.sealed)),
            secrets_key_id: Set(Some(key_id)),
            scopes: Set(json!(self.scopes)),
            expires_at: Set(self.expires_at),
            account_label: Set(None),
            last_verification_outcome: Set(Some(VerificationOutcome::Ok)),
            last_verification_message: Set(Some("The credentials work.".into())),
            last_verification_started_at: Set(Some(checked_at)),
            last_verification_finished_at: Set(Some(checked_at)),
            version: Set(1),
            created_by: Set(None),
            updated_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            next_check_at: Set(Some(self.next_check_at)),
            consecutive_failures: Set(0),
            last_success_at: Set(Some(checked_at)),
            last_failure_at: Set(None),
            refresh_lease_by: Set(None),
            refresh_lease_expires_at: Set(None),
            token_generation: Set(0),
            grant_expires_at: Set(None),
            token_details: Set(None),
            grant_warned_days: Set(None),
        }
    }
}

/// Seals `secrets` as the service does (`connections::secrets`): one JSON object, bound to the
/// team and connection. [`opens`] checks that the service reads it back.
fn seal(
    sealer: &Sealer,
    team_id: TeamId,
    id: ConnectionId,
    secrets: &BTreeMap<&str, &str>,
) -> anyhow::Result<Vec<u8>> {
    let plaintext = serde_json::to_vec(secrets)?;
    let binding = Binding::new("connection", team_id.as_uuid(), id.as_uuid());
    Ok(sealer.seal(&plaintext, &binding)?)
}

async fn insert(state: &AppState, rows: Vec<ActiveModel>) -> anyhow::Result<()> {
    let txn = state.db.begin().await?;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<ActiveModel> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        Entity::insert_many(chunk).exec_without_returning(&txn).await.context("seeding connections")?;
    }
    txn.commit().await?;
    Ok(())
}

/// Fails unless the service's own `open_secrets` opens the seeded row and finds `field`.
async fn opens(state: &AppState, team_id: TeamId, id: ConnectionId, field: &str) -> anyhow::Result<()> {
    let (_, sealed) = plugboard::store::connections::find_with_secrets(&state.db, team_id, id)
        .await?
        .context("a seeded connection is missing")?;
    let sealed = sealed.context("a seeded connection has no sealed secrets")?;
    let secrets = plugboard::connections::open_secrets(&state.sealer, team_id, id, &sealed)
        .context("the service cannot open the secrets the bench sealed")?;
    anyhow::ensure!(
        secrets.get(field).is_some_and(|v| !v.expose_secret().is_empty()),
        "the seeded secrets lack {field}"
    );
    Ok(())
}
