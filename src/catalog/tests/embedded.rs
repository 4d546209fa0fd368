//! The CI gate over the real `providers/*.toml` files.

use super::super::{Catalog, embedded::EMBEDDED};

#[test]
fn every_embedded_provider_file_loads_and_validates() {
    let catalog = match Catalog::embedded() {
        Ok(catalog) => catalog,
        Err(error) => panic!("{error}"),
    };
    assert!(!EMBEDDED.is_empty(), "no providers/*.toml file was embedded");
    assert_eq!(catalog.apps().len(), EMBEDDED.len());
}

#[test]
fn embedded_files_are_sorted_toml_files() {
    let names: Vec<&str> = EMBEDDED.iter().map(|(name, _)| *name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert!(names.iter().all(|name| name.ends_with(".toml")));
}

#[test]
fn generic_apps_are_in_the_catalog() {
    let catalog = Catalog::embedded().expect("the embedded catalog is valid");
    for key in ["http-oauth2", "http-api-key", "http-basic"] {
        assert!(catalog.get(key).is_some(), "{key} is missing");
    }
}

/// Every real app (not a generic one, which has no provider to document) carries a provider
/// contract in `providers/contracts/<key>.toml` with an answer of every kind it needs; the
/// answers themselves are replayed by the integration test `contracts::`.
#[test]
fn every_real_app_has_a_complete_provider_contract() {
    let catalog = Catalog::embedded().expect("the embedded catalog is valid");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("providers/contracts");
    let mut problems = Vec::new();
    let mut real = 0;
    for app in catalog.apps().iter().filter(|app| !app.is_generic()) {
        real += 1;
        let path = dir.join(format!("{}.toml", app.key()));
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{}: no providers/contracts/{}.toml", app.key(), app.key()));
            continue;
        };
        match crate::catalog::contract::Contract::parse(&text) {
            Ok(contract) => {
                problems.extend(contract.problems(app).into_iter().map(|p| format!("{}: {p}", app.key())))
            }
            Err(error) => problems.push(format!("{}: {error}", app.key())),
        }
    }
    assert!(problems.is_empty(), "provider contracts are incomplete:\n  {}", problems.join("\n  "));
    assert_eq!(real, 45, "the catalog's real apps");
}

#[test]
fn a_contract_without_every_kind_of_answer_is_reported() {
    let catalog = Catalog::embedded().expect("the embedded catalog is valid");
    let slack = catalog.get("slack").unwrap();
    let contract = crate::catalog::contract::Contract::parse(
        r#"
docs = ["https://docs.slack.dev/reference/methods/auth.test"]
[[answers]]
kind = "success"
name = "ok"
status = 200
body = '{"ok": true}'
[[answers]]
kind = "server_error"
name = "not a 5xx"
status = 200
"#,
    )
    .unwrap();
    let problems = contract.problems(slack);
    for expected in [
        "no `bad_credentials` answer",
        "no `rate_limited` answer",
        "no `missing_scope` answer",
        "no `success` answer says the `account` the check must read from it",
        "answers[1] (not a 5xx): a server error has a 5xx status",
    ] {
        assert!(problems.iter().any(|p| p == expected), "{expected} not in {problems:?}");
    }
}
