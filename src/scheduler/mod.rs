//! Background work. A tokio-cron-scheduler tick runs a sweep of due checks
//! (`run_due_checks`) that finds broken connections before a flow does; ticks never overlap on
//! one instance, and several instances share the work through claims in the database. At
//! shutdown the sweep stops claiming, finishes what it holds and gives back the rest. The
//! outbox dispatcher (`run_dispatcher`) publishes events and sends webhooks as changes commit.

mod busy;
mod dispatch;
mod incidents;
mod rate;
mod sweep;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler};

pub use dispatch::{publish_staged_events, run_dispatcher};
pub use incidents::app_health;
pub use sweep::{SweepReport, run_due_checks, run_due_checks_until};

use crate::state::AppState;

/// How long shutdown waits for a running sweep.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct Scheduler {
    cron: JobScheduler,
    stop: Arc<AtomicBool>,
    running: Arc<Mutex<()>>,
}

impl Scheduler {
    pub async fn start(state: AppState) -> anyhow::Result<Self> {
        let cron = JobScheduler::new().await.context("could not create the scheduler")?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(Mutex::new(()));
        let expression = state.config.check_cron.clone();
        let (job_stop, job_running) = (stop.clone(), running.clone());
        let job = Job::new_async(expression.as_str(), move |_, _| {
            let (state, stop, running) = (state.clone(), job_stop.clone(), job_running.clone());
            Box::pin(async move {
                // A tick that finds the previous sweep still running lets it finish.
                let Ok(_guard) = running.try_lock() else {
                    tracing::debug!("previous sweep still running; tick skipped");
                    return;
                };
                if let Err(err) = run_due_checks_until(&state, &stop).await {
                    tracing::error!(error = format!("{err:#}"), "sweep failed; the next tick retries");
                }
                if let Err(err) = crate::connections::warn_expiring_grants(&state).await {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "grant warnings failed; the next tick retries"
                    );
                }
            })
        })
        .with_context(|| format!("PLUGBOARD_CHECK_CRON: {expression:?} is not a cron expression"))?;
        cron.add(job).await.context("could not schedule the sweep")?;
        cron.start().await.context("could not start the scheduler")?;
        tracing::info!(cron = %expression, "scheduler started");
        Ok(Scheduler { cron, stop, running })
    }

    /// Stops claiming, waits for a running sweep to record what it checked, and stops the tick.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if tokio::time::timeout(SHUTDOWN_GRACE, self.running.lock()).await.is_err() {
            tracing::warn!("a sweep was still running at shutdown; its claims lapse on their own");
        }
        if let Err(err) = self.cron.shutdown().await {
            tracing::warn!(error = %err, "the scheduler did not stop cleanly");
        }
        tracing::info!("scheduler stopped");
    }
}
