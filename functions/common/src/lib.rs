//! What mediaflow's Lambda functions share. Each function's `main.rs`
//! only wires tracing, [`Settings`], the S3 store and `lambda_runtime`
//! together around [`handle`], a plain async fn, tested directly.
//!
//! - `on-upload` ([`Function::OnUpload`]): images. An S3 notification
//!   (direct, or as SQS messages) or an EventBridge "Object Created" event
//!   in; variants and a manifest out, through [`mediaflow_pipeline`].
//! - `transcode` ([`Function::Transcode`]): the same events for video
//!   uploads; the pipeline's video path (ffprobe/ffmpeg from
//!   `MEDIAFLOW_FFMPEG`, by default the layer's `/opt/bin/ffmpeg`) writes
//!   MP4 renditions, the poster's variants and a video manifest.
//!
//! Errors:
//! - SQS: the reply lists every message with an object that failed in a
//!   way worth retrying in `batchItemFailures` (the templates set
//!   `ReportBatchItemFailures`), so its neighbours are deleted from the
//!   queue and it alone is retried and, after the queue's
//!   `maxReceiveCount`, moved to the dead-letter queue. A permanent
//!   failure (corrupt, unsupported, over the limits) is recorded by the
//!   pipeline as `failed/{key}.json` beside the manifests and the message
//!   acknowledged: retrying it would only download it again.
//! - Direct invocations: the invocation fails with error type
//!   `Mediaflow.PermanentError` (bad input: corrupt, unsupported, over
//!   limits, denied) or `Mediaflow.RetryableError` (throttling, timeouts,
//!   running out of time).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use mediaflow_engine::Plan;
use mediaflow_pipeline::metrics::{cold_start_line, emf_line};
use mediaflow_pipeline::{
    parse_body, parse_payload, MemoryBudget, ObjectReport, Outcome, Pipeline, PipelineConfig,
    SourceObject, VideoSettings,
};
use mediaflow_store::{valid_bucket_name, ObjectStore};
use mediaflow_video::{Tools, DEFAULT_FFMPEG};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The output bucket (required).
pub const ENV_OUTPUT_BUCKET: &str = "MEDIAFLOW_OUTPUT_BUCKET";
/// The prefix of every output key (default: empty).
pub const ENV_OUTPUT_PREFIX: &str = "MEDIAFLOW_OUTPUT_PREFIX";
/// The configuration as TOML text (default: the built-in plans).
pub const ENV_CONFIG: &str = "MEDIAFLOW_CONFIG";
/// transcode: the ffmpeg program (default [`DEFAULT_FFMPEG`]).
pub const ENV_FFMPEG: &str = "MEDIAFLOW_FFMPEG";
/// transcode: the ffprobe program (default: `ffprobe` beside ffmpeg).
pub const ENV_FFPROBE: &str = "MEDIAFLOW_FFPROBE";
/// transcode: `true`/`false` overrides `[video_options] animated_gif`
/// (the templates set it when they route `.gif` uploads to transcode).
pub const ENV_ANIMATED_GIF: &str = "MEDIAFLOW_ANIMATED_GIF";
/// The function's memory in MB, set by Lambda: work is admitted through a
/// memory budget of all of it but [`mediaflow_pipeline::FUNCTION_OVERHEAD_MIB`]
/// (unset, as in tests: admitted by concurrency alone).
pub const ENV_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// Which function a binary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Images.
    OnUpload,
    /// Videos (and images sent to it, handled as on-upload would).
    Transcode,
}

impl Function {
    /// The binary's (and default function's) name.
    pub fn name(self) -> &'static str {
        match self {
            Function::OnUpload => "on-upload",
            Function::Transcode => "transcode",
        }
    }

    /// The function's `environment.json`: the contract the SAM and CDK
    /// templates are tested against.
    pub fn environment_json(self) -> &'static str {
        match self {
            Function::OnUpload => include_str!("../../on-upload/environment.json"),
            Function::Transcode => include_str!("../../transcode/environment.json"),
        }
    }
}

/// Settings read once at cold start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub function: Function,
    pub output_bucket: String,
    pub output_prefix: String,
    pub plan: Plan,
    /// The video path (transcode only).
    pub video: Option<VideoSettings>,
    /// `MEDIAFLOW_CONFIG` or `built-in`, for the start-up log line.
    pub plan_source: &'static str,
    /// The memory budget in bytes, from [`ENV_MEMORY_SIZE`].
    pub memory_budget: Option<u64>,
}

/// A setting that is missing or invalid: the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{ENV_OUTPUT_BUCKET} is not set: set it to the bucket that receives the variants and manifests")]
    MissingBucket,
    #[error("{ENV_OUTPUT_BUCKET}={0:?} is not a valid S3 bucket name")]
    BadBucket(String),
    #[error("{ENV_OUTPUT_PREFIX}={0:?} must not start with '/' (S3 keys have no leading slash)")]
    BadPrefix(String),
    #[error("{ENV_CONFIG} is not a valid mediaflow configuration: {0}")]
    Config(String),
    #[error("{ENV_ANIMATED_GIF}={0:?} must be true or false")]
    BadAnimatedGif(String),
    #[error("{ENV_MEMORY_SIZE}={0:?} is not a number of MB")]
    BadMemory(String),
    #[error("{0}")]
    Tools(String),
}

impl Settings {
    /// Reads the settings of `function` through `var` (the process
    /// environment in `main`, a map in tests). Empty values count as unset.
    pub fn from_lookup(
        function: Function,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let output_bucket = get(ENV_OUTPUT_BUCKET).ok_or(SettingsError::MissingBucket)?;
        let output_bucket = output_bucket.trim().to_string();
        if !valid_bucket_name(&output_bucket) {
            return Err(SettingsError::BadBucket(output_bucket));
        }
        let output_prefix = get(ENV_OUTPUT_PREFIX).unwrap_or_default();
        if output_prefix.starts_with('/') {
            return Err(SettingsError::BadPrefix(output_prefix));
        }
        let (config, plan_source) = match get(ENV_CONFIG) {
            Some(text) => (
                mediaflow_config::parse_config(&text)
                    .map_err(|e| SettingsError::Config(e.to_string()))?,
                ENV_CONFIG,
            ),
            None => (mediaflow_config::builtin_config(), "built-in"),
        };
        let video = match function {
            Function::OnUpload => None,
            Function::Transcode => {
                let mut plan = config.video;
                match get(ENV_ANIMATED_GIF).map(|v| v.trim().to_ascii_lowercase()) {
                    None => {}
                    Some(v) if v == "true" => plan = plan.with_animated_gif(true),
                    Some(v) if v == "false" => plan = plan.with_animated_gif(false),
                    Some(v) => return Err(SettingsError::BadAnimatedGif(v)),
                }
                let ffmpeg = get(ENV_FFMPEG).unwrap_or_else(|| DEFAULT_FFMPEG.to_string());
                let ffprobe = get(ENV_FFPROBE).map(PathBuf::from);
                Some(VideoSettings {
                    plan,
                    tools: Tools::new(ffmpeg.trim(), ffprobe),
                    work_root: std::env::temp_dir(),
                })
            }
        };
        let memory_budget = match get(ENV_MEMORY_SIZE) {
            None => None,
            Some(mb) => {
                let mb: u64 = mb
                    .trim()
                    .parse()
                    .map_err(|_| SettingsError::BadMemory(mb.clone()))?;
                Some(MemoryBudget::for_function(mb).bytes())
            }
        };
        Ok(Settings {
            function,
            output_bucket,
            output_prefix,
            plan: config.image,
            video,
            plan_source,
            memory_budget,
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env(function: Function) -> Result<Settings, SettingsError> {
        Self::from_lookup(function, |name| std::env::var(name).ok())
    }

    /// Runs the video tools once (`-version`), so a missing ffmpeg layer
    /// stops the function at start with one line saying so. Returns
    /// ffmpeg's version line; `None` for functions without video.
    pub fn check_tools(&self) -> Result<Option<String>, SettingsError> {
        match &self.video {
            None => Ok(None),
            Some(v) => v
                .tools
                .check()
                .map(Some)
                .map_err(|e| SettingsError::Tools(e.message().to_string())),
        }
    }
}

/// Where EMF metric lines go (stdout in Lambda; a buffer in tests).
pub type MetricSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything built at cold start and shared by every invocation.
pub struct App {
    pipeline: Pipeline,
    function_name: String,
    metrics: MetricSink,
    process_started: Instant,
    first_event_done: AtomicBool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("function_name", &self.function_name)
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

impl App {
    /// `process_started` is taken first thing in `main`, so the first
    /// invocation can report the cold start (process start to first event
    /// handled).
    pub fn new(
        settings: Settings,
        store: Arc<dyn ObjectStore>,
        function_name: impl Into<String>,
        metrics: MetricSink,
        process_started: Instant,
    ) -> App {
        let mut config = PipelineConfig::new(settings.output_bucket, settings.output_prefix);
        config.memory_budget = settings.memory_budget;
        if let Some(video) = settings.video {
            config = config.with_video(video);
        }
        App {
            pipeline: Pipeline::new(store, settings.plan, config),
            function_name: function_name.into(),
            metrics,
            process_started,
            first_event_done: AtomicBool::new(false),
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

/// Why an invocation failed, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub retryable: bool,
    pub message: String,
}

impl HandlerError {
    /// The `errorType` Lambda records (visible in logs, DLQ/destination
    /// payloads and `FunctionError` responses).
    pub fn error_type(&self) -> &'static str {
        if self.retryable {
            "Mediaflow.RetryableError"
        } else {
            "Mediaflow.PermanentError"
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.message,
        }
    }
}

/// Converts Lambda's `context.deadline` (ms since the Unix epoch) into an
/// [`Instant`]. A deadline already in the past when the event arrives is
/// not a real one (local emulators send placeholders): it is ignored, with
/// a warning.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    if deadline_ms <= now_ms {
        tracing::warn!(
            deadline_ms,
            now_ms,
            "the runtime's deadline is already past; running without one"
        );
        return None;
    }
    Some(Instant::now() + Duration::from_millis(deadline_ms - now_ms))
}

fn is_sqs(payload: &Value) -> bool {
    payload["Records"][0]["eventSource"].as_str() == Some("aws:sqs")
}

/// Handles one invocation. `deadline` is when Lambda will stop the
/// function; records that cannot finish before it fail as retryable.
pub async fn handle(
    app: &App,
    payload: Value,
    deadline: Option<Instant>,
) -> Result<Value, HandlerError> {
    let result = if is_sqs(&payload) {
        handle_sqs(app, payload, deadline).await
    } else {
        handle_direct(app, payload, deadline).await
    };
    if !app.first_event_done.swap(true, Ordering::Relaxed) {
        let ms = app.process_started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            cold_start_ms = ms,
            "first event handled {ms:.1} ms after process start"
        );
        (app.metrics)(&cold_start_line(&app.function_name, ms));
    }
    result
}

fn emit(app: &App, reports: &[ObjectReport]) {
    for r in reports {
        (app.metrics)(&emf_line(&app.function_name, r));
    }
}

fn summary(reports: &[ObjectReport], ignored: usize) -> Value {
    let count = |f: fn(&Outcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
    json!({
        "processed": count(|o| matches!(o, Outcome::Processed { .. })),
        "skipped": count(|o| matches!(o, Outcome::Skipped(_))),
        "failed": count(|o| matches!(o, Outcome::Failed(_))),
        "ignored": ignored,
    })
}

async fn handle_direct(
    app: &App,
    payload: Value,
    deadline: Option<Instant>,
) -> Result<Value, HandlerError> {
    let notification = parse_payload(&payload).map_err(|e| {
        tracing::error!(error = %e, "unreadable event");
        HandlerError {
            retryable: false,
            message: e.to_string(),
        }
    })?;
    for why in &notification.ignored {
        tracing::info!(reason = %why, "ignored");
    }
    let reports = app
        .pipeline
        .process_all(&notification.objects, deadline)
        .await;
    emit(app, &reports);
    let failures: Vec<_> = reports.iter().filter_map(ObjectReport::failure).collect();
    if failures.is_empty() {
        return Ok(summary(&reports, notification.ignored.len()));
    }
    Err(HandlerError {
        retryable: failures.iter().any(|f| !f.is_permanent()),
        message: failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

async fn handle_sqs(
    app: &App,
    payload: Value,
    deadline: Option<Instant>,
) -> Result<Value, HandlerError> {
    let event: SqsEvent = serde_json::from_value(payload).map_err(|e| HandlerError {
        retryable: false,
        message: format!("malformed SQS event: {e}"),
    })?;
    // Every object of every message, remembering which message it came from.
    let mut objects: Vec<SourceObject> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    let mut failed = vec![false; event.records.len()];
    let mut ignored = 0;
    for (i, message) in event.records.iter().enumerate() {
        let id = message.message_id.as_deref().unwrap_or("?");
        match parse_body(message.body.as_deref().unwrap_or("")) {
            Ok(n) => {
                for why in &n.ignored {
                    tracing::info!(message_id = id, reason = %why, "ignored");
                }
                ignored += n.ignored.len();
                owner.extend(std::iter::repeat_n(i, n.objects.len()));
                objects.extend(n.objects);
            }
            Err(e) => {
                tracing::error!(message_id = id, error = %e, "SQS message {id}: {e}");
                failed[i] = true;
            }
        }
    }
    let reports = app.pipeline.process_all(&objects, deadline).await;
    emit(app, &reports);
    // A permanent failure has been recorded (`failed/{key}.json`) by the
    // pipeline, which reports it retryable when it could not be: only
    // retryable failures go back to the queue.
    for (report, &i) in reports.iter().zip(&owner) {
        if report.failure().is_some_and(|e| !e.is_permanent()) {
            failed[i] = true;
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = event
        .records
        .iter()
        .zip(&failed)
        .filter(|(_, &f)| f)
        .map(|(m, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = m.message_id.clone().unwrap_or_default();
            failure
        })
        .collect();
    let value = serde_json::to_value(&response).expect("SqsBatchResponse serialises");
    tracing::info!(summary = %summary(&reports, ignored), failures = response.batch_item_failures.len(), "batch done");
    Ok(value)
}

/// Starts the Lambda runtime loop around [`handle`] for `app` and
/// returns when the runtime stops. Shared by the functions' `main.rs`.
pub async fn serve(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    use lambda_runtime::{service_fn, LambdaEvent};
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            handle(&app, event.payload, deadline).await
        }
    }))
    .await
}

/// Writes an EMF line to stdout as one whole line (CloudWatch Logs
/// extracts the metrics).
pub fn stdout_metrics() -> MetricSink {
    Arc::new(|line: &str| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    })
}

/// Log format for [`init_tracing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, text when it says `Text`; when
/// unset, JSON inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) and text elsewhere.
pub fn log_format(var: impl Fn(&str) -> Option<String>) -> LogFormat {
    match var("AWS_LAMBDA_LOG_FORMAT") {
        Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
        Some(f) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ if var("AWS_LAMBDA_FUNCTION_NAME").is_some() => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// Installs the global tracing subscriber: level from `AWS_LAMBDA_LOG_LEVEL`,
/// else `RUST_LOG` (directives allowed), else `info`; format from
/// [`log_format`]. JSON lines carry the current span, which
/// `lambda_runtime` opens per invocation with the request id.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(level) => EnvFilter::new(level.to_ascii_lowercase()),
        Err(_) => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log_format(|n| std::env::var(n).ok()) {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_need_a_bucket_and_a_valid_config() {
        let e = Settings::from_lookup(Function::OnUpload, env(&[])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("MEDIAFLOW_OUTPUT_BUCKET is not set"),
            "{e}"
        );
        let e = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "  ")]))
            .unwrap_err();
        assert!(matches!(e, SettingsError::MissingBucket));
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[(ENV_OUTPUT_BUCKET, "Bad_Bucket")]),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::BadBucket(_)), "{e}");
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_OUTPUT_PREFIX, "/out/")]),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::BadPrefix(_)), "{e}");
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_CONFIG, "[[variant]]\nwidth = -1\n"),
            ]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("MEDIAFLOW_CONFIG is not a valid mediaflow configuration"),
            "{e}"
        );

        let s = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(
            (
                s.output_bucket.as_str(),
                s.output_prefix.as_str(),
                s.plan_source
            ),
            ("media", "", "built-in")
        );
        assert_eq!(s.plan.fingerprint(), Plan::builtin().fingerprint());
        let s = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_OUTPUT_PREFIX, "out/"),
                (ENV_CONFIG, "[[variant]]\nname = \"s\"\nwidth = 64\n"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                s.output_prefix.as_str(),
                s.plan.variants().len(),
                s.plan_source
            ),
            ("out/", 1, ENV_CONFIG)
        );
    }

    /// `environment.json` is the contract the SAM and CDK templates are
    /// checked against; it must say what this code reads.
    #[test]
    fn the_memory_budget_follows_the_function_memory() {
        let s = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(s.memory_budget, None);
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_MEMORY_SIZE, "2048")]),
        )
        .unwrap();
        assert_eq!(
            s.memory_budget,
            Some((2048 - mediaflow_pipeline::FUNCTION_OVERHEAD_MIB) << 20)
        );
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_MEMORY_SIZE, "lots")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=\"lots\" is not a number of MB"
        );
    }

    #[test]
    fn environment_contracts_match_the_code() {
        for (function, names) in [
            (
                Function::OnUpload,
                &[ENV_OUTPUT_BUCKET, ENV_OUTPUT_PREFIX, ENV_CONFIG][..],
            ),
            (
                Function::Transcode,
                &[
                    ENV_OUTPUT_BUCKET,
                    ENV_OUTPUT_PREFIX,
                    ENV_CONFIG,
                    ENV_FFMPEG,
                    ENV_FFPROBE,
                    ENV_ANIMATED_GIF,
                ][..],
            ),
        ] {
            let contract: Value = serde_json::from_str(function.environment_json()).unwrap();
            let vars = contract["variables"].as_array().unwrap();
            let got: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
            assert_eq!(got, names, "{function:?}");
            assert_eq!(vars[0]["required"], true);
            assert!(vars[1..].iter().all(|v| v["required"] == false));
            // The defaults are what the code does with an unset variable.
            let s = Settings::from_lookup(function, env(&[(ENV_OUTPUT_BUCKET, "media")])).unwrap();
            assert_eq!(s.output_prefix, vars[1]["default"].as_str().unwrap());
            assert_eq!(vars[2]["default"], "");
            assert_eq!(contract["function"], function.name());
            assert_eq!(contract["binary"], function.name());
            let wiring = &contract["event_wiring"];
            assert_eq!(wiring["source"], "sqs");
            assert_eq!(
                wiring["function_response_types"],
                json!(["ReportBatchItemFailures"])
            );
            let suffixes = wiring["suffixes"].as_array().unwrap();
            assert!(!suffixes.is_empty());
            match (function, &s.video) {
                (Function::OnUpload, None) => {}
                (Function::Transcode, Some(v)) => {
                    assert_eq!(v.tools.ffmpeg.to_str(), vars[3]["default"].as_str());
                    assert_eq!(vars[4]["default"], "");
                    assert_eq!(v.tools.ffprobe.to_str(), Some("/opt/bin/ffprobe"));
                    assert!(
                        !v.plan.animated_gif(),
                        "{ENV_ANIMATED_GIF} unset: the config's"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        // The two functions' suffixes never overlap (S3 refuses
        // overlapping notification filters).
        let suffixes = |f: Function, key: &str| -> Vec<String> {
            let c: Value = serde_json::from_str(f.environment_json()).unwrap();
            c["event_wiring"][key]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let images = suffixes(Function::OnUpload, "suffixes");
        let videos = suffixes(Function::Transcode, "suffixes");
        for v in &videos {
            assert!(
                images
                    .iter()
                    .all(|i| !i.ends_with(v.as_str()) && !v.ends_with(i.as_str())),
                "{v} overlaps"
            );
        }
        // .gif moves from on-upload to transcode when routed there.
        for g in suffixes(Function::Transcode, "suffixes_when_animated_gif") {
            assert!(images.contains(&g), "{g}");
        }
    }

    #[test]
    fn transcode_settings() {
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_FFMPEG, "/usr/bin/ffmpeg"),
                (ENV_ANIMATED_GIF, "TRUE"),
                (
                    ENV_CONFIG,
                    "[[variant]]\nname = \"p\"\nwidth = 64\n[[video]]\nname = \"hd\"\n",
                ),
            ]),
        )
        .unwrap();
        let v = s.video.unwrap();
        assert_eq!(v.tools.ffprobe, PathBuf::from("/usr/bin/ffprobe"));
        assert!(v.plan.animated_gif());
        assert_eq!(v.plan.renditions()[0].name, "hd");
        let e = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_ANIMATED_GIF, "yes")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "MEDIAFLOW_ANIMATED_GIF=\"yes\" must be true or false"
        );
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_FFMPEG, "/nope/ffmpeg")]),
        )
        .unwrap();
        let e = s.check_tools().unwrap_err().to_string();
        assert!(e.starts_with("ffmpeg is not usable at /nope/ffmpeg"), "{e}");
        assert!(!e.contains('\n'));
        let s = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(s.check_tools().unwrap(), None);
    }

    #[test]
    fn log_format_follows_lambda() {
        assert_eq!(log_format(env(&[])), LogFormat::Text);
        assert_eq!(
            log_format(env(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])),
            LogFormat::Json
        );
        assert_eq!(
            log_format(env(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                ("AWS_LAMBDA_LOG_FORMAT", "Text")
            ])),
            LogFormat::Text
        );
        assert_eq!(
            log_format(env(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])),
            LogFormat::Json
        );
    }

    #[test]
    fn deadlines() {
        assert!(
            deadline_from_epoch_ms(600_000).is_none(),
            "a 1970 deadline is a placeholder"
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = deadline_from_epoch_ms(now + 30_000).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
    }

    #[test]
    fn error_types() {
        let d: lambda_runtime::Diagnostic = HandlerError {
            retryable: false,
            message: "s3://a/b: corrupt: x".into(),
        }
        .into();
        assert_eq!(d.error_type, "Mediaflow.PermanentError");
        assert_eq!(d.error_message, "s3://a/b: corrupt: x");
    }
}
