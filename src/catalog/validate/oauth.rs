//! The `[oauth]` table: present exactly for OAuth apps, with the URLs each grant needs.

use super::{Check, Scope};
use crate::catalog::raw::RawOAuth;
use crate::catalog::types::OAuthSettings;
use crate::domain::AuthType;

/// Parameters the OAuth flow sets itself; letting a provider file override them would break
/// the flow or its security (state, PKCE, redirect URI).
const OWNED_AUTHORIZE_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];
const OWNED_TOKEN_PARAMS: [&str; 7] =
    ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "client_id", "client_secret"];

impl Check<'_> {
    pub(super) fn oauth(
        &mut self,
        auth_type: AuthType,
        raw: Option<RawOAuth>,
        scope: &Scope,
    ) -> Option<OAuthSettings> {
        let name = auth_type.as_str();
        let raw = match (scope.oauth, raw) {
            (true, Some(raw)) => raw,
            (true, None) => {
                self.fail("oauth", format!("{name} apps need an [oauth] table with token_url"));
                return None;
            }
            (false, Some(_)) => {
                self.fail("oauth", format!("{name} apps have no OAuth endpoints: remove the [oauth] table"));
                return None;
            }
            (false, None) => return None,
        };
        let authorize_url = match (auth_type, raw.authorize_url) {
            (AuthType::OAuth2, Some(url)) => self.url_template("oauth.authorize_url", &url, scope),
            (AuthType::OAuth2, None) => {
                self.fail("oauth.authorize_url", "OAUTH2 apps need the URL where a person grants consent");
                None
            }
            (_, Some(_)) => {
                self.fail(
                    "oauth.authorize_url",
                    format!("{name} apps ask nobody for consent: remove authorize_url"),
                );
                None
            }
            (_, None) => None,
        };
        let token_url = self.url_template("oauth.token_url", &raw.token_url, scope);
        if raw.scope_separator.is_empty() {
            self.fail("oauth.scope_separator", "cannot be empty");
        }
        self.extra_params(
            "oauth.extra_authorize_params",
            raw.extra_authorize_params.keys(),
            &OWNED_AUTHORIZE_PARAMS,
        );
        self.extra_params("oauth.extra_token_params", raw.extra_token_params.keys(), &OWNED_TOKEN_PARAMS);
        self.token_fields(&raw.token_fields, scope);
        Some(OAuthSettings {
            authorize_url,
            token_url: token_url?,
            scope_separator: raw.scope_separator,
            pkce: raw.pkce,
            client_auth: raw.client_auth,
            extra_authorize_params: raw.extra_authorize_params,
            extra_token_params: raw.extra_token_params,
            token_fields: raw.token_fields,
        })
    }

    /// Token response fields kept with the grant: plain names, none a form field or a token.
    fn token_fields(&mut self, names: &[String], scope: &Scope) {
        for (i, name) in names.iter().enumerate() {
            let at = format!("oauth.token_fields[{i}]");
            let plain = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !plain {
                self.fail(at, "a token field is 1 to 64 lowercase letters, digits or `_`");
            } else if scope.is_form_field(name) {
                self.fail(at, format!("`{name}` is a form field of this app already"));
            } else if ["access_token", "refresh_token", "id_token", "expires_in", "scope", "token_type"]
                .contains(&name.as_str())
                || (name.contains("token") && !name.ends_with("_type"))
                || name.contains("secret")
            {
                self.fail(
                    at,
                    format!("`{name}` is a credential or a protocol field; only plain facts can be kept"),
                );
            } else if names[..i].contains(name) {
                self.fail(at, format!("`{name}` is listed twice"));
            }
        }
    }

    fn extra_params<'k>(&mut self, at: &str, keys: impl Iterator<Item = &'k String>, owned: &[&str]) {
        for key in keys {
            if key.trim().is_empty() {
                self.fail(at, "a parameter name cannot be empty");
            } else if owned.contains(&key.as_str()) {
                self.fail(
                    format!("{at}.{key}"),
                    format!("`{key}` is set by Plugboard's OAuth flow and cannot be overridden"),
                );
            }
        }
    }
}
