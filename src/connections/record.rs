//! The one write path for what happens to a connection. Every change (created, edited,
//! authorized, checked, its grant found dead, a consent refused, deleted) is recorded by
//! `record` inside the caller's transaction: the row, written under a guard; the check's
//! history; the audit entries; and the outbox rows of the events and webhooks it causes. What
//! a change causes is decided by two plain functions, `audit_entries` and `consequences`, which
//! the sweep's batched recording (`verification::record_assessed_checks`) calls too.

use serde_json::json;

use super::audit;
use crate::domain::{
    Actor, AuditAction, AuditEvent, Connection, ConnectionStatus, ConsentPurpose, Health, UserId,
    Verification,
};
use crate::error::{AppError, AppResult, FlowRef};
use crate::events::{ConnectionEvent, ConnectionEventKind, Event, VerificationEvent};
use crate::state::AppState;
use crate::store;
use crate::store::checks::CheckRecord;
use crate::store::connections::{ConnectionData, NewConnection};

/// What happened; it decides the audit entries, the events and the webhooks.
#[derive(Debug, Clone)]
pub(super) enum Fact {
    Created,
    Edited,
    /// A consent completed, for a new connection, a reauthorization or an edit.
    Authorized {
        purpose: ConsentPurpose,
        consented_as: Option<String>,
    },
    /// A person asked for a check (`verifyConnection`).
    Checked,
    /// The scheduler's periodic check: the trail keeps only the changes of status it finds.
    ScheduledCheck,
    /// Renewing the access token found the grant dead.
    GrantDied,
    /// A consent did not complete; a connection still waiting for one says why.
    ConsentRefused,
    /// Deleted, leaving these running flows without it.
    Deleted {
        broken: Vec<FlowRef>,
    },
}

/// How the row is written. Every write but the insert is guarded; a guard that no longer holds
/// means someone changed the connection meanwhile, and nothing at all is recorded.
pub(super) enum Write {
    Insert(NewConnection),
    /// Everything replaced, if the connection is still at `version`.
    Replace {
        version: i32,
        data: ConnectionData,
        by: Option<UserId>,
    },
    /// The change's check and what it leads to, if the connection is still at `version`.
    Check {
        version: i32,
        status: ConnectionStatus,
        health: Health,
    },
    /// The grant is dead, if the tokens of `generation` are still the stored ones.
    DeadGrant {
        generation: i32,
    },
    /// The change's check noted, status unchanged, if the connection is still at `version`.
    Note {
        version: i32,
    },
    Delete,
}

pub(super) struct Change<'a> {
    pub actor: &'a Actor,
    pub fact: Fact,
    /// The connection as the change found it; `None` for a new one.
    pub before: Option<&'a Connection>,
    pub write: Write,
    /// What a check found, for changes that bring one.
    pub check: Option<&'a Verification>,
}

/// Records `change` in `txn`. Answers the connection as written (as it was, for a delete), or
/// `None` when a guard did not hold and nothing was written.
pub(super) async fn record(
    txn: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    change: Change<'_>,
) -> AppResult<Option<Connection>> {
    let Change { actor, fact, before, write, check } = change;
    let Some(after) = write_row(txn, before, write, check).await? else {
        return Ok(None);
    };
    if let Some(check) = check.filter(|_| fact.joins_history()) {
        let history = state.config.verification_history;
        store::verifications::record(txn, after.team_id, after.id, check, history).await?;
    }
    let previous = previous_status(before);
    store::audit::record_many(txn, &audit_entries(actor, &fact, before, &after, previous, check)).await?;
    let consequences = consequences(&fact, previous, &after, check, actor);
    stage(txn, state, &after, consequences).await?;
    log(&fact, previous, &after, check);
    Ok(Some(after))
}

/// Records `change` in a transaction of its own, and wakes the dispatcher once it committed.
pub(super) async fn record_alone(state: &AppState, change: Change<'_>) -> AppResult<Option<Connection>> {
    let txn = store::begin(&state.db).await?;
    let recorded = record(&txn, state, change).await?;
    super::commit(state, txn).await?;
    Ok(recorded)
}

async fn write_row(
    txn: &impl sea_orm::ConnectionTrait,
    before: Option<&Connection>,
    write: Write,
    check: Option<&Verification>,
) -> AppResult<Option<Connection>> {
    // A change of an existing connection names it, and a check or a note brings its finding;
    // a caller that forgot is a bug, answered as an internal error rather than a panic.
    let found =
        || before.ok_or_else(|| AppError::internal(anyhow::anyhow!("a change without its connection")));
    let noted = || check.ok_or_else(|| AppError::internal(anyhow::anyhow!("a check without its finding")));
    Ok(match write {
        Write::Insert(new) => Some(store::connections::insert(txn, new).await?),
        Write::Replace { version, data, by } => {
            let current = found()?;
            store::connections::replace(txn, current.team_id, current.id, version, data, by).await?
        }
        Write::Check { version, status, health } => {
            let current = found()?;
            let record = CheckRecord { verification: noted()?, status, health: &health };
            store::checks::record(txn, current.team_id, current.id, version, current.status, record).await?
        }
        Write::DeadGrant { generation } => {
            let current = found()?;
            let status = ConnectionStatus::NeedsReauthorization;
            store::token_leases::flag_dead_grant(
                txn,
                current.team_id,
                current.id,
                generation,
                status,
                noted()?,
            )
            .await?
        }
        Write::Note { version } => {
            let current = found()?;
            store::connections::set_status(
                txn,
                current.team_id,
                current.id,
                version,
                current.status,
                noted()?,
            )
            .await?
        }
        Write::Delete => {
            let current = found()?;
            store::connections::delete(txn, current.team_id, current.id).await?.then(|| current.clone())
        }
    })
}

impl Fact {
    /// Whether the change's check joins the connection's history of checks. A note about a
    /// refresh or a refused consent is not a check of the credentials.
    fn joins_history(&self) -> bool {
        matches!(
            self,
            Fact::Created | Fact::Edited | Fact::Authorized { .. } | Fact::Checked | Fact::ScheduledCheck
        )
    }
}

/// The status the change moved the connection from: a new connection starts unverified.
fn previous_status(before: Option<&Connection>) -> ConnectionStatus {
    before.map_or(ConnectionStatus::Unverified, |before| before.status)
}

/// The trail's entries for a change: names and outcomes, never values.
pub(super) fn audit_entries(
    actor: &Actor,
    fact: &Fact,
    before: Option<&Connection>,
    after: &Connection,
    previous: ConnectionStatus,
    check: Option<&Verification>,
) -> Vec<AuditEvent> {
    let entry = |action, detail| audit::event(actor, after, action, detail);
    let changed = |check: &Verification| audit::status_change(check, previous, after.status);
    let mut entries = Vec::with_capacity(2);
    match fact {
        Fact::Created => entries.push(entry(AuditAction::ConnectionCreated, audit::content(after))),
        Fact::Edited => {
            let mut detail = audit::content(after);
            if let Some(before) = before {
                detail["changed_fields"] = json!(audit::changed_fields(before, after));
            }
            entries.push(entry(AuditAction::ConnectionEdited, detail));
        }
        Fact::Authorized { purpose, consented_as } => {
            let mut detail = audit::content(after);
            if let (ConsentPurpose::Edit, Some(before)) = (purpose, before) {
                detail["changed_fields"] = json!(audit::changed_fields(before, after));
            }
            // Who the provider says consented; the person who started the consent is the actor.
            detail["consented_as"] = json!(consented_as);
            entries.push(entry(purpose.audit_action(), detail));
        }
        Fact::Checked | Fact::ConsentRefused => {}
        Fact::ScheduledCheck | Fact::GrantDied => {
            if let Some(check) = check.filter(|_| after.status != previous) {
                entries.push(entry(AuditAction::ConnectionVerified, changed(check)));
            }
        }
        Fact::Deleted { broken } => {
            let detail = json!({ "app": after.app_key, "broken_flows": broken });
            entries.push(entry(AuditAction::ConnectionDeleted, detail));
        }
    }
    if let Some(check) = check
        .filter(|_| matches!(fact, Fact::Created | Fact::Edited | Fact::Authorized { .. } | Fact::Checked))
    {
        entries.push(entry(AuditAction::ConnectionVerified, audit::verification(check)));
    }
    entries
}

/// What watchers and webhook receivers learn of a change.
pub(super) struct Consequences {
    pub events: Vec<Event>,
    pub webhooks: Vec<WebhookToSend>,
}

pub(super) struct WebhookToSend {
    pub event: &'static str,
    pub affected: Option<Vec<FlowRef>>,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl WebhookToSend {
    fn plain(event: &'static str) -> Self {
        WebhookToSend { event, affected: None, extra: serde_json::Map::new() }
    }
}

/// The events and webhooks a change causes: its own kind (created, updated, deleted), the
/// finished check it brings, and when the status moved, the change of status and the webhook
/// it means (`connection.invalid`, `.needs_reauthorization`, `.recovered`).
pub(super) fn consequences(
    fact: &Fact,
    previous: ConnectionStatus,
    after: &Connection,
    check: Option<&Verification>,
    actor: &Actor,
) -> Consequences {
    let (team, id) = (after.team_id, after.id);
    let lifecycle = |kind| ConnectionEvent::changed(team, id, kind, Some(after.status), None);
    let mut events = Vec::with_capacity(3);
    let mut webhooks = Vec::new();
    match fact {
        Fact::Created => {
            events.push(lifecycle(ConnectionEventKind::Created));
            webhooks.push(WebhookToSend::plain(crate::webhooks::CREATED));
        }
        Fact::Edited => events.push(lifecycle(ConnectionEventKind::Updated)),
        Fact::Authorized { consented_as, .. } => {
            events.push(lifecycle(ConnectionEventKind::Updated));
            let mut extra = serde_json::Map::new();
            extra.insert("account".into(), json!(consented_as.as_ref().or(after.account_label.as_ref())));
            extra.insert("started_by".into(), json!(actor.label));
            webhooks.push(WebhookToSend { event: crate::webhooks::AUTHORIZED, affected: None, extra });
        }
        Fact::Deleted { broken } => {
            let event =
                ConnectionEvent::changed(team, id, ConnectionEventKind::Deleted, None, Some(previous));
            let hook = WebhookToSend {
                event: crate::webhooks::DELETED,
                affected: Some(broken.clone()),
                extra: serde_json::Map::new(),
            };
            return Consequences { events: vec![event], webhooks: vec![hook] };
        }
        Fact::Checked | Fact::ScheduledCheck | Fact::GrantDied | Fact::ConsentRefused => {}
    }
    if let Some(check) = check.filter(|_| !matches!(fact, Fact::ConsentRefused)) {
        events.push(VerificationEvent::finished(team, id, check));
    }
    if after.status != previous {
        if let Some(event) = crate::webhooks::status_event(previous, after.status) {
            webhooks.push(WebhookToSend::plain(event));
        }
        events.push(ConnectionEvent::changed(
            team,
            id,
            ConnectionEventKind::StatusChanged,
            Some(after.status),
            Some(previous),
        ));
    }
    Consequences { events, webhooks }
}

/// Stages `consequences` in the outbox of the change's transaction.
pub(super) async fn stage(
    txn: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    connection: &Connection,
    consequences: Consequences,
) -> AppResult<()> {
    for hook in consequences.webhooks {
        crate::webhooks::enqueue(txn, state, hook.event, connection, hook.affected, hook.extra).await?;
    }
    crate::events::stage(txn, &consequences.events).await?;
    Ok(())
}

/// A change of status is news for an operator; a check that changes nothing is detail.
pub(super) fn log(fact: &Fact, previous: ConnectionStatus, after: &Connection, check: Option<&Verification>) {
    let (connection_id, team_id, app, status) =
        (after.id, after.team_id, &after.app_key, after.status.as_str());
    let outcome = check.map(|check| check.outcome.as_str());
    match fact {
        Fact::Created if after.status == ConnectionStatus::PendingAuthorization => {
            tracing::info!(%connection_id, %team_id, %app, "connection created; waiting for consent");
        }
        Fact::Created => tracing::info!(%connection_id, %team_id, %app, status, "connection created"),
        Fact::Edited => {
            tracing::info!(%connection_id, %team_id, version = after.version, status, "connection edited");
        }
        Fact::Authorized { purpose, .. } => {
            tracing::info!(%connection_id, %team_id, purpose = purpose.as_str(), status, "consent completed");
        }
        Fact::Deleted { broken } => {
            tracing::info!(%connection_id, %team_id, broken_flows = broken.len(), "connection deleted");
        }
        Fact::ConsentRefused => tracing::info!(%connection_id, %team_id, "a consent did not complete"),
        Fact::Checked | Fact::ScheduledCheck | Fact::GrantDied if after.status == previous => {
            tracing::debug!(%connection_id, %app, outcome, status, "verification recorded");
        }
        Fact::Checked | Fact::ScheduledCheck | Fact::GrantDied => {
            tracing::info!(%connection_id, %app, outcome, status, previous = previous.as_str(), "verification recorded; status changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{AuthType, ConnectionId, ConnectionName, TeamId, VerificationOutcome};
    use crate::events::VerificationPhase;

    fn connection(status: ConnectionStatus) -> Connection {
        let now = Utc::now();
        Connection {
            id: ConnectionId::new(),
            team_id: TeamId::from_uuid(uuid::Uuid::now_v7()),
            app_key: "openai".into(),
            name: ConnectionName::parse("Main").unwrap(),
            auth_type: AuthType::ApiKey,
            status,
            public_fields: Default::default(),
            secret_fields: vec!["api_key".into()],
            scopes: Vec::new(),
            expires_at: None,
            grant_expires_at: None,
            token_details: Default::default(),
            token_generation: 0,
            account_label: None,
            last_verification: None,
            health: Health::default(),
            version: 1,
            created_by: None,
            updated_by: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn check(outcome: VerificationOutcome) -> Verification {
        let now = Utc::now();
        Verification { outcome, message: None, account_label: None, started_at: now, finished_at: now }
    }

    /// What the events say, in order: `kind` or `verification`.
    fn kinds(consequences: &Consequences) -> Vec<String> {
        consequences
            .events
            .iter()
            .map(|event| match event {
                Event::Connection(e) => format!("{:?}", e.kind),
                Event::Verification(e) if e.phase == VerificationPhase::Finished => "Finished".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn hooks(consequences: &Consequences) -> Vec<&'static str> {
        consequences.webhooks.iter().map(|hook| hook.event).collect()
    }

    #[test]
    fn a_scheduled_check_that_changes_nothing_is_history_only() {
        let actor = Actor::system("scheduler");
        let before = connection(ConnectionStatus::Active);
        let found = check(VerificationOutcome::Ok);
        let after = before.clone().after_check(&found, ConnectionStatus::Active, Health::default());
        let fact = Fact::ScheduledCheck;
        let audit = audit_entries(&actor, &fact, Some(&before), &after, before.status, Some(&found));
        assert!(audit.is_empty(), "an unchanged daily check does not bury people's changes");
        let said = consequences(&fact, before.status, &after, Some(&found), &actor);
        assert_eq!(kinds(&said), ["Finished"]);
        assert!(hooks(&said).is_empty());
    }

    #[test]
    fn a_check_that_moves_the_status_is_audited_announced_and_sent() {
        let actor = Actor::system("scheduler");
        let before = connection(ConnectionStatus::Active);
        let found = check(VerificationOutcome::InvalidCredentials);
        let after = before.clone().after_check(&found, ConnectionStatus::Invalid, Health::default());
        for fact in [Fact::ScheduledCheck, Fact::GrantDied] {
            let audit = audit_entries(&actor, &fact, Some(&before), &after, before.status, Some(&found));
            assert_eq!(audit.len(), 1);
            assert_eq!(audit[0].action, AuditAction::ConnectionVerified);
            assert_eq!(audit[0].detail["previous_status"], "ACTIVE");
            let said = consequences(&fact, before.status, &after, Some(&found), &actor);
            assert_eq!(kinds(&said), ["Finished", "StatusChanged"]);
            assert_eq!(hooks(&said), [crate::webhooks::INVALID]);
        }
        // A recovery is news for receivers too.
        let recovered = after.clone().after_check(
            &check(VerificationOutcome::Ok),
            ConnectionStatus::Active,
            Health::default(),
        );
        let said = consequences(&Fact::Checked, after.status, &recovered, Some(&found), &actor);
        assert_eq!(hooks(&said), [crate::webhooks::RECOVERED]);
    }

    #[test]
    fn a_created_connection_whose_check_fails_says_so_from_unverified() {
        let actor = Actor::system("test");
        let found = check(VerificationOutcome::InvalidCredentials);
        let after = connection(ConnectionStatus::Invalid);
        let previous = previous_status(None);
        assert_eq!(previous, ConnectionStatus::Unverified);
        let audit = audit_entries(&actor, &Fact::Created, None, &after, previous, Some(&found));
        let actions: Vec<_> = audit.iter().map(|entry| entry.action).collect();
        assert_eq!(actions, [AuditAction::ConnectionCreated, AuditAction::ConnectionVerified]);
        let said = consequences(&Fact::Created, previous, &after, Some(&found), &actor);
        assert_eq!(kinds(&said), ["Created", "Finished", "StatusChanged"]);
        assert_eq!(hooks(&said), [crate::webhooks::CREATED, crate::webhooks::INVALID]);
    }

    #[test]
    fn a_delete_names_the_flows_it_breaks_and_nothing_else() {
        let actor = Actor::system("test");
        let before = connection(ConnectionStatus::Active);
        let broken = vec![FlowRef { id: "f".into(), name: "Sync".into(), status: "ACTIVE".into() }];
        let fact = Fact::Deleted { broken: broken.clone() };
        let audit = audit_entries(&actor, &fact, Some(&before), &before, before.status, None);
        assert_eq!(audit[0].action, AuditAction::ConnectionDeleted);
        assert_eq!(audit[0].detail["broken_flows"][0]["name"], "Sync");
        let said = consequences(&fact, before.status, &before, None, &actor);
        assert_eq!(kinds(&said), ["Deleted"]);
        assert_eq!(hooks(&said), [crate::webhooks::DELETED]);
        assert_eq!(said.webhooks[0].affected.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn a_refused_consent_is_noted_without_news() {
        let actor = Actor::system("consent");
        let pending = connection(ConnectionStatus::PendingAuthorization);
        let note = check(VerificationOutcome::InvalidCredentials);
        let fact = Fact::ConsentRefused;
        assert!(!fact.joins_history());
        assert!(
            audit_entries(&actor, &fact, Some(&pending), &pending, pending.status, Some(&note)).is_empty()
        );
        let said = consequences(&fact, pending.status, &pending, Some(&note), &actor);
        assert!(said.events.is_empty() && said.webhooks.is_empty());
    }

    #[test]
    fn a_completed_consent_is_audited_under_its_purpose_with_who_consented() {
        let actor = Actor::system("test");
        let before = connection(ConnectionStatus::NeedsReauthorization);
        let after = connection(ConnectionStatus::Active);
        let fact =
            Fact::Authorized { purpose: ConsentPurpose::Reauthorize, consented_as: Some("a@b.test".into()) };
        let found = check(VerificationOutcome::Ok);
        let audit = audit_entries(&actor, &fact, Some(&before), &after, before.status, Some(&found));
        assert_eq!(audit[0].action, AuditAction::ConnectionReauthorized);
        assert_eq!(audit[0].detail["consented_as"], "a@b.test");
        let said = consequences(&fact, before.status, &after, Some(&found), &actor);
        assert_eq!(hooks(&said), [crate::webhooks::AUTHORIZED, crate::webhooks::RECOVERED]);
        assert_eq!(said.webhooks[0].extra["account"], "a@b.test");
    }
}
