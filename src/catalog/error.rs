//! What is wrong with the catalog, file by file and field by field. Every problem found is
//! collected, so one failed start (or one CI run) shows all that needs fixing.

use std::fmt::Write as _;

/// One broken rule: the file, the key path inside it (`oauth.token_url`, `fields[0].pattern`)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct Problem {
    pub file: String,
    pub field: String,
    pub message: String,
}

/// The catalog did not load; it holds every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the app catalog is invalid:{}", list(.problems))]
pub struct CatalogError {
    problems: Vec<Problem>,
}

impl CatalogError {
    pub(super) fn new(problems: Vec<Problem>) -> Self {
        Self { problems }
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

fn list(problems: &[Problem]) -> String {
    let mut out = String::new();
    for problem in problems {
        // Writing to a String cannot fail.
        let _ = write!(out, "\n  {problem}");
    }
    out
}
