//! Provider contracts: answers an app's provider is documented to give to its verification
//! request (`providers/contracts/<key>.toml`), each with the outcome and account label the check
//! must draw from it. A test replays them through the real check against a local server; this
//! module only reads them and says which kinds an app still lacks. Format: `providers/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{App, FailureOutcome};

/// The contract file of one app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The documentation pages the answers were written from.
    pub docs: Vec<String>,
    /// Values of the connection's non-secret fields (a site, a shop); secret fields and the
    /// access token get stand-in values.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    pub answers: Vec<RecordedAnswer>,
}

/// One answer of the provider, as its documentation shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedAnswer {
    pub kind: AnswerKind,
    /// What the answer is, in a few words (e.g. "token revoked").
    pub name: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    /// Required for `kind = "other"`; otherwise the kind's outcome.
    pub outcome: Option<String>,
    /// The account label a success must yield.
    pub account: Option<String>,
    /// Scopes a missing-scope answer names, which the check's message must repeat.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// What an answer is an example of; each app needs one of every kind that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    Success,
    BadCredentials,
    MissingScope,
    RateLimited,
    ServerError,
    Other,
}

impl AnswerKind {
    fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Success => "success",
            AnswerKind::BadCredentials => "bad_credentials",
            AnswerKind::MissingScope => "missing_scope",
            AnswerKind::RateLimited => "rate_limited",
            AnswerKind::ServerError => "server_error",
            AnswerKind::Other => "other",
        }
    }
}

/// The outcome a check must reach, as the GraphQL enum spells it (`OK`, `INVALID_CREDENTIALS`,
/// ...).
pub type ExpectedOutcome = &'static str;

impl RecordedAnswer {
    /// The outcome this answer must lead to, or why the answer is malformed.
    pub fn expected_outcome(&self) -> Result<ExpectedOutcome, String> {
        let implied = match self.kind {
            AnswerKind::Success => "OK",
            AnswerKind::BadCredentials => FailureOutcome::InvalidCredentials.as_str(),
            AnswerKind::MissingScope => FailureOutcome::InsufficientScopes.as_str(),
            AnswerKind::RateLimited | AnswerKind::ServerError => FailureOutcome::ProviderUnavailable.as_str(),
            AnswerKind::Other => {
                let outcome = self.outcome.as_deref().ok_or("`other` answers say their `outcome`")?;
                return match outcome {
                    "OK" => Ok("OK"),
                    other => FailureOutcome::parse(other)
                        .map(FailureOutcome::as_str)
                        .ok_or_else(|| format!("`{other}` is not an outcome")),
                };
            }
        };
        match &self.outcome {
            Some(outcome) if outcome != implied => {
                Err(format!("a {} answer leads to {implied}, not {outcome}", self.kind.as_str()))
            }
            _ => Ok(implied),
        }
    }
}

impl Contract {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// What the contract lacks for `app`, or holds wrongly: an answer of every kind (a missing
    /// scope only where the app has scopes), a success naming its account when the app reads
    /// one (a success without `account` must yield none), a 5xx for the server error, and
    /// well-formed answers.
    pub fn problems(&self, app: &App) -> Vec<String> {
        let mut problems = Vec::new();
        if self.docs.is_empty() || self.docs.iter().any(|url| !url.starts_with("https://")) {
            problems.push("`docs` lists the https pages the answers were written from".to_owned());
        }
        let has_scopes = !app.default_scopes().is_empty()
            || app.modules().iter().any(|module| !module.scopes().is_empty());
        let mut needed = vec![AnswerKind::Success, AnswerKind::BadCredentials, AnswerKind::RateLimited];
        needed.push(AnswerKind::ServerError);
        if has_scopes {
            needed.push(AnswerKind::MissingScope);
        }
        for kind in needed {
            if !self.answers.iter().any(|answer| answer.kind == kind) {
                problems.push(format!("no `{}` answer", kind.as_str()));
            }
        }
        for (index, answer) in self.answers.iter().enumerate() {
            let at = format!("answers[{index}] ({})", answer.name);
            if let Err(problem) = answer.expected_outcome() {
                problems.push(format!("{at}: {problem}"));
            }
            if !(100..=599).contains(&answer.status) {
                problems.push(format!("{at}: {} is not an HTTP status", answer.status));
            }
            if answer.kind == AnswerKind::ServerError && !(500..=599).contains(&answer.status) {
                problems.push(format!("{at}: a server error has a 5xx status"));
            }
        }
        let reads_account = app.verify().and_then(|verify| verify.account_pointer()).is_some();
        let names_account =
            self.answers.iter().any(|answer| answer.kind == AnswerKind::Success && answer.account.is_some());
        if reads_account && !names_account {
            problems.push("no `success` answer says the `account` the check must read from it".to_owned());
        }
        problems
    }
}
