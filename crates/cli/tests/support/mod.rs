//! `mediaflow dev` as the integration tests run it: the binary on a free
//! port with its own data directory, ready once its banner is printed,
//! stopped with SIGINT by PID (bounded), killed by PID if a test ends first
//! (the port, the waits and the process come from `mediaflow-testkit`).
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use mediaflow_s3_local::{ACCESS_KEY, REGION};
use mediaflow_store_s3::S3Store;
use mediaflow_testkit::{free_port, port_open, wait_until, Running};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Dev {
    process: Running,
    pub port: u16,
    pub data: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Dev {
    /// `mediaflow dev --data DIR/data EXTRA...` with `RUST_LOG=info`.
    pub fn start(dir: &Path, extra: &[&str]) -> Dev {
        Dev::start_logging(dir, extra, "info")
    }

    /// [`Dev::start`] with `RUST_LOG=rust_log`.
    pub fn start_logging(dir: &Path, extra: &[&str], rust_log: &str) -> Dev {
        let port = free_port();
        let data = dir.join("data");
        let (stdout, stderr) = (dir.join("dev.out"), dir.join("dev.err"));
        let process = Running::spawn(
            "mediaflow dev",
            Command::new(env!("CARGO_BIN_EXE_mediaflow"))
                .args(["dev", "--port", &port.to_string(), "--data"])
                .arg(&data)
                .args(extra)
                .current_dir(dir)
                .env("RUST_LOG", rust_log)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&stdout).unwrap())
                .stderr(std::fs::File::create(&stderr).unwrap()),
        );
        let dev = Dev {
            process,
            port,
            data,
            stdout,
            stderr,
        };
        // The banner is printed just after the port opens.
        let ready = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
            port_open(port) && dev.out().contains("Ctrl-C stops the server")
        });
        assert!(ready, "mediaflow dev not ready within 60 s: {}", dev.logs());
        dev
    }

    /// What it printed to stdout so far.
    pub fn out(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Both outputs, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "\n--- stdout\n{}\n--- stderr\n{}",
            self.out(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// The data directory's secret key, as a user reads it.
    pub fn secret(&self) -> String {
        std::fs::read_to_string(self.data.join("local-secret"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// An SDK client of its endpoint with its credentials.
    pub fn store(&self) -> S3Store {
        S3Store::with_static_credentials(
            &format!("http://127.0.0.1:{}", self.port),
            ACCESS_KEY,
            &self.secret(),
            REGION,
        )
    }

    /// Ctrl-C: SIGINT by PID, a bounded wait for a clean exit, SIGKILL if not.
    pub fn interrupt(&mut self) {
        match self.process.interrupt(Duration::from_secs(60)) {
            Some(status) => assert!(status.success(), "exit status {status}: {}", self.logs()),
            None => panic!(
                "mediaflow dev did not stop within 60 s of SIGINT: {}",
                self.logs()
            ),
        }
    }
}
