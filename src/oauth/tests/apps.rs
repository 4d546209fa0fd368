//! Small apps for tests, loaded through the catalog like real provider files, so each test
//! states only what it is about.

use crate::catalog::{App, Catalog};

const CLIENT_FIELDS: &str = r#"
[[fields]]
key = "client_id"
label = "Client ID"

[[fields]]
key = "client_secret"
label = "Client secret"
secret = true
"#;

/// The app `test-app` ("Test App") of `auth_type`, with `top` among its top-level keys, `oauth`
/// as its `[oauth]` table and `fields` before the client id and secret fields.
pub(in crate::oauth) fn app(auth_type: &str, top: &str, oauth: &str, fields: &str) -> App {
    let source = format!(
        r#"
key = "test-app"
name = "Test App"
description = "An app for tests."
docs_url = "https://test.example/docs"
auth_type = "{auth_type}"
api_base_url = "https://api.test.example"
{top}

[oauth]
{oauth}

{fields}
{CLIENT_FIELDS}

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]
"#
    );
    let catalog = match Catalog::from_sources([("test-app.toml", source.as_str())]) {
        Ok(catalog) => catalog,
        Err(error) => panic!("the test app is invalid: {error}\n{source}"),
    };
    catalog.apps()[0].clone()
}

/// An OAUTH2 app on `auth.test.example`; `oauth` adds keys to its `[oauth]` table.
pub(in crate::oauth) fn oauth_app(top: &str, oauth: &str) -> App {
    oauth_app_at("https://auth.test.example/token", top, oauth)
}

/// An OAUTH2 app whose token endpoint is `token_url` (a test provider).
pub(in crate::oauth) fn oauth_app_at(token_url: &str, top: &str, oauth: &str) -> App {
    let table = format!(
        "authorize_url = \"https://auth.test.example/authorize\"\ntoken_url = \"{token_url}\"\n{oauth}"
    );
    app("OAUTH2", top, &table, "")
}

/// An OAUTH2_CLIENT_CREDENTIALS app whose token endpoint is `token_url`.
pub(in crate::oauth) fn client_credentials_app(token_url: &str, top: &str, oauth: &str) -> App {
    app("OAUTH2_CLIENT_CREDENTIALS", top, &format!("token_url = \"{token_url}\"\n{oauth}"), "")
}
