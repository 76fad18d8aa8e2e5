//! `mediaflow bench`: runs the `mediaflow-bench` binary (crate
//! `crates/bench`) found next to the running `mediaflow`, with the arguments
//! unchanged, so that `mediaflow` itself does not link what only the
//! benchmark needs. `mediaflow bench --help` is `mediaflow-bench --help`.

use anyhow::Context as _;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The benchmark's binary, built from `crates/bench`.
pub const BINARY: &str = "mediaflow-bench";

#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct BenchArgs {
    /// mediaflow-bench's arguments (`mediaflow bench --help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Where `mediaflow-bench` is looked for: the running executable's directory.
pub fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the mediaflow executable")?;
    Ok(exe.with_file_name(format!("{BINARY}{}", std::env::consts::EXE_SUFFIX)))
}

/// The command that builds `mediaflow-bench` in the same profile as this
/// `mediaflow`.
fn build_hint() -> &'static str {
    if cfg!(debug_assertions) {
        "cargo build --bin mediaflow-bench"
    } else {
        "cargo build --release --bin mediaflow-bench"
    }
}

/// Runs `mediaflow-bench` with `-v` repeated `verbose` times, then `args`.
/// On Unix it replaces this process (so its output and exit status are the
/// command's own) and returns only on failure; elsewhere it waits and
/// returns the child's exit code.
pub fn run(args: &BenchArgs, verbose: u8) -> anyhow::Result<ExitCode> {
    let path = binary()?;
    if !path.is_file() {
        anyhow::bail!(
            "`mediaflow bench` runs {BINARY}, which is not next to this mediaflow ({}): build it with `{}`",
            path.display(),
            build_hint()
        );
    }
    let mut cmd = Command::new(&path);
    cmd.args(std::iter::repeat_n("-v", verbose.into()))
        .args(&args.args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let e = cmd.exec();
        Err(e).with_context(|| format!("running {}", path.display()))
    }
    #[cfg(not(unix))]
    {
        let status = cmd
            .status()
            .with_context(|| format!("running {}", path.display()))?;
        Ok(status
            .code()
            .map_or(ExitCode::FAILURE, |c| ExitCode::from(c as u8)))
    }
}
