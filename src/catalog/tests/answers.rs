//! `[verify] ok_body` and `failures`, and `[oauth] host_fields`: what they accept and how a
//! mistake in them is reported.

use super::{ACME, DESK, assert_rejected, edit};
use crate::catalog::{BodyRule, Catalog, FailureOutcome};

const RULES: &str = r#"account_pointer = "/user/email"
ok_body = [{ pointer = "/ok", equals = true }, { pointer = "/errors", absent = true }, { pointer = "/user/id", present = true }]

[[verify.failures]]
outcome = "INSUFFICIENT_SCOPES"
statuses = [200, 403]
pointer = "/error"
equals = ["missing_scope", "no_permission"]
scope_pointer = "/needed"

[[verify.failures]]
outcome = "PROVIDER_UNAVAILABLE"
statuses = [403]
header = { name = "X-RateLimit-Remaining", equals = "0" }

[[verify.failures]]
outcome = "INSUFFICIENT_SCOPES"
www_authenticate = "insufficient_scope"
"#;

fn with_rules(rules: &str) -> String {
    edit(DESK, "account_pointer = \"/user/email\"\n", rules)
}

#[test]
fn answer_rules_load_as_written() {
    let catalog = Catalog::from_sources([(DESK.0, with_rules(RULES))]).unwrap();
    let verify = catalog.get("ticket-desk").unwrap().verify().unwrap();
    assert_eq!(verify.ok_body().len(), 3);
    assert_eq!(
        verify.ok_body()[0],
        BodyRule::Equals { pointer: "/ok".into(), value: serde_json::json!(true) }
    );
    assert_eq!(verify.ok_body()[1], BodyRule::Absent { pointer: "/errors".into() });
    let failures = verify.failures();
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[0].outcome(), FailureOutcome::InsufficientScopes);
    assert_eq!(
        failures[0].equals(),
        [serde_json::json!("missing_scope"), serde_json::json!("no_permission")]
    );
    assert_eq!(failures[0].scope_pointer(), Some("/needed"));
    assert_eq!(
        failures[1].header(),
        Some(("x-ratelimit-remaining", Some("0"))),
        "header names are lowercased"
    );
    assert_eq!(failures[2].www_authenticate(), Some("insufficient_scope"));
}

#[test]
fn a_body_rule_needs_a_pointer_and_exactly_one_expectation() {
    let bad_pointer = with_rules("ok_body = [{ pointer = \"ok\", equals = true }]\n");
    assert_rejected(DESK.0, &bad_pointer, "verify.ok_body[0].pointer", "is not a JSON pointer");
    let nothing = with_rules("ok_body = [{ pointer = \"/ok\" }]\n");
    assert_rejected(DESK.0, &nothing, "verify.ok_body[0]", "say what the pointer must hold");
    let both = with_rules("ok_body = [{ pointer = \"/ok\", equals = true, absent = true }]\n");
    assert_rejected(DESK.0, &both, "verify.ok_body[0]", "give one of");
}

#[test]
fn a_failure_rule_is_checked() {
    let rule = |body: &str| with_rules(&format!("account_pointer = \"/a\"\n\n[[verify.failures]]\n{body}\n"));
    assert_rejected(
        DESK.0,
        &rule("outcome = \"OK\"\nstatuses = [401]"),
        "verify.failures[0].outcome",
        "is not one of",
    );
    assert_rejected(
        DESK.0,
        &rule("outcome = \"INVALID_CREDENTIALS\""),
        "verify.failures[0]",
        "matches every answer",
    );
    assert_rejected(
        DESK.0,
        &rule("outcome = \"INVALID_CREDENTIALS\"\nequals = \"x\"\nstatuses = [401]"),
        "verify.failures[0].equals",
        "give the pointer too",
    );
    assert_rejected(
        DESK.0,
        &rule("outcome = \"INVALID_CREDENTIALS\"\npointer = \"/e\"\nscope_pointer = \"/needed\""),
        "verify.failures[0].scope_pointer",
        "only an INSUFFICIENT_SCOPES rule",
    );
    assert_rejected(
        DESK.0,
        &rule("outcome = \"PROVIDER_UNAVAILABLE\"\nstatuses = [999]"),
        "verify.failures[0].statuses[0]",
        "is not an HTTP status",
    );
    assert_rejected(
        DESK.0,
        &rule("outcome = \"PROVIDER_UNAVAILABLE\"\nheader = { name = \"bad header\" }"),
        "verify.failures[0].header.name",
        "is not a header name",
    );
}

#[test]
fn a_field_that_can_move_the_oauth_host_must_be_a_host_field() {
    let loose = edit(ACME, "pattern = \"[a-z0-9-]+\"", "pattern = \"[a-z0-9./-]+\"");
    assert_rejected(ACME.0, &loose, "oauth.host_fields", "`subdomain` can change the host of api_base_url");
    let listed = edit((ACME.0, loose.as_str()), "pkce = true", "pkce = true\nhost_fields = [\"subdomain\"]");
    assert!(Catalog::from_sources([(ACME.0, listed)]).is_ok(), "a listed host field is allowed");
    let unknown = edit(ACME, "pkce = true", "pkce = true\nhost_fields = [\"region\"]");
    assert_rejected(ACME.0, &unknown, "oauth.host_fields[0]", "`region` is not a field of this app");
}
