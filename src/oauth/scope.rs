//! Scope lists: what a connection asks for (the app's defaults plus those requested) and what a
//! provider says it granted. Providers disagree on the separator, so parsing accepts all common
//! ones while asking always uses the app's own.

use super::{OAuthError, endpoint};
use crate::catalog::App;

/// The app's default scopes followed by `requested`, without repeats, in that order. A scope
/// that is empty or holds white space, a comma or the app's separator is refused: joined into
/// one parameter it would read as several scopes.
pub fn requested_scopes(app: &App, requested: &[String]) -> Result<Vec<String>, OAuthError> {
    let separator = endpoint::settings(app)?.scope_separator();
    let mut scopes: Vec<String> = Vec::with_capacity(app.default_scopes().len() + requested.len());
    for scope in app.default_scopes().iter().chain(requested) {
        check(scope, separator)?;
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    Ok(scopes)
}

/// The scopes a provider reports, split on the app's separator, spaces and commas (Slack and
/// GitHub answer with commas whatever was asked, others with spaces), without repeats.
pub(super) fn parse_granted(text: &str, separator: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    let pieces = text.split(separator).flat_map(|piece| piece.split([' ', ',', '\t', '\n', '\r']));
    for scope in pieces.filter(|scope| !scope.is_empty()) {
        if !scopes.iter().any(|known| known == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

fn check(scope: &str, separator: &str) -> Result<(), OAuthError> {
    let reason = if scope.is_empty() {
        "a scope cannot be empty"
    } else if scope.chars().any(char::is_whitespace) || scope.contains(',') {
        "a scope cannot contain white space or a comma"
    } else if scope.contains(separator) {
        "a scope cannot contain the app's scope separator"
    } else {
        return Ok(());
    };
    Err(OAuthError::InvalidScope { scope: scope.to_owned(), reason: reason.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::tests::apps::oauth_app;

    fn strings(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|scope| (*scope).to_owned()).collect()
    }

    #[test]
    fn requested_scopes_follow_the_defaults_without_repeats() {
        let app = oauth_app("default_scopes = [\"openid\", \"email\"]", "");
        let scopes = requested_scopes(&app, &strings(&["drive", "email", "drive", "sheets"])).unwrap();
        assert_eq!(scopes, ["openid", "email", "drive", "sheets"]);
    }

    #[test]
    fn a_scope_that_would_read_as_several_is_refused() {
        let app = oauth_app("", "");
        for bad in ["", "a b", "a,b", "a\tb"] {
            let error = requested_scopes(&app, &strings(&[bad])).unwrap_err();
            assert!(matches!(error, OAuthError::InvalidScope { .. }), "{bad:?}: {error}");
        }
        let piped = oauth_app("", "scope_separator = \"|\"");
        assert!(requested_scopes(&piped, &strings(&["a|b"])).is_err());
        assert!(requested_scopes(&piped, &strings(&["a.b:c/d"])).is_ok());
    }

    #[test]
    fn granted_scopes_split_on_the_separator_spaces_and_commas() {
        assert_eq!(parse_granted("a b  c", " "), ["a", "b", "c"]);
        assert_eq!(parse_granted("a,b,c", " "), ["a", "b", "c"]);
        assert_eq!(parse_granted("a, b,a", ","), ["a", "b"]);
        assert_eq!(parse_granted("a|b c", "|"), ["a", "b", "c"]);
        assert!(parse_granted("  ", " ").is_empty());
    }
}
