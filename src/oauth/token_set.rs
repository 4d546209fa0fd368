//! A successful token response (RFC 6749 §5.1) as Plugboard keeps it: the tokens as secrets,
//! the expiry and granted scopes as data, and the provider's other non-secret fields (Slack's
//! `team`, Salesforce's `instance_url`) for the connection's details. Anything that looks like
//! a credential is dropped from those fields, since they are stored in the clear.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::scope;

/// Fields read into `TokenSet`'s own members, or protocol noise (Slack's `ok`).
const KNOWN_FIELDS: [&str; 6] = ["access_token", "refresh_token", "expires_in", "scope", "token_type", "ok"];

/// Parts of a field name that mark a credential (`id_token`, `signature`, `api_key`, ...). Broad
/// on purpose: dropping a harmless field costs little, storing a secret in the clear does not.
const SECRET_MARKS: [&str; 11] = [
    "token",
    "secret",
    "password",
    "passwd",
    "code",
    "key",
    "signature",
    "assertion",
    "credential",
    "cookie",
    "session",
];

/// Endings that make a field harmless even when its name mentions a token (`token_type`,
/// `refresh_token_expires_in`).
const HARMLESS_ENDINGS: [&str; 3] = ["_type", "expires_in", "expires_at"];

/// The longest lifetime a provider is believed about (a little over a year). A longer one is
/// clamped to it, with a log line: a token said to live for centuries is a provider's bug, and
/// the date it would give cannot even be represented.
pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

/// Fields that say how long the grant itself (the refresh token) lives: the common name,
/// QuickBooks' `x_refresh_token_expires_in`, Keycloak's `refresh_expires_in`.
const GRANT_LIFETIME_FIELDS: [&str; 3] =
    ["refresh_token_expires_in", "x_refresh_token_expires_in", "refresh_expires_in"];

/// The tokens and facts of one token response. `Debug` prints no token.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the provider sent none: keep the one held (RFC 6749 §6).
    pub refresh_token: Option<SecretString>,
    /// `None` when the provider sent no usable expiry (absent, zero, negative or not a
    /// number): the token does not expire as far as we know. At most `MAX_LIFETIME`.
    pub expires_in: Option<Duration>,
    /// How long the refresh token (the grant) lives, when the provider says; at most
    /// `MAX_LIFETIME`.
    pub grant_expires_in: Option<Duration>,
    /// As granted, or `None` when the response does not say (then the requested ones apply).
    pub scopes: Option<Vec<String>>,
    pub token_type: Option<String>,
    /// The response's other fields, credentials removed at every depth.
    pub raw_extra: Map<String, Value>,
}

impl TokenSet {
    /// The token set in a response body, or `None` without an access token. Slack's v2 install
    /// with only user scopes puts the token in `authed_user`; that object is read then.
    pub(super) fn from_response(body: &Map<String, Value>, scope_separator: &str) -> Option<Self> {
        let holder = match body.get("access_token") {
            Some(_) => body,
            None => body.get("authed_user").and_then(Value::as_object)?,
        };
        let access_token = non_empty(holder.get("access_token"))?;
        Some(Self {
            access_token: SecretString::from(access_token),
            refresh_token: non_empty(holder.get("refresh_token")).map(SecretString::from),
            expires_in: holder.get("expires_in").and_then(|value| lifetime("expires_in", value)),
            grant_expires_in: GRANT_LIFETIME_FIELDS
                .iter()
                .find_map(|field| holder.get(*field).and_then(|value| lifetime(field, value))),
            scopes: holder.get("scope").and_then(|scopes| granted_scopes(scopes, scope_separator)),
            token_type: non_empty(holder.get("token_type")),
            raw_extra: without_credentials(body, &KNOWN_FIELDS),
        })
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refresh = if self.refresh_token.is_some() { "Some(***)" } else { "None" };
        f.debug_struct("TokenSet")
            .field("access_token", &format_args!("***"))
            .field("refresh_token", &format_args!("{refresh}"))
            .field("expires_in", &self.expires_in)
            .field("grant_expires_in", &self.grant_expires_in)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field("raw_extra", &self.raw_extra)
            .finish()
    }
}

fn non_empty(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).filter(|text| !text.trim().is_empty()).map(str::to_owned)
}

/// A lifetime in seconds, also written as a string or a float by some providers. Zero is read
/// as no expiry: some providers say so for tokens that do not expire. A negative, non-numeric
/// or absurd value is never trusted: it is ignored (no expiry) or clamped to `MAX_LIFETIME`,
/// with a log line naming the field, so a provider's bug shows up without breaking anything.
fn lifetime(field: &str, value: &Value) -> Option<Duration> {
    let max = MAX_LIFETIME.as_secs();
    let seconds = match value {
        Value::Null => return None,
        Value::Number(number) => match (number.as_u64(), number.as_f64()) {
            (Some(seconds), _) => Some(seconds),
            (None, Some(seconds)) if seconds.is_finite() && seconds >= 0.0 => {
                // Saturating: a float beyond u64 becomes u64::MAX, then clamped below.
                Some(seconds as u64)
            }
            _ => None,
        },
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    let Some(seconds) = seconds else {
        let shown: String = value.to_string().chars().take(40).collect();
        tracing::warn!(field, value = %shown, "the token endpoint sent an unusable lifetime; ignored");
        return None;
    };
    if seconds > max {
        tracing::warn!(field, seconds, max, "the token endpoint sent an absurd lifetime; clamped");
        return Some(MAX_LIFETIME);
    }
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// The granted scopes from a string (split leniently) or a list; `None` when blank, so that an
/// empty answer does not read as "nothing granted".
fn granted_scopes(value: &Value, separator: &str) -> Option<Vec<String>> {
    let scopes = match value {
        Value::String(text) => scope::parse_granted(text, separator),
        Value::Array(items) => {
            let text: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            scope::parse_granted(&text.join(" "), separator)
        }
        _ => return None,
    };
    (!scopes.is_empty()).then_some(scopes)
}

/// `object` without the `skip` fields and, at every depth, without fields that look like
/// credentials by name or by value (a JWT).
fn without_credentials(object: &Map<String, Value>, skip: &[&str]) -> Map<String, Value> {
    object
        .iter()
        .filter(|(key, value)| !skip.contains(&key.as_str()) && !looks_secret(key) && !is_jwt(value))
        .map(|(key, value)| (key.clone(), scrub(value)))
        .collect()
}

fn scrub(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(without_credentials(object, &[])),
        Value::Array(items) => Value::Array(items.iter().filter(|item| !is_jwt(item)).map(scrub).collect()),
        other => other.clone(),
    }
}

fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_MARKS.iter().any(|mark| key.contains(mark))
        && !HARMLESS_ENDINGS.iter().any(|end| key.ends_with(end))
}

fn is_jwt(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.starts_with("eyJ") && text.matches('.').count() == 2)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Option<TokenSet> {
        TokenSet::from_response(body.as_object().unwrap(), " ")
    }

    #[test]
    fn a_full_response_is_read() {
        let set = parse(json!({
            "access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600,
            "scope": "read write", "token_type": "Bearer"
        }))
        .unwrap();
        assert_eq!(set.access_token.expose_secret(), "at-1");
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt-1");
        assert_eq!(set.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(set.scopes.unwrap(), ["read", "write"]);
        assert_eq!(set.token_type.as_deref(), Some("Bearer"));
        assert!(set.raw_extra.is_empty());
    }

    #[test]
    fn expiry_may_be_a_string_or_a_float_and_zero_means_none() {
        let expiry =
            |value: Value| parse(json!({"access_token": "a", "expires_in": value})).unwrap().expires_in;
        assert_eq!(expiry(json!("7200")), Some(Duration::from_secs(7200)));
        assert_eq!(expiry(json!(59.9)), Some(Duration::from_secs(59)));
        assert_eq!(expiry(json!(0)), None);
        assert_eq!(expiry(json!(0.4)), None);
        assert_eq!(expiry(json!(-5)), None);
        assert_eq!(expiry(json!(-5.5)), None);
        assert_eq!(expiry(json!("soon")), None);
        assert_eq!(expiry(json!("-3600")), None);
        assert_eq!(expiry(json!({"seconds": 5})), None);
        assert_eq!(expiry(json!([3600])), None);
        assert_eq!(expiry(json!(true)), None);
        assert_eq!(expiry(json!(null)), None);
        assert_eq!(parse(json!({"access_token": "a"})).unwrap().expires_in, None);
    }

    #[test]
    fn absurd_lifetimes_are_clamped() {
        let expiry =
            |value: Value| parse(json!({"access_token": "a", "expires_in": value})).unwrap().expires_in;
        let ten_years = 10 * 365 * 24 * 3600_u64;
        assert_eq!(expiry(json!(ten_years)), Some(MAX_LIFETIME));
        assert_eq!(expiry(json!(u64::MAX)), Some(MAX_LIFETIME));
        assert_eq!(expiry(json!(1e300)), Some(MAX_LIFETIME));
        assert_eq!(expiry(json!("99999999999999999999")), None, "beyond u64 as text is unusable");
        assert_eq!(expiry(json!(MAX_LIFETIME.as_secs())), Some(MAX_LIFETIME));
    }

    #[test]
    fn the_grant_lifetime_is_read_under_its_providers_names() {
        let grant = |body: Value| parse(body).unwrap().grant_expires_in;
        let day = Duration::from_secs(86400);
        assert_eq!(grant(json!({"access_token": "a", "refresh_token_expires_in": 86400})), Some(day));
        assert_eq!(grant(json!({"access_token": "a", "x_refresh_token_expires_in": "86400"})), Some(day));
        assert_eq!(grant(json!({"access_token": "a", "refresh_expires_in": 86400})), Some(day));
        assert_eq!(grant(json!({"access_token": "a", "refresh_token_expires_in": -1})), None);
        assert_eq!(grant(json!({"access_token": "a"})), None);
    }

    #[test]
    fn scopes_may_be_a_list_and_blank_means_unknown() {
        let scopes = |value: Value| parse(json!({"access_token": "a", "scope": value})).unwrap().scopes;
        assert_eq!(scopes(json!(["a", "b"])).unwrap(), ["a", "b"]);
        assert_eq!(scopes(json!("a,b c")).unwrap(), ["a", "b", "c"]);
        assert_eq!(scopes(json!("")), None);
        assert_eq!(scopes(json!(7)), None);
    }

    #[test]
    fn without_an_access_token_there_is_no_token_set() {
        assert!(parse(json!({"refresh_token": "r"})).is_none());
        assert!(parse(json!({"access_token": ""})).is_none());
        assert!(parse(json!({"access_token": 12})).is_none());
    }

    #[test]
    fn extra_fields_keep_facts_and_lose_credentials_at_every_depth() {
        let set = parse(json!({
            "access_token": "xoxb-1", "token_type": "bot", "ok": true,
            "id_token": "x", "signature": "sig", "api_key": "k", "code": "c",
            "team": {"id": "T1", "name": "Team"}, "instance_url": "https://acme.my.salesforce.com",
            "refresh_token_expires_in": 86400,
            "authed_user": {"id": "U1", "access_token": "xoxp-1", "refresh_token": "r", "token_type": "user"},
            "bot": {"tokens": ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"]},
            "opaque": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "list": [{"session_id": "s", "n": 1}, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"]
        }))
        .unwrap();
        assert_eq!(
            Value::Object(set.raw_extra),
            json!({
                "team": {"id": "T1", "name": "Team"}, "instance_url": "https://acme.my.salesforce.com",
                "refresh_token_expires_in": 86400,
                "authed_user": {"id": "U1", "token_type": "user"},
                "bot": {},
                "list": [{"n": 1}]
            })
        );
    }

    #[test]
    fn a_slack_user_token_is_read_from_authed_user() {
        let set = parse(json!({
            "ok": true, "team": {"id": "T1"},
            "authed_user": {
                "id": "U1", "access_token": "xoxp-1", "scope": "chat:write,users:read", "token_type": "user"
            }
        }))
        .unwrap();
        assert_eq!(set.access_token.expose_secret(), "xoxp-1");
        assert_eq!(set.scopes.unwrap(), ["chat:write", "users:read"]);
        assert_eq!(set.token_type.as_deref(), Some("user"));
        let user = json!({"id": "U1", "scope": "chat:write,users:read", "token_type": "user"});
        assert_eq!(Value::Object(set.raw_extra), json!({"team": {"id": "T1"}, "authed_user": user}));
    }

    #[test]
    fn debug_prints_no_token() {
        let set = parse(json!({"access_token": "at-secret", "refresh_token": "rt-secret"})).unwrap();
        let printed = format!("{set:?}");
        assert!(!printed.contains("at-secret") && !printed.contains("rt-secret"), "{printed}");
        assert!(printed.contains("access_token: ***") && printed.contains("refresh_token: Some(***)"));
    }
}
