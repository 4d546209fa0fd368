//! c's subscribers seen from the serving side, whichever server they talk to (the service, or
//! the floor of `fanout_floor`): start their process, follow its reports round by round, and
//! turn what each subscriber received into delays. Both runs of c share this, so their figures
//! are taken and printed the same way.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::fanout_clients::{CLIENTS_ARG, Orders, Received, Report};
use crate::harness::stats::{Samples, ms};

/// Longest wait for the subscribers' process to report, or for a server to see them all.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The subscribers' process (this binary again, with [`CLIENTS_ARG`]) and its reports.
pub struct Clients {
    child: Child,
    reports: mpsc::UnboundedReceiver<anyhow::Result<Report>>,
}

impl Clients {
    pub fn start(orders: &Orders) -> anyhow::Result<Clients> {
        let binary = std::env::current_exe().context("the bench binary's path")?;
        let mut child = Command::new(binary)
            .arg(CLIENTS_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("could not start the subscribers' process")?;
        let mut stdin = child.stdin.take().context("the subscribers' stdin")?;
        let stdout = child.stdout.take().context("the subscribers' stdout")?;
        let mut clients = Clients { child, reports: read_reports(stdout) };
        let sent = serde_json::to_writer(&mut stdin, orders).map_err(anyhow::Error::from);
        if let Err(err) = sent.and_then(|()| Ok(stdin.write_all(b"\n")?)) {
            clients.stop();
            return Err(err.context("could not give the subscribers their orders"));
        }
        Ok(clients)
    }

    /// Waits until every subscriber has sent its `subscribe`; answers the process's resident
    /// memory before it opened its sockets and after.
    pub async fn subscribed(&mut self) -> anyhow::Result<(Option<u64>, Option<u64>)> {
        match self.next().await? {
            Report::Subscribed { rss_before, rss_after } => Ok((rss_before, rss_after)),
            _ => bail!("the subscribers' process reported out of order"),
        }
    }

    /// Waits until the FINISHED event of `round` (from 1) has reached every subscriber.
    pub async fn reached(&mut self, round: usize) -> anyhow::Result<()> {
        match self.next().await.with_context(|| format!("round {round} did not reach everyone"))? {
            Report::Finished { round: reached } if reached == round => Ok(()),
            _ => bail!("the subscribers' process reported out of order"),
        }
    }

    /// After the last round: what each of the `count` subscribers received. Waits for the
    /// process to close its sockets and exit.
    pub async fn arrivals(mut self, count: usize) -> anyhow::Result<Vec<Vec<Received>>> {
        let mut received = Vec::with_capacity(count);
        loop {
            match self.next().await? {
                Report::Arrivals { events } => received.push(events),
                Report::Done => break,
                _ => bail!("the subscribers' process reported out of order"),
            }
        }
        let status = self.child.wait()?;
        ensure!(status.success(), "the subscribers' process ended with {status}");
        ensure!(received.len() == count, "{} of {count} subscribers reported", received.len());
        Ok(received)
    }

    async fn next(&mut self) -> anyhow::Result<Report> {
        match tokio::time::timeout(PATIENCE, self.reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => bail!("the subscribers' process ended early (its errors are above)"),
            Err(_) => bail!("the subscribers' process said nothing for {} s", PATIENCE.as_secs()),
        }
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Clients {
    /// A failed run must not leave 10,000 sockets open in an orphan.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The process's stdout, one report a line, read on a thread of its own.
fn read_reports(stdout: ChildStdout) -> mpsc::UnboundedReceiver<anyhow::Result<Report>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let report = line
                .map_err(anyhow::Error::from)
                .and_then(|line| serde_json::from_str(&line).context("a report that does not decode"));
            if sender.send(report).is_err() {
                return;
            }
        }
    });
    receiver
}

/// One round as the server side saw it: a verification of the service, or the floor's pair of
/// events.
pub struct Round {
    /// When the STARTED event was sent (the service's `startedAt`).
    pub started_at: DateTime<Utc>,
    /// The `finishedAt` the FINISHED event carries.
    pub finished_at: DateTime<Utc>,
    /// When the mutation's answer reached its client; the floor has no mutation.
    pub returned: Option<DateTime<Utc>>,
}

/// finishedAt to delivery over every round, and the worst round's p99.
pub struct Delivery {
    pub all: Samples,
    pub worst_p99: f64,
}

/// Prints each round's delays under `label` (what `kind` names a round: "verification",
/// "round") and answers them all.
pub fn deliveries(
    label: &str,
    kind: &str,
    rounds: &[Round],
    received: &[Vec<Received>],
) -> anyhow::Result<Delivery> {
    let mut delivery = Delivery { all: Samples::default(), worst_p99: 0.0 };
    for (index, round) in rounds.iter().enumerate() {
        let (mut from_finished, mut from_return) = (Samples::default(), Samples::default());
        let mut last_started = round.started_at;
        for events in received {
            let event = events.get(index).context("a subscriber missed a round")?;
            ensure!(event.finished_at == round.finished_at, "a subscriber saw the rounds out of order");
            last_started = last_started.max(event.started_arrived);
            from_finished.push_ms(millis(event.finished_arrived - round.finished_at));
            if let Some(returned) = round.returned {
                from_return.push_ms(millis(event.finished_arrived - returned));
            }
        }
        let answer = match round.returned {
            Some(returned) => (
                format!(
                    "; from the answer reaching the client p50 {} p99 {}",
                    ms(from_return.p50()),
                    ms(from_return.p99())
                ),
                format!(
                    "; the answer reached the client {} after finishedAt",
                    ms(millis(returned - round.finished_at))
                ),
            ),
            None => (String::new(), String::new()),
        };
        println!(
            "{label}: {kind} {}: finishedAt to delivery {}{}",
            index + 1,
            from_finished.describe(),
            answer.0
        );
        println!(
            "{label}:   the check took {}; STARTED reached the last subscriber {} after startedAt{}",
            ms(millis(round.finished_at - round.started_at)),
            ms(millis(last_started - round.started_at)),
            answer.1,
        );
        delivery.worst_p99 = delivery.worst_p99.max(from_finished.p99());
        delivery.all.extend(from_finished);
    }
    Ok(delivery)
}

fn millis(delta: chrono::TimeDelta) -> f64 {
    delta.num_microseconds().map_or(f64::NAN, |us| us as f64 / 1e3)
}
