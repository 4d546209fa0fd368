//! Tests of the catalog: the real provider files, and small fixtures under `testdata/` that
//! each validation test breaks in one place.

mod answers;
mod embedded;
mod form;
mod proxy_rules;
mod search;
mod validation;

use super::{Catalog, Problem};

pub(super) const ACME: (&str, &str) = ("acme-crm.toml", include_str!("../testdata/acme-crm.toml"));
pub(super) const WEATHER: (&str, &str) = ("weather-api.toml", include_str!("../testdata/weather-api.toml"));
pub(super) const DESK: (&str, &str) = ("ticket-desk.toml", include_str!("../testdata/ticket-desk.toml"));

/// The three fixtures as one catalog.
fn fixtures() -> Catalog {
    Catalog::from_sources([ACME, WEATHER, DESK]).expect("the fixtures are valid")
}

/// The fixture with `from` replaced by `to`; `from` must occur, so that a test cannot pass by
/// breaking nothing.
fn edit(fixture: (&str, &str), from: &str, to: &str) -> String {
    assert!(fixture.1.contains(from), "{} has no {from:?}", fixture.0);
    fixture.1.replacen(from, to, 1)
}

/// The problems found in `contents` loaded as `file`; it must fail to load.
fn problems(file: &str, contents: &str) -> Vec<Problem> {
    match Catalog::from_sources([(file, contents)]) {
        Ok(_) => panic!("{file} loaded, but it should have been rejected"),
        Err(error) => error.problems().to_vec(),
    }
}

/// Asserts that loading `contents` as `file` reports a problem at `field` whose message holds
/// `needle`, and that the problem's text names `providers/<file>` and the field.
fn assert_rejected(file: &str, contents: &str, field: &str, needle: &str) {
    let found = problems(file, contents);
    let hit = found.iter().find(|problem| problem.field == field && problem.message.contains(needle));
    let Some(hit) = hit else {
        panic!("no problem at {field} mentioning {needle:?}; found: {found:#?}");
    };
    assert_eq!(hit.file, format!("providers/{file}"));
    assert!(hit.to_string().starts_with(&format!("providers/{file}: {field}: ")), "{hit}");
}
