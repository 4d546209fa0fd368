//! The connection form's fields: keys, secrecy, patterns, choices and defaults.

use std::collections::HashSet;

use regex::Regex;

use super::{Check, is_key};
use crate::catalog::raw::RawField;
use crate::catalog::types::{AppField, FieldPattern};

/// Field keys the service fills itself; a form may not define them.
const RESERVED_FIELD_KEYS: [&str; 2] = ["access_token", "refresh_token"];

/// Key endings that name a credential. Such a field must be secret: non-secret values are
/// returned to users for prefill.
const CREDENTIAL_WORDS: [&str; 6] = ["secret", "password", "token", "api_key", "apikey", "private_key"];

impl Check<'_> {
    pub(super) fn fields(&mut self, raw: Vec<RawField>) -> Vec<AppField> {
        let mut seen = HashSet::new();
        let mut fields = Vec::with_capacity(raw.len());
        for (index, field) in raw.into_iter().enumerate() {
            if let Some(field) = self.field(&format!("fields[{index}]"), field, &mut seen) {
                fields.push(field);
            }
        }
        fields
    }

    fn field(&mut self, at: &str, raw: RawField, seen: &mut HashSet<String>) -> Option<AppField> {
        let problems_before = self.problems.len();
        let key = &raw.key;
        if !is_key(key, b'_') {
            self.fail(format!("{at}.key"), format!("`{key}` must be lowercase letters, digits and `_`"));
        } else if RESERVED_FIELD_KEYS.contains(&key.as_str()) {
            self.fail(format!("{at}.key"), format!("`{key}` is reserved: the service fills it itself"));
        } else if !seen.insert(key.clone()) {
            self.fail(format!("{at}.key"), format!("`{key}` is defined twice"));
        }
        self.not_blank(&format!("{at}.label"), &raw.label);
        if !raw.secret && looks_like_credential(key) {
            self.fail(
                format!("{at}.secret"),
                format!(
                    "`{key}` names a credential: mark it `secret = true` so its value is sealed \
                     and never shown again"
                ),
            );
        }
        if raw.secret && raw.default.is_some() {
            self.fail(
                format!("{at}.default"),
                "a secret field cannot have a default: it would be one secret shared by every \
                 connection",
            );
        }
        let pattern =
            raw.pattern.as_deref().and_then(|source| self.pattern(&format!("{at}.pattern"), source));
        self.choices(at, &raw.choices);
        let field = AppField {
            key: raw.key,
            label: raw.label,
            help: raw.help.filter(|help| !help.trim().is_empty()),
            secret: raw.secret,
            required: raw.required,
            default: raw.default,
            pattern,
            choices: raw.choices,
        };
        if let Some(default) = field.default() {
            if default.trim().is_empty() {
                self.fail(format!("{at}.default"), "an empty default: leave it out");
            } else if let Some(expected) = field.unmet_expectation(default) {
                self.fail(format!("{at}.default"), format!("the default `{default}` {expected}"));
            }
        }
        (self.problems.len() == problems_before).then_some(field)
    }

    fn pattern(&mut self, field: &str, source: &str) -> Option<FieldPattern> {
        // Compiling the pattern as written first gives error positions that match the file.
        let whole = Regex::new(source).and_then(|_| Regex::new(&format!("^(?:{source})$")));
        match whole {
            Ok(whole) => Some(FieldPattern { source: source.to_owned(), whole }),
            Err(error) => {
                self.fail(field, format!("invalid regex `{source}`: {}", regex_reason(&error)));
                None
            }
        }
    }

    fn choices(&mut self, at: &str, choices: &[String]) {
        let mut seen = HashSet::new();
        for (index, choice) in choices.iter().enumerate() {
            let field = format!("{at}.choices[{index}]");
            if choice.trim().is_empty() {
                self.fail(field, "a choice cannot be empty");
            } else if !seen.insert(choice) {
                self.fail(field, format!("`{choice}` is listed twice"));
            }
        }
    }
}

fn looks_like_credential(key: &str) -> bool {
    CREDENTIAL_WORDS
        .iter()
        .any(|word| key == *word || key.strip_suffix(word).is_some_and(|rest| rest.ends_with('_')))
}

/// The last line of a regex error: the reason, without the multi-line caret drawing.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().rev().find(|line| !line.trim().is_empty());
    last.unwrap_or(&text).trim().trim_start_matches("error: ").to_owned()
}
