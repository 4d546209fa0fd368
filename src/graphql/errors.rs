//! The one place service errors become GraphQL errors.
//!
//! Resolvers return `AppResult`; async-graphql keeps the `AppError` as the error's source, and
//! `with_codes`, applied to every answer by `AppSchema`, turns it into `extensions.code` (plus
//! `field` for bad input). `INTERNAL`
//! errors are logged here with their full detail and answered without it. Errors raised by
//! async-graphql itself (syntax, validation, limits, bad variables) are the client's to fix and
//! get `BAD_USER_INPUT`. Every error leaves with a code.

use async_graphql::{Response, ServerError};

use crate::error::AppError;

use crate::error::INTERNAL_MESSAGE;

/// The answer to a request that failed on our side before it produced one (its detail was
/// logged where it happened).
pub(super) fn internal_response() -> Response {
    let mut error = ServerError::new(INTERNAL_MESSAGE, None);
    error.extensions.get_or_insert_with(Default::default).set("code", "INTERNAL");
    Response::from_errors(vec![error])
}

/// `error` as the refusal of a WebSocket's `connection_init`, internal detail logged here and
/// not shown. Both subscription protocols carry only a message there (a `connection_error`
/// payload, or the close frame's reason), so the code leads the message, as in
/// `UNAUTHENTICATED: ...`.
pub fn refused_connection(error: &AppError, message: Option<&str>) -> String {
    if let AppError::Internal(detail) = error {
        tracing::error!(
            error = format!("{detail:#}"),
            "internal error answering a WebSocket connection_init"
        );
    }
    let message = message.map_or_else(|| error.public_message(), str::to_owned);
    format!("{}: {message}", error.code())
}

/// Gives every error of `response` its code.
pub(super) fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        add_code(error);
    }
    response
}

fn add_code(error: &mut ServerError) {
    let mut details: Vec<(&str, async_graphql::Value)> = Vec::new();
    let (code, field, internal) = match error.source::<AppError>() {
        Some(app_error) => {
            let field = match app_error {
                AppError::BadUserInput { field, .. } => field.clone(),
                _ => None,
            };
            match app_error {
                AppError::ConnectionInUse { flows, .. } => {
                    details.push(("flows", async_graphql::to_value(flows).unwrap_or_default()));
                }
                AppError::AccountValidation { missing_scopes, .. } => {
                    details
                        .push(("missingScopes", async_graphql::to_value(missing_scopes).unwrap_or_default()));
                }
                AppError::RateLimited { retry_after, .. } | AppError::Unavailable { retry_after, .. } => {
                    details.push(("retryAfter", retry_after_seconds(*retry_after).into()));
                }
                _ => {}
            }
            let internal = matches!(app_error, AppError::Internal(_));
            if let AppError::Internal(detail) = app_error {
                tracing::error!(error = format!("{detail:#}"), path = ?error.path, "internal error answering a GraphQL request");
            }
            (app_error.code(), field, internal)
        }
        None if has_code(error) => return,
        None => ("BAD_USER_INPUT", None, false),
    };
    if internal {
        error.message = INTERNAL_MESSAGE.to_owned();
    }
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code);
    if let Some(field) = field {
        extensions.set("field", field);
    }
    for (name, value) in details {
        extensions.set(name, value);
    }
}

fn has_code(error: &ServerError) -> bool {
    error.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

/// Whole seconds to wait, rounded up, as `Retry-After` counts them.
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
