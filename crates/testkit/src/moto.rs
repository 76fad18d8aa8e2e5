//! [`MotoServer`]: moto's stand-alone server (`moto_server`, from the
//! repository's `.venv`, installed by `scripts/venv`) on a free loopback
//! port, for the tests of the AWS clients that mediaflow's own servers do
//! not cover (SQS). Killed by PID when dropped.

use crate::process::{free_port, wait_until, Running};
use crate::workspace_root;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Overrides where `moto_server` is (default: `.venv/bin/moto_server`
/// under the workspace root).
pub const ENV_MOTO_SERVER: &str = "MEDIAFLOW_MOTO_SERVER";
/// The region the tests use with moto.
pub const MOTO_REGION: &str = "us-east-1";
/// Any keys do for moto; these are the ones its documentation uses.
pub const MOTO_ACCESS_KEY: &str = "testing";
pub const MOTO_SECRET_KEY: &str = "testing";
/// The account moto puts every resource in (its default).
pub const MOTO_ACCOUNT: &str = "123456789012";
/// How long `moto_server` may take to answer after it is started.
pub const MOTO_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `moto_server` on 127.0.0.1, killed by PID when dropped.
pub struct MotoServer {
    running: Running,
    port: u16,
    log: PathBuf,
}

/// Where `moto_server` is: [`ENV_MOTO_SERVER`], else the workspace's
/// `.venv/bin/moto_server`.
pub fn moto_server_path() -> PathBuf {
    match std::env::var_os(ENV_MOTO_SERVER) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/moto_server"),
    }
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port and waits (at most
    /// [`MOTO_START_TIMEOUT`]) until it answers HTTP; panics, with its
    /// log, if it is missing, exits or does not answer in time.
    pub fn start() -> MotoServer {
        let program = moto_server_path();
        assert!(
            program.is_file(),
            "moto_server is not at {}: run ./scripts/venv (it installs moto[server] into .venv), \
             or set {ENV_MOTO_SERVER} to its path",
            program.display()
        );
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("mediaflow-moto-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("create moto_server's log");
        let mut running = Running::spawn(
            "moto_server",
            Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("moto_server's log"))
                .stderr(file),
        );
        let mut exited = None;
        let answered = wait_until(MOTO_START_TIMEOUT, Duration::from_millis(100), || {
            exited = running.try_wait();
            exited.is_some() || answers(port)
        });
        if !answered || exited.is_some() {
            let why = match exited {
                Some(status) => format!("exited ({status})"),
                None => format!("did not answer within {MOTO_START_TIMEOUT:?}"),
            };
            drop(running);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            panic!(
                "{} on 127.0.0.1:{port} {why}; its log:\n{text}",
                program.display()
            );
        }
        MotoServer { running, port, log }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.running.pid()
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL of every service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it has logged so far (its requests, one line each).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // `running` (dropped after this) kills it by PID; the log goes now.
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Whether moto answers an HTTP request on 127.0.0.1:`port` (its
/// dashboard's data, which every moto server has), within a second.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}
