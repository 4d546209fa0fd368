//! Audit entries for connection changes: names and outcomes, never values.

use chrono::Utc;
use serde_json::json;

use crate::domain::{
    Actor, AuditAction, AuditEvent, AuditEventId, Connection, ConnectionStatus, Verification,
};

/// The trail's entry for `action` on `connection`, made now.
pub fn event(
    actor: &Actor,
    connection: &Connection,
    action: AuditAction,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        id: AuditEventId::new(),
        team_id: connection.team_id,
        actor: actor.clone(),
        action,
        connection_id: Some(connection.id),
        connection_name: Some(connection.name.as_str().to_owned()),
        detail,
        created_at: Utc::now(),
    }
}

/// What the trail records about a connection's content: field names, not values.
pub fn content(connection: &Connection) -> serde_json::Value {
    json!({
        "app": connection.app_key,
        "fields": connection.public_fields.keys().collect::<Vec<_>>(),
        "secret_fields": connection.secret_fields,
        "scopes": connection.scopes,
    })
}

pub fn verification(check: &Verification) -> serde_json::Value {
    json!({
        "outcome": check.outcome.as_str(),
        "account_label": check.account_label,
    })
}

/// A check that moved the connection from one status to another.
pub fn status_change(
    check: &Verification,
    from: ConnectionStatus,
    to: ConnectionStatus,
) -> serde_json::Value {
    let mut detail = verification(check);
    detail["previous_status"] = json!(from.as_str());
    detail["status"] = json!(to.as_str());
    detail
}

/// The names of what an edit changed; secrets count as replaced, since they are always re-entered.
pub fn changed_fields(before: &Connection, after: &Connection) -> Vec<String> {
    let mut changed: Vec<String> = before
        .public_fields
        .keys()
        .chain(after.public_fields.keys())
        .filter(|k| before.public_fields.get(*k) != after.public_fields.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if before.name != after.name {
        changed.insert(0, "name".into());
    }
    changed.extend(after.secret_fields.iter().map(|k| format!("{k} (secret, replaced)")));
    changed
}
