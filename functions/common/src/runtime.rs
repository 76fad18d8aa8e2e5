//! Start-up: tracing, [`Settings`], the S3 store (and on-upload's video
//! queue, when set), [`App`] and the
//! `lambda_runtime` loop around [`handle`], the same for both functions
//! ([`crate::main`]).

use crate::handler::{deadline_from_epoch_ms, handle, App, MetricSink};
use crate::settings::{LogFormat, LogSettings, Settings, SettingsError};
use crate::Function;
use mediaflow_store::MessageQueue;
use mediaflow_store_s3::{S3Store, SqsQueue};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Why a function did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is missing or invalid, or the video tools do not run.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot start the async runtime: {0}")]
    AsyncRuntime(std::io::Error),
    #[error("the Lambda runtime stopped: {0}")]
    Lambda(lambda_runtime::Error),
}

/// Runs `function` as a Lambda function: reads the settings (a bad one
/// stops it at cold start, logged), builds the S3 store, the video queue
/// (on-upload, when `MEDIAFLOW_VIDEO_QUEUE_URL` is set) and the pipeline,
/// and serves events until the runtime stops.
pub fn main(function: Function) -> Result<(), StartError> {
    // Before any thread starts: one malloc arena, so the decoders' large
    // buffers are reused between invocations (mediaflow_engine::allocator).
    mediaflow_engine::allocator::use_one_malloc_arena();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::AsyncRuntime)?
        .block_on(run(function))
}

async fn run(function: Function) -> Result<(), StartError> {
    let started = Instant::now();
    init_tracing(&LogSettings::from_env());
    let settings =
        Settings::from_env(function).inspect_err(|e| tracing::error!("cannot start: {e}"))?;
    // A missing ffmpeg layer stops transcode here, with one line saying
    // so, rather than failing every clip.
    let ffmpeg = settings
        .check_tools()
        .inspect_err(|e| tracing::error!("cannot start: {e}"))?;
    tracing::info!(
        output_bucket = %settings.output_bucket,
        output_prefix = %settings.output_prefix,
        config = settings.plan_source,
        plan = %settings.plan.fingerprint(),
        memory_budget_mib = settings.memory_budget.map(|b| b >> 20),
        ffmpeg = ffmpeg.as_ref().map(tracing::field::display),
        animated_gif = settings.animated_gif,
        video_queue = settings.video_queue_url.as_deref(),
        sqs_endpoint = settings.sqs_endpoint.as_deref(),
        public_base_url = settings.public_base.as_ref().map(tracing::field::display),
        "{} starting",
        function.name()
    );
    let store = S3Store::from_env(settings.s3_path_style).await;
    // on-upload forwards videos here (the SDK client is built once, like
    // the store's).
    let video_queue: Option<Arc<dyn MessageQueue>> = match &settings.video_queue_url {
        Some(url) => Some(Arc::new(SqsQueue::from_env(url.as_str()).await)),
        None => None,
    };
    let name = settings.function_name.clone();
    let app = App::with_video_queue(
        settings,
        Arc::new(store),
        video_queue,
        name,
        stdout_metrics(),
        started,
    );
    let init_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        init_ms,
        "ready for events {init_ms:.1} ms after process start"
    );
    serve(Arc::new(app)).await.map_err(StartError::Lambda)
}

/// Starts the Lambda runtime loop around [`handle`] for `app` and
/// returns when the runtime stops.
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

/// Installs the global tracing subscriber: level from `AWS_LAMBDA_LOG_LEVEL`,
/// else `RUST_LOG` (directives allowed), else `info`; format from
/// [`crate::settings::log_format`]. JSON lines carry the current span,
/// which `lambda_runtime` opens per invocation with the request id.
pub fn init_tracing(log: &LogSettings) {
    use tracing_subscriber::EnvFilter;
    let filter = match &log.level {
        Some(level) => EnvFilter::new(level.to_ascii_lowercase()),
        None => log
            .rust_log
            .as_deref()
            .and_then(|directives| EnvFilter::try_new(directives).ok())
            .unwrap_or_else(|| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .init(),
        LogFormat::Text => builder.init(),
    }
}
