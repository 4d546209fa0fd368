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
