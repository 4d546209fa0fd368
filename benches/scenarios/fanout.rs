//! c. Fan-out: 10,000 WebSocket subscribers (`graphql-transport-ws`) to `verificationEvents` of one
//! team, then a `verifyConnection` over HTTP. Each subscriber notes when the FINISHED event
//! reaches it; the delay is measured from the verification's `finishedAt` (the provider had
//! answered; the result is then written and published) and from the instant the mutation's answer
//! reached the client. One verification is a single sample of the tail, so the bench runs five,
//! one after another, and holds every one of them to the target.
//!
//! The service runs in this process and the subscribers in another (`fanout_clients`): they
//! still share the machine's cores, but not the service's threads, and this process's memory is
//! the service's. The provider answers at once, so the check itself is as short as it gets.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::fanout_clients::{CLIENTS_ARG, Orders, Report, parse_time};
use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{Samples, mib, ms};
use crate::harness::{Scale, Summary, process, seed};

const SUBSCRIBERS: usize = 10_000;
const VERIFICATIONS: usize = 5;
/// Between two verifications, once every subscriber has the previous one.
const PAUSE: Duration = Duration::from_millis(500);
const TARGET_P99_MS: f64 = 100.0;
/// Open files besides the sockets: the database, the provider, the runtime.
const SPARE_FILES: u64 = 1024;
/// Longest wait for the subscribers' process to report.
const PATIENCE: Duration = Duration::from_secs(120);

const VERIFY: &str = "mutation($id: ID!) { verifyConnection(id: $id) { outcome startedAt finishedAt } }";

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "c/sqlite";
    let wanted = scale.items(SUBSCRIBERS);
    // Each process holds one end of every socket, beside its other files.
    let needed = wanted as u64 + SPARE_FILES;
    let limit = process::raise_open_files(needed)?;
    let count = wanted.min(limit.saturating_sub(SPARE_FILES) as usize);
    println!("{label}: open-file limit {limit} per process");
    if count < wanted {
        println!(
            "{label}: only {count} of {wanted} subscribers fit under the open-file limit, which this process may \
             not raise; run `ulimit -n {needed}` as a user allowed to (root with CAP_SYS_RESOURCE) before the \
             bench for all of them"
        );
    }

    let provider = Provider::start(Delays::default()).await?;
    let instance = Instance::serve(&Backend::Sqlite, &provider, &[]).await?;
    let address = instance.address()?.to_owned();
    let connection = *seed::api_key_connections(&instance.state, instance.team_id, 1, false)
        .await?
        .first()
        .context("no connection was seeded")?;

    let baseline = instance.state.events.subscribers();
    let rss_before = process::rss();
    let started = Instant::now();
    let mut clients = Clients::start(&Orders {
        address: address.clone(),
        token: instance.token.clone(),
        team: instance.team_id.to_string(),
        subscribers: count,
        verifications: VERIFICATIONS,
    })?;
    let (client_before, client_after) = match clients.next().await? {
        Report::Subscribed { rss_before, rss_after } => (rss_before, rss_after),
        _ => bail!("the subscribers' process reported out of order"),
    };
    // A subscription exists once the service holds a receiver for it.
    while instance.state.events.subscribers() < baseline + count {
        ensure!(started.elapsed() < PATIENCE, "the subscriptions did not all start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{label}: {count} subscribers ready in {:.1} s", started.elapsed().as_secs_f64());
    let rss_after = process::rss();
    let per_subscriber = growth_per_subscriber(rss_before, rss_after, count);
    println!(
        "{label}: service RSS {} -> {}: {} per subscriber (its socket, actor and subscription); the clients' \
         process {} -> {}: {} per subscriber",
        rss_before.map_or("unknown".into(), mib),
        rss_after.map_or("unknown".into(), mib),
        kib(per_subscriber),
        client_before.map_or("unknown".into(), mib),
        client_after.map_or("unknown".into(), mib),
        kib(growth_per_subscriber(client_before, client_after, count)),
    );

    let client = reqwest::Client::new();
    let mut verifications = Vec::with_capacity(VERIFICATIONS);
    for round in 1..=VERIFICATIONS {
        verifications.push(verify(&client, &address, &instance.token, &connection.to_string()).await?);
        match clients.next().await.with_context(|| format!("verification {round} did not reach everyone"))? {
            Report::Finished { round: reached } if reached == round => {}
            _ => bail!("the subscribers' process reported out of order"),
        }
        tokio::time::sleep(PAUSE).await;
    }
    let mut received = Vec::with_capacity(count);
    loop {
        match clients.next().await? {
            Report::Arrivals { events } => received.push(events),
            Report::Done => break,
            _ => bail!("the subscribers' process reported out of order"),
        }
    }
    clients.finish()?;
    ensure!(received.len() == count, "{} of {count} subscribers reported", received.len());
    provider.stop().await;

    let (mut all, mut worst_p99) = (Samples::default(), 0.0_f64);
    for (round, verification) in verifications.iter().enumerate() {
        let (mut from_finished, mut from_return) = (Samples::default(), Samples::default());
        let mut last_started = verification.started_at;
        for events in &received {
            let event = events.get(round).context("a subscriber missed a verification")?;
            ensure!(
                event.finished_at == verification.finished_at,
                "a subscriber saw the verifications out of order"
            );
            last_started = last_started.max(event.started_arrived);
            from_finished.push_ms(millis(event.finished_arrived - verification.finished_at));
            from_return.push_ms(millis(event.finished_arrived - verification.returned));
        }
        println!(
            "{label}: verification {}: finishedAt to delivery {}; from the answer reaching the client p50 {} p99 {}",
            round + 1,
            from_finished.describe(),
            ms(from_return.p50()),
            ms(from_return.p99()),
        );
        println!(
            "{label}:   the check took {}; STARTED reached the last subscriber {} after startedAt; the answer \
             reached the client {} after finishedAt",
            ms(millis(verification.finished_at - verification.started_at)),
            ms(millis(last_started - verification.started_at)),
            ms(millis(verification.returned - verification.finished_at)),
        );
        worst_p99 = worst_p99.max(from_finished.p99());
        all.extend(from_finished);
    }
    Ok(vec![Summary::new(
        format!(
            "{label}: {count} subscribers{}, {VERIFICATIONS} verifications, finishedAt to delivery p50 {} p99 {} (worst \
             verification's p99 {}); target p99 <= {TARGET_P99_MS} ms for each; {} per subscriber in the service",
            if count < wanted { format!(" (of {wanted}: open-file limit)") } else { String::new() },
            ms(all.p50()),
            ms(all.p99()),
            ms(worst_p99),
            kib(per_subscriber),
        ),
        worst_p99 <= TARGET_P99_MS && count == wanted,
    )])
}

/// Growth of resident memory shared out over `count` subscribers.
fn growth_per_subscriber(before: Option<u64>, after: Option<u64>, count: usize) -> Option<u64> {
    after.zip(before).map(|(after, before)| after.saturating_sub(before) / count.max(1) as u64)
}

fn kib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |bytes| format!("{:.1} KiB", bytes as f64 / 1024.0))
}

/// The subscribers' process (this binary again, with [`CLIENTS_ARG`]) and its reports.
struct Clients {
    child: Child,
    reports: mpsc::UnboundedReceiver<anyhow::Result<Report>>,
}

impl Clients {
    fn start(orders: &Orders) -> anyhow::Result<Clients> {
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

    async fn next(&mut self) -> anyhow::Result<Report> {
        match tokio::time::timeout(PATIENCE, self.reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => bail!("the subscribers' process ended early (its errors are above)"),
            Err(_) => bail!("the subscribers' process said nothing for {} s", PATIENCE.as_secs()),
        }
    }

    /// Waits for the process to exit after its last report.
    fn finish(mut self) -> anyhow::Result<()> {
        let status = self.child.wait()?;
        ensure!(status.success(), "the subscribers' process ended with {status}");
        Ok(())
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

/// One verification, as its answer tells it, and when the answer reached the client.
struct Verified {
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    returned: DateTime<Utc>,
}

async fn verify(client: &reqwest::Client, address: &str, token: &str, id: &str) -> anyhow::Result<Verified> {
    let answer: Value = client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": VERIFY, "variables": { "id": id } }))
        .send()
        .await?
        .json()
        .await?;
    let returned = Utc::now();
    let verification = &answer["data"]["verifyConnection"];
    ensure!(verification["outcome"] == "OK", "the verification failed: {answer}");
    Ok(Verified {
        started_at: parse_time(&verification["startedAt"])?,
        finished_at: parse_time(&verification["finishedAt"])?,
        returned,
    })
}

fn millis(delta: chrono::TimeDelta) -> f64 {
    delta.num_microseconds().map_or(f64::NAN, |us| us as f64 / 1e3)
}
