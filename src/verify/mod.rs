//! "Does this connection work?": sends the app's verification request with the connection's
//! credentials and classifies the answer. It reads and writes nothing; the connection service
//! records the result. Secrets go only to the app's own host, and never into a message or log.

mod classify;
mod request;
pub mod retry_after;

use chrono::Utc;
use secrecy::ExposeSecret;

pub use classify::{
    Classified, by_failure_rules, chain_mentions as error_mentions, response as classify_response,
};
pub use request::{BuildError, RequestValues, host_is_templated};

use crate::domain::{Verification, VerificationOutcome};
use crate::outbound::redact::Redactor;
use crate::outbound::{EgressError, InternalResolution, Outbound, read_capped};

/// A finished check: what a person sees, and the account the provider named.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub verification: Verification,
    pub account_label: Option<String>,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// How long a provider that could not answer for now asked to be left alone (its
    /// `Retry-After`): the next check waits at least that long.
    pub retry_after: Option<std::time::Duration>,
}

/// Why no check could be sent at all. These are problems with the connection's settings, not
/// verdicts on its credentials.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("{0}")]
    InternalHost(String),
}

#[tracing::instrument(skip_all, fields(app = %values.app.key()))]
pub async fn check(outbound: &Outbound, values: &RequestValues<'_>) -> Result<CheckResult, VerifyError> {
    let app = values.app;
    let prepared = request::prepare(values)?;
    let client = outbound.client_for(&prepared.url, prepared.user_supplied_host)?;
    let host = prepared.url.host_str().unwrap_or_default().to_owned();

    let redactor = sent_secrets(values, &prepared);
    let mut builder = client.request(prepared.method.clone(), prepared.url.clone());
    for (name, value) in &prepared.headers {
        builder = builder.header(name.as_str(), value.expose_secret());
    }
    if let Some((username, password)) = &prepared.basic {
        builder = builder.basic_auth(username, Some(password.expose_secret()));
    }
    if let Some(body) = &prepared.json_body {
        builder = builder.header("content-type", "application/json").body(body.expose_secret().to_owned());
    }
    let started_at = Utc::now();
    let mut http_status = None;
    let mut retry_after = None;
    let classified = match builder.send().await {
        Ok(response) => {
            let status = response.status();
            http_status = Some(status.as_u16());
            let headers = response.headers().clone();
            let body = read_capped(response).await;
            let verify = app.verify().ok_or_else(|| BuildError::NoVerification(app.name().to_owned()))?;
            let mut classified = classify::response(app.name(), verify, status, &headers, &body, &redactor);
            if classified.outcome == VerificationOutcome::ProviderUnavailable {
                retry_after = retry_after::asked(&headers, Utc::now());
                if let Some(wait) = retry_after {
                    classified.message.push_str(&format!(
                        "; {} asked to wait {} s",
                        app.name(),
                        wait.as_secs()
                    ));
                }
            }
            classified
        }
        Err(error) => {
            if let Some(refusal) = crate::outbound::find_error::<InternalResolution>(&error) {
                return Err(VerifyError::InternalHost(refusal.to_string()));
            }
            classify::unreachable(app.name(), &host, &error, outbound.timeout().as_secs())
        }
    };
    let took = (Utc::now() - started_at).to_std().unwrap_or_default();
    crate::metrics::verification(app.key(), classified.outcome.as_str(), took);
    tracing::info!(
        outcome = classified.outcome.as_str(),
        took_ms = took.as_millis() as u64,
        "verification finished"
    );
    Ok(CheckResult {
        verification: Verification {
            outcome: classified.outcome,
            message: Some(classified.message),
            account_label: classified.account_label.clone(),
            started_at,
            finished_at: Utc::now(),
        },
        account_label: classified.account_label,
        http_status,
        retry_after,
    })
}

/// Every secret the request carries, so that none comes back in what is kept of the answer.
fn sent_secrets(values: &RequestValues<'_>, prepared: &request::PreparedRequest) -> Redactor {
    let mut redactor = Redactor::new(values.form.secrets().values().map(|secret| secret.expose_secret()));
    if let Some(token) = values.access_token {
        redactor.add(token.expose_secret());
    }
    if let Some((username, password)) = &prepared.basic {
        redactor.add_basic(username, password.expose_secret());
    }
    redactor
}
