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

/// The tokens and facts of one token response. `Debug` prints no token.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the provider sent none: keep the one held (RFC 6749 §6).
    pub refresh_token: Option<SecretString>,
    /// `None` when the provider sent no usable expiry (absent, zero or not a number).
    pub expires_in: Option<Duration>,
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
            expires_in: holder.get("expires_in").and_then(seconds),
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
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field("raw_extra", &self.raw_extra)
            .finish()
    }
}

fn non_empty(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).filter(|text| !text.trim().is_empty()).map(str::to_owned)
}

/// `expires_in` as a number of seconds, also written as a string or a float by some providers.
/// Zero is read as no expiry: some providers say so for tokens that do not expire.
fn seconds(value: &Value) -> Option<Duration> {
    let seconds = match value {
        Value::Number(number) => number
            .as_u64()
            .or_else(|| number.as_f64().filter(|s| s.is_finite() && *s >= 1.0).map(|s| s as u64)),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    }?;
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
        assert_eq!(expiry(json!(-5)), None);
        assert_eq!(expiry(json!("soon")), None);
        assert_eq!(parse(json!({"access_token": "a"})).unwrap().expires_in, None);
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
