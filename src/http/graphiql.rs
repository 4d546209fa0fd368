//! GraphiQL on `GET /graphql`, from assets the binary carries (`graphiql/dist`, built from the
//! pinned npm `graphiql` package by `graphiql/package.json`; licenses in `LICENSES.txt`). The page
//! loads nothing from elsewhere and runs under a Content-Security-Policy that allows only this
//! service, so it works offline and where inline scripts are forbidden.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde_json::json;

const SCRIPT: &[u8] = include_bytes!("../../graphiql/dist/graphiql.js");
const STYLESHEET: &[u8] = include_bytes!("../../graphiql/dist/graphiql.css");
const LICENSES: &[u8] = include_bytes!("../../graphiql/dist/LICENSES.txt");

pub const SCRIPT_PATH: &str = "/graphql/assets/graphiql.js";
pub const STYLESHEET_PATH: &str = "/graphql/assets/graphiql.css";
pub const LICENSES_PATH: &str = "/graphql/assets/LICENSES.txt";

/// Only this service: scripts, styles and the API (HTTP and WebSocket); fonts and icons are
/// inlined as `data:` in the stylesheet. Nothing may frame the page.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What a first visit shows: a query that works as soon as a token is in the headers, and where
/// that token goes.
const EXAMPLE_QUERY: &str = r#"# Plugboard's GraphQL API. Every request needs a token: open "Headers" below
# and enter {"Authorization": "Bearer <your token>"}. `plugboard serve` prints
# one on first start; `plugboard bootstrap --team T --email E` makes more.
# Then press the run button (or Ctrl-Enter). The docs are behind the book icon.

query Start {
  viewer {
    kind
    email
    teams { id name role }
  }
  apps(search: "jira") { key name authType }
}
"#;

const HEADERS_HINT: &str = "{\n  \"Authorization\": \"Bearer <your token>\"\n}";

pub async fn page() -> HttpResponse {
    let settings = json!({
        "endpoint": "/graphql",
        "subscriptionEndpoint": "/graphql/ws",
        "defaultQuery": EXAMPLE_QUERY,
        "defaultHeaders": HEADERS_HINT,
    });
    // `<` escaped so nothing in the settings can end the data block.
    let settings = settings.to_string().replace('<', "\\u003c");
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Plugboard GraphiQL</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head>
<body>
<div id="graphiql"><p>Loading GraphiQL&hellip;</p></div>
<script type="application/json" id="plugboard-graphiql">{settings}</script>
<script type="module" src="{SCRIPT_PATH}"></script>
</body>
</html>"#
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn licenses() -> HttpResponse {
    asset("text/plain; charset=utf-8", LICENSES)
}

fn asset(content_type: &str, bytes: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(bytes)
}
