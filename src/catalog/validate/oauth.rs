//! The `[oauth]` table: present exactly for OAuth apps, with the URLs each grant needs.

use super::{Check, Scope};
use crate::catalog::raw::RawOAuth;
use crate::catalog::template::Template;
use crate::catalog::types::{AppField, OAuthSettings};
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
            host_fields: raw.host_fields,
            token_fields: raw.token_fields,
        })
    }

    /// `oauth.host_fields` must list every field that can put the OAuth endpoints or the API on
    /// another server, so that the operator's client never goes there: a field that is a whole
    /// URL, or whose pattern lets a value end the host (`evil.example/`, `a@evil.example`).
    pub(super) fn host_fields(
        &mut self,
        oauth: &OAuthSettings,
        fields: &[AppField],
        api_base_url: &Template,
    ) {
        for (index, key) in oauth.host_fields.iter().enumerate() {
            match fields.iter().find(|field| field.key() == key) {
                None => self.fail(
                    format!("oauth.host_fields[{index}]"),
                    format!("`{key}` is not a field of this app"),
                ),
                Some(field) if field.is_secret() => self
                    .fail(format!("oauth.host_fields[{index}]"), format!("`{key}` is secret: a host is not")),
                Some(_) => {}
            }
        }
        let templates = [
            ("oauth.authorize_url", oauth.authorize_url.as_ref()),
            ("oauth.token_url", Some(&oauth.token_url)),
            ("api_base_url", Some(api_base_url)),
        ];
        let mut reported = Vec::new();
        for (at, template) in templates {
            let Some(template) = template else { continue };
            let leading = template.leading_placeholder();
            for name in template.host_placeholders() {
                // A field of the token response comes from the provider, not from a member.
                let from_provider = oauth.token_fields.iter().any(|key| key == name);
                if from_provider
                    || oauth.host_fields.iter().any(|key| key == name)
                    || reported.contains(&name)
                {
                    continue;
                }
                let field = fields.iter().find(|field| field.key() == name);
                let confined = leading != Some(name) && field.is_some_and(stays_within_the_domain);
                if !confined {
                    reported.push(name);
                    self.fail(
                        "oauth.host_fields",
                        format!(
                            "`{name}` can change the host of {at}: list it in oauth.host_fields (a connection \
                             that changes it then brings its own OAuth client), or give the field a pattern \
                             or choices that keep the host within the provider's domain"
                        ),
                    );
                }
            }
        }
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

/// Values that would end a host name and so point a `{name}.provider.com` URL elsewhere.
const HOST_ESCAPES: [&str; 7] = [
    "evil.example/",
    "evil.example?",
    "evil.example#",
    "a@evil.example",
    "evil.example:1",
    "evil.example\\",
    "evil.example%2f",
];

/// Whether a field's choices or pattern keep every value a label within the template's domain.
fn stays_within_the_domain(field: &AppField) -> bool {
    if !field.choices().is_empty() {
        return true;
    }
    field.pattern().is_some_and(|pattern| HOST_ESCAPES.iter().all(|probe| !pattern.is_match(probe)))
}
