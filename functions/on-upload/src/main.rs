//! Wiring only: tracing, settings, the S3 store, the pipeline, the runtime.
//! The logic is in `lib.rs` (`on_upload::handle`), tested directly.

use anyhow::Context as _;
use lambda_runtime::{service_fn, LambdaEvent};
use mediaflow_store_s3::S3Store;
use on_upload::{deadline_from_epoch_ms, handle, App, Settings};
use serde_json::Value;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    on_upload::init_tracing();
    let settings = Settings::from_env().inspect_err(|e| tracing::error!("cannot start: {e}"))?;
    tracing::info!(
        output_bucket = %settings.output_bucket,
        output_prefix = %settings.output_prefix,
        config = settings.plan_source,
        plan = %settings.plan.fingerprint(),
        "on-upload starting"
    );
    let store = S3Store::from_env()
        .await
        .map_err(anyhow::Error::msg)
        .context("cannot build the S3 client")?;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "on-upload".into());
    // EMF lines go to stdout as whole lines; CloudWatch Logs extracts the metrics.
    let metrics = Arc::new(|line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    });
    let app = Arc::new(App::new(
        settings,
        Arc::new(store),
        function,
        metrics,
        started,
    ));
    let init_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        init_ms,
        "ready for events {init_ms:.1} ms after process start"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            handle(&app, event.payload, deadline).await
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}
