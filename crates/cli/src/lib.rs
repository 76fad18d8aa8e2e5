//! The logic behind the `mediaflow` command line, as a library so that the
//! binary stays a thin clap front end and tests can call it directly.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a
//! `run` function (`process`, `dev`, `backfill`).
//! `bench` only runs the `mediaflow-bench` binary (`crates/bench`).

pub mod backfill;
pub mod bench;
pub mod dev;
pub mod gallery;
pub mod memory;
pub mod process;

use mediaflow_config::{Config, ConfigError};
use mediaflow_video::Tools;
use std::fmt;
use std::path::{Path, PathBuf};

/// A failure caused by how the command was invoked (bad arguments, an
/// unusable output directory): the binary exits with status 2 for these.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Where the plan came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanSource {
    /// A configuration file: given with `--config`, or `./mediaflow.toml`.
    File(PathBuf),
    /// No configuration file: the built-in default.
    Builtin,
}

impl fmt::Display for PlanSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanSource::File(p) => write!(f, "{}", p.display()),
            PlanSource::Builtin => f.write_str("built-in default"),
        }
    }
}

/// Loads the configuration: `config` if given, else `./mediaflow.toml` if it
/// exists in the current directory, else the built-in default. Errors name
/// the file.
pub fn resolve_config(config: Option<&Path>) -> Result<(Config, PlanSource), ConfigError> {
    let path = match config {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from(mediaflow_config::DEFAULT_FILE_NAME);
            if !default.is_file() {
                tracing::debug!("no ./{} found: using the built-in plan", default.display());
                return Ok((mediaflow_config::builtin_config(), PlanSource::Builtin));
            }
            default
        }
    };
    let config = mediaflow_config::load_config(&path)?;
    tracing::debug!(config = %path.display(), "loaded configuration");
    Ok((config, PlanSource::File(path)))
}

/// ffmpeg and ffprobe for local runs: `MEDIAFLOW_FFMPEG` /
/// `MEDIAFLOW_FFPROBE` if set, else `ffmpeg` and `ffprobe` on the PATH.
pub fn local_video_tools() -> Tools {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    Tools::new(
        var("MEDIAFLOW_FFMPEG").unwrap_or_else(|| "ffmpeg".into()),
        var("MEDIAFLOW_FFPROBE").map(PathBuf::from),
    )
}

/// `--public-base-url`: a base URL [`PublicBase::parse`] accepts.
pub fn parse_public_base(text: &str) -> Result<mediaflow_engine::PublicBase, String> {
    mediaflow_engine::PublicBase::parse(text)
}

/// The pipeline `dev` and `backfill --local` run in this process: the
/// image plan, and videos too (ffmpeg permitting: the returned line says
/// whether video works), work directories under `work_root`, admitted by
/// the `memory` budget (default: the memory available now), `concurrency`
/// objects at once (default: the cores).
pub fn local_pipeline(
    store: std::sync::Arc<dyn mediaflow_store::ObjectStore>,
    config: Config,
    pipeline: mediaflow_pipeline::PipelineConfig,
    work_root: &Path,
    memory: Option<bytesize::ByteSize>,
    concurrency: Option<usize>,
) -> anyhow::Result<(mediaflow_pipeline::Pipeline, String)> {
    use anyhow::Context as _;
    let tools = local_video_tools();
    let video_status = match tools.check() {
        Ok(version) => version,
        Err(e) => format!("unavailable, video uploads will fail: {}", e.message()),
    };
    std::fs::create_dir_all(work_root)
        .with_context(|| format!("creating {}", work_root.display()))?;
    let settings = mediaflow_pipeline::PipelineConfig {
        memory_budget: Some(memory::budget(memory).bytes()),
        concurrency: concurrency.unwrap_or(pipeline.concurrency),
        ..pipeline
    }
    .with_video(mediaflow_pipeline::VideoSettings {
        plan: config.video,
        tools,
        work_root: work_root.to_path_buf(),
    });
    Ok((
        mediaflow_pipeline::Pipeline::new(store, config.image, settings),
        video_status,
    ))
}

/// Sets up tracing to stderr: `RUST_LOG` if set, else `-v` (debug) / `-vv`
/// (trace) for mediaflow's own crates, else off.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => {
                "mediaflow=debug,mediaflow_cli=debug,mediaflow_config=debug,mediaflow_engine=debug,mediaflow_video=debug"
            }
            _ => {
                "mediaflow=trace,mediaflow_cli=trace,mediaflow_config=trace,mediaflow_engine=trace,mediaflow_video=trace"
            }
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// True when logging is on (then the progress bar stays off, so that log
/// lines and the bar do not garble each other).
pub fn logging_enabled(verbose: u8) -> bool {
    verbose > 0 || std::env::var("RUST_LOG").is_ok_and(|s| !s.trim().is_empty())
}
