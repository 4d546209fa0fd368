//! Plugboard's benchmarks (issue 8): the real service and its background work under load, with
//! figures printed for people and one summary line per scenario. BENCHMARKS.md holds the results.
//!
//! ```sh
//! cargo bench --bench plugboard -- [a|b|c|d|e|f|all]... [--quick]
//! ```
//!
//! a list, b sweep, c fan-out, d refresh storm, e key rotation, f proxy; `--quick` runs each with ten
//! times fewer items, for a smoke run. `PLUGBOARD_BENCH_DATABASE_URL` (or
//! `PLUGBOARD_TEST_DATABASE_URL`) adds scenario a on PostgreSQL; `PLUGBOARD_BENCH_LOG=1` shows the
//! service's logs; `PLUGBOARD_BENCH_FLOOR_WRITERS=one-thread` writes c's floor from one thread.
//! Several scenarios run each in a process of its own, so none inherits another's memory.

mod harness;
mod scenarios;

/// The allocator the service's binary runs with (`src/main.rs`), so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use harness::{Scale, Summary};

const USAGE: &str = "usage: cargo bench --bench plugboard -- [a|b|c|d|e|f|all]... [--quick]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    List,
    Sweep,
    FanOut,
    RefreshStorm,
    KeyRotation,
    Proxy,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::List,
        Scenario::Sweep,
        Scenario::FanOut,
        Scenario::RefreshStorm,
        Scenario::KeyRotation,
        Scenario::Proxy,
    ];

    /// The argument that names this scenario alone.
    fn arg(self) -> &'static str {
        match self {
            Scenario::List => "a",
            Scenario::Sweep => "b",
            Scenario::FanOut => "c",
            Scenario::RefreshStorm => "d",
            Scenario::KeyRotation => "e",
            Scenario::Proxy => "f",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::List => "a. List: team.connections(first: 50) beside { __typename }",
            Scenario::Sweep => "b. Sweep: due checks against a provider answering in 20 ms, 256 at a time",
            Scenario::FanOut => "c. Fan-out: verifications to every WebSocket subscriber of a team",
            Scenario::RefreshStorm => "d. Refresh storm: concurrent credential reads of one expired token",
            Scenario::KeyRotation => "e. Key rotation: rotate_keys from k1 to k2",
            Scenario::Proxy => {
                "f. Proxy: /proxy overhead over a direct loopback call, and 64 concurrent callers"
            }
        }
    }

    async fn run(self, scale: Scale) -> anyhow::Result<Vec<Summary>> {
        match self {
            Scenario::List => scenarios::list::run(scale).await,
            Scenario::Sweep => scenarios::sweep::run(scale).await,
            Scenario::FanOut => scenarios::fanout::run(scale).await,
            Scenario::RefreshStorm => scenarios::refresh::run(scale).await,
            Scenario::KeyRotation => scenarios::rotation::run(scale).await,
            Scenario::Proxy => scenarios::proxy::run(scale).await,
        }
    }
}

/// Scenarios in the order asked (all when none is named), and the scale.
fn parse_args(args: impl Iterator<Item = String>) -> Result<(Vec<Scenario>, Scale), String> {
    let mut chosen = Vec::new();
    let mut scale = Scale { quick: false };
    for arg in args {
        match arg.as_str() {
            "a" => chosen.push(Scenario::List),
            "b" => chosen.push(Scenario::Sweep),
            "c" => chosen.push(Scenario::FanOut),
            "d" => chosen.push(Scenario::RefreshStorm),
            "e" => chosen.push(Scenario::KeyRotation),
            "f" => chosen.push(Scenario::Proxy),
            "all" => chosen.extend(Scenario::ALL),
            "--quick" => scale.quick = true,
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if chosen.is_empty() {
        chosen.extend(Scenario::ALL);
    }
    chosen.dedup();
    Ok((chosen, scale))
}

/// Other work on the machine skews every figure; the load average shows whether there was any.
fn print_load(when: &str) {
    let load = harness::process::load_average().unwrap_or_else(|| "unknown".into());
    println!("load average {when}: {load}");
}

fn main() -> ExitCode {
    // c's subscribers run in a process of their own: this binary again, with a hidden argument.
    if std::env::args().nth(1).as_deref() == Some(scenarios::fanout_clients::CLIENTS_ARG) {
        return run_fanout_clients();
    }
    let (scenarios, scale) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if scenarios.len() > 1 {
        return run_each_in_its_own_process(&scenarios, scale);
    }
    if std::env::var_os("PLUGBOARD_BENCH_LOG").is_some() {
        plugboard::telemetry::init(plugboard::config::LogFormat::Text);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "plugboard benchmarks{}, {cores} cores",
        if scale.quick { " (--quick: ten times fewer items)" } else { "" }
    );
    let mut summaries = Vec::new();
    let mut failed = false;
    for scenario in scenarios {
        println!("\n{}", scenario.title());
        print_load("before");
        let outcome = runtime.block_on(scenario.run(scale));
        print_load("after");
        match outcome {
            Ok(lines) => {
                for summary in &lines {
                    println!("{summary}");
                }
                summaries.extend(lines.into_iter().map(|s| s.to_string()));
            }
            Err(err) => {
                failed = true;
                let line = format!("{}: FAILED: {err:#}", scenario.title());
                println!("{line}");
                summaries.push(line);
            }
        }
    }
    println!("\nsummary");
    for line in &summaries {
        println!("{line}");
    }
    // A missed target is a finding, not a failure; a scenario that could not run is one.
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Runs each scenario in a process of its own, this binary again with that scenario alone, and
/// repeats every summary line at the end. Each scenario reports its process's memory and CPU
/// time: run one after another in one process, a scenario's figures held what the ones before
/// left behind (b's peak RSS started from the 128 MB scenario a's service left in the
/// allocator's caches), which a freshly started service does not have.
fn run_each_in_its_own_process(scenarios: &[Scenario], scale: Scale) -> ExitCode {
    use std::io::BufRead;
    let binary = match std::env::current_exe() {
        Ok(binary) => binary,
        Err(err) => {
            eprintln!("could not find this bench's binary to run each scenario in: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut summaries = Vec::new();
    let mut failed = false;
    for scenario in scenarios {
        let mut command = std::process::Command::new(&binary);
        command.arg(scenario.arg()).stdout(std::process::Stdio::piped());
        if scale.quick {
            command.arg("--quick");
        }
        let outcome = command.spawn().and_then(|mut child| {
            let mut summary = Vec::new();
            let mut in_summary = false;
            if let Some(stdout) = child.stdout.take() {
                for line in std::io::BufReader::new(stdout).lines() {
                    let line = line?;
                    println!("{line}");
                    if in_summary && !line.is_empty() {
                        summary.push(line);
                    } else if line == "summary" {
                        in_summary = true;
                    }
                }
            }
            Ok((child.wait()?, summary))
        });
        match outcome {
            Ok((status, summary)) => {
                failed |= !status.success();
                if summary.is_empty() {
                    summaries.push(format!("{}: FAILED: its process ended with {status}", scenario.title()));
                }
                summaries.extend(summary);
            }
            Err(err) => {
                failed = true;
                summaries.push(format!("{}: FAILED: could not run its process: {err}", scenario.title()));
            }
        }
    }
    println!("\nsummary");
    for line in &summaries {
        println!("{line}");
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// The subscribers' process of scenario c; its stdout belongs to the scenario, so errors go to
/// stderr.
fn run_fanout_clients() -> ExitCode {
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(scenarios::fanout_clients::run()));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("c's subscribers failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
