//! Each rule of the format, broken once in a valid fixture, must be reported with the file
//! and the field.

use super::{ACME, DESK, WEATHER, assert_rejected, edit, fixtures, problems};
use crate::catalog::{Catalog, ClientAuth, VerifyMethod};
use crate::domain::AuthType;

#[test]
fn the_fixtures_load_with_their_settings() {
    let catalog = fixtures();
    let acme = catalog.get("acme-crm").unwrap();
    assert_eq!(acme.auth_type(), AuthType::OAuth2);
    assert_eq!(acme.docs_url().as_str(), "https://developer.acme.example/docs");
    assert_eq!(acme.default_scopes(), ["contacts.read", "offline_access"]);
    let oauth = acme.oauth().unwrap();
    assert_eq!(oauth.client_auth(), ClientAuth::Post);
    assert_eq!(oauth.scope_separator(), ",");
    assert!(oauth.pkce());
    assert_eq!(oauth.extra_authorize_params()["prompt"], "consent");
    assert_eq!(acme.module("create-deal").unwrap().scopes(), ["deals.write"]);
    assert!(acme.field("client_secret").unwrap().is_secret());

    let weather = catalog.get("weather-api").unwrap();
    assert!(weather.oauth().is_none());
    let verify = weather.verify().unwrap();
    assert_eq!(verify.method(), VerifyMethod::Post);
    assert!(verify.is_ok(204) && !verify.is_ok(201));
    assert_eq!(weather.field("region").unwrap().choices(), ["eu", "us"]);

    let desk = catalog.get("ticket-desk").unwrap();
    let verify = desk.verify().unwrap();
    assert!(verify.is_absolute());
    assert!(verify.is_ok(201), "no ok_statuses means any 2xx");
    let url = verify.url(desk.api_base_url(), |_| Some("acme")).unwrap();
    assert_eq!(url, "https://acme.ticketdesk.example/api/v2/users/me");
    assert_eq!(verify.account_pointer(), Some("/user/email"));
}

#[test]
fn a_missing_required_key_is_named() {
    let contents = edit(ACME, "name = \"Acme CRM\"\n", "");
    assert_rejected("acme-crm.toml", &contents, "name", "is required");
}

#[test]
fn a_missing_required_key_in_a_table_is_named_with_its_path() {
    let contents = edit(ACME, "token_url = \"https://login.acme.example/oauth/token\"\n", "");
    assert_rejected("acme-crm.toml", &contents, "oauth.token_url", "is required");
    let contents = edit(WEATHER, "label = \"Units\"\n", "");
    assert_rejected("weather-api.toml", &contents, "fields[3].label", "is required");
}

#[test]
fn a_misspelled_key_is_rejected() {
    let contents = edit(ACME, "pkce = true", "pcke = true");
    assert_rejected("acme-crm.toml", &contents, "oauth.pcke", "unknown field `pcke`");
    let contents = edit(WEATHER, "help = \"Optional", "hlep = \"Optional");
    assert_rejected("weather-api.toml", &contents, "fields[3].hlep", "unknown field `hlep`");
}

#[test]
fn a_value_of_the_wrong_type_is_rejected() {
    let contents = edit(ACME, "pkce = true", "pkce = \"yes\"");
    assert_rejected("acme-crm.toml", &contents, "oauth.pkce", "expected a boolean");
    let contents = edit(ACME, "auth_type = \"OAUTH2\"", "auth_type = \"OAUTH\"");
    assert_rejected("acme-crm.toml", &contents, "auth_type", "unknown variant `OAUTH`");
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let contents = edit(ACME, "name = \"Acme CRM\"", "name = \"Acme CRM");
    assert_rejected("acme-crm.toml", &contents, "line 3", "");
}

#[test]
fn the_key_must_equal_the_file_name() {
    assert_rejected("acme.toml", ACME.1, "key", "must equal the file name");
}

#[test]
fn the_key_must_be_lowercase_letters_digits_and_dashes() {
    let contents = edit(ACME, "key = \"acme-crm\"", "key = \"Acme_CRM\"");
    assert_rejected("Acme_CRM.toml", &contents, "key", "lowercase letters, digits and `-`");
}

#[test]
fn provider_files_must_end_in_toml() {
    assert_rejected("acme-crm.yaml", ACME.1, "(file name)", ".toml");
}

#[test]
fn a_relative_token_url_is_rejected() {
    let contents =
        edit(ACME, "token_url = \"https://login.acme.example/oauth/token\"", "token_url = \"/oauth/token\"");
    assert_rejected("acme-crm.toml", &contents, "oauth.token_url", "relative URL without a base");
}

#[test]
fn the_docs_url_must_be_http_or_https() {
    let contents = edit(DESK, "https://ticketdesk.example/api", "ftp://ticketdesk.example/api");
    assert_rejected("ticket-desk.toml", &contents, "docs_url", "only http and https");
}

#[test]
fn the_api_base_url_must_be_absolute_once_filled_in() {
    let contents = edit(DESK, "\"https://{site}.ticketdesk.example\"", "\"{site}.ticketdesk.example\"");
    assert_rejected("ticket-desk.toml", &contents, "api_base_url", "relative URL without a base");
}

#[test]
fn an_absolute_verify_path_must_be_a_valid_url() {
    let contents = edit(DESK, "https://{site}.ticketdesk.example/api", "https://{site}:port/api");
    assert_rejected("ticket-desk.toml", &contents, "verify.path", "invalid port");
}

#[test]
fn templates_may_only_name_fields_of_the_app() {
    let contents = edit(DESK, "password = \"{api_token}\"", "password = \"{apitoken}\"");
    assert_rejected(
        "ticket-desk.toml",
        &contents,
        "credentials.basic.password",
        "`{apitoken}` is not a field of this app (known: site, email, api_token)",
    );
}

#[test]
fn an_unclosed_placeholder_is_rejected() {
    let contents = edit(WEATHER, "value = \"{api_key}\"", "value = \"{api_key\"");
    assert_rejected("weather-api.toml", &contents, "credentials.headers[0].value", "not closed");
}

#[test]
fn access_token_is_only_for_oauth_apps() {
    let contents = edit(WEATHER, "value = \"{api_key}\"", "value = \"Bearer {access_token}\"");
    assert_rejected(
        "weather-api.toml",
        &contents,
        "credentials.headers[0].value",
        "`{access_token}` is not a field",
    );
}

#[test]
fn urls_cannot_carry_secrets_or_the_access_token() {
    let contents = edit(ACME, "path = \"/me\"", "path = \"/me?secret={client_secret}\"");
    assert_rejected("acme-crm.toml", &contents, "verify.path", "is a secret field");
    let contents = edit(ACME, "path = \"/me\"", "path = \"/me?token={access_token}\"");
    assert_rejected("acme-crm.toml", &contents, "verify.path", "cannot be part of a URL");
}

#[test]
fn field_keys_must_be_unique() {
    let contents = edit(WEATHER, "key = \"units\"", "key = \"region\"");
    assert_rejected("weather-api.toml", &contents, "fields[3].key", "`region` is defined twice");
}

#[test]
fn field_keys_are_lowercase_letters_digits_and_underscores() {
    let contents = edit(WEATHER, "key = \"units\"", "key = \"unit-system\"");
    assert_rejected("weather-api.toml", &contents, "fields[3].key", "lowercase letters, digits and `_`");
}

#[test]
fn reserved_field_keys_are_rejected() {
    let contents = edit(ACME, "key = \"client_id\"", "key = \"access_token\"");
    assert_rejected("acme-crm.toml", &contents, "fields[1].key", "`access_token` is reserved");
}

#[test]
fn credential_like_fields_must_be_secret() {
    let contents = edit(DESK, "secret = true\n", "");
    assert_rejected("ticket-desk.toml", &contents, "fields[2].secret", "`api_token` names a credential");
}

#[test]
fn secret_fields_cannot_have_a_default() {
    let contents = edit(DESK, "secret = true\n", "secret = true\ndefault = \"shared\"\n");
    assert_rejected("ticket-desk.toml", &contents, "fields[2].default", "cannot have a default");
}

#[test]
fn module_keys_must_be_unique() {
    let contents = edit(ACME, "key = \"create-deal\"", "key = \"list-contacts\"");
    assert_rejected("acme-crm.toml", &contents, "modules[1].key", "`list-contacts` is defined twice");
}

#[test]
fn scopes_are_non_empty_and_without_whitespace() {
    let contents = edit(ACME, "\"contacts.read\", \"offline_access\"", "\"contacts.read offline_access\"");
    assert_rejected("acme-crm.toml", &contents, "default_scopes[0]", "contains whitespace");
    let contents = edit(ACME, "scopes = [\"deals.write\"]", "scopes = [\"deals.write\", \"\"]");
    assert_rejected("acme-crm.toml", &contents, "modules[1].scopes[1]", "cannot be empty");
}

#[test]
fn oauth_apps_need_an_oauth_table() {
    let contents = edit(WEATHER, "auth_type = \"API_KEY\"", "auth_type = \"OAUTH2\"");
    assert_rejected("weather-api.toml", &contents, "oauth", "need an [oauth] table");
}

#[test]
fn other_apps_may_not_have_an_oauth_table() {
    let contents = edit(ACME, "auth_type = \"OAUTH2\"", "auth_type = \"CUSTOM\"");
    assert_rejected("acme-crm.toml", &contents, "oauth", "remove the [oauth] table");
}

#[test]
fn oauth2_apps_need_an_authorize_url() {
    let contents = edit(ACME, "authorize_url = \"https://login.acme.example/oauth/authorize\"\n", "");
    assert_rejected("acme-crm.toml", &contents, "oauth.authorize_url", "grants consent");
}

#[test]
fn client_credentials_apps_have_no_authorize_url() {
    let contents = edit(ACME, "auth_type = \"OAUTH2\"", "auth_type = \"OAUTH2_CLIENT_CREDENTIALS\"");
    assert_rejected("acme-crm.toml", &contents, "oauth.authorize_url", "remove authorize_url");
}

#[test]
fn extra_parameters_cannot_override_the_oauth_flow() {
    let contents = edit(ACME, "{ prompt = \"consent\" }", "{ prompt = \"consent\", state = \"fixed\" }");
    assert_rejected(
        "acme-crm.toml",
        &contents,
        "oauth.extra_authorize_params.state",
        "set by Plugboard's OAuth flow",
    );
}

#[test]
fn patterns_must_compile() {
    let contents = edit(WEATHER, "[A-Za-z0-9]{8,}", "[A-Za-z0-9{8,}");
    assert_rejected("weather-api.toml", &contents, "fields[1].pattern", "invalid regex");
}

#[test]
fn a_default_must_match_the_pattern() {
    let contents =
        edit(DESK, "pattern = \"^[a-z0-9-]+$\"", "pattern = \"^[a-z0-9-]+$\"\ndefault = \"Acme Corp\"");
    assert_rejected("ticket-desk.toml", &contents, "fields[0].default", "must match the pattern");
}

#[test]
fn a_default_must_be_one_of_the_choices() {
    let contents = edit(WEATHER, "default = \"eu\"", "default = \"asia\"");
    assert_rejected("weather-api.toml", &contents, "fields[0].default", "must be one of \"eu\", \"us\"");
}

#[test]
fn a_condition_must_name_a_field_and_one_of_its_choices() {
    let contents = edit(WEATHER, "equals = \"query\"", "equals = \"body\"");
    assert_rejected(
        "weather-api.toml",
        &contents,
        "credentials.query[0].when.equals",
        "not one of the choices",
    );
    let contents =
        edit(WEATHER, "field = \"placement\", equals = \"query\"", "field = \"place\", equals = \"query\"");
    assert_rejected("weather-api.toml", &contents, "credentials.query[0].when.field", "not a field");
}

#[test]
fn header_names_must_be_valid() {
    let contents = edit(WEATHER, "name = \"X-Api-Key\"", "name = \"X Api Key\"");
    assert_rejected("weather-api.toml", &contents, "credentials.headers[0].name", "not a valid name");
}

#[test]
fn apps_must_say_how_credentials_are_sent() {
    let contents = edit(DESK, "basic = { username = \"{email}\", password = \"{api_token}\" }", "");
    assert_rejected("ticket-desk.toml", &contents, "credentials", "must say how requests carry");
}

#[test]
fn the_verify_method_must_be_known() {
    let contents = edit(WEATHER, "method = \"POST\"", "method = \"FETCH\"");
    assert_rejected("weather-api.toml", &contents, "verify.method", "`FETCH` is not one of");
}

#[test]
fn a_verify_body_must_be_json_and_needs_a_method_with_a_body() {
    let contents = edit(WEATHER, "\"{units}\" }}}}", "\"{units}\" }}");
    assert_rejected("weather-api.toml", &contents, "verify.body", "is not JSON");
    let contents = edit(WEATHER, "method = \"POST\"", "method = \"GET\"");
    assert_rejected("weather-api.toml", &contents, "verify.body", "a GET request sends no body");
}

#[test]
fn ok_statuses_must_be_http_statuses() {
    let contents = edit(WEATHER, "[200, 204]", "[200, 2040]");
    assert_rejected("weather-api.toml", &contents, "verify.ok_statuses[1]", "not an HTTP status");
}

#[test]
fn the_account_pointer_must_be_a_json_pointer() {
    let contents = edit(DESK, "\"/user/email\"", "\"user.email\"");
    assert_rejected("ticket-desk.toml", &contents, "verify.account_pointer", "not a JSON pointer");
}

#[test]
fn duplicate_app_keys_across_files_are_rejected() {
    let error = Catalog::from_sources([ACME, WEATHER, ACME]).unwrap_err();
    let [problem] = error.problems() else {
        panic!("expected one problem: {error}");
    };
    assert_eq!(problem.field, "key");
    assert_eq!(
        problem.to_string(),
        "providers/acme-crm.toml: key: `acme-crm` is already the key of providers/acme-crm.toml"
    );
}

#[test]
fn every_problem_of_every_file_is_reported() {
    let acme = edit(ACME, "token_url = \"https://login.acme.example/oauth/token\"", "token_url = \"/token\"");
    let acme = acme.replacen("scopes = [\"deals.write\"]", "scopes = [\"deals write\"]", 1);
    let desk = edit(DESK, "\"/user/email\"", "\"user\"");
    let error =
        Catalog::from_sources([("acme-crm.toml", acme.as_str()), ("ticket-desk.toml", &desk)]).unwrap_err();
    let found: Vec<(&str, &str)> =
        error.problems().iter().map(|problem| (problem.file.as_str(), problem.field.as_str())).collect();
    assert_eq!(
        found,
        [
            ("providers/acme-crm.toml", "oauth.token_url"),
            ("providers/acme-crm.toml", "modules[1].scopes[0]"),
            ("providers/ticket-desk.toml", "verify.account_pointer"),
        ]
    );
    let text = error.to_string();
    assert!(
        text.starts_with("the app catalog is invalid:\n  providers/acme-crm.toml: oauth.token_url: "),
        "{text}"
    );
}

#[test]
fn problems_are_reported_once_per_placeholder() {
    let contents = edit(DESK, "password = \"{api_token}\"", "password = \"{nope}{nope}\"");
    let found = problems("ticket-desk.toml", &contents);
    assert_eq!(found.len(), 1, "{found:#?}");
}
