//! What a provider's token answer means for a connection: whether a stored access token is
//! still usable, when tokens and grants end, which details of the answer are kept, and the
//! client that asks the token endpoint. Plain functions, shared by consent, renewal and reads.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::secrets::StoredSecrets;
use crate::catalog::{App, FormValues};
use crate::domain::{AuthType, Connection};
use crate::oauth::{self, TokenError, TokenSet};
use crate::state::AppState;
use crate::verify::host_is_templated;

/// The access token of `secrets`, unless it should be renewed first: it expires within the
/// skew and can be renewed. A token without an expiry, or one that nothing could renew (no
/// refresh token), is used as it is: only the provider's refusal says it is dead.
pub(super) fn usable(
    state: &AppState,
    connection: &Connection,
    secrets: &StoredSecrets,
) -> Option<SecretString> {
    let token = secrets.access_token.clone()?;
    let renewable =
        secrets.refresh_token.is_some() || connection.auth_type == AuthType::OAuth2ClientCredentials;
    let fresh = match connection.expires_at {
        None => true,
        Some(expires_at) => {
            let skew = chrono::Duration::from_std(state.config.token_refresh_skew).unwrap_or_default();
            expires_at > Utc::now() + skew
        }
    };
    (fresh || !renewable).then_some(token)
}

/// The outbound client for the app's token endpoint, under the egress policy when a user's form
/// chose its host.
pub(super) fn token_client(
    state: &AppState,
    app: &App,
    form: &FormValues,
) -> Result<reqwest::Client, TokenError> {
    let url = oauth::token_url(app, form)?;
    let user_supplied = app.oauth().is_some_and(|o| host_is_templated(o.token_url()));
    state.outbound.client_for(&url, user_supplied).cloned().map_err(|err| TokenError::Rejected {
        error: "egress_refused".into(),
        description: Some(err.to_string()),
        status: 0,
    })
}

/// When something living `lifetime` from `now` ends; `None` without a lifetime. Lifetimes are
/// clamped where they are read (`TokenSet`); this never panics on what is left.
pub(super) fn expiry(now: DateTime<Utc>, lifetime: Option<Duration>) -> Option<DateTime<Utc>> {
    let lifetime = lifetime?.min(oauth::MAX_LIFETIME);
    let lifetime = chrono::Duration::from_std(lifetime).ok()?;
    now.checked_add_signed(lifetime)
}

/// When the grant of `tokens` ends, if the provider said.
pub(super) fn grant_expiry(now: DateTime<Utc>, tokens: &TokenSet) -> Option<DateTime<Utc>> {
    expiry(now, tokens.grant_expires_in)
}

/// The most characters a kept token response field may have.
const MAX_DETAIL_CHARS: usize = 2048;

/// The token response fields `app` keeps with the grant (`[oauth] token_fields`), as text;
/// `None` when the response named none of them.
pub(super) fn grant_details(app: &App, tokens: &TokenSet) -> Option<BTreeMap<String, String>> {
    let names = app.oauth()?.token_fields();
    let details: BTreeMap<String, String> = names
        .iter()
        .filter_map(|name| {
            let text = match tokens.raw_extra.get(name)? {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            if text.chars().count() > MAX_DETAIL_CHARS || text.chars().any(char::is_control) {
                tracing::warn!(field = %name, "the token endpoint sent an unusable value for a kept field; ignored");
                return None;
            }
            Some((name.clone(), text))
        })
        .collect();
    (!details.is_empty()).then_some(details)
}

/// `form` with the grant's kept details added, for filling the app's templates (never stored
/// as form values).
pub fn with_details(form: &FormValues, details: &BTreeMap<String, String>) -> FormValues {
    if details.is_empty() {
        return form.clone();
    }
    let (mut public, secret) = form.clone().into_parts();
    for (name, value) in details {
        public.entry(name.clone()).or_insert_with(|| value.clone());
    }
    FormValues::from_parts(public, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_never_panics_and_clamps() {
        let now = Utc::now();
        assert_eq!(expiry(now, None), None);
        let far = expiry(now, Some(Duration::from_secs(u64::MAX))).unwrap();
        assert_eq!(far, now + chrono::Duration::from_std(oauth::MAX_LIFETIME).unwrap());
        assert_eq!(expiry(DateTime::<Utc>::MAX_UTC, Some(Duration::from_secs(60))), None);
        assert_eq!(expiry(now, Some(Duration::from_secs(60))), Some(now + chrono::Duration::seconds(60)));
    }
}
