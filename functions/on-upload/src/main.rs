//! Wiring only: tracing, settings, the S3 store, the pipeline, the runtime.
//! The logic is in `mediaflow-function` (`handle`), tested directly.

use anyhow::Context as _;
use mediaflow_function::{init_tracing, serve, stdout_metrics, App, Function, Settings};
use mediaflow_store_s3::S3Store;
use std::sync::Arc;
use std::time::Instant;

const FUNCTION: Function = Function::OnUpload;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    init_tracing();
    let settings =
        Settings::from_env(FUNCTION).inspect_err(|e| tracing::error!("cannot start: {e}"))?;
    tracing::info!(
        output_bucket = %settings.output_bucket,
        output_prefix = %settings.output_prefix,
        config = settings.plan_source,
        plan = %settings.plan.fingerprint(),
        memory_budget_mib = settings.memory_budget.map(|b| b >> 20),
        "{} starting",
        FUNCTION.name()
    );
    let store = S3Store::from_env()
        .await
        .map_err(anyhow::Error::msg)
        .context("cannot build the S3 client")?;
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| FUNCTION.name().into());
    let app = App::new(settings, Arc::new(store), name, stdout_metrics(), started);
    let init_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        init_ms,
        "ready for events {init_ms:.1} ms after process start"
    );
    serve(Arc::new(app))
        .await
        .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}
