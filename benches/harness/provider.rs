//! A local stand-in for providers, on actix-web (already in the stack) so it sustains hundreds of
//! concurrent requests with a set delay: OpenAI's `GET /v1/models` for API-key checks, and an
//! OAuth token endpoint and `/me` for refreshes. It counts what it is asked, measures how long
//! at least one request was in flight (the time a sweep kept it busy), and how long it really held
//! each verification: on a saturated machine the handler resumes late, and a sweep's ideal, which
//! assumes the set delay, cannot count that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use serde_json::json;

/// How slowly the provider answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delays {
    /// Before answering a verification request (`GET /v1/models`).
    pub verify: Duration,
    /// Before answering a token request (`POST /oauth/token`).
    pub token: Duration,
}

pub struct Provider {
    /// `http://127.0.0.1:<port>`, what the test catalog points its apps at.
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

struct Shared {
    delays: Delays,
    verify_requests: AtomicU64,
    /// Nanoseconds the verification requests were held in all, from the handler's start to its
    /// answer: what the sweep's ideal assumes is `verify` each.
    verify_held: AtomicU64,
    token_requests: AtomicU64,
    busy: Mutex<Busy>,
}

/// Time with at least one request in flight.
#[derive(Default)]
struct Busy {
    in_flight: u64,
    since: Option<Instant>,
    total: Duration,
}

impl Provider {
    pub async fn start(delays: Delays) -> anyhow::Result<Provider> {
        let shared = Arc::new(Shared {
            delays,
            verify_requests: AtomicU64::new(0),
            verify_held: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            busy: Mutex::new(Busy::default()),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/models", web::get().to(models))
                .route("/oauth/token", web::post().to(token))
                .route("/oauth-api/me", web::get().to(me))
        })
        .workers(2)
        .backlog(4096)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .context("the local provider could not listen")?;
        let port = server.addrs().first().context("the local provider has no address")?.port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Provider { url: format!("http://127.0.0.1:{port}"), shared, handle })
    }

    pub fn verify_requests(&self) -> u64 {
        self.shared.verify_requests.load(Ordering::SeqCst)
    }

    /// How long the provider held the verification requests so far, in all.
    pub fn verify_held(&self) -> Duration {
        Duration::from_nanos(self.shared.verify_held.load(Ordering::SeqCst))
    }

    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// How long at least one request was in flight since start.
    pub fn busy(&self) -> Duration {
        let busy = self.shared.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.total + busy.since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Shared {
    /// Counts a request in flight until the guard drops.
    fn enter(self: &Arc<Self>) -> InFlight {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if busy.in_flight == 0 {
            busy.since = Some(Instant::now());
        }
        busy.in_flight += 1;
        InFlight(self.clone())
    }
}

struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.in_flight -= 1;
        if busy.in_flight == 0
            && let Some(since) = busy.since.take()
        {
            busy.total += since.elapsed();
        }
    }
}

async fn models(shared: web::Data<Shared>) -> HttpResponse {
    let _in_flight = shared.clone().into_inner().enter();
    let entered = Instant::now();
    tokio::time::sleep(shared.delays.verify).await;
    let held = u64::try_from(entered.elapsed().as_nanos()).unwrap_or(u64::MAX);
    shared.verify_held.fetch_add(held, Ordering::SeqCst);
    shared.verify_requests.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(json!({ "object": "list", "data": [] }))
}

async fn token(shared: web::Data<Shared>) -> HttpResponse {
    let _in_flight = shared.clone().into_inner().enter();
    let issued = shared.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(shared.delays.token).await;
    HttpResponse::Ok().json(json!({
        "access_token": format!("bench-access-{issued}"),
        "refresh_token": format!("bench-refresh-{issued}"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "profile",
    }))
}

async fn me() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "email": "owner@provider.test" }))
}
