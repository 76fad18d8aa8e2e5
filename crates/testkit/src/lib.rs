//! What mediaflow's tests share, as a dev-dependency: the paths of the
//! workspace and its `sample-media`, and (in [`process`]) free loopback
//! ports, bounded waits and child processes stopped by PID; in [`moto`],
//! [`MotoServer`] (moto's `moto_server` from the repository's `.venv`,
//! for the SQS client's tests).
//!
//! The Lambda functions' end-to-end harness (the real binary under `cargo
//! lambda watch` against the in-process S3-compatible server, with the
//! events AWS would send) is `mediaflow-testkit-lambda`, built on this kit.
//!
//! Tests that need a tool the plain Rust toolchain does not bring (ffmpeg,
//! cargo-lambda, moto_server) are `#[ignore]`d with a reason naming it: `cargo test
//! --workspace` is the fast loop, `./scripts/test` runs them all
//! (`-- --include-ignored`).

pub mod moto;
pub mod process;

pub use moto::MotoServer;
pub use process::{free_port, port_open, wait_for_port, wait_until, Running};

use bytes::Bytes;
use std::path::{Path, PathBuf};

/// The workspace's root directory (where `Cargo.toml`, `sample-media` and
/// `fuzz` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// `sample-media/<name>` (`name` may have subdirectories: `fixtures/...`).
pub fn sample_path(name: &str) -> PathBuf {
    workspace_root().join("sample-media").join(name)
}

/// Announces a named step of a long test on stderr, then evaluates it:
/// `step!(replaying_the_event_writes_nothing(&fx, &event)).await`. The
/// steps of one end-to-end test share one fixture and run in order, so a
/// failure's output ends with the step it happened in.
#[macro_export]
macro_rules! step {
    ($step:ident ( $($arg:expr),* $(,)? )) => {{
        eprintln!("== step: {}", stringify!($step));
        $step($($arg),*)
    }};
}

/// The bytes of `sample-media/<name>`; panics naming the path if missing.
pub fn sample(name: &str) -> Bytes {
    let path = sample_path(name);
    match std::fs::read(&path) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}
