//! `GET /metrics`: Prometheus text format, with the gauges that describe the database
//! (connections by app and status, scheduler lag) measured at most every 15 s whatever the
//! scrape rate. With `PLUGBOARD_METRICS_TOKEN` set, only a scraper that sends it as a bearer
//! token is answered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use metrics::gauge;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::socket_slots::SocketSlots;
use crate::state::AppState;
use crate::store;

/// (app, status) pairs reported before, so a pair that disappears drops to zero.
static SEEN: Mutex<BTreeSet<(String, &'static str)>> = Mutex::new(BTreeSet::new());

pub async fn metrics(
    request: HttpRequest,
    state: web::Data<AppState>,
    sockets: web::Data<SocketSlots>,
) -> HttpResponse {
    if let Some(expected) = &state.config.metrics_token
        && !presents(&request, expected.expose_secret())
    {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .body("send the metrics token (PLUGBOARD_METRICS_TOKEN) as `Authorization: Bearer <token>`");
    }
    match render(&state, &sockets).await {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text),
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "could not measure metrics");
            HttpResponse::ServiceUnavailable().body("metrics are unavailable; see the server log")
        }
    }
}

/// Compares digests, so the time taken says nothing about how much of the token matched.
fn presents(request: &HttpRequest, expected: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// How long the database gauges are reused between scrapes: a scrape is then one read of
/// memory, however often (and by however many) it is asked for.
const DATABASE_GAUGES_TTL: Duration = Duration::from_secs(15);

/// When each database's gauges were last measured (one process may serve several, as tests
/// do); the lock also makes concurrent scrapes wait for one measurement instead of each
/// running its own.
static MEASURED: tokio::sync::Mutex<BTreeMap<String, std::time::Instant>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

/// The exposition text, with the database gauges at most `DATABASE_GAUGES_TTL` old.
async fn render(state: &AppState, sockets: &SocketSlots) -> anyhow::Result<String> {
    let mut measured = MEASURED.lock().await;
    let database = &state.config.database_url;
    if measured.get(database).is_none_or(|at| at.elapsed() >= DATABASE_GAUGES_TTL) {
        measure_database(state).await?;
        measured.insert(database.clone(), std::time::Instant::now());
    }
    drop(measured);
    gauge!("plugboard_open_subscriptions").set(state.events.subscribers() as f64);
    gauge!("plugboard_open_sockets").set(sockets.open() as f64);
    gauge!("plugboard_max_sockets").set(sockets.max_open() as f64);
    Ok(crate::metrics::exposition())
}

async fn measure_database(state: &AppState) -> anyhow::Result<()> {
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
    Ok(())
}
