//! The `plugboard` command: parses the command line, then calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use plugboard::config::Config;
use plugboard::domain::{Email, TeamName, TeamRole};
use plugboard::scheduler::Scheduler;
use plugboard::startup::{self, Application};
use plugboard::{bootstrap, connections, telemetry};

/// mimalloc: a sweep or a list page allocates many small short-lived values across worker
/// threads, and glibc's allocator spent about a sixth of the CPU on them (see BENCHMARKS.md).
/// Chosen here, not in the library, so a program embedding the library keeps its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Plugboard keeps a team's connections to third-party apps and hands working credentials to
/// the automation flows that use them.
///
/// Settings come from the environment (DATABASE_URL, PLUGBOARD_LISTEN, PLUGBOARD_PUBLIC_URL,
/// PLUGBOARD_MASTER_KEYS, ...); see the README.
#[derive(Parser)]
#[command(name = "plugboard", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve the API (the default). On an empty database, creates
    /// the team `Demo` with a user and prints its token.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a team and a member (what is missing) and print a new user token as the last line.
    Bootstrap {
        /// The team's name; created if it does not exist.
        #[arg(long)]
        team: String,
        /// The member's e-mail; the user is created if missing.
        #[arg(long)]
        email: String,
        /// The member's role in the team.
        #[arg(long, default_value = "ADMIN", value_parser = parse_role)]
        role: TeamRole,
    },
    /// Print a new service token for a team as the last line of output.
    ServiceToken {
        /// The team the token is bound to.
        #[arg(long)]
        team: String,
    },
    /// Re-seal every stored secret under the active master key (the first in
    /// PLUGBOARD_MASTER_KEYS). Safe to interrupt and rerun.
    RotateKeys {
        /// How many rows to re-seal per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
        /// Change nothing; answer whether anything is still sealed under another key than the
        /// active one (exit status 0 when the other keys may be removed, 1 when not).
        #[arg(long)]
        check: bool,
    },
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    PrintSchema,
}

fn parse_role(raw: &str) -> Result<TeamRole, String> {
    TeamRole::parse(&raw.to_ascii_uppercase())
        .ok_or_else(|| format!("{raw:?} is not one of ADMIN, MEMBER, MONITORING"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", plugboard::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: configuration: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            startup::prepare(config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Bootstrap { team, email, role } => {
            let team = TeamName::parse(&team).map_err(|m| anyhow::anyhow!("--team: {m}"))?;
            let email = Email::parse(&email).map_err(|m| anyhow::anyhow!("--email: {m}"))?;
            let state = startup::prepare(config).await?;
            let done = bootstrap::team_member(&state.db, &team, &email, role).await?;
            println!(
                "team {:?} ({}), {} as {}",
                done.team.name.as_str(),
                done.team.id,
                done.user.email.as_str(),
                role.as_str()
            );
            println!("{}", done.token.token.expose_secret());
            Ok(())
        }
        Command::ServiceToken { team } => {
            let team = TeamName::parse(&team).map_err(|m| anyhow::anyhow!("--team: {m}"))?;
            let state = startup::prepare(config).await?;
            let token = bootstrap::service_token(&state.db, &team).await?;
            println!("service token for team {:?}", team.as_str());
            println!("{}", token.token.expose_secret());
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", plugboard::graphql::sdl());
            Ok(())
        }
        Command::RotateKeys { batch_size, check } => {
            let state = startup::prepare(config).await?;
            let active = state.sealer.active_key_id().to_string();
            if check {
                let report = connections::check_keys(&state).await?;
                for table in &report.tables {
                    println!(
                        "{}: {} row(s) sealed under another key than {active}",
                        table.table, table.remaining
                    );
                }
                return finish_rotation(&report, &active, "run `plugboard rotate-keys` first");
            }
            let report = connections::rotate_keys(&state, batch_size).await?;
            for table in &report.tables {
                for (id, why) in &table.unopenable {
                    eprintln!("error: {} row {id} cannot be opened: {why}", table.table);
                }
                println!(
                    "{}: re-sealed {}, {} changed meanwhile, {} cannot be opened, {} still under another key",
                    table.table,
                    table.resealed,
                    table.skipped_changed,
                    table.unopenable.len(),
                    table.remaining
                );
            }
            let connections = report.tables.first().map_or(0, |t| t.resealed);
            println!("re-sealed {connections} connection(s) under key {active}");
            finish_rotation(
                &report,
                &active,
                "rerun `plugboard rotate-keys`, with every old key still in PLUGBOARD_MASTER_KEYS",
            )
        }
    }
}

/// Succeeds when nothing is left under another key than `active`, and says so.
fn finish_rotation(report: &connections::RotationReport, active: &str, advice: &str) -> anyhow::Result<()> {
    if report.complete() {
        println!(
            "every secret is sealed under {active}: the other keys may be removed from PLUGBOARD_MASTER_KEYS"
        );
        return Ok(());
    }
    let remaining: u64 = report.tables.iter().map(|t| t.remaining).sum();
    anyhow::bail!(
        "{remaining} sealed row(s) are still under another key than {active}: keep the old keys; {advice}"
    )
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let listener = startup::bind(&mut config)?;
    let graphql_url = config.graphql_url();
    let seed_demo = config.seed_demo;
    let state = startup::prepare(config).await?;
    if seed_demo && let Some(demo) = bootstrap::demo_if_empty(&state.db).await? {
        println!();
        println!("Created team {:?} with user {}.", demo.team.name.as_str(), demo.user.email.as_str());
        println!("Its token (shown only now):");
        println!("    {}", demo.token.token.expose_secret());
        println!("In GraphiQL, add under Headers: {{\"Authorization\": \"Bearer <the token>\"}}");
        // Only on this machine: the fragment carries the token into GraphiQL's headers editor
        // and never reaches the server or its logs.
        if state.config.listen.ip().is_loopback() {
            println!(
                "Or open GraphiQL with it already under Headers (this machine only): {graphql_url}#token={}",
                demo.token.token.expose_secret()
            );
        }
        println!();
    }
    let scheduler = Scheduler::start(state.clone()).await?;
    let app = Application::serve(listener, state.clone())?;
    tracing::info!(port = app.port(), "listening");
    println!("GraphiQL: {graphql_url}");
    let server = app.handle();
    let serving = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await;
    // In order: tell subscribers, stop claiming and let a running sweep record what it checked,
    // then stop HTTP once in-flight requests are answered.
    tracing::info!("shutting down");
    state.events.close();
    scheduler.shutdown().await;
    server.stop(true).await;
    serving.await??;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (what orchestrators send) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
