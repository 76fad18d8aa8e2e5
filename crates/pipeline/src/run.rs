//! Processing one source object: guard, fetch, route, engine, write,
//! manifest last; and its later life ([`lifecycle`]: versions, collisions,
//! stale outputs, deletes).

mod lifecycle;

pub use lifecycle::retired_key;

use crate::budget::{Admission, MemoryBudget};
use crate::error::{Cause, ObjectError, Retry};
use crate::event::S3Notification;
use crate::event::SourceObject;
use crate::media::{self, Kind, Media, Prepared, Produced, VideoMedia};
use bytes::Bytes;
use mediaflow_engine::{
    content_hash, failure_key, longest_output_key, manifest::MAX_KEY_BYTES, manifest_key,
    output_key_limit, Manifest, MediaError, Output, OutputNames, Plan, PublicBase, SourceRef, Stop,
};
use mediaflow_store::{
    escape_key, object_url, MessageQueue, ObjectInfo, ObjectStore, PutOptions, StoreError,
};
use mediaflow_video::{Container, Tools, VideoManifest, VideoOutput, VideoPlan};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Metadata key that marks an object as a mediaflow output (recursion guard).
pub const META_OUTPUT: &str = "mediaflow-output";
/// Metadata: the source key, percent-encoded (metadata must be ASCII).
pub const META_SOURCE_KEY: &str = "mediaflow-source-key";
/// The longest percent-encoded source key kept in [`META_SOURCE_KEY`]: with
/// the other entries well within S3's 2 KB of user metadata.
const META_SOURCE_KEY_MAX_BYTES: usize = 1536;
/// Metadata: the source ETag the outputs were made from.
pub const META_SOURCE_ETAG: &str = "mediaflow-source-etag";
/// Metadata: the source version id, on versioned buckets.
pub const META_SOURCE_VERSION: &str = "mediaflow-source-version";
/// Metadata: the plan fingerprint (config and engine version).
pub const META_PLAN: &str = "mediaflow-plan";
/// `Cache-Control` of manifests: the stable pointer consumers read, rewritten
/// whenever the source changes. (Outputs get the plan's
/// [`Plan::output_cache_control`]: immutable when their keys hold the
/// content hash.)
pub const MANIFEST_CACHE_CONTROL: &str = "no-cache";
/// Version of the failure record's JSON shape.
pub const FAILURE_RECORD_VERSION: u32 = 1;

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
    /// A failure record for this ETag and plan exists: the source failed
    /// permanently before and would fail again.
    AlreadyFailed,
    /// A newer version replaced the source before its outputs were
    /// written; that version's own event makes them.
    Superseded,
    /// A removal found no outputs (already removed, or never made).
    NothingToRemove,
}

impl Skip {
    pub fn as_str(&self) -> &'static str {
        match self {
            Skip::OutputKey => "output key (under the output prefix)",
            Skip::OutputObject => "mediaflow output (marked in its metadata)",
            Skip::AlreadyDone => "already processed (manifest for this ETag and config exists)",
            Skip::Gone => "deleted before it could be read",
            Skip::AlreadyFailed => {
                "already failed permanently (failure record for this ETag and config exists)"
            }
            Skip::Superseded => {
                "superseded (a newer version was uploaded before its outputs were written)"
            }
            Skip::NothingToRemove => "removed: no outputs to remove (already removed)",
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
    /// The source is gone: its manifest and the outputs it listed were
    /// deleted.
    Removed {
        manifest_key: String,
        outputs: usize,
    },
    /// A video handed on to the video function's queue.
    Forwarded {
        queue: String,
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
    /// Peak memory all work in flight may take together, in bytes
    /// ([`MemoryBudget`]); `None` admits by `concurrency` alone.
    pub memory_budget: Option<u64>,
    /// Videos too (the transcode function, `mediaflow dev`); `None`
    /// handles images only and fails videos with a message saying where
    /// they belong.
    pub video: Option<VideoSettings>,
    /// Where video uploads are handed on when this pipeline handles images
    /// only (the transcode function's queue, from on-upload): a video is
    /// sent there as a one-record S3 notification instead of failing.
    pub video_queue: Option<Arc<dyn MessageQueue>>,
    /// With `video_queue`: GIFs are videos too (the transcode function's
    /// `animated_gif`), so they are forwarded.
    pub forward_gifs: bool,
    /// Where the outputs are served (`MEDIAFLOW_PUBLIC_BASE_URL`): each
    /// manifest then gives every output's URL and the responsive markup.
    pub public_base: Option<PublicBase>,
}

/// What the video path needs besides the image plan.
#[derive(Debug, Clone)]
pub struct VideoSettings {
    pub plan: VideoPlan,
    pub tools: Tools,
    /// Where each source gets its own temporary directory (removed
    /// afterwards): `/tmp` in Lambda.
    pub work_root: PathBuf,
}

impl PipelineConfig {
    pub fn new(output_bucket: impl Into<String>, output_prefix: impl Into<String>) -> Self {
        PipelineConfig {
            output_bucket: output_bucket.into(),
            output_prefix: output_prefix.into(),
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_budget: None,
            video: None,
            video_queue: None,
            forward_gifs: false,
            public_base: None,
        }
    }

    /// The same configuration, handling videos too.
    pub fn with_video(mut self, video: VideoSettings) -> Self {
        self.video = Some(video);
        self
    }
}

/// Events in, variants and manifests out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn ObjectStore>,
    plan: Arc<Plan>,
    config: Arc<PipelineConfig>,
    fingerprint: Arc<str>,
    /// The video plan's fingerprint, when videos are handled.
    video_fingerprint: Option<Arc<str>>,
    /// Objects in flight, shared by every call: a slot is released only
    /// when the object's CPU work has ended, so work abandoned at one
    /// invocation's deadline still counts against the next one's.
    slots: Arc<Semaphore>,
    /// Memory in flight, shared by every call like the slots.
    memory: Option<MemoryBudget>,
}

/// Time kept back from the deadline so a record that cannot finish is
/// failed (and retried) cleanly instead of the runtime being killed mid-write.
fn reserve(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(500), Duration::from_secs(3))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the source turned out to be, with what processing it gave.
enum Made {
    Image(Box<Output>),
    Video(Box<VideoOutput>, Arc<tempfile::TempDir>),
}

impl Pipeline {
    pub fn new(store: Arc<dyn ObjectStore>, plan: Plan, config: PipelineConfig) -> Pipeline {
        let fingerprint: Arc<str> = plan.fingerprint().into();
        let video_fingerprint = config
            .video
            .as_ref()
            .map(|v| v.plan.fingerprint(&fingerprint).into());
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let memory = config.memory_budget.map(MemoryBudget::new);
        Pipeline {
            store,
            plan: Arc::new(plan),
            config: Arc::new(config),
            fingerprint,
            video_fingerprint,
            slots,
            memory,
        }
    }

    /// Slots free right now (of `concurrency`): a slot stays taken until
    /// its object's CPU work has ended, even after its deadline.
    pub fn idle_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// The memory budget, when there is one.
    pub fn memory_budget(&self) -> Option<&MemoryBudget> {
        self.memory.as_ref()
    }

    /// The store sources are read from and outputs written to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
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
        // The pipeline's slots and join_all rather than a buffered stream:
        // stream combinators' closures make the future not provably `Send`
        // for callers that spawn it.
        let work: Vec<_> = objects.iter().map(|o| self.process(o, deadline)).collect();
        futures::future::join_all(work).await
    }

    /// Processes one object, never panicking and never returning early
    /// without a report. It waits for one of the pipeline's slots first.
    /// A permanent failure is recorded (see [`Pipeline::record_failure`]);
    /// if the record cannot be written, the failure is reported retryable.
    pub async fn process(&self, object: &SourceObject, deadline: Option<Instant>) -> ObjectReport {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the slots are never closed");
        let started = Instant::now();
        let name = object.to_string();
        let mut seen = Seen::default();
        let stop = Stop::new();
        let outcome = match deadline {
            None => match self.run(object, &name, None, slot, &stop, &mut seen).await {
                Ok(outcome) | Err(outcome) => outcome,
            },
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(started);
                let reserve = reserve(remaining);
                if remaining <= reserve * 2 {
                    Outcome::Failed(ObjectError::new(
                        name.clone(),
                        MediaError::timeout(format!(
                            "only {} ms left before the deadline; not starting (will be retried)",
                            remaining.as_millis()
                        )),
                    ))
                } else {
                    let until = deadline - reserve;
                    let run = self.run(object, &name, Some(until), slot, &stop, &mut seen);
                    match tokio::time::timeout_at(tokio::time::Instant::from_std(until), run).await
                    {
                        Ok(Ok(outcome) | Err(outcome)) => outcome,
                        Err(_) => {
                            // The engine stops at its next stage and only
                            // then gives its slot back.
                            stop.stop();
                            Outcome::Failed(ObjectError::new(
                                name.clone(),
                                MediaError::timeout(format!(
                                    "stopped {} ms before the deadline, before the manifest was written (will be retried)",
                                    reserve.as_millis()
                                )),
                            ))
                        }
                    }
                }
            }
        };
        let outcome = match outcome {
            Outcome::Failed(e) if e.retry == Retry::Permanent => {
                Outcome::Failed(self.record_failure(object, seen.etag.as_deref(), e).await)
            }
            other => other,
        };
        seen.times.total_ms = ms(started.elapsed());
        let report = ObjectReport {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            outcome,
            times: seen.times,
            bytes_in: seen.bytes_in,
        };
        log_report(&report);
        report
    }

    /// Writes `{prefix}failed/{key}.json` for a permanent failure (the
    /// reason, the source's ETag and the plan), so the event can be
    /// acknowledged instead of retried, and a replay of it is skipped
    /// without downloading the source again. Returns the failure as it
    /// stands: unchanged once recorded, retryable if the record could not
    /// be written (so the failure is never lost).
    pub async fn record_failure(
        &self,
        object: &SourceObject,
        etag: Option<&str>,
        error: ObjectError,
    ) -> ObjectError {
        let c = &self.config;
        if self.is_output_key(&object.bucket, &object.key) {
            return error;
        }
        let key = failure_key(&c.output_prefix, &object.key);
        if key.len() > MAX_KEY_BYTES {
            // Only a source whose outputs are over the limit too: it fails
            // before it is read, so a replay costs nothing.
            return ObjectError {
                reason: format!(
                    "{} (not recorded: the failure record's key would be over S3's {MAX_KEY_BYTES}-byte limit)",
                    error.reason
                ),
                ..error
            };
        }
        let source = SourceRef {
            key: &object.key,
            etag,
            version_id: object.version_id.as_deref(),
        };
        let record = serde_json::json!({
            "failure_version": FAILURE_RECORD_VERSION,
            "source": {
                "bucket": object.bucket,
                "key": object.key,
                "etag": etag,
                "version_id": object.version_id,
            },
            "category": error.category.as_str(),
            "reason": error.reason,
            "retryable": false,
            "plan_fingerprint": self.fingerprint(),
        });
        let options = PutOptions {
            content_type: Some("application/json".to_string()),
            cache_control: Some(MANIFEST_CACHE_CONTROL.to_string()),
            metadata: self.metadata(object, &source, self.fingerprint()),
        };
        let body = Bytes::from(serde_json::to_vec_pretty(&record).expect("JSON"));
        match self.store.put(&c.output_bucket, &key, body, &options).await {
            Ok(_) => error,
            Err(e) => ObjectError {
                retry: Retry::Retryable,
                reason: format!(
                    "{} (and recording the failure at {key} failed: {e}; will be retried)",
                    error.reason
                ),
                ..error
            },
        }
    }

    /// The fingerprint outputs are marked with: the image plan's, or with
    /// videos on, the video plan's (which covers the image plan too, so a
    /// change to either, e.g. turning `animated_gif` on, redoes sources).
    fn fingerprint(&self) -> &str {
        self.video_fingerprint
            .as_deref()
            .unwrap_or(&self.fingerprint)
    }

    fn manifest_matches(&self, manifest: &Option<ObjectInfo>, etag: Option<&str>) -> bool {
        match (manifest, etag) {
            (Some(m), Some(etag)) => {
                m.metadata.get(META_SOURCE_ETAG).map(String::as_str) == Some(etag)
                    && m.metadata.get(META_PLAN).map(String::as_str) == Some(self.fingerprint())
            }
            _ => false,
        }
    }

    /// Whether a failure record for `etag` and this plan exists.
    async fn failed_before(
        &self,
        object: &SourceObject,
        etag: Option<&str>,
    ) -> Result<bool, StoreError> {
        if etag.is_none() {
            return Ok(false);
        }
        let c = &self.config;
        let record = self
            .store
            .head(
                &c.output_bucket,
                &failure_key(&c.output_prefix, &object.key),
            )
            .await?;
        Ok(self.manifest_matches(&record, etag))
    }

    /// One object, reconciled with what the bucket holds under its key: a
    /// created object through [`Pipeline::create`]'s steps, a removed one
    /// through [`Pipeline::remove`] (which hands over to `create` when the
    /// key exists again). When the source changed or went while its
    /// outputs were published, the key is reconciled again with what is
    /// there now, at most [`RECONCILE_ROUNDS`] times.
    async fn run(
        &self,
        object: &SourceObject,
        name: &str,
        stop_at: Option<Instant>,
        slot: OwnedSemaphorePermit,
        stop: &Stop,
        seen: &mut Seen,
    ) -> Result<Outcome, Outcome> {
        let mut slot = Some(slot);
        let mut removal = object.is_removal();
        let mut force = false;
        for _ in 0..RECONCILE_ROUNDS {
            if removal {
                if let Some(outcome) = self.remove(object, name, &mut force).await? {
                    return Ok(outcome);
                }
            }
            let slot = match slot.take() {
                Some(slot) => slot,
                None => Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .expect("the slots are never closed"),
            };
            let published = match self
                .create(object, name, stop_at, slot, stop, seen, force)
                .await
            {
                Ok(published) => published,
                // Gone after an earlier round published: remove what it wrote.
                Err(Outcome::Skipped(Skip::Gone)) if force => Published::Changed { gone: true },
                Err(outcome) => return Err(outcome),
            };
            match published {
                Published::Done(Outcome::Skipped(Skip::Gone)) if force => removal = true,
                Published::Done(outcome) => return Ok(outcome),
                Published::Changed { gone } => {
                    tracing::info!(object = %name, gone, "the source changed while its outputs were written; reconciling again");
                    removal = gone;
                }
            }
            force = true;
        }
        Err(failed(
            name,
            MediaError::timeout(format!(
                "the source kept changing while it was processed ({RECONCILE_ROUNDS} rounds); will be retried"
            )),
        ))
    }

    /// A created (or re-created) object as named steps; each returns early
    /// (as `Err`) with the outcome that ends the object: skipped, or
    /// failed. `force` redoes a source even when a manifest says it is
    /// done (that manifest may be the one an older version just wrote).
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        object: &SourceObject,
        name: &str,
        stop_at: Option<Instant>,
        slot: OwnedSemaphorePermit,
        stop: &Stop,
        seen: &mut Seen,
        force: bool,
    ) -> Result<Published, Outcome> {
        let manifest = self.check_before_fetch(object, name, force).await?;
        let (info, source) = self.fetch_source(object, name, seen).await?;
        let etag = self
            .check_after_fetch(object, name, &info, &manifest, seen, force)
            .await?;
        self.route(object, name, &info, &source).await?;
        let made = self
            .produce(name, source, stop_at, slot, stop)
            .await
            .map_err(Outcome::Failed)?;
        let source = SourceRef {
            key: &object.key,
            etag: etag.as_deref(),
            version_id: info.version_id.as_deref(),
        };
        self.publish(object, name, &source, made, &mut seen.times)
            .await
    }

    /// Step 1, before anything is read: the recursion guard, the output
    /// key limit, and whether the event's ETag was done (a manifest) or
    /// failed permanently (a failure record) with this plan. Returns the
    /// manifest as it stands.
    async fn check_before_fetch(
        &self,
        object: &SourceObject,
        name: &str,
        force: bool,
    ) -> Result<Option<ObjectInfo>, Outcome> {
        let c = &self.config;
        if self.is_output_key(&object.bucket, &object.key) {
            return Err(Outcome::Skipped(Skip::OutputKey));
        }
        if let Some(reason) = self.output_key_limit(&object.key) {
            return Err(Outcome::Failed(ObjectError::new(
                name,
                MediaError::limits(reason),
            )));
        }
        let manifest_key = manifest_key(&c.output_prefix, &object.key);
        let manifest = self
            .store
            .head(&c.output_bucket, &manifest_key)
            .await
            .map_err(|e| failed(name, Cause::during("checking the manifest", e)))?;
        if !force {
            self.check_done(object, name, &manifest, object.etag.as_deref())
                .await?;
        }
        Ok(manifest)
    }

    /// Skips a source whose `etag` was processed (or failed permanently)
    /// with this plan.
    async fn check_done(
        &self,
        object: &SourceObject,
        name: &str,
        manifest: &Option<ObjectInfo>,
        etag: Option<&str>,
    ) -> Result<(), Outcome> {
        if self.manifest_matches(manifest, etag) {
            return Err(Outcome::Skipped(Skip::AlreadyDone));
        }
        match self.failed_before(object, etag).await {
            Ok(true) => Err(Outcome::Skipped(Skip::AlreadyFailed)),
            Ok(false) => Ok(()),
            Err(e) => Err(failed(
                name,
                Cause::during("checking the failure record", e),
            )),
        }
    }

    /// Step 2: reads the current object (not the event's version: if it
    /// was replaced since, the newer bytes are what the outputs must show),
    /// into memory for images only, into a work directory with videos on.
    async fn fetch_source(
        &self,
        object: &SourceObject,
        name: &str,
        seen: &mut Seen,
    ) -> Result<(ObjectInfo, Source), Outcome> {
        let t = Instant::now();
        let (info, source) = match &self.config.video {
            Some(video) => self.fetch_to_file(object, name, video).await,
            None => self.fetch(object, name).await,
        }?;
        seen.times.fetch_ms = ms(t.elapsed());
        seen.bytes_in = info.size;
        if info.metadata.contains_key(META_OUTPUT) {
            return Err(Outcome::Skipped(Skip::OutputObject));
        }
        Ok((info, source))
    }

    /// Step 3: the ETag of the bytes read. When the event named other
    /// bytes (or none), checks again whether those were done or failed.
    async fn check_after_fetch(
        &self,
        object: &SourceObject,
        name: &str,
        info: &ObjectInfo,
        manifest: &Option<ObjectInfo>,
        seen: &mut Seen,
        force: bool,
    ) -> Result<Option<String>, Outcome> {
        let etag = info.etag.clone().or_else(|| object.etag.clone());
        seen.etag.clone_from(&etag);
        if !force && etag.as_deref() != object.etag.as_deref() {
            self.check_done(object, name, manifest, etag.as_deref())
                .await?;
        }
        Ok(etag)
    }

    /// Step 4: what the bytes say the source is (its key plays no part).
    /// Content that is neither an image nor a video fails permanently and
    /// goes to the dead-letter queue; a video given to a pipeline without
    /// the video path is forwarded to the video queue when there is one.
    async fn route(
        &self,
        object: &SourceObject,
        name: &str,
        info: &ObjectInfo,
        source: &Source,
    ) -> Result<(), Outcome> {
        let gifs_are_videos = match &self.config.video {
            Some(v) => v.plan.animated_gif(),
            None => self.config.forward_gifs,
        };
        let head = match source {
            Source::Memory(body) => body.slice(..body.len().min(media::HEAD_BYTES as usize)),
            Source::File(_, path) => {
                let path = path.clone();
                Bytes::from(
                    self.blocking(name, "reading the first bytes", move || {
                        media::read_head(&path)
                    })
                    .await
                    .map_err(Outcome::Failed)?
                    .map_err(|e| failed(name, MediaError::io(format!("cannot read: {e}"))))?,
                )
            }
            Source::Head(head, _) => head.clone(),
        };
        match media::kind_of(&head, gifs_are_videos) {
            Kind::Neither => Err(Outcome::Failed(not_media(name, &head))),
            Kind::Video(container) if self.config.video.is_none() => {
                self.forward(object, name, info, container).await
            }
            _ => match source {
                Source::Head(_, too_large) => Err(Outcome::Failed(too_large.clone())),
                _ => Ok(()),
            },
        }
    }

    /// Hands a video to the video queue as a one-record S3 notification
    /// (the transcode function reads it as it reads S3's own), or fails it
    /// permanently when no video function is deployed.
    async fn forward(
        &self,
        object: &SourceObject,
        name: &str,
        info: &ObjectInfo,
        container: Container,
    ) -> Result<(), Outcome> {
        let Some(queue) = &self.config.video_queue else {
            return Err(failed(
                name,
                MediaError::unsupported(format!(
                    "a video ({container}), and no video function is deployed (set MEDIAFLOW_VIDEO_QUEUE_URL, or deploy with an ffmpeg layer)"
                )),
            ));
        };
        let current = SourceObject {
            size: Some(info.size),
            etag: info.etag.clone().or_else(|| object.etag.clone()),
            version_id: info
                .version_id
                .clone()
                .or_else(|| object.version_id.clone()),
            ..object.clone()
        };
        let body = serde_json::to_string(&S3Notification::forwarded(&current)).expect("JSON");
        match queue.send(&body).await {
            Ok(_) => Err(Outcome::Forwarded {
                queue: queue.name().to_string(),
            }),
            Err(e) => Err(failed(
                name,
                Cause::during(&format!("forwarding the video to {}", queue.name()), e),
            )),
        }
    }

    /// Step 5: the outputs, made on the blocking pool (CPU work and waiting
    /// on ffmpeg never run on a runtime worker; the slot goes with them):
    /// the image engine on a source in memory, or [`crate::media`]'s steps
    /// on a source on disk.
    async fn produce(
        &self,
        name: &str,
        source: Source,
        stop_at: Option<Instant>,
        slot: OwnedSemaphorePermit,
        stop: &Stop,
    ) -> Result<Made, ObjectError> {
        match source {
            Source::Memory(body) => self.image(name, body, slot, stop).await,
            Source::File(dir, path) => self.on_disk(name, dir, path, stop_at, slot, stop).await,
            Source::Head(..) => Err(ObjectError::new(
                name,
                MediaError::internal("only the first bytes of the source were read"),
            )),
        }
    }

    /// Step 6: the outputs named by the key template, checked
    /// ([`lifecycle`]: still the current version, no collision), written
    /// concurrently, the manifest last (a manifest means every output it
    /// lists is in place), the source checked again, then what the previous
    /// manifest listed and this one does not deleted.
    async fn publish(
        &self,
        object: &SourceObject,
        name: &str,
        source: &SourceRef<'_>,
        made: Made,
        times: &mut StageTimes,
    ) -> Result<Published, Outcome> {
        let c = &self.config;
        let t = Instant::now();
        let fingerprint = self.fingerprint();
        let etag = source.etag.ok_or_else(|| {
            failed(
                name,
                MediaError::internal(
                    "the store gave the source no ETag; its outputs cannot be named",
                ),
            )
        })?;
        let hash = content_hash(etag, fingerprint);
        let names = OutputNames {
            template: self.plan.keys(),
            prefix: &c.output_prefix,
            source_key: &object.key,
            hash: &hash,
        };
        let (manifest, files, output, _work_dir) = match made {
            Made::Image(output) => {
                [times.decode_ms, times.resize_ms, times.encode_ms] = output.timings.stages();
                let mut manifest = Manifest::build(&names, source, &output);
                manifest.plan_fingerprint = fingerprint.to_string();
                if let Some(base) = &c.public_base {
                    manifest.publish(&self.plan, base);
                }
                (manifest.to_json(), Vec::new(), output, None)
            }
            // The work directory lives until the renditions are uploaded.
            Made::Video(output, work_dir) => {
                times.decode_ms = output.timings.probe_ms;
                times.encode_ms = output.timings.transcode_ms + output.timings.poster_ms;
                let mut manifest = VideoManifest::build(&names, source, &output, fingerprint);
                if let Some(base) = &c.public_base {
                    manifest.publish(&self.plan, base);
                }
                let manifest = manifest.to_json();
                let files: Vec<(String, PathBuf, u64)> = output
                    .renditions
                    .iter()
                    .map(|r| {
                        (
                            mediaflow_video::rendition_key(&names, &r.name),
                            r.path.clone(),
                            r.bytes,
                        )
                    })
                    .collect();
                (manifest, files, Box::new(output.poster), Some(work_dir))
            }
        };
        let keys: BTreeSet<String> = output
            .variants
            .iter()
            .map(|v| names.key(&v.name, v.format.extension()))
            .chain(files.iter().map(|(key, _, _)| key.clone()))
            .collect();
        let previous = self.previous(object, name).await?;
        match self.source_now(object, name).await? {
            None => return Ok(Published::Done(Outcome::Skipped(Skip::Gone))),
            Some(now) if !lifecycle::same_version(&now, source.etag, source.version_id) => {
                return Ok(Published::Done(Outcome::Skipped(Skip::Superseded)))
            }
            Some(_) => {}
        }
        self.check_collisions(object, name, &keys, &previous)
            .await?;
        let manifest_key = manifest_key(&c.output_prefix, &object.key);
        let same_content =
            previous.etag.as_deref() == Some(etag) && previous.plan.as_deref() == Some(fingerprint);
        if previous.exists && !same_content && !previous.keys.is_disjoint(&keys) {
            // In place: no manifest may describe outputs being replaced.
            self.store
                .delete(&c.output_bucket, &manifest_key)
                .await
                .map_err(|e| failed(name, Cause::during("removing the previous manifest", e)))?;
        }
        let metadata = self.metadata(object, source, fingerprint);
        let outcome = self
            .write(
                object,
                &manifest_key,
                &names,
                &files,
                &output,
                manifest,
                metadata,
            )
            .await;
        times.write_ms = ms(t.elapsed());
        if !matches!(outcome, Outcome::Processed { .. }) {
            return Ok(Published::Done(outcome));
        }
        match self.source_now(object, name).await? {
            None => return Ok(Published::Changed { gone: true }),
            Some(now) if !lifecycle::same_version(&now, source.etag, source.version_id) => {
                return Ok(Published::Changed { gone: false })
            }
            Some(_) => {}
        }
        let removed = self.remove_stale(object, name, &previous, &keys).await;
        if removed > 0 {
            tracing::info!(object = %name, removed, "deleted the outputs the previous manifest listed and this one does not");
        }
        times.write_ms = ms(t.elapsed());
        Ok(Published::Done(outcome))
    }

    /// Why the outputs of `key` cannot be written (S3's key length limit),
    /// checked before anything is read: the manifest, every variant, and
    /// with videos on every rendition.
    fn output_key_limit(&self, key: &str) -> Option<String> {
        let prefix = &self.config.output_prefix;
        let mut longest = longest_output_key(prefix, key, &self.plan);
        if let Some(video) = &self.config.video {
            for r in video.plan.renditions() {
                longest = longest.max(self.plan.keys().rendered_len(
                    prefix,
                    &r.name,
                    key,
                    mediaflow_video::RENDITION_EXT,
                ));
            }
        }
        output_key_limit(key, longest)
    }

    /// Metadata every output and the manifest carry.
    fn metadata(
        &self,
        object: &SourceObject,
        source: &SourceRef<'_>,
        fingerprint: &str,
    ) -> BTreeMap<String, String> {
        let mut metadata = BTreeMap::new();
        metadata.insert(META_OUTPUT.to_string(), "1".to_string());
        // S3 allows 2 KB of user metadata in all: a key whose encoding is
        // longer is left out (the manifest names the source in full).
        let encoded_key = lifecycle::encoded_source_key(&object.key);
        if encoded_key.len() <= META_SOURCE_KEY_MAX_BYTES {
            metadata.insert(META_SOURCE_KEY.to_string(), encoded_key);
        }
        if let Some(etag) = source.etag {
            metadata.insert(META_SOURCE_ETAG.to_string(), etag.to_string());
        }
        if let Some(v) = source.version_id {
            metadata.insert(META_SOURCE_VERSION.to_string(), v.to_string());
        }
        metadata.insert(META_PLAN.to_string(), fingerprint.to_string());
        metadata
    }

    /// The whole object in memory (images only), bounded by the image limit.
    async fn fetch(
        &self,
        object: &SourceObject,
        name: &str,
    ) -> Result<(ObjectInfo, Source), Outcome> {
        let limit = self.plan.limits().max_input_bytes;
        match self.store.get(&object.bucket, &object.key, limit).await {
            Ok(o) => Ok((o.info, Source::Memory(o.body))),
            Err(StoreError::NotFound(_)) => Err(Outcome::Skipped(Skip::Gone)),
            // Over the image limit: only a video (forwarded) can go on.
            Err(e @ StoreError::TooLarge { .. }) if self.config.video_queue.is_some() => {
                let too_large = ObjectError::new(name, Cause::during("reading the source", e));
                let read = async {
                    let info = self.store.head(&object.bucket, &object.key).await?;
                    let head = self
                        .store
                        .get_head(&object.bucket, &object.key, media::HEAD_BYTES)
                        .await?;
                    Ok::<_, StoreError>(info.map(|info| (info, head)))
                };
                match read.await {
                    Ok(Some((info, head))) => Ok((info, Source::Head(head, too_large))),
                    Ok(None) | Err(StoreError::NotFound(_)) => Err(Outcome::Skipped(Skip::Gone)),
                    Err(e) => Err(failed(name, Cause::during("reading the source", e))),
                }
            }
            Err(e) => Err(failed(name, Cause::during("reading the source", e))),
        }
    }

    /// The object streamed into a fresh work directory, bounded by the
    /// larger of the image and video limits (which one applies is known
    /// once its first bytes are).
    async fn fetch_to_file(
        &self,
        object: &SourceObject,
        name: &str,
        video: &VideoSettings,
    ) -> Result<(ObjectInfo, Source), Outcome> {
        let dir = tempfile::Builder::new()
            .prefix("mediaflow-")
            .tempdir_in(&video.work_root)
            .map_err(|e| {
                failed(
                    name,
                    MediaError::internal(format!(
                        "cannot create a work directory in {}: {e}",
                        video.work_root.display()
                    )),
                )
            })?;
        let path = dir.path().join("source");
        let limit = video
            .plan
            .limits()
            .max_input_bytes
            .max(self.plan.limits().max_input_bytes);
        match self
            .store
            .get_to_file(&object.bucket, &object.key, &path, limit)
            .await
        {
            Ok(info) => Ok((info, Source::File(Arc::new(dir), path))),
            Err(StoreError::NotFound(_)) => Err(Outcome::Skipped(Skip::Gone)),
            Err(e) => Err(failed(name, Cause::during("reading the source", e))),
        }
    }

    /// Memory for work whose estimate is `need`, held until the returned
    /// admission is dropped; `None` without a budget (or an estimate).
    async fn admit(&self, name: &str, need: Option<u64>) -> Result<Option<Admission>, ObjectError> {
        match (&self.memory, need) {
            (Some(budget), Some(need)) => budget
                .admit(need)
                .await
                .map(Some)
                .map_err(|reason| ObjectError::new(name, MediaError::limits(reason))),
            _ => Ok(None),
        }
    }

    /// The image engine on bytes in memory, once its estimated memory fits
    /// the budget. A video given to a pipeline without the video path fails
    /// with where it belongs.
    async fn image(
        &self,
        name: &str,
        body: Bytes,
        slot: OwnedSemaphorePermit,
        stop: &Stop,
    ) -> Result<Made, ObjectError> {
        let video_here = self.config.video.is_some();
        let head = body.slice(..body.len().min(64));
        let image_error = |e: MediaError| {
            match mediaflow_video::sniff(&head) {
            Some(container) if !video_here && container != Container::Gif => ObjectError::new(
                name,
                MediaError::unsupported(format!(
                    "a video ({container}); this function handles images: send video uploads to the transcode function ({})",
                    e.message()
                )),
            ),
            _ => ObjectError::new(name, e),
        }
        };
        let need = match self.memory {
            Some(_) => {
                let (plan, body) = (Arc::clone(&self.plan), body.clone());
                let estimate = self
                    .blocking(name, "the estimate task", move || {
                        Prepared::Image(body).memory(&media_of(&plan, None))
                    })
                    .await?;
                Some(estimate.map_err(&image_error)?)
            }
            None => None,
        };
        let memory = self.admit(name, need).await?;
        let plan = Arc::clone(&self.plan);
        let stop = stop.clone();
        let produced = self
            .blocking(name, "the engine task", move || {
                let _held = (slot, memory);
                // An image needs no work directory.
                let media = media_of(&plan, None);
                Prepared::Image(body).process(&media, std::path::Path::new(""), None, &stop)
            })
            .await?;
        match produced.map_err(image_error)? {
            Produced::Image(output) => Ok(Made::Image(output)),
            Produced::Video(_) => Err(ObjectError::new(
                name,
                MediaError::internal("an image in memory came out a video"),
            )),
        }
    }

    /// A source on disk: a video (or an animated GIF, when so
    /// configured) goes through ffprobe/ffmpeg; anything else is read
    /// into memory, within the image limit, for the image engine. Either
    /// starts once its estimated memory fits the budget (see
    /// [`crate::media`] for the steps).
    async fn on_disk(
        &self,
        name: &str,
        dir: Arc<tempfile::TempDir>,
        path: PathBuf,
        stop_at: Option<Instant>,
        slot: OwnedSemaphorePermit,
        stop: &Stop,
    ) -> Result<Made, ObjectError> {
        let video = self
            .config
            .video
            .clone()
            .expect("a file only with video on");
        let plan = Arc::clone(&self.plan);
        let budgeted = self.memory.is_some();
        // The tasks own the slot and the work directory too: if this
        // future is dropped at the deadline, the running task (whose ffmpeg
        // the same deadline kills) holds the slot until it ends and then
        // removes the directory.
        let task_dir = Arc::clone(&dir);
        let (v, p) = (video.clone(), Arc::clone(&plan));
        let (prepared, slot, task_dir) = self
            .blocking(name, "the video task", move || {
                let media = media_of(&p, Some(&v));
                let prepared = media::prepare(&path, &media, stop_at).and_then(|prepared| {
                    let need = budgeted.then(|| prepared.memory(&media)).transpose()?;
                    Ok((prepared, need))
                });
                (prepared, slot, task_dir)
            })
            .await?;
        let (prepared, need) = prepared.map_err(|e| ObjectError::new(name, e))?;
        let memory = self.admit(name, need).await?;
        let stop = stop.clone();
        let made = self
            .blocking(
                name,
                "the video task",
                move || -> Result<Made, MediaError> {
                    let _held = (slot, memory);
                    let media = media_of(&plan, Some(&video));
                    // Renditions go beside the source; an image needs no directory.
                    let work = task_dir.path().join("out");
                    if matches!(prepared, Prepared::Video { .. }) {
                        std::fs::create_dir(&work).map_err(|e| {
                            MediaError::internal(format!("creating {}: {e}", work.display()))
                        })?;
                    }
                    Ok(match prepared.process(&media, &work, stop_at, &stop)? {
                        Produced::Video(output) => Made::Video(output, task_dir),
                        Produced::Image(output) => Made::Image(output),
                    })
                },
            )
            .await?;
        drop(dir);
        made.map_err(|e| ObjectError::new(name, e))
    }

    /// Runs `work` on the blocking pool; a panic in it is an internal
    /// failure of `what`.
    async fn blocking<T: Send + 'static>(
        &self,
        name: &str,
        what: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ObjectError> {
        tokio::task::spawn_blocking(work).await.map_err(|join| {
            ObjectError::new(name, MediaError::internal(format!("{what} failed: {join}")))
        })
    }

    /// Writes the files (renditions), the poster or image variants, then
    /// the manifest.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        object: &SourceObject,
        manifest_key: &str,
        names: &OutputNames<'_>,
        files: &[(String, PathBuf, u64)],
        output: &Output,
        manifest: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Outcome {
        let c = &self.config;
        let name = &object.to_string();
        let key = |v: &mediaflow_engine::EncodedVariant| names.key(&v.name, v.format.extension());
        let variant_options = |content_type: &str| PutOptions {
            content_type: Some(content_type.to_string()),
            cache_control: Some(self.plan.output_cache_control().to_string()),
            metadata: metadata.clone(),
        };
        let bytes_out: u64 = output
            .variants
            .iter()
            .map(|v| v.data.len() as u64)
            .sum::<u64>()
            + files.iter().map(|(_, _, bytes)| bytes).sum::<u64>();
        let puts = output.variants.iter().map(|v| {
            let key = key(v);
            let options = variant_options(v.format.mime_type());
            let body = Bytes::copy_from_slice(&v.data);
            async move {
                self.store
                    .put(&c.output_bucket, &key, body, &options)
                    .await
                    .map_err(|e| {
                        ObjectError::new(
                            name,
                            Cause::during(&format!("writing {}", escape_key(&key)), e),
                        )
                    })
            }
        });
        let file_puts = files.iter().map(|(key, path, _)| {
            let options = variant_options("video/mp4");
            async move {
                self.store
                    .put_file(&c.output_bucket, key, path, &options)
                    .await
                    .map_err(|e| {
                        ObjectError::new(
                            name,
                            Cause::during(&format!("writing {}", escape_key(key)), e),
                        )
                    })
            }
        });
        let (a, b) = futures::future::join(
            futures::future::join_all(puts),
            futures::future::join_all(file_puts),
        )
        .await;
        if let Some(Err(e)) = a.into_iter().chain(b).find(Result::is_err) {
            return Outcome::Failed(e);
        }
        let options = PutOptions {
            content_type: Some("application/json".to_string()),
            cache_control: Some(MANIFEST_CACHE_CONTROL.to_string()),
            metadata,
        };
        if let Err(e) = self
            .store
            .put(
                &c.output_bucket,
                manifest_key,
                Bytes::from(manifest),
                &options,
            )
            .await
        {
            return failed(
                name,
                Cause::during(&format!("writing {}", escape_key(manifest_key)), e),
            );
        }
        Outcome::Processed {
            manifest_key: manifest_key.to_string(),
            variants: output.variants.len() + files.len(),
            bytes_out,
        }
    }
}

/// What `run` learnt about an object, kept even when it is cut short.
#[derive(Default)]
struct Seen {
    times: StageTimes,
    bytes_in: u64,
    /// The ETag of the bytes read (or the event's).
    etag: Option<String>,
}

/// Where a fetched source is.
enum Source {
    Memory(Bytes),
    /// In its own work directory, removed when the last holder drops it.
    File(Arc<tempfile::TempDir>, PathBuf),
    /// Only its first bytes: it is over the image limit, so it can only be
    /// forwarded (a video) or fail with this error.
    Head(Bytes, ObjectError),
}

/// What publishing ended with.
enum Published {
    Done(Outcome),
    /// The source changed (or went, `gone`) while the outputs were written.
    Changed {
        gone: bool,
    },
}

/// How often one event reconciles a key whose source keeps changing under
/// it before it gives up (retryably).
const RECONCILE_ROUNDS: usize = 3;

/// A source whose first bytes are no image or video format mediaflow reads:
/// permanent, and sent to the dead-letter queue rather than acknowledged
/// (an operator should see what is being uploaded).
fn not_media(name: &str, head: &[u8]) -> ObjectError {
    let shown: String = head
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    ObjectError {
        retry: Retry::DeadLetter,
        ..ObjectError::new(
            name,
            MediaError::unsupported(format!(
                "neither an image nor a video mediaflow reads (first bytes: {})",
                if shown.is_empty() {
                    "none, the object is empty".to_string()
                } else {
                    shown
                }
            )),
        )
    }
}

/// What a source may become: the image plan, and the video path when on.
fn media_of<'a>(plan: &'a Plan, video: Option<&'a VideoSettings>) -> Media<'a> {
    Media {
        image: plan,
        video: video.map(|v| VideoMedia {
            plan: &v.plan,
            tools: &v.tools,
        }),
    }
}

/// The outcome of an object that failed because of `cause`.
fn failed(object: &str, cause: impl Into<Cause>) -> Outcome {
    Outcome::Failed(ObjectError::new(object, cause))
}

/// One log line per object; keys escaped ([`escape_key`]), so a key with a
/// newline cannot forge a line of a text-format log.
fn log_report(r: &ObjectReport) {
    let object = object_url(&r.bucket, &r.key);
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
            manifest = %escape_key(manifest_key),
            "processed"
        ),
        Outcome::Skipped(why) => tracing::info!(object = %object, reason = why.as_str(), "skipped"),
        Outcome::Removed {
            manifest_key,
            outputs,
        } => tracing::info!(
            object = %object,
            outputs,
            manifest = %escape_key(manifest_key),
            "removed its outputs (the source was deleted)"
        ),
        Outcome::Forwarded { queue } => {
            tracing::info!(object = %object, queue = %queue, "a video: forwarded to the video queue")
        }
        Outcome::Failed(e) if !e.is_permanent() => tracing::warn!(
            object = %object,
            category = e.category.as_str(),
            retryable = true,
            "{e}"
        ),
        Outcome::Failed(e) => tracing::error!(
            object = %object,
            category = e.category.as_str(),
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
