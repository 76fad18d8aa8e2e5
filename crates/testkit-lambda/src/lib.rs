//! The Lambda functions' end-to-end harness: the real binary under `cargo
//! lambda watch` (the Lambda runtime emulator) on loopback, against the
//! in-process S3-compatible server, with the events AWS would send. Every
//! child process is killed by PID when dropped, and every wait is bounded.
//!
//! [`Fixture`] puts the pieces together the way both functions' e2e tests
//! use them.

use bytes::Bytes;
use mediaflow_pipeline::S3Notification;
pub use mediaflow_s3_local::Upload;
use mediaflow_s3_local::{Credentials, LocalS3, UploadObserver, REGION};
use mediaflow_store::{md5_etag, ObjectStore, PutOptions};
use mediaflow_store_s3::S3Store;
use mediaflow_testkit::{free_port, wait_for_port, workspace_root, Running};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Every upload the local S3 server accepted, in order.
#[derive(Default)]
pub struct Uploads(Mutex<Vec<Upload>>);

impl UploadObserver for Uploads {
    fn uploaded(&self, upload: Upload) {
        self.0.lock().unwrap().push(upload);
    }
}

impl Uploads {
    pub fn in_bucket(&self, bucket: &str) -> Vec<Upload> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.bucket == bucket)
            .cloned()
            .collect()
    }
}

/// The S3 notification AWS would send for `u` (as `mediaflow dev` builds it).
pub fn notification(u: &Upload) -> S3Notification {
    S3Notification::object_created(
        u.event_name,
        REGION,
        "2026-11-23T12:00:00.000Z",
        &u.bucket,
        &u.key,
        u.size,
        &u.etag,
        &u.sequencer,
    )
}

/// Several uploads in one direct S3 event.
pub fn s3_event(uploads: &[Upload]) -> Value {
    let records: Vec<_> = uploads
        .iter()
        .flat_map(|u| notification(u).records)
        .collect();
    serde_json::to_value(S3Notification { records }).unwrap()
}

/// One SQS message per upload, each body an S3 notification, as an SQS
/// event source mapping delivers them.
pub fn sqs_event(uploads: &[Upload]) -> (Value, Vec<String>) {
    let mut ids = Vec::new();
    let records: Vec<Value> = uploads
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let body = serde_json::to_string(&notification(u)).unwrap();
            let id = format!("00000000-0000-4000-8000-{i:012}");
            ids.push(id.clone());
            json!({
                "messageId": id,
                "receiptHandle": format!("handle-{i}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795448550201",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795448550218"
                },
                "messageAttributes": {},
                "md5OfBody": md5_etag(body.as_bytes()),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads-events",
                "awsRegion": REGION
            })
        })
        .collect();
    (json!({ "Records": records }), ids)
}

/// Invokes the function through the emulator's Invoke API (bounded).
pub async fn invoke(port: u16, function: &str, event: &Value) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations");
    let body = event.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut resp = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.as_str())
            .unwrap_or_else(|e| panic!("invoke {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
    .await
    .unwrap()
}

pub fn require_cargo_lambda() {
    let ok = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cargo-lambda is not on PATH: run ./scripts/test (it installs it into .venv), \
         or `pip install cargo-lambda` and add its bin directory to PATH"
    );
}

/// Starts `cargo lambda watch --only-lambda-apis` on a free loopback port
/// (log in `dir`) and waits, bounded, until it listens.
pub fn start_emulator(dir: &Path) -> (u16, Running) {
    require_cargo_lambda();
    let port = free_port();
    let watch_log = dir.join("cargo-lambda-watch.log");
    let running = Running::spawn(
        "cargo lambda watch",
        Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&watch_log).unwrap())
            .stderr(std::fs::File::create(dir.join("cargo-lambda-watch.err")).unwrap()),
    );
    wait_for_port(
        port,
        Duration::from_secs(60),
        "cargo lambda watch",
        &watch_log,
    );
    (port, running)
}

/// Starts a function binary configured as in Lambda (JSON logs into
/// `log`), pointed at the emulator on `port` and the S3 `endpoint`, with
/// the local server's `credentials` and the extra `env`.
pub fn start_function(
    binary: &str,
    function: &'static str,
    port: u16,
    endpoint: &str,
    credentials: &Credentials,
    env: &[(&str, &str)],
    log: &Path,
) -> Running {
    let mut cmd = function_command(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt/{function}"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", &credentials.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_key)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running::spawn(
        function,
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::inherit()),
    )
}

/// Debian's aarch64 sysroot (`libc6-arm64-cross`), where `qemu-aarch64`
/// finds the loader and glibc of an arm64 binary unless `QEMU_LD_PREFIX`
/// names another.
pub const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// Whether `binary` is an arm64 (AArch64) ELF executable.
pub fn is_arm64_elf(binary: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    let read = std::fs::File::open(binary).and_then(|mut f| f.read_exact(&mut header));
    // e_ident: the ELF magic; e_machine (offset 18, little-endian): 183.
    read.is_ok()
        && header[..4] == *b"\x7fELF"
        && u16::from_le_bytes([header[18], header[19]]) == 183
}

/// The command that runs a function `binary`: the binary itself, or, for an
/// arm64 one on another architecture, `qemu-aarch64` (user-mode emulation:
/// one process, so stopping it by PID stops the function) with the aarch64
/// sysroot.
pub fn function_command(binary: &str) -> Command {
    if cfg!(target_arch = "aarch64") || !is_arm64_elf(Path::new(binary)) {
        return Command::new(binary);
    }
    let sysroot = std::env::var("QEMU_LD_PREFIX").unwrap_or_else(|_| AARCH64_SYSROOT.into());
    let mut cmd = Command::new("qemu-aarch64");
    cmd.args(["-L", &sysroot, binary]);
    cmd
}

/// The JSON lines of a function's log.
pub fn json_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// One function as the e2e tests run it: the local S3 server (buckets
/// `uploads` and `media`, every upload observed so a test can build the
/// exact notification S3 would send), an SDK client of it, the runtime
/// emulator, and the binary configured as in Lambda with its JSON log in
/// `log`. Dropping it kills both processes by PID; [`Fixture::stop`] also
/// stops the S3 server cleanly.
pub struct Fixture {
    // Dropped in this order: the function, the emulator, the server, the
    // directory they used.
    function_process: Running,
    emulator: Running,
    pub s3: LocalS3,
    pub store: S3Store,
    pub uploads: Arc<Uploads>,
    /// The function's name (as the emulator routes it).
    pub function: &'static str,
    /// The emulator's port (Invoke API and Runtime API).
    pub port: u16,
    /// The function's stdout: its JSON log lines and EMF metrics.
    pub log: PathBuf,
    /// When the function's process was spawned.
    pub spawned: Instant,
    pub dir: TempDir,
}

impl Fixture {
    /// Starts the S3 server, the emulator and then `binary` as `function`
    /// with the extra `env` (bounded waits; panics with the logs).
    pub async fn start(binary: &str, function: &'static str, env: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Arc::new(Uploads::default());
        let s3 = LocalS3::start_observed(
            &dir.path().join("s3"),
            "127.0.0.1:0".parse().unwrap(),
            &["uploads", "media"],
            Some(uploads.clone()),
            Credentials::random().unwrap(),
        )
        .await
        .unwrap();
        let store = S3Store::with_static_credentials(
            &s3.endpoint(),
            &s3.credentials().access_key,
            &s3.credentials().secret_key,
            REGION,
        );
        let (port, emulator) = start_emulator(dir.path());
        let log = dir.path().join(format!("{function}.log"));
        let spawned = Instant::now();
        let function_process = start_function(
            binary,
            function,
            port,
            &s3.endpoint(),
            s3.credentials(),
            env,
            &log,
        );
        Fixture {
            function_process,
            emulator,
            s3,
            store,
            uploads,
            function,
            port,
            log,
            spawned,
            dir,
        }
    }

    /// Uploads `body` to `uploads/key` through the AWS SDK.
    pub async fn upload(&self, key: &str, body: Bytes) {
        self.store
            .put("uploads", key, body, &PutOptions::default())
            .await
            .unwrap();
    }

    /// Invokes the function with `event` (see [`invoke`]).
    pub async fn invoke(&self, event: &Value) -> (u16, Value) {
        invoke(self.port, self.function, event).await
    }

    /// The JSON lines of the function's log so far.
    pub fn log_lines(&self) -> Vec<Value> {
        json_lines(&self.log)
    }

    /// Stops the S3 server, then both processes (by PID).
    pub async fn stop(self) {
        let Fixture {
            function_process,
            emulator,
            s3,
            dir,
            ..
        } = self;
        s3.stop().await;
        drop(function_process);
        drop(emulator);
        drop(dir);
    }
}
