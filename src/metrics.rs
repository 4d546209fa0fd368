//! Prometheus metrics, through the `metrics` facade and its Prometheus exporter: counters and
//! histograms recorded where things happen (`/metrics` in `http` adds the database gauges).
//! Every label comes from a closed set: app keys of the catalog, outcomes, route templates,
//! method names and status classes; never ids or anything a caller typed. A leaf: it imports
//! nothing of the service, so any layer may record.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process (several apps in one test process share it).
pub fn install() {
    HANDLE.get_or_init(|| {
        let buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0];
        match PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("plugboard_verification_duration_seconds".into()),
                &buckets,
            )
            .and_then(|builder| builder.install_recorder())
        {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!(error = %err, "metrics are not recorded: another recorder is installed");
                None
            }
        }
    });
}

pub fn verification(app: &str, outcome: &'static str, took: Duration) {
    counter!("plugboard_verifications_total", "app" => app.to_owned(), "outcome" => outcome).increment(1);
    histogram!("plugboard_verification_duration_seconds", "app" => app.to_owned()).record(took.as_secs_f64());
}

pub fn refresh(app: &str, result: &'static str) {
    counter!("plugboard_token_refreshes_total", "app" => app.to_owned(), "result" => result).increment(1);
}

/// A call through the proxy, by app and the class of the status the caller got (`2xx`..`5xx`).
pub fn proxy_call(app: &str, status: u16, took: Duration) {
    counter!("plugboard_proxy_calls_total", "app" => app.to_owned(), "status_class" => status_class(status))
        .increment(1);
    histogram!("plugboard_proxy_call_duration_seconds", "app" => app.to_owned()).record(took.as_secs_f64());
}

/// A GraphQL socket refused for a limit: `instance` (`PLUGBOARD_MAX_SOCKETS`) or `caller`
/// (`PLUGBOARD_MAX_SOCKETS_PER_CALLER`).
pub fn socket_refused(limit: &'static str) {
    counter!("plugboard_sockets_refused_total", "limit" => limit).increment(1);
}

/// Counts a request. `route` is the matched route template (or `unmatched`), never the path;
/// the method and status become closed sets, so no caller can add series.
pub fn http_request(route: &str, method: &actix_web::http::Method, status: u16) {
    counter!(
        "plugboard_http_requests_total",
        "route" => route.to_owned(),
        "method" => method_label(method),
        "status" => status_class(status)
    )
    .increment(1);
}

fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The exposition text of everything recorded so far.
pub fn exposition() -> String {
    HANDLE.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default()
}
