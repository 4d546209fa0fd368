//! One call a runner made through the proxy, as the audit keeps it: compact, and without any
//! body or header value. The path is stored without query values, which may hold secrets or
//! personal data.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Actor, ConnectionId, FlowId, TeamId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// Version 7, so ids sort by time.
    pub id: Uuid,
    pub team_id: TeamId,
    pub connection_id: ConnectionId,
    pub flow_id: Option<FlowId>,
    /// The flow's module key, when the call named a flow and module.
    pub module_key: Option<String>,
    pub method: String,
    /// The path under the app's API base, with query parameter names but not their values.
    pub path: String,
    /// The status the caller got (the provider's, or Plugboard's own refusal).
    pub status: u16,
    pub duration_ms: u32,
    /// The `Plugboard-Error` code the answer carried, if any.
    pub plugboard_error: Option<String>,
    pub actor: Actor,
    pub created_at: DateTime<Utc>,
}

/// Longest path kept; the rest is cut (paths are for people to recognise, not to replay).
const MAX_PATH_CHARS: usize = 500;

/// `path` and the names of the parameters in `query`, values dropped: `/v1/items?limit&cursor`.
pub fn audit_path(path: &str, query: Option<&str>) -> String {
    let mut kept: String = path.chars().take(MAX_PATH_CHARS).collect();
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let names: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
            .collect();
        if !names.is_empty() {
            kept.push('?');
            kept.push_str(&names.join("&"));
        }
    }
    kept.chars().take(MAX_PATH_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::audit_path;

    #[test]
    fn query_values_are_dropped_and_names_kept() {
        assert_eq!(audit_path("/v1/items", Some("limit=5&cursor=abc&flag")), "/v1/items?limit&cursor&flag");
        assert_eq!(audit_path("/v1/items", Some("")), "/v1/items");
        assert_eq!(audit_path("/v1/items", None), "/v1/items");
        assert_eq!(audit_path(&"a".repeat(900), None).len(), 500);
    }
}
