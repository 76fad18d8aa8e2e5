//! `mediaflow`: the command line front end. The logic lives in the
//! `mediaflow_cli` library; this file parses arguments and maps outcomes to
//! exit codes: 0 success, 1 some source failed, 2 usage or configuration error.

use clap::{Parser, Subcommand};
use mediaflow_cli::backfill::{self, BackfillArgs};
use mediaflow_cli::bench::{self, BenchArgs};
use mediaflow_cli::dev::{self, DevArgs};
use mediaflow_cli::process::{self, ProcessArgs, RunOptions};
use mediaflow_cli::UsageError;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "mediaflow", version, about = "mediaflow image pipeline", long_about = None)]
struct Cli {
    /// Log more to stderr (-v debug, -vv trace); RUST_LOG takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Process local image files into variants and manifests.
    Process(ProcessArgs),
    /// Run a local S3 endpoint whose uploads trigger the pipeline.
    Dev(DevArgs),
    /// Time fixed workloads on sample-media, optionally against peers (--compare).
    ///
    /// Runs the mediaflow-bench binary next to this one with the same arguments.
    Bench(BenchArgs),
    /// Bring existing objects up to date: find those without a current
    /// manifest and send them to the functions' queue (or process them here).
    ///
    /// Exit status: 0 done, 1 some object could not be examined or sent (or
    /// the run stopped on an error), 2 usage, 130 interrupted (continue
    /// with --resume).
    Backfill(BackfillArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mediaflow_cli::init_tracing(cli.verbose);
    quiet_dependency_panics();
    match cli.command {
        Command::Process(args) => run_process(&args, cli.verbose),
        Command::Dev(args) => run_dev(&args),
        Command::Backfill(args) => run_backfill(&args, cli.verbose),
        Command::Bench(args) => match bench::run(&args, cli.verbose) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn run_dev(args: &DevArgs) -> ExitCode {
    let (config, source) = match config_or_exit(args.config.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let runtime = match runtime_or_exit() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(dev::run(args, config, &source.to_string(), stop_signal()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_backfill(args: &BackfillArgs, verbose: u8) -> ExitCode {
    let (config, _) = match config_or_exit(args.config.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let runtime = match runtime_or_exit() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let options = backfill::RunOptions {
        progress: std::io::stderr().is_terminal() && !mediaflow_cli::logging_enabled(verbose),
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let result = runtime.block_on(async {
        // The first signal ends the batch in flight and saves the
        // checkpoint; a second one exits at once.
        let flag = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            stop_signal().await;
            eprintln!("stopping after the batch in flight (again to exit now)…");
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            stop_signal().await;
            std::process::exit(130);
        });
        backfill::run(args, config, options, stop.clone()).await
    });
    let summary = match result {
        Ok(s) => s,
        Err(e) => return failure_exit(&e),
    };
    let text = if args.json {
        summary.to_json()
    } else {
        summary.to_human()
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if summary.interrupted {
        ExitCode::from(130)
    } else if summary.failed_now > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The configuration `--config` names (or the default), or exit status 2
/// after its one error line.
fn config_or_exit(
    path: Option<&std::path::Path>,
) -> Result<(mediaflow_config::Config, mediaflow_cli::PlanSource), ExitCode> {
    mediaflow_cli::resolve_config(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The async runtime, or exit status 1 after one error line.
fn runtime_or_exit() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(1)
    })
}

/// Prints a command's error on one line: status 2 for usage, else 1.
fn failure_exit(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    let usage = e.downcast_ref::<UsageError>().is_some();
    ExitCode::from(if usage { 2 } else { 1 })
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The engine catches panics inside codecs (dependencies) and reports them as
/// the source's one-line error; the default hook would print them again over
/// several lines. Those go to the debug log; any other panic is a bug and is
/// still printed.
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

fn run_process(args: &ProcessArgs, verbose: u8) -> ExitCode {
    let (config, source) = match config_or_exit(args.config.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    tracing::debug!(config = %source, fingerprint = %config.image.fingerprint(), "plan ready");
    let options = RunOptions {
        progress: std::io::stderr().is_terminal() && !mediaflow_cli::logging_enabled(verbose),
        print_errors: true,
    };
    let summary = match process::run(args, &config, options) {
        Ok(s) => s,
        Err(e) => return failure_exit(&e),
    };
    let text = if args.json {
        summary.to_json()
    } else {
        summary.to_human()
    };
    // A closed stdout (e.g. piped into `head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if summary.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
