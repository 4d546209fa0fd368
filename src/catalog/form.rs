//! Checks a connection form against its app's fields (unknown keys, required values, defaults,
//! patterns, choices) and splits the values into public and secret ones. A secret value never
//! appears in a message or a `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::types::{App, AppField};

/// Whether a form creates a connection or edits one: an edit form comes back without its
/// secrets, which the user must enter again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormMode {
    Create,
    Edit,
}

/// The first problem with a form. `field` is the field's key, or empty when the form as a
/// whole is not a JSON object; `message` is safe to show (no secret value in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: String) -> Self {
        Self { field: field.to_owned(), message }
    }
}

/// A checked form: non-secret values (defaults applied) and secret values, by field key.
#[derive(Clone, Default)]
pub struct FormValues {
    public: BTreeMap<String, String>,
    secret: BTreeMap<String, SecretString>,
}

impl FormValues {
    /// Values checked before, e.g. read back from storage with the access token added.
    pub fn from_parts(public: BTreeMap<String, String>, secret: BTreeMap<String, SecretString>) -> Self {
        Self { public, secret }
    }

    pub fn into_parts(self) -> (BTreeMap<String, String>, BTreeMap<String, SecretString>) {
        (self.public, self.secret)
    }

    /// The non-secret values, which are stored in the clear and returned for prefill.
    pub fn public(&self) -> &BTreeMap<String, String> {
        &self.public
    }

    /// The secret values, which must be sealed.
    pub fn secrets(&self) -> &BTreeMap<String, SecretString> {
        &self.secret
    }

    pub fn secret(&self, key: &str) -> Option<&SecretString> {
        self.secret.get(key)
    }

    /// Which secret fields are set (what the API may say about them).
    pub fn secret_keys(&self) -> impl Iterator<Item = &str> {
        self.secret.keys().map(String::as_str)
    }

    /// Any value, secret or not, for rendering templates that send it to its app.
    pub fn lookup(&self, key: &str) -> Option<&str> {
        self.public
            .get(key)
            .map(String::as_str)
            .or_else(|| self.secret.get(key).map(|value| value.expose_secret()))
    }
}

impl fmt::Debug for FormValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormValues")
            .field("public", &self.public)
            .field("secret_keys", &self.secret.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl App {
    /// Checks `input`, a JSON object of field values, against this app's form. Strings lose
    /// leading white space and trailing line breaks (pasted keys often carry a newline) but keep
    /// trailing spaces, which prefixes such as `Bearer ` need; numbers and booleans are taken as text;
    /// null and blank values count as absent. Stops at the first problem.
    pub fn check_form(&self, input: &Value, mode: FormMode) -> Result<FormValues, FieldError> {
        let empty = Map::new();
        let object = match input {
            Value::Object(object) => object,
            Value::Null => &empty,
            _ => {
                return Err(FieldError::new("", "the form must be a JSON object of field values".to_owned()));
            }
        };
        if let Some(unknown) = object.keys().find(|key| self.field(key).is_none()) {
            return Err(FieldError::new(unknown, self.unknown_field_message(unknown)));
        }
        let mut values = FormValues::default();
        for field in &self.fields {
            let given = match object.get(&field.key) {
                Some(value) => text(field, value)?,
                None => None,
            };
            let value = given.or_else(|| field.default.clone().filter(|_| !field.secret));
            let Some(value) = value else {
                if field.required {
                    return Err(missing(field, mode));
                }
                continue;
            };
            if let Some(expected) = field.unmet_expectation(&value) {
                let message = if field.secret {
                    format!("\"{}\" {expected}", field.key)
                } else {
                    format!("\"{}\" {expected}, not \"{value}\"", field.key)
                };
                return Err(FieldError::new(&field.key, message));
            }
            if field.secret {
                values.secret.insert(field.key.clone(), SecretString::from(value));
            } else {
                values.public.insert(field.key.clone(), value);
            }
        }
        Ok(values)
    }

    /// A lookup that renders this app's templates from `values`: an optional field left blank
    /// renders as empty text (a header prefix, say), a required one is a missing value.
    pub fn template_values<'a>(&'a self, values: &'a FormValues) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |key| values.lookup(key).or_else(|| self.field(key).filter(|field| !field.required).map(|_| ""))
    }

    fn unknown_field_message(&self, unknown: &str) -> String {
        if self.fields.is_empty() {
            return format!("unknown field \"{unknown}\": {} has no fields", self.name);
        }
        let keys: Vec<&str> = self.fields.iter().map(|field| field.key.as_str()).collect();
        format!("unknown field \"{unknown}\": the fields of {} are {}", self.name, keys.join(", "))
    }
}

impl AppField {
    /// What `value` fails to be, phrased to follow the field's name; `None` when it is fine.
    pub(super) fn unmet_expectation(&self, value: &str) -> Option<String> {
        if !self.choices.is_empty() && !self.choices.iter().any(|choice| choice == value) {
            let choices: Vec<String> = self.choices.iter().map(|c| format!("\"{c}\"")).collect();
            return Some(format!("must be one of {}", choices.join(", ")));
        }
        match &self.pattern {
            Some(pattern) if !pattern.whole.is_match(value) => {
                Some(format!("must match the pattern {}", pattern.source))
            }
            _ => None,
        }
    }
}

/// The longest value a field takes: room for a PEM private key or a long JWT, and a bound on
/// what a page of connections carries.
pub const MAX_VALUE_CHARS: usize = 8192;

/// The value as text without leading white space or trailing line breaks; `None` when null or
/// blank.
fn text(field: &AppField, value: &Value) -> Result<Option<String>, FieldError> {
    if let Value::String(text) = value
        && text.chars().count() > MAX_VALUE_CHARS
    {
        let message = format!("\"{}\" has at most {MAX_VALUE_CHARS} characters", field.key);
        return Err(FieldError::new(&field.key, message));
    }
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(text) if text.trim().is_empty() => return Ok(None),
        Value::String(text) => text.trim_start().trim_end_matches(['\r', '\n', '\t']).to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(FieldError::new(&field.key, format!("\"{}\" must be a text value", field.key)));
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

fn missing(field: &AppField, mode: FormMode) -> FieldError {
    let message = if field.secret && mode == FormMode::Edit {
        format!(
            "\"{}\" is a secret and must be entered again: secrets are never sent back for editing",
            field.key
        )
    } else {
        format!("\"{}\" ({}) is required", field.key, field.label)
    };
    FieldError::new(&field.key, message)
}
