//! The plain async handler: one invocation's event in, the pipeline's
//! reports turned into Lambda's answer out. Every error is decided here:
//!
//! - SQS: the reply lists every message with an object that failed in a
//!   way worth retrying in `batchItemFailures` (the templates set
//!   `ReportBatchItemFailures`), so its neighbours are deleted from the
//!   queue and it alone is retried and, after the queue's
//!   `maxReceiveCount`, moved to the dead-letter queue. A permanent
//!   failure (corrupt, unsupported, over the limits) is recorded by the
//!   pipeline as `failed/{key}.json` beside the manifests and the message
//!   acknowledged: retrying it would only download it again. Content that
//!   is neither an image nor a video is the exception: it is listed every
//!   time, so it ends in the dead-letter queue where an operator sees it.
//! - Direct invocations: the invocation fails with error type
//!   `Mediaflow.PermanentError` (bad input: corrupt, unsupported, over
//!   limits, denied) or `Mediaflow.RetryableError` (throttling, timeouts,
//!   running out of time).

use crate::Settings;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use mediaflow_pipeline::metrics::{cold_start_line, emf_line};
use mediaflow_pipeline::{
    parse_body, parse_payload, ObjectReport, Outcome, Pipeline, PipelineConfig, Retry, SourceObject,
};
use mediaflow_store::{MessageQueue, ObjectStore};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// handled). No video queue: see [`App::with_video_queue`].
    pub fn new(
        settings: Settings,
        store: Arc<dyn ObjectStore>,
        function_name: impl Into<String>,
        metrics: MetricSink,
        process_started: Instant,
    ) -> App {
        App::with_video_queue(
            settings,
            store,
            None,
            function_name,
            metrics,
            process_started,
        )
    }

    /// [`App::new`] with the queue on-upload forwards videos to
    /// (`PipelineConfig::video_queue`; built at cold start from
    /// `Settings::video_queue_url`).
    pub fn with_video_queue(
        settings: Settings,
        store: Arc<dyn ObjectStore>,
        video_queue: Option<Arc<dyn MessageQueue>>,
        function_name: impl Into<String>,
        metrics: MetricSink,
        process_started: Instant,
    ) -> App {
        let mut config = PipelineConfig::new(settings.output_bucket, settings.output_prefix);
        config.memory_budget = settings.memory_budget;
        config.video_queue = video_queue;
        config.forward_gifs = settings.animated_gif;
        config.public_base = settings.public_base;
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
    pub retry: Retry,
    pub message: String,
}

impl HandlerError {
    /// A failure that retrying the same event cannot fix (a bad event, or
    /// only permanent failures in it).
    pub fn permanent(message: impl Into<String>) -> HandlerError {
        HandlerError {
            retry: Retry::Permanent,
            message: message.into(),
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Permanent
    }

    /// The `errorType` Lambda records (visible in logs, DLQ/destination
    /// payloads and `FunctionError` responses).
    pub fn error_type(&self) -> &'static str {
        if self.is_permanent() {
            "Mediaflow.PermanentError"
        } else {
            "Mediaflow.RetryableError"
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
        "removed": count(|o| matches!(o, Outcome::Removed { .. })),
        "forwarded": count(|o| matches!(o, Outcome::Forwarded { .. })),
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
        HandlerError::permanent(e.to_string())
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
        retry: if failures.iter().all(|f| f.is_permanent()) {
            Retry::Permanent
        } else {
            Retry::Retryable
        },
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
    let event: SqsEvent = serde_json::from_value(payload)
        .map_err(|e| HandlerError::permanent(format!("malformed SQS event: {e}")))?;
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
    // retryable failures go back to the queue, and content that is neither
    // an image nor a video (`Retry::DeadLetter`), which goes back until
    // the queue's maxReceiveCount moves it to the dead-letter queue.
    for (report, &i) in reports.iter().zip(&owner) {
        if report
            .failure()
            .is_some_and(|e| e.retry != Retry::Permanent)
        {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let d: lambda_runtime::Diagnostic = HandlerError::permanent("s3://a/b: corrupt: x").into();
        assert_eq!(d.error_type, "Mediaflow.PermanentError");
        assert_eq!(d.error_message, "s3://a/b: corrupt: x");
    }
}
