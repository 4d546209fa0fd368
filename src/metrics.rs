//! Prometheus metrics at `/metrics`, through the `metrics` facade and its Prometheus exporter.
//! Counters and histograms are recorded where things happen; gauges that describe the database
//! (connections by status and app, scheduler lag) are measured when scraped. Labels are app
//! keys, outcomes, routes and statuses: never ids or anything a user typed.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::Utc;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;
use crate::store;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
/// (app, status) pairs reported before, so a pair that disappears drops to zero.
static SEEN: Mutex<BTreeSet<(String, &'static str)>> = Mutex::new(BTreeSet::new());

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
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!("plugboard_proxy_calls_total", "app" => app.to_owned(), "status_class" => class).increment(1);
    histogram!("plugboard_proxy_call_duration_seconds", "app" => app.to_owned()).record(took.as_secs_f64());
}

pub fn http_request(route: &str, method: &str, status: u16) {
    counter!(
        "plugboard_http_requests_total",
        "route" => route.to_owned(),
        "method" => method.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
}

/// The exposition text, with the database gauges measured now.
pub async fn render(state: &AppState) -> anyhow::Result<String> {
    let counts = store::connections::count_by_app_and_status(&state.db).await?;
    {
        let mut seen = SEEN.lock().map_err(|_| anyhow::anyhow!("metrics state poisoned"))?;
        for key in seen.iter() {
            if !counts.iter().any(|(app, status, _)| (app, status.as_str()) == (&key.0, key.1)) {
                gauge!("plugboard_connections", "app" => key.0.clone(), "status" => key.1).set(0.0);
            }
        }
        for (app, status, count) in &counts {
            gauge!("plugboard_connections", "app" => app.clone(), "status" => status.as_str())
                .set(*count as f64);
            seen.insert((app.clone(), status.as_str()));
        }
    }
    let now = Utc::now();
    let lag = match store::checks::oldest_due(&state.db, now).await? {
        Some(due) => (now - due).num_milliseconds().max(0) as f64 / 1000.0,
        None => 0.0,
    };
    gauge!("plugboard_scheduler_lag_seconds").set(lag);
    gauge!("plugboard_open_subscriptions").set(state.events.subscribers() as f64);
    Ok(HANDLE.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default())
}
