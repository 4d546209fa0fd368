//! The error every service call returns to the API, and the policy for showing it.
//!
//! Policy:
//! - One error type per layer. Protocol leaves have their own (`oauth::TokenError`,
//!   `oauth::TokenProblem`, `verify::VerifyError`, `catalog::FieldError`, `proxy::ProxyError`);
//!   use cases answer `AppError`, converting with `From` where a leaf's error reaches them.
//! - Each `AppError` variant is something a caller can act on and has one code (`code()`), the
//!   stable `extensions.code` clients switch on. It is attached in one place per way out:
//!   `graphql::errors` for GraphQL over HTTP and WebSocket (and `refused_connection` for a
//!   refused `connection_init`), the callback page's `code`, and `proxy::ProxyError`'s JSON
//!   and `Plugboard-Error` header.
//! - `Internal` is the exception: its detail is logged where it is turned into an answer (with
//!   the request's span, which carries the request id) and the caller only sees
//!   `INTERNAL_MESSAGE` (`public_message()`).
//! - No variant may carry a secret: messages name fields, never their values.

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("authentication required: send `Authorization: Bearer <token>` with a valid token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// Also what a caller sees for another team's objects, so existence never leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadUserInput { field: Option<String>, message: String },
    #[error("{0}")]
    Conflict(String),
    /// Deleting would break running flows; `confirm` overrides.
    #[error("{message}")]
    ConnectionInUse { message: String, flows: Vec<FlowRef> },
    /// The module cannot run with this connection: scopes missing, or credentials rejected.
    #[error("{message}")]
    AccountValidation { message: String, missing_scopes: Vec<String> },
    #[error("{0}")]
    NeedsReauthorization(String),
    /// A person's consent did not complete: the provider refused it or sent nothing usable.
    #[error("{0}")]
    ConsentDenied(String),
    #[error("{0}")]
    ProviderUnavailable(String),
    /// Too many calls to providers from this request or token; try again after `retry_after`.
    #[error("{message}")]
    RateLimited { message: String, retry_after: std::time::Duration },
    /// The service has no capacity right now (no database connection came free in time, or
    /// SQLite stayed locked); the same request may succeed after `retry_after`.
    #[error("{message}")]
    Unavailable { message: String, retry_after: std::time::Duration },
    /// Shared so the error can be cloned into GraphQL responses; the detail is only logged.
    #[error("{0:#}")]
    Internal(Arc<anyhow::Error>),
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl fmt::Display) -> Self {
        AppError::BadUserInput { field: Some(field.into()), message: message.to_string() }
    }

    /// Bad input that is no one field: the request as a whole (its body, its size, its shape).
    pub fn bad_body(message: impl fmt::Display) -> Self {
        AppError::BadUserInput { field: None, message: message.to_string() }
    }

    /// The stable code clients switch on; part of the public contract.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::ConnectionInUse { .. } => "CONNECTION_IN_USE",
            AppError::AccountValidation { .. } => "ACCOUNT_VALIDATION_ERROR",
            AppError::NeedsReauthorization(_) => "NEEDS_REAUTHORIZATION",
            AppError::ConsentDenied(_) => "CONSENT_DENIED",
            AppError::ProviderUnavailable(_) => "PROVIDER_UNAVAILABLE",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Unavailable { .. } => "UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL",
        }
    }
}

impl AppError {
    pub fn internal(err: anyhow::Error) -> Self {
        AppError::Internal(Arc::new(err))
    }

    /// What the caller is told: the message, except for `Internal`, whose detail only the log
    /// gets (the caller of this logs it).
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => INTERNAL_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::internal(err)
    }
}

/// How long a caller is asked to wait when the database has no capacity.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if is_busy(&err) {
            tracing::warn!(error = %err, "the database has no capacity for a request; answered UNAVAILABLE");
            return AppError::Unavailable {
                message: "the service is busy right now; retry shortly".into(),
                retry_after: BUSY_RETRY,
            };
        }
        AppError::internal(anyhow::Error::new(err).context("database error"))
    }
}

impl AppError {
    /// Whether this is the database's overload (see `is_busy`): worth trying again shortly.
    pub fn is_busy(&self) -> bool {
        matches!(self, AppError::Unavailable { .. })
    }
}

/// Overload rather than a fault: the pool had no connection free in time, or SQLite's write
/// lock stayed taken past the busy timeout.
pub fn is_busy(err: &sea_orm::DbErr) -> bool {
    match err {
        sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => true,
        other => {
            let text = other.to_string();
            text.contains("database is locked") || text.contains("pool timed out")
        }
    }
}

/// A flow named in an error, so the caller can show what would break.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowRef {
    pub id: String,
    pub name: String,
    pub status: String,
}

pub type AppResult<T> = Result<T, AppError>;

/// What a caller is told of a failure on our side, wherever it surfaces (GraphQL, WebSocket,
/// the OAuth callback page); the detail goes to the log with the request id.
pub const INTERNAL_MESSAGE: &str = "internal error; the operator can find the details in the server log";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_pool_is_unavailable_not_internal() {
        let busy = AppError::from(sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert_eq!(busy.code(), "UNAVAILABLE");
        assert!(matches!(busy, AppError::Unavailable { retry_after, .. } if retry_after == BUSY_RETRY));
        let fault = AppError::from(sea_orm::DbErr::Custom("no such table".into()));
        assert_eq!(fault.code(), "INTERNAL");
        assert_eq!(fault.public_message(), INTERNAL_MESSAGE);
    }
}
