//! `GET /oauth/callback`: where providers send a person back after consent. Answers a small page
//! that reports the outcome to the window that opened the consent popup (`postMessage` with the
//! connection id and outcome, never a token) and closes itself; without an opener it just says
//! what happened. The message goes only to the origins in `PLUGBOARD_CORS_ORIGINS` and the
//! service's own, never to `*`: the browser delivers it only if the opener is one of them. The
//! query string (code, state) is never logged.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde_json::json;

use crate::connections::{self, Callback};
use crate::state::AppState;

pub async fn callback(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let targets = message_targets(&state.config);
    let page = |status, result: &serde_json::Value, title: &str, message: &str| {
        page(status, result, &targets, title, message)
    };
    let mut query = query.into_inner();
    let callback = Callback {
        state: query.remove("state"),
        code: query.remove("code").map(SecretString::from),
        error: query.remove("error"),
        error_description: query.remove("error_description"),
    };
    match connections::complete_consent(&state, callback).await {
        Ok(done) => page(
            StatusCode::OK,
            &json!({
                "type": "plugboard:oauth",
                "outcome": "success",
                "connectionId": done.connection_id.to_string(),
                "status": done.status.as_str(),
                "message": done.message,
            }),
            "Connected",
            &format!("{} You can close this window.", done.message),
        ),
        Err(refused) => {
            // Internal detail was logged where it happened; the page gets the public message.
            let message = refused.error.public_message();
            // A link that is not (or no longer) a sign-in is a bad request; any other outcome
            // is a page that reports to the opener.
            let status = match (&refused.connection_id, &refused.error) {
                (None, crate::error::AppError::BadUserInput { .. }) => StatusCode::BAD_REQUEST,
                _ => StatusCode::OK,
            };
            let result = json!({
                "type": "plugboard:oauth",
                "outcome": "error",
                "code": refused.error.code(),
                "connectionId": refused.connection_id.map(|id| id.to_string()),
                "message": message,
            });
            page(status, &result, "Not connected", &message)
        }
    }
}

/// Where the result may be posted: the listed browser origins and the service's own.
fn message_targets(config: &crate::config::Config) -> Vec<String> {
    let own = config.public_url.origin().ascii_serialization();
    let listed = config.cors_origins.as_slice().iter().filter(|o| **o != own).cloned();
    std::iter::once(own.clone()).chain(listed).collect()
}

fn page(
    status: StatusCode,
    result: &serde_json::Value,
    targets: &[String],
    title: &str,
    message: &str,
) -> HttpResponse {
    // `<` escaped so nothing in the data can close the script element.
    let data = result.to_string().replace('<', "\\u003c");
    let targets = serde_json::to_string(targets).unwrap_or_else(|_| "[]".into()).replace('<', "\\u003c");
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plugboard: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:3rem;color:#222}}</style></head>
<body><h1>{title}</h1><p id="message">{message}</p>
<script>
const result = {data};
const targets = {targets};
if (window.opener) {{
  for (const target of targets) {{ window.opener.postMessage(result, target); }}
  window.close();
}}
</script></body></html>"#,
        title = escape(title),
        message = escape(message),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
