//! Recording the scheduler's checks, a batch at a time: assessed (reads only), then everything
//! the batch writes worked out and built, and only then the write turn, a transaction that runs
//! a few set-based statements. On SQLite that transaction holds the one writer, so nothing that
//! can be done before it is done inside it.

use std::collections::HashMap;

use super::record::{self, Consequences, Fact, WebhookToSend};
use super::verification::{next_state, with_module_scopes};
use crate::domain::{Actor, Connection, ConnectionId, ConnectionStatus, Health, Verification};
use crate::error::AppResult;
use crate::events::EncodedEvents;
use crate::flows;
use crate::state::AppState;
use crate::store::checks::{CheckRecord, ClaimedCheck};
use crate::store::{self, PreparedWrites};
use crate::verify::CheckResult;

/// A scheduled check waiting to be recorded.
pub struct CheckedConnection {
    pub connection: Connection,
    /// The lease the connection was claimed under (see `store::checks`).
    pub lease: uuid::Uuid,
    pub check: CheckResult,
}

/// A batch of scheduled checks with what each leads to, worked out before anything is written:
/// the scopes the flows using a connection need, and its next status and health.
pub struct AssessedChecks<'a> {
    findings: Vec<Finding<'a>>,
}

struct Finding<'a> {
    connection: &'a Connection,
    lease: uuid::Uuid,
    verification: Verification,
    status: ConnectionStatus,
    health: Health,
}

/// Assesses a batch of scheduled checks: reads only, so the sweep does it before it takes its
/// turn to write and other writers do not wait for these look-ups.
pub async fn assess_scheduled_checks<'a>(
    state: &AppState,
    batch: &'a [CheckedConnection],
) -> AppResult<AssessedChecks<'a>> {
    let ids: Vec<ConnectionId> = batch.iter().map(|c| c.connection.id).collect();
    // Most connections no flow uses; only the others need their usages looked up.
    let possibly_used = flows::usage::possibly_used(&state.db, &ids).await?;
    let mut findings = Vec::with_capacity(batch.len());
    for CheckedConnection { connection, lease, check } in batch {
        let verification = if possibly_used.contains(&connection.id) {
            with_module_scopes(&state.db, state, connection, check.clone()).await?.verification
        } else {
            check.verification.clone()
        };
        let (status, health) = next_state(state, connection, verification.outcome, check.retry_after);
        findings.push(Finding { connection, lease: *lease, verification, status, health });
    }
    Ok(AssessedChecks { findings })
}

/// Records a batch of scheduled checks in one transaction of a few statements, however large
/// the batch, then tells watchers. Every check joins the connection's history; those that
/// changed its status also join the audit trail. Answers how many were written; the others
/// were deleted, edited or taken over by another sweep meanwhile, and are dropped.
pub async fn record_assessed_checks(
    state: &AppState,
    actor: &Actor,
    assessed: &AssessedChecks<'_>,
) -> AppResult<u64> {
    let records: Vec<ClaimedCheck> = assessed
        .findings
        .iter()
        .map(|finding| ClaimedCheck {
            id: finding.connection.id,
            lease: finding.lease,
            claimed_version: finding.connection.version,
            claimed_status: finding.connection.status,
            record: CheckRecord {
                verification: &finding.verification,
                status: finding.status,
                health: &finding.health,
            },
        })
        .collect();
    // Almost always every claimed connection is written from the status it was claimed at:
    // what follows from that is built now, before the transaction.
    let everything: Vec<&Finding> = assessed.findings.iter().collect();
    let planned = BatchWrites::plan(state, actor, &everything, |connection| connection.status)?;

    let txn = store::begin(&state.db).await?;
    // Each written connection's status just before the write: a refresh during the check may
    // have flagged one, and that change was announced already.
    let written = store::checks::record_claimed(&txn, &records).await?;
    drop(records);
    let writes = if written_as_claimed(&everything, &written) {
        planned
    } else {
        let findings: Vec<&Finding> =
            everything.into_iter().filter(|finding| written.contains_key(&finding.connection.id)).collect();
        let previous = |c: &Connection| written.get(&c.id).copied().unwrap_or(c.status);
        BatchWrites::plan(state, actor, &findings, previous)?
    };
    let recorded = writes.run(&txn, state).await?;
    super::commit(state, txn).await?;
    for Recorded { previous, connection, verification, .. } in &recorded {
        record::log(&Fact::ScheduledCheck, *previous, connection, Some(verification));
    }
    Ok(recorded.len() as u64)
}

/// Whether every finding's connection was written, each from the status it was claimed at.
fn written_as_claimed(findings: &[&Finding], written: &HashMap<ConnectionId, ConnectionStatus>) -> bool {
    written.len() == findings.len()
        && findings
            .iter()
            .all(|finding| written.get(&finding.connection.id) == Some(&finding.connection.status))
}

/// What a recorded batch writes besides the connections' rows: their history, the audit
/// entries and events of each check (the same that `record::record` decides for one), and the
/// rare webhooks of a status that moved.
struct BatchWrites<'a> {
    statements: PreparedWrites,
    events: EncodedEvents,
    recorded: Vec<Recorded<'a>>,
}

/// A check as it was recorded: the connection after it, and the status it moved from.
struct Recorded<'a> {
    previous: ConnectionStatus,
    connection: Connection,
    verification: &'a Verification,
    webhooks: Vec<WebhookToSend>,
}

impl<'a> BatchWrites<'a> {
    /// The writes for `findings`, each connection having stood at `previous(connection)`.
    fn plan(
        state: &AppState,
        actor: &Actor,
        findings: &[&'a Finding<'a>],
        previous: impl Fn(&Connection) -> ConnectionStatus,
    ) -> AppResult<Self> {
        let backend = state.db.get_database_backend();
        let fact = Fact::ScheduledCheck;
        let history: Vec<_> = findings
            .iter()
            .map(|finding| (finding.connection.team_id, finding.connection.id, &finding.verification))
            .collect();
        let mut statements = PreparedWrites::default();
        statements.extend(store::verifications::record_many_statements(
            backend,
            &history,
            state.config.verification_history,
        ));
        let mut trail = Vec::new();
        let mut events = Vec::with_capacity(findings.len());
        let mut recorded = Vec::with_capacity(findings.len());
        for &&Finding { connection, ref verification, ref health, .. } in findings {
            let previous = previous(connection);
            // From the status it had just before the write, as `store::checks` wrote it: an
            // outage's result keeps a status a refresh set during the check.
            let status = verification.outcome.next_status(previous);
            let after = connection.clone().after_check(verification, status, health.clone());
            trail.extend(record::audit_entries(
                actor,
                &fact,
                Some(connection),
                &after,
                previous,
                Some(verification),
            ));
            let consequences = record::consequences(&fact, previous, &after, Some(verification), actor);
            events.extend(consequences.events);
            recorded.push(Recorded {
                previous,
                connection: after,
                verification,
                webhooks: consequences.webhooks,
            });
        }
        statements.extend(store::audit::record_many_statement(backend, &trail));
        Ok(BatchWrites { statements, events: EncodedEvents::new(&events)?, recorded })
    }

    /// Runs the writes inside `txn` and answers the checks they recorded.
    async fn run(
        self,
        txn: &impl sea_orm::ConnectionTrait,
        state: &AppState,
    ) -> AppResult<Vec<Recorded<'a>>> {
        self.statements.run(txn).await?;
        let mut recorded = self.recorded;
        for check in &mut recorded {
            // Rare: a status change that receivers hear of.
            if !check.webhooks.is_empty() {
                let webhooks =
                    Consequences { events: Vec::new(), webhooks: std::mem::take(&mut check.webhooks) };
                record::stage(txn, state, &check.connection, webhooks).await?;
            }
        }
        self.events.stage(txn).await?;
        Ok(recorded)
    }
}
