use secrecy::ExposeSecret;
use serde_json::json;

use super::fixtures;
use crate::catalog::{App, Catalog, FieldError, FormMode, FormValues};

fn app<'c>(catalog: &'c Catalog, key: &str) -> &'c App {
    catalog.get(key).expect("fixture app")
}

fn check(key: &str, input: serde_json::Value) -> Result<FormValues, FieldError> {
    let catalog = fixtures();
    app(&catalog, key).check_form(&input, FormMode::Create)
}

#[test]
fn unknown_field_is_rejected_listing_the_allowed_fields() {
    let error = check("ticket-desk", json!({ "site": "acme", "passwrd": "x" })).unwrap_err();
    assert_eq!(error.field, "passwrd");
    assert!(error.message.contains("unknown field \"passwrd\""), "{error}");
    assert!(error.message.contains("site, email, api_token"), "{error}");
}

#[test]
fn reserved_keys_are_unknown_fields() {
    let error = check("acme-crm", json!({ "subdomain": "acme", "access_token": "t" })).unwrap_err();
    assert_eq!(error.field, "access_token");
}

#[test]
fn missing_required_field_is_rejected() {
    let error = check("ticket-desk", json!({ "site": "acme", "api_token": "t" })).unwrap_err();
    assert_eq!(error.field, "email");
    assert_eq!(error.to_string(), "\"email\" (Email) is required");
}

#[test]
fn blank_and_null_values_count_as_missing() {
    for email in [json!("   "), json!(null)] {
        let input = json!({ "site": "acme", "email": email, "api_token": "t" });
        assert_eq!(check("ticket-desk", input).unwrap_err().field, "email");
    }
}

#[test]
fn defaults_apply_to_missing_non_secret_fields() {
    let values = check("weather-api", json!({ "api_key": "wk_12345678" })).unwrap();
    assert_eq!(values.public().get("region").map(String::as_str), Some("eu"));
    assert_eq!(values.public().get("placement").map(String::as_str), Some("header"));
    assert!(!values.public().contains_key("units"));
}

#[test]
fn pattern_violation_names_the_field_and_the_pattern() {
    let error = check("acme-crm", json!({ "subdomain": "Acme Corp" })).unwrap_err();
    assert_eq!(error.field, "subdomain");
    assert_eq!(error.message, "\"subdomain\" must match the pattern [a-z0-9-]+, not \"Acme Corp\"");
}

#[test]
fn patterns_must_match_the_whole_value() {
    // The fixture's pattern is written unanchored: "acme" inside the value must not pass it.
    let error = check("acme-crm", json!({ "subdomain": "acme.evil.example/x" })).unwrap_err();
    assert_eq!(error.field, "subdomain");
}

#[test]
fn secret_values_are_never_echoed_in_messages() {
    let error = check("weather-api", json!({ "api_key": "hunter2-secret" })).unwrap_err();
    assert_eq!(error.field, "api_key");
    assert!(error.message.contains("must match the pattern"), "{error}");
    assert!(!error.message.contains("hunter2"), "{error}");
}

#[test]
fn choice_violation_lists_the_choices() {
    let error = check("weather-api", json!({ "api_key": "wk_12345678", "region": "asia" })).unwrap_err();
    assert_eq!(error.field, "region");
    assert_eq!(error.message, "\"region\" must be one of \"eu\", \"us\", not \"asia\"");
}

#[test]
fn values_are_split_into_public_and_secret() {
    let values =
        check("ticket-desk", json!({ "site": "acme", "email": "ops@acme.example", "api_token": "tok-1" }))
            .unwrap();
    assert_eq!(values.public().keys().collect::<Vec<_>>(), ["email", "site"]);
    assert_eq!(values.secret_keys().collect::<Vec<_>>(), ["api_token"]);
    assert_eq!(values.secret("api_token").unwrap().expose_secret(), "tok-1");
    assert_eq!(values.lookup("api_token"), Some("tok-1"));
    assert_eq!(values.lookup("site"), Some("acme"));
    assert_eq!(values.lookup("nothing"), None);
}

#[test]
fn debug_shows_secret_keys_but_never_secret_values() {
    let values = check(
        "ticket-desk",
        json!({ "site": "acme", "email": "ops@acme.example", "api_token": "tok-very-secret" }),
    )
    .unwrap();
    let debug = format!("{values:?}");
    assert!(!debug.contains("tok-very-secret"), "{debug}");
    assert!(debug.contains("api_token"), "{debug}");
    assert!(debug.contains("ops@acme.example"), "{debug}");
}

#[test]
fn edit_requires_secrets_to_be_reentered() {
    let catalog = fixtures();
    let input = json!({ "site": "acme", "email": "ops@acme.example" });
    let error = app(&catalog, "ticket-desk").check_form(&input, FormMode::Edit).unwrap_err();
    assert_eq!(error.field, "api_token");
    assert_eq!(
        error.message,
        "\"api_token\" is a secret and must be entered again: secrets are never sent back for editing"
    );
    let create = app(&catalog, "ticket-desk").check_form(&input, FormMode::Create).unwrap_err();
    assert_eq!(create.message, "\"api_token\" (API token) is required");
}

#[test]
fn values_are_trimmed_and_numbers_and_booleans_taken_as_text() {
    let values = check("ticket-desk", json!({ "site": 42, "email": true, "api_token": " tok-1\n" })).unwrap();
    assert_eq!(values.lookup("site"), Some("42"));
    assert_eq!(values.lookup("email"), Some("true"));
    assert_eq!(values.lookup("api_token"), Some("tok-1"));
}

#[test]
fn trailing_spaces_are_kept_for_prefixes() {
    let values =
        check("ticket-desk", json!({ "site": "acme", "email": "Token ", "api_token": "t" })).unwrap();
    assert_eq!(values.lookup("email"), Some("Token "));
}

#[test]
fn arrays_and_objects_are_not_field_values() {
    let error = check("acme-crm", json!({ "subdomain": ["acme"] })).unwrap_err();
    assert_eq!(error.field, "subdomain");
    assert_eq!(error.message, "\"subdomain\" must be a text value");
}

#[test]
fn a_form_that_is_not_an_object_is_rejected() {
    let error = check("acme-crm", json!(["subdomain"])).unwrap_err();
    assert_eq!(error.field, "");
    assert!(error.message.contains("JSON object"), "{error}");
}

#[test]
fn template_values_render_optional_blank_fields_as_empty_text() {
    let catalog = fixtures();
    let weather = app(&catalog, "weather-api");
    let values = weather.check_form(&json!({ "api_key": "wk_12345678" }), FormMode::Create).unwrap();
    let lookup = weather.template_values(&values);
    let verify = weather.verify().unwrap();
    assert_eq!(verify.body().unwrap().render(&lookup).unwrap(), r#"{"probe": { "units": "" }}"#);
    assert_eq!(
        verify.url(weather.api_base_url(), &lookup).unwrap(),
        "https://api.weather.example/eu/v1/ping"
    );
    let header = &weather.credentials().headers()[0];
    assert!(header.applies(&lookup));
    assert!(!weather.credentials().query()[0].applies(&lookup));
    assert_eq!(header.value().render(&lookup).unwrap(), "wk_12345678");
}

#[test]
fn template_values_miss_required_values() {
    let catalog = fixtures();
    let desk = app(&catalog, "ticket-desk");
    let values = FormValues::default();
    let error = desk.api_base_url().render(desk.template_values(&values)).unwrap_err();
    assert_eq!(error.name, "site");
}
