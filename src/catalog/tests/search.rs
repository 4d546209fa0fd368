use super::fixtures;
use crate::catalog::App;

fn keys(apps: Vec<&App>) -> Vec<&str> {
    apps.into_iter().map(App::key).collect()
}

#[test]
fn apps_are_sorted_by_name() {
    let catalog = fixtures();
    let names: Vec<&str> = catalog.apps().iter().map(App::name).collect();
    assert_eq!(names, ["Acme CRM", "Ticket Desk", "Weather API"]);
}

#[test]
fn get_finds_an_app_by_key() {
    let catalog = fixtures();
    assert_eq!(catalog.get("weather-api").map(App::name), Some("Weather API"));
    assert!(catalog.get("Weather API").is_none());
}

#[test]
fn search_matches_the_name_ignoring_case() {
    assert_eq!(keys(fixtures().search("tICKET")), ["ticket-desk"]);
}

#[test]
fn search_matches_the_key() {
    assert_eq!(keys(fixtures().search("acme-crm")), ["acme-crm"]);
}

#[test]
fn search_matches_the_description() {
    assert_eq!(keys(fixtures().search("conversations")), ["ticket-desk"]);
}

#[test]
fn name_and_key_matches_come_before_description_matches() {
    // "API" is in Weather API's name and only in Acme CRM's description.
    assert_eq!(keys(fixtures().search("api")), ["weather-api", "acme-crm"]);
}

#[test]
fn every_word_of_the_query_must_match() {
    let catalog = fixtures();
    assert_eq!(keys(catalog.search("acme deals")), ["acme-crm"]);
    assert!(catalog.search("acme forecasts").is_empty());
}

#[test]
fn a_blank_query_returns_every_app() {
    let catalog = fixtures();
    assert_eq!(catalog.search("").len(), 3);
    assert_eq!(keys(catalog.search("   ")), ["acme-crm", "ticket-desk", "weather-api"]);
}

#[test]
fn a_query_matching_nothing_returns_nothing() {
    assert!(fixtures().search("salesforce").is_empty());
}
