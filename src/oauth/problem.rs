//! Why no usable access token could be had: what token renewal answers its callers (runners,
//! checks, the proxy). Messages are for people and hold no secret. Shared by every caller
//! waiting on one renewal, hence `Clone`.

use crate::error::{AppError, INTERNAL_MESSAGE};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// The grant is gone (revoked, expired, never given): a person must consent again.
    #[error("{0}")]
    NeedsReauthorization(String),
    /// The provider could not be asked or did not answer usefully; trying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused the connection's credentials.
    #[error("{0}")]
    Rejected(String),
    /// The connection was deleted while its token was being renewed.
    #[error("the connection was deleted")]
    Gone,
    /// A failure on our side. Its detail was logged where it happened; callers learn only this.
    #[error("{INTERNAL_MESSAGE}")]
    Internal,
}

impl TokenProblem {
    /// Logs `detail` (never a secret: callers pass errors of their own making) and answers
    /// the opaque `Internal`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "token handling failed");
        TokenProblem::Internal
    }
}

/// A token that could not be had, as the API error a runner sees.
impl From<TokenProblem> for AppError {
    fn from(problem: TokenProblem) -> Self {
        match problem {
            TokenProblem::NeedsReauthorization(message) => AppError::NeedsReauthorization(message),
            TokenProblem::Unavailable(message) => AppError::ProviderUnavailable(message),
            TokenProblem::Rejected(message) => {
                AppError::AccountValidation { message, missing_scopes: Vec::new() }
            }
            TokenProblem::Gone => AppError::NotFound("connection"),
            TokenProblem::Internal => {
                AppError::internal(anyhow::anyhow!("token handling failed; see the error logged before"))
            }
        }
    }
}
