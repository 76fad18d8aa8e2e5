//! `mediaflow dev`: a local S3 endpoint whose uploads trigger the pipeline.
//!
//! An `s3s` + `s3s-fs` server on 127.0.0.1 holds two buckets, `uploads` and
//! `media`, under `--data`/buckets (only that directory is served: work
//! directories, the dead-letter file and the secret key sit beside it). The
//! secret key is made once per data directory (`--data`/local-secret, mode
//! 0600) and printed in the banner. Every completed upload to `uploads` (PutObject,
//! CompleteMultipartUpload, CopyObject) becomes the S3 notification event AWS
//! would send, which is handed, after the upload's response, either to the
//! same pipeline code the Lambda function runs (reading and writing through
//! the S3 API, as in Lambda) or to a Lambda runtime emulator
//! (`--invoke-url`, and `--invoke-video-url` for video uploads, routed by
//! the suffixes the templates route to the transcode function). In process
//! the pipeline has its video path on, so video uploads get their MP4
//! renditions and poster (ffmpeg from `MEDIAFLOW_FFMPEG` or the PATH).
//! A retryable failure is retried as SQS would redeliver the message
//! (`--max-attempts`, with backoff); permanent failures, and retryable ones
//! out of attempts, are logged with the key and the reason and appended to
//! `<data>/dead-letter.jsonl`.
//!
//! For load and fault tests, the `--fault-*` flags make the S3 endpoint
//! answer a share of requests with `503 SlowDown`, `503 ServiceUnavailable`,
//! a dropped connection or a delay (see `mediaflow_s3_local::Faults`); the
//! counts are printed at shutdown with the dispatcher's.
//!
//! Keys are printed escaped ([`mediaflow_store::escape_key`]): a key cannot
//! forge an output line.

use crate::gallery::{Gallery, GALLERY_PATH, MEDIA_PATH};
use anyhow::{bail, Context as _};
use bytes::Bytes;
use mediaflow_config::Config;
use mediaflow_engine::PublicBase;
use mediaflow_pipeline::{
    media, parse_body, ObjectReport, Outcome, Pipeline, PipelineConfig, Retry, S3Notification,
    SourceObject,
};
use mediaflow_s3_local::{
    Credentials, FaultInjector, Faults, LocalS3, Upload, UploadObserver, REGION,
};
use mediaflow_store::{escape_key, object_url, PutOptions};
use mediaflow_store_s3::S3Store;
use serde_json::{json, Value};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// The bucket whose uploads trigger the pipeline.
pub const UPLOADS: &str = "uploads";
/// The bucket the outputs go to.
pub const MEDIA: &str = "media";
/// The dead-letter file under `--data`.
pub const DEAD_LETTER_FILE: &str = "dead-letter.jsonl";
/// The directory under `--data` that the S3 endpoint serves (one
/// subdirectory per bucket). Nothing else under `--data` is reachable
/// through it.
pub const BUCKETS_DIR: &str = "buckets";
/// Work directories for videos, under `--data`.
pub const WORK_DIR: &str = "work";
/// The secret key of this data directory (one line, mode 0600).
pub const SECRET_FILE: &str = "local-secret";

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Port of the S3 endpoint on 127.0.0.1.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Where buckets (DIR/buckets), the dead-letter file and the secret key
    /// are kept (persists across runs).
    #[arg(long, default_value = ".mediaflow")]
    pub data: PathBuf,
    /// Variants configuration (default: ./mediaflow.toml, else built-in).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Upload every image and video file in DIR (recursively, through the
    /// S3 API) at start and print what became of each.
    #[arg(long, value_name = "DIR")]
    pub seed: Option<PathBuf>,
    /// Send each event to this Lambda Invoke URL (e.g. `cargo lambda watch`'s
    /// http://127.0.0.1:9001/2015-03-31/functions/on-upload/invocations)
    /// instead of running the pipeline in this process.
    #[arg(long, value_name = "URL")]
    pub invoke_url: Option<String>,
    /// Send the events of video uploads (keys ending in .mp4, .m4v, .mov,
    /// .webm or .mkv, any case, as the templates route them) to this Invoke
    /// URL instead, e.g. the transcode function's. Default: --invoke-url.
    #[arg(long, value_name = "URL", requires = "invoke_url")]
    pub invoke_video_url: Option<String>,
    /// Attempts per upload event: a retryable failure is retried after a
    /// backoff (0.25 s, doubling, at most 4 s), as SQS redelivers a message,
    /// and goes to the dead-letter file after the last attempt.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// The base URL of the manifests' `url`, `srcset` and `html` (e.g. the
    /// CloudFront domain the outputs will be served from) [default: this
    /// server's own http://127.0.0.1:PORT/_media, which the gallery uses].
    #[arg(long, value_name = "URL", value_parser = crate::parse_public_base)]
    pub public_base_url: Option<mediaflow_engine::PublicBase>,
    /// Peak memory the uploads in flight may take together (`2GiB`,
    /// `1500MB`), as a function's memory bounds it: an upload starts when its
    /// estimate fits, one that could never fit fails with `limits`
    /// [default: the memory available at start].
    #[arg(long, value_name = "SIZE", value_parser = crate::memory::parse)]
    pub memory: Option<bytesize::ByteSize>,
    /// Fault injection: answer this share (0 to 1) of the S3 endpoint's
    /// requests with 503 SlowDown, S3's throttling error.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share, help_heading = "Fault injection (load tests)")]
    pub fault_slowdown: f64,
    /// Answer this share of requests with 503 ServiceUnavailable.
    #[arg(long = "fault-503", value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share, help_heading = "Fault injection (load tests)")]
    pub fault_503: f64,
    /// Close the connection of this share of requests without a response
    /// (the request is not carried out).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share, help_heading = "Fault injection (load tests)")]
    pub fault_drop: f64,
    /// Delay this share of requests, e.g. 0.05:200ms (independently of the
    /// faults above).
    #[arg(long, value_name = "SHARE:DURATION", value_parser = parse_delay, help_heading = "Fault injection (load tests)")]
    pub fault_delay: Option<FaultDelay>,
    /// Seed of the fault decisions: the same seed gives the same sequence
    /// of decisions (in request arrival order).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Fault injection (load tests)"
    )]
    pub fault_seed: u64,
}

/// `--fault-delay SHARE:DURATION`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultDelay {
    pub share: f64,
    pub by: Duration,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.05)")),
    }
}

fn parse_delay(s: &str) -> Result<FaultDelay, String> {
    let (share, by) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not SHARE:DURATION (e.g. 0.05:200ms)"))?;
    let by = humantime::parse_duration(by.trim())
        .map_err(|e| format!("{s:?}: the duration {by:?} is not valid ({e}; e.g. 200ms)"))?;
    Ok(FaultDelay {
        share: parse_share(share)?,
        by,
    })
}

impl DevArgs {
    /// The faults the flags ask for.
    pub fn faults(&self) -> Faults {
        Faults {
            slowdown: self.fault_slowdown,
            error_503: self.fault_503,
            drop: self.fault_drop,
            delay: self.fault_delay.map_or(0.0, |d| d.share),
            delay_by: self.fault_delay.map_or(Duration::ZERO, |d| d.by),
            seed: self.fault_seed,
        }
    }
}

/// Backoff before attempt `next` (2, 3, …): 0.25 s, doubling, at most 4 s.
pub fn retry_backoff(next: u32) -> Duration {
    Duration::from_millis(250 << next.saturating_sub(2).min(4))
}

/// Hands uploads to the dispatcher without blocking the server.
struct Forward(mpsc::UnboundedSender<Upload>);

impl UploadObserver for Forward {
    fn uploaded(&self, upload: Upload) {
        if upload.bucket == UPLOADS {
            let _ = self.0.send(upload);
        }
    }
}

/// What happened to one upload, for the seed table and the tests.
#[derive(Debug, Clone)]
pub struct Handled {
    pub key: String,
    pub reports: Vec<ObjectReport>,
    /// Set when the event itself failed (invoke URL unreachable, say).
    pub error: Option<String>,
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The S3 event AWS sends for `upload`.
pub fn event_for(upload: &Upload) -> S3Notification {
    S3Notification::object_created(
        upload.event_name,
        REGION,
        &rfc3339_now(),
        &upload.bucket,
        &upload.key,
        upload.size,
        &upload.etag,
        &upload.sequencer,
    )
}

/// What the dispatcher did, for the summary printed at shutdown.
#[derive(Debug, Default)]
struct Tally {
    events: AtomicU64,
    processed: AtomicU64,
    skipped: AtomicU64,
    failed_permanently: AtomicU64,
    /// Retryable failures still failing at the last attempt.
    gave_up: AtomicU64,
    /// Attempts after the first (objects or invocations redelivered).
    retries: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn line(&self, max_attempts: u32) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "summary: {} upload event(s): {} processed, {} skipped, {} failed permanently, {} failed after {max_attempts} attempt(s); {} retries",
            get(&self.events),
            get(&self.processed),
            get(&self.skipped),
            get(&self.failed_permanently),
            get(&self.gave_up),
            get(&self.retries),
        )
    }
}

/// One try at handling an upload.
struct Attempt<'a> {
    /// From 1.
    number: u32,
    /// No retry follows this one.
    last: bool,
    upload: &'a Upload,
    event: &'a S3Notification,
}

struct Dispatcher {
    pipeline: Pipeline,
    invoke_url: Option<String>,
    invoke_video_url: Option<String>,
    dead_letter: PathBuf,
    done: mpsc::UnboundedSender<Handled>,
    permits: Arc<Semaphore>,
    max_attempts: u32,
    tally: Tally,
    gallery: Arc<Gallery>,
}

impl Dispatcher {
    /// Handles one upload holding `permit`; before a retry it gives the
    /// permit back for the backoff, as a redelivered SQS message does not
    /// occupy a function while it waits.
    async fn handle(&self, upload: Upload, mut permit: OwnedSemaphorePermit) {
        Tally::add(&self.tally.events, 1);
        let event = event_for(&upload);
        let body = serde_json::to_string(&event).expect("event serialises");
        let url = match (&self.invoke_video_url, &self.invoke_url) {
            (Some(video), Some(_)) if self.is_video(&upload).await => Some(video),
            (_, url) => url.as_ref(),
        };
        let object = object_url(&upload.bucket, &upload.key);
        let mut pending: Vec<SourceObject> = match url {
            None => parse_body(&body).expect("our own event parses").objects,
            Some(_) => vec![],
        };
        let mut reports = Vec::new();
        let mut error = None;
        for attempt in 1..=self.max_attempts {
            let try_ = Attempt {
                number: attempt,
                last: attempt == self.max_attempts,
                upload: &upload,
                event: &event,
            };
            let (retry, redo) = match url {
                None => {
                    let retry = self.process_here(&pending, &try_, &mut reports).await;
                    let redo = retry.len() as u64;
                    (retry, redo)
                }
                Some(url) => {
                    error = self.invoke_once(url, &body, &object, &try_).await;
                    let redo = u64::from(error.is_some() && !try_.last);
                    (Vec::new(), redo)
                }
            };
            if redo == 0 {
                break;
            }
            Tally::add(&self.tally.retries, redo);
            drop(permit);
            tokio::time::sleep(retry_backoff(attempt + 1)).await;
            permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .expect("never closed");
            pending = retry;
        }
        drop(permit);
        let (outcome, message) = match (reports.last(), &error) {
            (_, Some(e)) => ("failed", format!("failed {object}: {e}")),
            (Some(r), None) => (outcome_name(&r.outcome), report_line(r)),
            (None, None) => ("sent", format!("sent {object} to the function")),
        };
        self.gallery.record(&upload.key, outcome, &message);
        let _ = self.done.send(Handled {
            key: upload.key.clone(),
            reports,
            error,
        });
    }

    /// Whether an upload goes to the video function: decided by its first
    /// bytes, as on-upload decides what it forwards (removals go to
    /// on-upload, which removes any source's outputs).
    async fn is_video(&self, upload: &Upload) -> bool {
        if upload.event_name.starts_with("ObjectRemoved") {
            return false;
        }
        let store = self.pipeline.store();
        match store
            .get_head(&upload.bucket, &upload.key, media::HEAD_BYTES)
            .await
        {
            Ok(head) => matches!(media::kind_of(&head, false), media::Kind::Video(_)),
            Err(_) => false,
        }
    }

    /// One attempt in this process: the pipeline on `pending`, a line per
    /// object; returns the objects to retry (retryable failures, unless
    /// this is the last attempt, whose failures are dead-lettered).
    async fn process_here(
        &self,
        pending: &[SourceObject],
        attempt: &Attempt<'_>,
        reports: &mut Vec<ObjectReport>,
    ) -> Vec<SourceObject> {
        let mut retry = Vec::new();
        let done = self.pipeline.process_all(pending, None).await;
        for (source, r) in pending.iter().zip(done) {
            match r.failure() {
                Some(e) if !e.is_permanent() && !attempt.last => {
                    println!(
                        "{} (attempt {} of {}; retrying in {} ms)",
                        report_line(&r),
                        attempt.number,
                        self.max_attempts,
                        retry_backoff(attempt.number + 1).as_millis()
                    );
                    retry.push(source.clone());
                    continue;
                }
                Some(e) => {
                    let counter = if e.is_permanent() {
                        &self.tally.failed_permanently
                    } else {
                        &self.tally.gave_up
                    };
                    Tally::add(counter, 1);
                    self.dead_letter(attempt.upload, attempt.event, &e.to_string(), e.retry);
                }
                None => {
                    let counter = match r.outcome {
                        Outcome::Skipped(_) => &self.tally.skipped,
                        _ => &self.tally.processed,
                    };
                    Tally::add(counter, 1);
                }
            }
            println!("{}", report_line(&r));
            reports.push(r);
        }
        retry
    }

    /// One attempt through a function's invoke URL; the error, if it failed
    /// (dead-lettered on the last attempt).
    async fn invoke_once(
        &self,
        url: &str,
        body: &str,
        object: &str,
        attempt: &Attempt<'_>,
    ) -> Option<String> {
        match invoke(url, body.to_string()).await {
            Ok(()) => {
                tracing::info!(object = %object, "invoked");
                None
            }
            Err(e) if !attempt.last => {
                tracing::warn!(object = %object, "{e} (attempt {} of {}; retrying)", attempt.number, self.max_attempts);
                Some(e)
            }
            Err(e) => {
                tracing::error!(object = %object, "{e}");
                Tally::add(&self.tally.gave_up, 1);
                self.dead_letter(attempt.upload, attempt.event, &e, Retry::Retryable);
                Some(e)
            }
        }
    }

    fn dead_letter(&self, upload: &Upload, event: &S3Notification, error: &str, retry: Retry) {
        let line = json!({
            "time": rfc3339_now(),
            "bucket": upload.bucket,
            "key": upload.key,
            "error": error,
            "retryable": retry == Retry::Retryable,
            "event": event,
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letter)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::error!(path = %self.dead_letter.display(), "cannot write the dead-letter file: {e}");
        }
    }
}

/// POSTs the event to a Lambda Invoke URL; a function error (the
/// `X-Amz-Function-Error` header, or an `errorType` reply) is an error.
async fn invoke(url: &str, body: String) -> Result<(), String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(900)))
            .build()
            .into();
        let mut resp = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.as_str())
            .map_err(|e| format!("invoking {url}: {e}"))?;
        let status = resp.status().as_u16();
        let function_error = resp.headers().get("x-amz-function-error").is_some();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 || function_error || reply.get("errorType").is_some() {
            return Err(format!("the function failed (HTTP {status}): {text}"));
        }
        Ok(())
    })
    .await
    .map_err(|e| format!("invoke task: {e}"))?
}

/// One line per handled upload, as the server prints it.
/// The outcome's name, as the gallery shows it.
fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Processed { .. } => "processed",
        Outcome::Skipped(_) => "skipped",
        Outcome::Removed { .. } => "removed",
        Outcome::Forwarded { .. } => "forwarded",
        Outcome::Failed(_) => "failed",
    }
}

fn report_line(r: &ObjectReport) -> String {
    let object = object_url(&r.bucket, &r.key);
    match &r.outcome {
        Outcome::Processed {
            variants,
            bytes_out,
            manifest_key,
        } => format!(
            "processed {object}: {variants} variants, {} in {:.0} ms -> {}",
            human_bytes(*bytes_out),
            r.times.total_ms,
            object_url(MEDIA, manifest_key)
        ),
        Outcome::Skipped(why) => format!("skipped {object}: {}", why.as_str()),
        Outcome::Removed {
            manifest_key,
            outputs,
        } => format!(
            "removed {object}: {outputs} outputs and {}",
            object_url(MEDIA, manifest_key)
        ),
        Outcome::Forwarded { queue } => format!("forwarded {object} to {queue}"),
        Outcome::Failed(e) => format!("failed {e}"),
    }
}

fn content_type_for(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        "avif" => "image/avif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "jxl" => "image/jxl",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        _ => return None,
    })
}

/// Uploads every image or video file under `dir` (by extension; hidden
/// files and folders skipped) to `uploads`, keyed by its path relative to
/// `dir`. Returns the keys.
async fn seed(store: &S3Store, dir: &Path) -> anyhow::Result<Vec<String>> {
    use mediaflow_store::ObjectStore as _;
    if !dir.is_dir() {
        bail!("--seed {}: not a directory", dir.display());
    }
    let mut keys = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if !entry.file_type().is_file() || content_type_for(entry.path()).is_none() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir stays under its root");
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let body = std::fs::read(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let options = PutOptions {
            content_type: content_type_for(entry.path()).map(str::to_string),
            ..PutOptions::default()
        };
        store
            .put(UPLOADS, &key, Bytes::from(body), &options)
            .await
            .with_context(|| format!("uploading {}", entry.path().display()))?;
        keys.push(key);
    }
    Ok(keys)
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} kB", n as f64 / 1024.0)
    }
}

/// The seed table: one row per source.
pub fn seed_table(handled: &[Handled]) -> String {
    let mut out = format!(
        "{:<44} {:>8} {:>10} {:>10} {:>9}  {}\n",
        "source", "variants", "in", "out", "ms", "result"
    );
    for h in handled {
        if let Some(e) = &h.error {
            out.push_str(&format!(
                "{:<44} {:>8} {:>10} {:>10} {:>9}  failed: {e}\n",
                escape_key(&h.key),
                "-",
                "-",
                "-",
                "-"
            ));
            continue;
        }
        for r in &h.reports {
            let (variants, bytes_out, result) = match &r.outcome {
                Outcome::Processed {
                    variants,
                    bytes_out,
                    ..
                } => (
                    variants.to_string(),
                    human_bytes(*bytes_out),
                    "ok".to_string(),
                ),
                Outcome::Skipped(why) => {
                    ("-".into(), "-".into(), format!("skipped: {}", why.as_str()))
                }
                Outcome::Removed { outputs, .. } => {
                    ("-".into(), "-".into(), format!("removed {outputs} outputs"))
                }
                Outcome::Forwarded { queue } => {
                    ("-".into(), "-".into(), format!("forwarded to {queue}"))
                }
                Outcome::Failed(e) => (
                    "-".into(),
                    "-".into(),
                    format!("failed: {}: {}", e.category, e.reason),
                ),
            };
            out.push_str(&format!(
                "{:<44} {:>8} {:>10} {:>10} {:>9.0}  {}\n",
                escape_key(&h.key),
                variants,
                human_bytes(r.bytes_in),
                bytes_out,
                r.times.total_ms,
                result
            ));
        }
        if h.reports.is_empty() {
            out.push_str(&format!(
                "{:<44} {:>8} {:>10} {:>10} {:>9}  sent to the function\n",
                escape_key(&h.key),
                "-",
                "-",
                "-",
                "-"
            ));
        }
    }
    out
}

/// What the start-up banner shows.
struct Banner<'a> {
    endpoint: &'a str,
    gallery: &'a str,
    public_base: &'a str,
    data: &'a Path,
    credentials: &'a Credentials,
    plan_source: &'a str,
    video: &'a str,
    faults: &'a Faults,
    max_attempts: u32,
    memory_mib: u64,
}

fn banner(b: &Banner<'_>) -> String {
    let Banner {
        endpoint,
        gallery,
        public_base,
        data,
        plan_source,
        video,
        faults,
        max_attempts,
        memory_mib,
        ..
    } = b;
    let Credentials {
        access_key,
        secret_key,
    } = b.credentials;
    format!(
        "\
mediaflow dev: S3 endpoint {endpoint} (path-style), data in {data}
  gallery:      {gallery}  (open it in a browser; drop files on it to upload)
  buckets:      s3://{UPLOADS} (uploads trigger the pipeline) -> s3://{MEDIA} (variants and manifests)
  credentials:  access key {access_key}, secret key {secret_key}, region {REGION}
                (made for this data directory, kept in {secret_file})
  config:       {plan_source}
  public URLs:  {public_base}/KEY in the manifests (--public-base-url)
  memory:       {memory_mib} MiB for the uploads in flight (--memory)
  video:        {video}
  failures:     retryable ones retried ({max_attempts} attempts in all); then logged, and appended to {dead}
  faults:       {faults}

Upload from another terminal:
  export AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY={secret_key} AWS_REGION={REGION}
  aws --endpoint-url {endpoint} s3 cp photo.jpg s3://{UPLOADS}/
  aws --endpoint-url {endpoint} s3 ls s3://{MEDIA}/ --recursive
Any AWS SDK: set AWS_ENDPOINT_URL={endpoint} (and path-style addressing) with the keys above.
Ctrl-C stops the server; the data stays.
",
        data = data.display(),
        dead = data.join(DEAD_LETTER_FILE).display(),
        secret_file = data.join(SECRET_FILE).display(),
    )
}

/// Data directories made before the buckets moved to `<data>/buckets` held
/// them (and `s3s-fs`'s hidden metadata files) directly under `<data>`,
/// beside `work` and the dead-letter file, all reachable through the
/// endpoint. Moves them into place; returns whether anything was moved.
fn migrate_old_layout(data: &Path, buckets: &Path) -> anyhow::Result<bool> {
    if buckets.exists() || !data.join(UPLOADS).is_dir() {
        return Ok(false);
    }
    std::fs::create_dir_all(buckets).with_context(|| format!("creating {}", buckets.display()))?;
    for entry in std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))? {
        let entry = entry.with_context(|| format!("reading {}", data.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let bucket = is_dir
            && name != WORK_DIR
            && name != BUCKETS_DIR
            && mediaflow_store::valid_bucket_name(name);
        let s3s_file = !is_dir
            && [".bucket-", ".upload-", ".upload_id-", ".tmp."]
                .iter()
                .any(|p| name.starts_with(p));
        if bucket || s3s_file {
            let to = buckets.join(name);
            std::fs::rename(entry.path(), &to).with_context(|| {
                format!("moving {} to {}", entry.path().display(), to.display())
            })?;
        }
    }
    Ok(true)
}

/// Runs until `shutdown` completes (Ctrl-C in the binary), then stops the
/// server and lets uploads in progress finish (bounded). Steps: open the
/// data directory, start the endpoint, build the pipeline, print the
/// banner, hand uploads to the dispatcher, seed (and wait for the seeded
/// uploads), wait for `shutdown`, stop.
pub async fn run(
    args: &DevArgs,
    config: Config,
    plan_source: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let data = open_data_dir(&args.data)?;
    let buckets = data.join(BUCKETS_DIR);
    let credentials = Credentials::load_or_create(&data.join(SECRET_FILE))?;
    let faults = args.faults();
    let injector = fault_injector(&faults)?;
    let (tx, uploads) = mpsc::unbounded_channel();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let max_input = config
        .image
        .limits()
        .max_input_bytes
        .max(config.video.limits().max_input_bytes);
    let gallery = Arc::new(Gallery::new(&data, max_input));
    let server = LocalS3::start_with_faults(
        &buckets,
        addr,
        &[UPLOADS, MEDIA],
        Some(Arc::new(Forward(tx))),
        credentials.clone(),
        injector.clone(),
        Some(Arc::clone(&gallery) as Arc<dyn mediaflow_s3_local::Site>),
    )
    .await
    .with_context(|| format!("starting the S3 endpoint on {addr}"))?;
    let endpoint = server.endpoint();
    let store = S3Store::with_static_credentials(
        &endpoint,
        &credentials.access_key,
        &credentials.secret_key,
        REGION,
    );
    gallery.connect(store.clone());
    let gallery_url = format!("{endpoint}{GALLERY_PATH}");
    // Uploads go through the pipeline writing to the media bucket; the
    // manifests' URLs point at the gallery's view of it unless told otherwise.
    let public_base = match &args.public_base_url {
        Some(base) => base.clone(),
        None => {
            PublicBase::parse(&format!("{endpoint}{MEDIA_PATH}")).map_err(anyhow::Error::msg)?
        }
    };
    let pipeline_config = PipelineConfig {
        public_base: Some(public_base.clone()),
        ..PipelineConfig::new(MEDIA, "")
    };
    let (pipeline, video_status) = crate::local_pipeline(
        Arc::new(store.clone()),
        config,
        pipeline_config,
        &data.join(WORK_DIR),
        args.memory,
        None,
    )?;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let dispatcher = Arc::new(Dispatcher {
        permits: Arc::new(Semaphore::new(pipeline.config().concurrency)),
        pipeline,
        invoke_url: args.invoke_url.clone(),
        invoke_video_url: args.invoke_video_url.clone(),
        dead_letter: data.join(DEAD_LETTER_FILE),
        done: done_tx,
        max_attempts: args.max_attempts,
        tally: Tally::default(),
        gallery: Arc::clone(&gallery),
    });
    print!(
        "{}",
        banner(&Banner {
            endpoint: &endpoint,
            gallery: &gallery_url,
            public_base: public_base.as_str(),
            data: &data,
            credentials: &credentials,
            plan_source,
            video: &video_status,
            faults: &faults,
            max_attempts: args.max_attempts,
            memory_mib: dispatcher
                .pipeline
                .memory_budget()
                .map_or(0, |b| b.bytes() >> 20),
        })
    );
    let _ = std::io::stdout().flush();
    let tasks = Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
    let pump = dispatch_uploads(&dispatcher, &tasks, uploads);

    let mut shutdown = std::pin::pin!(shutdown);
    let shut_down = match &args.seed {
        Some(dir) => {
            let seeding = seed_and_wait(&store, dir, &mut done, &gallery_url, &buckets);
            tokio::select! {
                seeded = seeding => { seeded?; false }
                () = &mut shutdown => true,
            }
        }
        None => false,
    };
    if !shut_down {
        // Keep draining reports (nothing waits on them outside seeding).
        let drain = tokio::spawn(async move { while done.recv().await.is_some() {} });
        shutdown.await;
        drain.abort();
    }
    let stopped = stop(server, pump, tasks).await;
    summary(&dispatcher, injector.as_deref());
    stopped
}

/// Creates the data directory (moving an older layout's buckets into
/// place) and returns its canonical path.
fn open_data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir
        .canonicalize()
        .with_context(|| format!("opening {}", dir.display()))?;
    let buckets = data.join(BUCKETS_DIR);
    if migrate_old_layout(&data, &buckets)? {
        println!(
            "mediaflow dev: moved the buckets of this data directory's older layout into {}",
            buckets.display()
        );
    }
    Ok(data)
}

/// The `--fault-*` injector, when any fault is asked for.
fn fault_injector(faults: &Faults) -> anyhow::Result<Option<Arc<FaultInjector>>> {
    if !faults.any() {
        return Ok(None);
    }
    Ok(Some(Arc::new(
        FaultInjector::new(*faults).context("--fault-*")?,
    )))
}

/// Hands each upload to the dispatcher after its response, at most
/// `concurrency` at once.
fn dispatch_uploads(
    dispatcher: &Arc<Dispatcher>,
    tasks: &Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
    mut uploads: mpsc::UnboundedReceiver<Upload>,
) -> tokio::task::JoinHandle<()> {
    let dispatcher = Arc::clone(dispatcher);
    let tasks = Arc::clone(tasks);
    tokio::spawn(async move {
        while let Some(upload) = uploads.recv().await {
            let permit = Arc::clone(&dispatcher.permits)
                .acquire_owned()
                .await
                .expect("never closed");
            let d = Arc::clone(&dispatcher);
            let mut tasks = tasks.lock().await;
            // Drop finished tasks so the set does not grow for the server's lifetime.
            while tasks.try_join_next().is_some() {}
            tasks.spawn(async move { d.handle(upload, permit).await });
        }
    })
}

/// Uploads every file under `dir` through the S3 API, waits (at most 600 s)
/// until each has been handled, and prints the table of what became of them.
async fn seed_and_wait(
    store: &S3Store,
    dir: &Path,
    done: &mut mpsc::UnboundedReceiver<Handled>,
    gallery: &str,
    buckets: &Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let keys = seed(store, dir).await?;
    println!(
        "\nseeded {} file(s) from {} through the S3 API; processing…",
        keys.len(),
        dir.display()
    );
    let mut handled: Vec<Handled> = Vec::new();
    let limit = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(limit);
    while handled.len() < keys.len() {
        tokio::select! {
            Some(h) = done.recv() => handled.push(h),
            _ = &mut limit => { tracing::warn!("seed: gave up waiting after 600 s"); break; }
        }
    }
    handled.sort_by(|a, b| a.key.cmp(&b.key));
    println!("\n{}", seed_table(&handled));
    println!(
        "{} source(s) in {:.1} s. Outputs in {}\ngallery: {gallery}",
        handled.len(),
        started.elapsed().as_secs_f64(),
        buckets.join(MEDIA).display()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

/// What the dispatcher did and which faults the endpoint injected.
fn summary(dispatcher: &Dispatcher, injector: Option<&FaultInjector>) {
    println!("{}", dispatcher.tally.line(dispatcher.max_attempts));
    if let Some(injector) = injector {
        println!("faults injected: {}", injector.counts());
    }
    let _ = std::io::stdout().flush();
}

async fn stop(
    server: LocalS3,
    pump: tokio::task::JoinHandle<()>,
    tasks: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
) -> anyhow::Result<()> {
    eprintln!("stopping: finishing uploads in progress (at most 30 s)…");
    server.stop().await;
    pump.abort();
    let mut tasks = tasks.lock().await;
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tasks.abort_all();
        eprintln!("stopped with work still in progress (it will be redone on the next upload of those keys)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_what_s3_sends() {
        let upload = Upload {
            bucket: UPLOADS.into(),
            key: "ünï/my photo+1.jpg".into(),
            size: 42,
            etag: "abc-2".into(),
            event_name: "ObjectCreated:CompleteMultipartUpload",
            sequencer: "000000000000000001".into(),
        };
        let v = serde_json::to_value(event_for(&upload)).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["eventName"], "ObjectCreated:CompleteMultipartUpload");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["s3"]["bucket"]["name"], "uploads");
        assert_eq!(r["s3"]["object"]["key"], "%C3%BCn%C3%AF/my+photo%2B1.jpg");
        assert_eq!(r["s3"]["object"]["size"], 42);
        assert_eq!(r["s3"]["object"]["eTag"], "abc-2");
        assert_eq!(r["s3"]["object"]["sequencer"], "000000000000000001");
        assert!(r["eventTime"].as_str().unwrap().ends_with('Z'));
        assert!(r["userIdentity"]["principalId"].is_string());
    }

    #[test]
    fn fault_flags_parse_and_name_bad_values() {
        assert_eq!(parse_share("0.05"), Ok(0.05));
        assert!(parse_share("5%").unwrap_err().contains("\"5%\""));
        assert!(parse_share("1.5").is_err());
        assert_eq!(
            parse_delay("0.05:200ms"),
            Ok(FaultDelay {
                share: 0.05,
                by: Duration::from_millis(200)
            })
        );
        assert!(parse_delay("0.05").unwrap_err().contains("SHARE:DURATION"));
        assert!(parse_delay("0.05:soon").unwrap_err().contains("\"soon\""));
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            dev: DevArgs,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--fault-slowdown",
            "0.1",
            "--fault-503",
            "0.2",
            "--fault-drop",
            "0.03",
            "--fault-delay",
            "0.5:1s",
            "--fault-seed",
            "9",
        ])
        .unwrap();
        let f = cli.dev.faults();
        assert_eq!(
            (f.slowdown, f.error_503, f.drop, f.delay, f.delay_by, f.seed),
            (0.1, 0.2, 0.03, 0.5, Duration::from_secs(1), 9)
        );
        assert_eq!(cli.dev.max_attempts, 5);
        assert!(!Cli::try_parse_from(["x"]).unwrap().dev.faults().any());
    }

    #[test]
    fn retries_back_off_like_a_redelivery() {
        let waits: Vec<u128> = (2..=8).map(|n| retry_backoff(n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000, 4000]);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type_for(Path::new("a/B.JPG")), Some("image/jpeg"));
        assert_eq!(content_type_for(Path::new("x.txt")), None);
    }
}
