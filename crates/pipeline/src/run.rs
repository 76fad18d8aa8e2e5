//! Processing one source object: guard, fetch, engine, write, manifest last.

use crate::event::SourceObject;
use bytes::Bytes;
use mediaflow_engine::{manifest_key, output_key, EngineError, Manifest, Output, Plan, SourceRef};
use mediaflow_store::{ObjectInfo, ObjectStore, PutOptions, StoreError};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Metadata key that marks an object as a mediaflow output (recursion guard).
pub const META_OUTPUT: &str = "mediaflow-output";
/// Metadata: the source key, percent-encoded (metadata must be ASCII).
pub const META_SOURCE_KEY: &str = "mediaflow-source-key";
/// Metadata: the source ETag the outputs were made from.
pub const META_SOURCE_ETAG: &str = "mediaflow-source-etag";
/// Metadata: the source version id, on versioned buckets.
pub const META_SOURCE_VERSION: &str = "mediaflow-source-version";
/// Metadata: the plan fingerprint (config and engine version).
pub const META_PLAN: &str = "mediaflow-plan";
/// `Cache-Control` of variants: their keys change whenever their source does
/// not, so a year is safe only with versioned URLs; this is what image CDNs use.
pub const VARIANT_CACHE_CONTROL: &str = "public, max-age=31536000";
/// `Cache-Control` of manifests: they are rewritten when the source changes.
pub const MANIFEST_CACHE_CONTROL: &str = "no-cache";

/// Whether retrying the same object later may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The input or the configuration is wrong; retrying cannot help.
    Permanent,
    /// Throttling, a timeout, a network failure, running out of time.
    Retryable,
}

/// Why an object failed, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {category}: {reason}")]
pub struct ObjectError {
    /// `s3://bucket/key`.
    pub object: String,
    /// `corrupt`, `unsupported`, `limits`, `denied`, `transient`, `timeout`, …
    pub category: &'static str,
    pub reason: String,
    pub retry: Retry,
}

impl ObjectError {
    pub fn is_retryable(&self) -> bool {
        self.retry == Retry::Retryable
    }
}

/// Why an object was deliberately not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The key is under the output prefix of the output bucket.
    OutputKey,
    /// The object carries the mediaflow output marker.
    OutputObject,
    /// A manifest for this ETag and plan exists: the work is done.
    AlreadyDone,
    /// The object was deleted before it could be read.
    Gone,
}

impl Skip {
    pub fn as_str(&self) -> &'static str {
        match self {
            Skip::OutputKey => "output key (under the output prefix)",
            Skip::OutputObject => "mediaflow output (marked in its metadata)",
            Skip::AlreadyDone => "already processed (manifest for this ETag and config exists)",
            Skip::Gone => "deleted before it could be read",
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Processed {
        manifest_key: String,
        variants: usize,
        bytes_out: u64,
    },
    Skipped(Skip),
    Failed(ObjectError),
}

/// Milliseconds per stage (zero for stages not reached).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimes {
    pub fetch_ms: f64,
    pub decode_ms: f64,
    pub resize_ms: f64,
    pub encode_ms: f64,
    pub write_ms: f64,
    pub total_ms: f64,
}

/// The result for one object, with what dashboards need.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    pub outcome: Outcome,
    pub times: StageTimes,
    pub bytes_in: u64,
}

impl ObjectReport {
    pub fn failure(&self) -> Option<&ObjectError> {
        match &self.outcome {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// Where outputs go and how much to do at once.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub output_bucket: String,
    /// Prepended to every output key (e.g. `media/`); may be empty.
    pub output_prefix: String,
    /// Objects processed at the same time (default: available cores).
    pub concurrency: usize,
}

impl PipelineConfig {
    pub fn new(output_bucket: impl Into<String>, output_prefix: impl Into<String>) -> Self {
        PipelineConfig {
            output_bucket: output_bucket.into(),
            output_prefix: output_prefix.into(),
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Events in, variants and manifests out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn ObjectStore>,
    plan: Arc<Plan>,
    config: Arc<PipelineConfig>,
    fingerprint: Arc<str>,
}

/// Time kept back from the deadline so a record that cannot finish is
/// failed (and retried) cleanly instead of the runtime being killed mid-write.
fn reserve(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(500), Duration::from_secs(3))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn store_failure(object: &str, stage: &str, e: StoreError) -> ObjectError {
    let retry = if e.is_retryable() {
        Retry::Retryable
    } else {
        Retry::Permanent
    };
    ObjectError {
        object: object.to_string(),
        category: e.kind(),
        reason: format!("{stage}: {e}"),
        retry,
    }
}

fn engine_failure(object: &str, e: EngineError) -> ObjectError {
    ObjectError {
        object: object.to_string(),
        category: e.kind().as_str(),
        reason: e.message().to_string(),
        retry: if e.is_permanent() {
            Retry::Permanent
        } else {
            Retry::Retryable
        },
    }
}

impl Pipeline {
    pub fn new(store: Arc<dyn ObjectStore>, plan: Plan, config: PipelineConfig) -> Pipeline {
        let fingerprint = plan.fingerprint().into();
        Pipeline {
            store,
            plan: Arc::new(plan),
            config: Arc::new(config),
            fingerprint,
        }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// True when `key` in `bucket` is where this pipeline writes outputs.
    pub fn is_output_key(&self, bucket: &str, key: &str) -> bool {
        let c = &self.config;
        bucket == c.output_bucket
            && !c.output_prefix.is_empty()
            && key.starts_with(&c.output_prefix)
    }

    /// Processes `objects` concurrently (up to `concurrency` at once) and
    /// returns one report per object, in the same order. `deadline` is when
    /// the caller will be stopped (Lambda's `context.deadline`).
    pub async fn process_all(
        &self,
        objects: &[SourceObject],
        deadline: Option<Instant>,
    ) -> Vec<ObjectReport> {
        // A semaphore and join_all rather than a buffered stream: stream
        // combinators' closures make the future not provably `Send` for
        // callers that spawn it.
        let permits = tokio::sync::Semaphore::new(self.config.concurrency.max(1));
        let permits = &permits;
        let work: Vec<_> = objects
            .iter()
            .map(|o| async move {
                let _permit = permits.acquire().await.expect("never closed");
                self.process(o, deadline).await
            })
            .collect();
        futures::future::join_all(work).await
    }

    /// Processes one object, never panicking and never returning early
    /// without a report.
    pub async fn process(&self, object: &SourceObject, deadline: Option<Instant>) -> ObjectReport {
        let started = Instant::now();
        let name = object.to_string();
        let mut times = StageTimes::default();
        let mut bytes_in = 0;
        let outcome = match deadline {
            None => self.run(object, &name, &mut times, &mut bytes_in).await,
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(started);
                let reserve = reserve(remaining);
                if remaining <= reserve * 2 {
                    Outcome::Failed(ObjectError {
                        object: name.clone(),
                        category: "timeout",
                        reason: format!(
                            "only {} ms left before the deadline; not starting (will be retried)",
                            remaining.as_millis()
                        ),
                        retry: Retry::Retryable,
                    })
                } else {
                    let until = tokio::time::Instant::from_std(deadline - reserve);
                    match tokio::time::timeout_at(until, self.run(object, &name, &mut times, &mut bytes_in)).await {
                        Ok(outcome) => outcome,
                        Err(_) => Outcome::Failed(ObjectError {
                            object: name.clone(),
                            category: "timeout",
                            reason: format!(
                                "stopped {} ms before the deadline, before the manifest was written (will be retried)",
                                reserve.as_millis()
                            ),
                            retry: Retry::Retryable,
                        }),
                    }
                }
            }
        };
        times.total_ms = ms(started.elapsed());
        let report = ObjectReport {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            outcome,
            times,
            bytes_in,
        };
        log_report(&report);
        report
    }

    fn manifest_matches(&self, manifest: &Option<ObjectInfo>, etag: Option<&str>) -> bool {
        match (manifest, etag) {
            (Some(m), Some(etag)) => {
                m.metadata.get(META_SOURCE_ETAG).map(String::as_str) == Some(etag)
                    && m.metadata.get(META_PLAN).map(String::as_str) == Some(&*self.fingerprint)
            }
            _ => false,
        }
    }

    async fn run(
        &self,
        object: &SourceObject,
        name: &str,
        times: &mut StageTimes,
        bytes_in: &mut u64,
    ) -> Outcome {
        let c = &self.config;
        if self.is_output_key(&object.bucket, &object.key) {
            return Outcome::Skipped(Skip::OutputKey);
        }
        let manifest_key = manifest_key(&c.output_prefix, &object.key);
        let existing = match self.store.head(&c.output_bucket, &manifest_key).await {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(store_failure(name, "checking the manifest", e)),
        };
        if self.manifest_matches(&existing, object.etag.as_deref()) {
            return Outcome::Skipped(Skip::AlreadyDone);
        }

        // Read the current object (not the event's version: if it was
        // replaced since, the newer bytes are what the outputs must show).
        let t = Instant::now();
        let limit = self.plan.limits().max_input_bytes;
        let source = match self.store.get(&object.bucket, &object.key, limit).await {
            Ok(o) => o,
            Err(StoreError::NotFound(_)) => return Outcome::Skipped(Skip::Gone),
            Err(e) => return Outcome::Failed(store_failure(name, "reading the source", e)),
        };
        times.fetch_ms = ms(t.elapsed());
        *bytes_in = source.body.len() as u64;
        if source.info.metadata.contains_key(META_OUTPUT) {
            return Outcome::Skipped(Skip::OutputObject);
        }
        let etag = source.info.etag.clone().or_else(|| object.etag.clone());
        if etag.as_deref() != object.etag.as_deref()
            && self.manifest_matches(&existing, etag.as_deref())
        {
            return Outcome::Skipped(Skip::AlreadyDone);
        }

        // CPU work on the blocking pool, never on a runtime worker.
        let plan = Arc::clone(&self.plan);
        let body = source.body.clone();
        let output: Output = match tokio::task::spawn_blocking(move || {
            mediaflow_engine::process(&body, &plan)
        })
        .await
        {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Outcome::Failed(engine_failure(name, e)),
            Err(join) => {
                return Outcome::Failed(ObjectError {
                    object: name.to_string(),
                    category: "internal",
                    reason: format!("the engine task failed: {join}"),
                    retry: Retry::Retryable,
                })
            }
        };
        times.decode_ms =
            output.timings.decode_ms + output.timings.sniff_ms + output.timings.color_ms;
        times.resize_ms = output.timings.resize_ms + output.timings.orient_ms;
        times.encode_ms = output.timings.encode_ms + output.timings.placeholder_ms;

        // Variants first (concurrently), the manifest last: a manifest
        // means every variant it lists is in place.
        let t = Instant::now();
        let mut metadata = BTreeMap::new();
        metadata.insert(META_OUTPUT.to_string(), "1".to_string());
        metadata.insert(
            META_SOURCE_KEY.to_string(),
            utf8_percent_encode(&object.key, NON_ALPHANUMERIC).to_string(),
        );
        if let Some(etag) = &etag {
            metadata.insert(META_SOURCE_ETAG.to_string(), etag.clone());
        }
        if let Some(v) = &source.info.version_id {
            metadata.insert(META_SOURCE_VERSION.to_string(), v.clone());
        }
        metadata.insert(META_PLAN.to_string(), self.fingerprint.to_string());
        let bytes_out = output.variants.iter().map(|v| v.data.len() as u64).sum();
        let writes: Vec<(String, Bytes, PutOptions)> = output
            .variants
            .iter()
            .map(|v| {
                let key = output_key(&c.output_prefix, &v.name, &object.key, v.format);
                let options = PutOptions {
                    content_type: Some(v.format.mime_type().to_string()),
                    cache_control: Some(VARIANT_CACHE_CONTROL.to_string()),
                    metadata: metadata.clone(),
                };
                (key, Bytes::copy_from_slice(&v.data), options)
            })
            .collect();
        // All variants at once (a plan has a handful); the manifest after.
        let puts = writes.into_iter().map(|(key, body, options)| async move {
            self.store
                .put(&c.output_bucket, &key, body, &options)
                .await
                .map_err(|e| store_failure(name, &format!("writing {key}"), e))
        });
        let results = futures::future::join_all(puts).await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            return Outcome::Failed(e);
        }
        let manifest = Manifest::build(
            &c.output_prefix,
            &SourceRef {
                key: &object.key,
                etag: etag.as_deref(),
                version_id: source.info.version_id.as_deref(),
            },
            &output,
        );
        let options = PutOptions {
            content_type: Some("application/json".to_string()),
            cache_control: Some(MANIFEST_CACHE_CONTROL.to_string()),
            metadata,
        };
        if let Err(e) = self
            .store
            .put(
                &c.output_bucket,
                &manifest_key,
                Bytes::from(manifest.to_json()),
                &options,
            )
            .await
        {
            return Outcome::Failed(store_failure(name, &format!("writing {manifest_key}"), e));
        }
        times.write_ms = ms(t.elapsed());
        Outcome::Processed {
            manifest_key,
            variants: output.variants.len(),
            bytes_out,
        }
    }
}

fn log_report(r: &ObjectReport) {
    let object = format!("s3://{}/{}", r.bucket, r.key);
    match &r.outcome {
        Outcome::Processed {
            manifest_key,
            variants,
            bytes_out,
        } => tracing::info!(
            object = %object,
            variants,
            bytes_in = r.bytes_in,
            bytes_out,
            total_ms = r.times.total_ms,
            manifest = %manifest_key,
            "processed"
        ),
        Outcome::Skipped(why) => tracing::info!(object = %object, reason = why.as_str(), "skipped"),
        Outcome::Failed(e) if e.is_retryable() => tracing::warn!(
            object = %object,
            category = e.category,
            retryable = true,
            "{e}"
        ),
        Outcome::Failed(e) => tracing::error!(
            object = %object,
            category = e.category,
            retryable = false,
            "{e}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_a_tenth_clamped() {
        assert_eq!(reserve(Duration::from_secs(1)), Duration::from_millis(500));
        assert_eq!(reserve(Duration::from_secs(20)), Duration::from_secs(2));
        assert_eq!(reserve(Duration::from_secs(900)), Duration::from_secs(3));
    }
}
