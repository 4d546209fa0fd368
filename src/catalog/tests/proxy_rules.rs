//! `[[modules]].requests` and `[rate_limits]`: read as written, and each mistake named.

use std::time::Duration;

use super::{ACME, assert_rejected, edit};
use crate::catalog::{Catalog, GENERIC_MODULE_KEY, RateLimit};

fn with_requests(requests: &str) -> String {
    edit(ACME, "scopes = [\"deals.write\"]", &format!("scopes = [\"deals.write\"]\nrequests = {requests}"))
}

#[test]
fn module_requests_and_rate_limits_are_read() {
    let contents = with_requests(
        r#"[{ method = "post", path = "/deals" }, { method = "GET", path = "/deals/*" }]"#,
    ) + "\n[rate_limits]\nper_connection = { requests = 10, per_secs = 1 }\nper_app = { requests = 600, per_secs = 60 }\n";
    let catalog = Catalog::from_sources([("acme-crm.toml", contents.as_str())]).unwrap();
    let acme = catalog.get("acme-crm").unwrap();
    let deal = acme.module("create-deal").unwrap();
    assert_eq!(deal.requests().len(), 2);
    assert_eq!(deal.requests()[0].method(), "POST", "methods are upper-cased");
    assert!(deal.allows("POST", "/deals") && deal.allows("GET", "/deals/42"));
    assert!(!deal.allows("DELETE", "/deals/42") && !deal.allows("GET", "/contacts"));
    assert!(acme.module("list-contacts").unwrap().allows("DELETE", "/anything"), "no requests: anything");
    let generic = acme.module(GENERIC_MODULE_KEY).expect("every app has the generic module");
    assert!(generic.requests().is_empty() && generic.scopes().is_empty());
    let limits = acme.rate_limits();
    assert_eq!(limits.per_connection, Some(RateLimit { requests: 10, period: Duration::from_secs(1) }));
    assert_eq!(limits.per_app, Some(RateLimit { requests: 600, period: Duration::from_secs(60) }));
}

#[test]
fn bad_requests_and_limits_are_named() {
    let bad_method = with_requests(r#"[{ method = "FETCH", path = "/deals" }]"#);
    assert_rejected("acme-crm.toml", &bad_method, "modules[1].requests[0].method", "`FETCH` is not one of");
    let bad_path = with_requests(r#"[{ method = "GET", path = "deals/**/x" }]"#);
    assert_rejected("acme-crm.toml", &bad_path, "modules[1].requests[0].path", "must start with `/`");
    let climbing = with_requests(r#"[{ method = "GET", path = "/deals/../admin" }]"#);
    assert_rejected("acme-crm.toml", &climbing, "modules[1].requests[0].path", "`..`");
    let zero = ACME.1.to_owned() + "\n[rate_limits]\nper_app = { requests = 0, per_secs = 1 }\n";
    assert_rejected("acme-crm.toml", &zero, "rate_limits.per_app.requests", "at least 1");
    let long = ACME.1.to_owned() + "\n[rate_limits]\nper_connection = { requests = 1, per_secs = 90000 }\n";
    assert_rejected("acme-crm.toml", &long, "rate_limits.per_connection.per_secs", "1 to 86400");
    let typo = ACME.1.to_owned() + "\n[rate_limits]\nper_conection = { requests = 1, per_secs = 1 }\n";
    assert!(Catalog::from_sources([("acme-crm.toml", typo.as_str())]).is_err(), "unknown keys are refused");
}
