//! mediaflow's video path.
//!
//! A video source on disk in, H.264/AAC MP4 renditions and a poster frame
//! out, by running `ffprobe` and `ffmpeg` as subprocesses (each bounded by
//! the caller's deadline). The poster frame goes through the image engine
//! ([`mediaflow_engine::process`]), so it gets the same variants,
//! placeholder and manifest shape as a photo.
//!
//! 1. [`sniff`] the first bytes: MP4, MOV, WebM, Matroska, GIF.
//! 2. [`probe_source`]: duration, streams, rotation (GIF: frame count).
//! 3. [`Job::run`]: limits, the time check ([`estimate`]), each rendition
//!    (`+faststart`, yuv420p, even dimensions, capped size, CRF/preset),
//!    each one ffprobed back, then the poster.
//! 4. [`VideoManifest::build`].
//!
//! No async, no AWS; the filesystem only in the caller's work directory.

mod error;
mod job;
pub mod manifest;
mod plan;
mod probe;
mod sniff;
mod tools;

pub use error::{ErrorKind, MediaError, Result};
pub use job::{
    estimate, estimate_memory, is_video, probe_source, rendition_args, Job, RenditionOutput,
    VideoOutput, VideoTimings,
};
pub use manifest::{rendition_key, VideoManifest, RENDITION_EXT};
pub use plan::{PosterAt, Preset, Rendition, VideoLimits, VideoPlan};
pub use probe::{parse as parse_probe, AudioStream, Probe, VideoStream};
pub use sniff::{sniff, Container};
pub use tools::{Tools, DEFAULT_FFMPEG};

/// The video path's version, recorded in manifests and fingerprints.
pub const VIDEO_VERSION: &str = env!("CARGO_PKG_VERSION");
