//! Events in, variants and manifest out.
//!
//! - [`event`]: S3 notifications (direct or as SQS message bodies), S3 test
//!   events and EventBridge "Object Created" events, parsed leniently into
//!   [`SourceObject`]s (keys decoded, non-create events and folder markers
//!   ignored).
//! - [`Pipeline`]: per object, the recursion guard, the idempotency check
//!   (a manifest for this ETag and plan means done), a bounded fetch, the
//!   engine on the blocking thread pool, variants written first and the
//!   manifest last, all within the caller's deadline. With
//!   [`VideoSettings`] (the transcode function, `mediaflow dev`) each
//!   source is streamed to its own work directory instead and sniffed:
//!   videos go through `mediaflow-video` (ffprobe/ffmpeg, killed at the
//!   deadline), the renditions are uploaded from disk, and the directory is
//!   removed afterwards; anything else goes to the image engine.
//! - [`media`]: one source file in, outputs out: sniff, limits, probe,
//!   image engine or video job; `mediaflow process` and the pipeline both
//!   call it.
//! - [`ObjectError`]: a failure in mediaflow's one vocabulary
//!   ([`ErrorKind`]), with whether to retry.
//! - [`MemoryBudget`]: work is admitted when its estimated peak memory
//!   (from the header) fits in what is left of the budget; a source over
//!   the whole budget fails as `limits`.
//! - [`metrics`]: one CloudWatch Embedded Metric Format line per object.
//! - [`backfill`]: which objects of a bucket (or an S3 Inventory report)
//!   need work, decided from listings of the sources and their outputs.
//!
//! This crate knows nothing of Lambda: the functions unwrap their event
//! envelopes and call it.

pub mod backfill;
mod budget;
mod error;
pub mod event;
pub mod media;
pub mod metrics;
mod run;

pub use budget::{Admission, MemoryBudget, FUNCTION_OVERHEAD_MIB};
pub use error::{Cause, ObjectError, Retry};
pub use event::{
    decode_s3_key, encode_s3_key, parse_body, parse_payload, EventError, Notification,
    S3Notification, SourceObject,
};
pub use mediaflow_engine::{ErrorKind, MediaError};
pub use run::{
    retired_key, ObjectReport, Outcome, Pipeline, PipelineConfig, Skip, StageTimes, VideoSettings,
    MANIFEST_CACHE_CONTROL, META_OUTPUT, META_PLAN, META_SOURCE_ETAG, META_SOURCE_KEY,
    META_SOURCE_VERSION,
};
