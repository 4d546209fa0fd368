//! Plugboard's own refusals on `/proxy`: each has a code (the `Plugboard-Error` header and the
//! JSON body's `code`) and an HTTP status, so a runner can tell them from the provider's answers,
//! which never carry the header unless Plugboard annotated them. Messages hold no secret;
//! internal detail is logged, never shown.

use std::time::Duration;

use crate::error::AppError;

#[derive(Debug, Clone)]
pub struct ProxyError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
    /// For `RATE_LIMITED` and `UNAVAILABLE`: when to try again.
    pub retry_after: Option<Duration>,
    /// For `ACCOUNT_VALIDATION_ERROR`: the scopes the connection lacks.
    pub missing_scopes: Vec<String>,
}

impl ProxyError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ProxyError { code, status, message: message.into(), retry_after: None, missing_scopes: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("BAD_USER_INPUT", 400, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("FORBIDDEN", 403, message)
    }

    pub fn rate_limited(app_name: &str, retry_after: Duration) -> Self {
        let mut error = Self::new(
            "RATE_LIMITED",
            429,
            format!(
                "{app_name}'s published rate limit is reached; try again in {} s",
                retry_after.as_secs().max(1)
            ),
        );
        error.retry_after = Some(retry_after);
        error
    }

    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            "PAYLOAD_TOO_LARGE",
            413,
            format!("the request body is larger than {limit} bytes (PLUGBOARD_PROXY_MAX_REQUEST_BYTES)"),
        )
    }

    pub fn response_too_large(app_name: &str, limit: u64) -> Self {
        Self::new(
            "RESPONSE_TOO_LARGE",
            502,
            format!(
                "{app_name} answered with more than {limit} bytes, which is more than the proxy passes on \
                 (PLUGBOARD_PROXY_MAX_RESPONSE_BYTES)"
            ),
        )
    }

    /// The instance has no room for the call now; the same call may succeed after `retry_after`.
    pub fn busy(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut error = Self::new("UNAVAILABLE", 503, message);
        error.retry_after = Some(retry_after);
        error
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new("PROVIDER_UNAVAILABLE", 502, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new("PROVIDER_UNAVAILABLE", 504, message)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "proxied call failed on our side");
        Self::new("INTERNAL", 500, "internal error; the operator can find the details in the server log")
    }
}

impl From<AppError> for ProxyError {
    fn from(err: AppError) -> Self {
        let code = err.code();
        match err {
            AppError::Unauthenticated => ProxyError::new(code, 401, err.to_string()),
            AppError::Forbidden(message) => ProxyError::new(code, 403, message),
            AppError::NotFound(_) => ProxyError::new(code, 404, err.to_string()),
            AppError::BadUserInput { message, .. } => ProxyError::new(code, 400, message),
            AppError::AccountValidation { message, missing_scopes } => {
                ProxyError { missing_scopes, ..ProxyError::new(code, 403, message) }
            }
            AppError::NeedsReauthorization(message) => ProxyError::new(code, 409, message),
            AppError::ConsentDenied(message) => ProxyError::new(code, 403, message),
            AppError::ProviderUnavailable(message) => ProxyError::new(code, 502, message),
            AppError::Conflict(message) => ProxyError::new(code, 409, message),
            AppError::RateLimited { message, .. } => ProxyError::new(code, 429, message),
            AppError::Unavailable { message, .. } => ProxyError::new(code, 503, message),
            AppError::ConnectionInUse { message, .. } => ProxyError::new(code, 409, message),
            AppError::Internal(inner) => ProxyError::internal(format!("{inner:#}")),
        }
    }
}
