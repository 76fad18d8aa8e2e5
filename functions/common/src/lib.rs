//! What mediaflow's Lambda functions share; each function's `main.rs` is
//! one call to [`main`] with its [`Function`].
//!
//! - `on-upload` ([`Function::OnUpload`]): images. An S3 notification
//!   (direct, or as SQS messages) or an EventBridge "Object Created" event
//!   in; variants and a manifest out, through [`mediaflow_pipeline`];
//!   videos are forwarded to the transcode function's SQS queue
//!   (`MEDIAFLOW_VIDEO_QUEUE_URL`, an [`mediaflow_store_s3::SqsQueue`]).
//! - `transcode` ([`Function::Transcode`]): the same events for video
//!   uploads; the pipeline's video path (ffprobe/ffmpeg from
//!   `MEDIAFLOW_FFMPEG`, by default the layer's `/opt/bin/ffmpeg`) writes
//!   MP4 renditions, the poster's variants and a video manifest.
//!
//! Modules:
//! - [`settings`]: every environment variable the functions read, read
//!   once at cold start into [`Settings`] (the rules, and the one boolean
//!   spelling set, are there).
//! - [`handler`]: [`handle`], a plain async fn from an event to Lambda's
//!   answer (SQS `batchItemFailures`, or a [`HandlerError`] that says
//!   whether a retry can help), tested directly.
//! - [`runtime`]: tracing, the S3 store and the `lambda_runtime` loop
//!   around [`handle`]: [`main`].

pub mod handler;
pub mod runtime;
pub mod settings;

pub use handler::{deadline_from_epoch_ms, handle, App, HandlerError, MetricSink};
pub use runtime::{init_tracing, main, serve, stdout_metrics, StartError};
pub use settings::{
    log_format, parse_bool, LogFormat, LogSettings, Settings, SettingsError, ENV_ANIMATED_GIF,
    ENV_CONFIG, ENV_FFMPEG, ENV_FFPROBE, ENV_MEMORY_SIZE, ENV_OUTPUT_BUCKET, ENV_OUTPUT_PREFIX,
    ENV_S3_PATH_STYLE, ENV_VIDEO_QUEUE_URL,
};

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
