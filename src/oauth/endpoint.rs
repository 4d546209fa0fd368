//! The app's OAuth endpoints as URLs: their templates filled with a connection's values. The
//! catalog forbids secret fields in URL templates, so a rendered URL may appear in messages.

use url::Url;

use super::{Endpoint, OAuthError};
use crate::catalog::{App, FormValues, OAuthSettings, Template};

/// The app's OAuth settings, or the error that it is not an OAuth app.
pub(super) fn settings(app: &App) -> Result<&OAuthSettings, OAuthError> {
    app.oauth().ok_or_else(|| OAuthError::NotOAuth { app: app.name().to_owned() })
}

/// The authorization endpoint, for apps whose users grant consent.
pub(super) fn authorization_url(app: &App, values: &FormValues) -> Result<Url, OAuthError> {
    let template =
        settings(app)?.authorize_url().ok_or_else(|| OAuthError::NoConsent { app: app.name().to_owned() })?;
    render(app, template, values, Endpoint::Authorization)
}

/// The token endpoint: what a caller needs to pick the HTTP client (and egress rule) for it.
pub fn token_url(app: &App, values: &FormValues) -> Result<Url, OAuthError> {
    render(app, settings(app)?.token_url(), values, Endpoint::Token)
}

/// Fills the template and checks the result is an absolute http(s) URL: generic apps take the
/// whole URL from a field, which only its pattern has checked.
fn render(
    app: &App,
    template: &Template,
    values: &FormValues,
    endpoint: Endpoint,
) -> Result<Url, OAuthError> {
    let text = template.render(app.template_values(values)).map_err(|missing| OAuthError::MissingValue {
        app: app.name().to_owned(),
        field: missing.name,
        endpoint,
    })?;
    let invalid = |reason: String| OAuthError::InvalidUrl { app: app.name().to_owned(), endpoint, reason };
    let url = Url::parse(&text).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(invalid(format!("`{text}` is not an http or https URL")));
    }
    Ok(url)
}
