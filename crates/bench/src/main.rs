//! `mediaflow-bench`: the benchmark's command line (`mediaflow bench` runs
//! this binary from its own directory). The hidden `runner` subcommand is
//! the child process it starts for each measured mediaflow and `image`
//! crate row. Exit codes: 0 success, 1 failure, 2 bad arguments (clap).

use clap::{Parser, Subcommand};
use mediaflow_bench::runners::{self, RunnerArgs};
use mediaflow_bench::BenchArgs;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "mediaflow-bench",
    version,
    about = "Time fixed workloads on sample-media, optionally against peers (--compare).",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Log more to stderr (-v debug, -vv trace); RUST_LOG takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(flatten)]
    bench: BenchArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One benchmark job (started by the benchmark itself; see benches/peers/README.md).
    #[command(hide = true)]
    Runner(RunnerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    quiet_dependency_panics();
    match cli.command {
        None => match mediaflow_bench::run(&cli.bench) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Some(Command::Runner(args)) => match runners::runner(&args) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!(
                    "{}",
                    serde_json::json!({"peer": "mediaflow", "error": format!("{e:#}")})
                );
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// Tracing to stderr: `RUST_LOG` if set, else `-v` (debug) / `-vv` (trace)
/// for mediaflow's own crates, else off (as `mediaflow` does).
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => "mediaflow_bench=debug,mediaflow_engine=debug",
            _ => "mediaflow_bench=trace,mediaflow_engine=trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The engine catches panics inside codecs (dependencies) and reports them as
/// the job's one-line error; the default hook would print them again over
/// several lines. Those go to the debug log; any other panic is a bug and is
/// still printed. (The same hook as `mediaflow`'s.)
fn quiet_dependency_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_dependency = info
            .location()
            .is_some_and(|l| l.file().contains(".cargo/registry") || l.file().contains("/rustc/"));
        if in_dependency {
            tracing::debug!(%info, "panic inside a codec (caught by the engine)");
        } else {
            default(info);
        }
    }));
}
