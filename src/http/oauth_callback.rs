//! `GET /oauth/callback`: where providers send a person back after consent. Answers a small page
//! that reports the outcome to the window that opened the consent popup (`postMessage` with the
//! connection id and outcome, never a token) and closes itself; without an opener it just says
//! what happened. The query string (code, state) is never logged.

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
        Err(refused) => page(
            if refused.bad_state { StatusCode::BAD_REQUEST } else { StatusCode::OK },
            &json!({
                "type": "plugboard:oauth",
                "outcome": "error",
                "connectionId": refused.connection_id.map(|id| id.to_string()),
                "message": refused.message,
            }),
            "Not connected",
            &refused.message,
        ),
    }
}

fn page(status: StatusCode, result: &serde_json::Value, title: &str, message: &str) -> HttpResponse {
    // `<` escaped so nothing in the data can close the script element.
    let data = result.to_string().replace('<', "\\u003c");
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plugboard: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:3rem;color:#222}}</style></head>
<body><h1>{title}</h1><p id="message">{message}</p>
<script>
const result = {data};
if (window.opener) {{ window.opener.postMessage(result, "*"); window.close(); }}
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
