//! One source file in, outputs out: the decisions every entry point shares.
//!
//! Steps, in order:
//! 1. [`prepare`]: read the first bytes and sniff them. A video container
//!    (or an animated GIF, when the video plan asks for them) is checked
//!    against the video byte limit and probed with ffprobe; a probe that
//!    shows no video (a still GIF) falls through to the image path, which
//!    checks the image byte limit before reading the file into memory.
//! 2. [`Prepared::memory`]: the estimated peak memory, for a
//!    [`MemoryBudget`] to admit before any decoding starts.
//! 3. [`Prepared::process`]: the image engine, or the video job (every
//!    rendition, then the poster through the image engine).
//!
//! [`process_file`] runs the three steps on the calling thread, admitting
//! through a budget by blocking: `mediaflow process` calls it on its rayon
//! workers. The pipeline runs the same steps on tokio's blocking pool, and
//! waits for its budget asynchronously between steps 1 and 3.
//!
//! Everything here is synchronous CPU or subprocess work: never call it on
//! an async runtime's worker thread.

use crate::budget::MemoryBudget;
use bytes::Bytes;
use mediaflow_engine::{MediaError, Output, Plan, Stop};
use mediaflow_video::{Container, Probe, Tools, VideoOutput, VideoPlan};
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bytes read from the start of a file to sniff its format.
pub const HEAD_BYTES: u64 = 64;

/// What a source may become: the image plan, and the video path when this
/// entry point handles videos.
#[derive(Debug, Clone, Copy)]
pub struct Media<'a> {
    pub image: &'a Plan,
    pub video: Option<VideoMedia<'a>>,
}

/// The video plan and the tools that carry it out.
#[derive(Debug, Clone, Copy)]
pub struct VideoMedia<'a> {
    pub plan: &'a VideoPlan,
    pub tools: &'a Tools,
}

/// A source, sniffed (and probed if a video), ready to process.
#[derive(Debug)]
pub enum Prepared {
    /// An image, read into memory within the image byte limit.
    Image(Bytes),
    /// A video (or animated GIF) that stays on disk for ffmpeg.
    Video {
        path: PathBuf,
        container: Container,
        probe: Box<Probe>,
        probe_ms: f64,
    },
}

/// What processing gave.
#[derive(Debug)]
pub enum Produced {
    Image(Box<Output>),
    Video(Box<VideoOutput>),
}

/// What a source is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A format the image engine reads (a GIF, unless GIFs are videos).
    Image,
    /// A video container, or a GIF when animated GIFs become videos.
    Video(Container),
    /// Neither: not media mediaflow handles, whatever its key says.
    Neither,
}

/// The one routing decision, from the first [`HEAD_BYTES`] bytes (the key's
/// extension plays no part): on-upload forwards videos to the transcode
/// queue, `mediaflow dev` picks a function by it, and content that is
/// neither fails permanently.
pub fn kind_of(head: &[u8], animated_gif_as_video: bool) -> Kind {
    match mediaflow_video::sniff(head) {
        Some(Container::Gif) if !animated_gif_as_video => Kind::Image,
        Some(container) => Kind::Video(container),
        None if mediaflow_engine::sniff(head).is_ok() => Kind::Image,
        None => Kind::Neither,
    }
}

/// The first [`HEAD_BYTES`] bytes of a file (fewer if it is shorter).
pub fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_BYTES as usize);
    fs::File::open(path)?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Reads a file, refusing (before reading) one larger than `max` bytes; a
/// file that grows while it is read is refused too.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, MediaError> {
    let too_big = |len: u64| {
        MediaError::limits(format!(
            "input is {len} bytes, over the limit of {max} bytes"
        ))
    };
    let file = fs::File::open(path).map_err(|e| MediaError::io(format!("cannot open: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| MediaError::io(format!("cannot read metadata: {e}")))?
        .len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| MediaError::io(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Step 1: sniffs the file at `path`; a video is checked against the video
/// byte limit and probed (ffprobe stops at `deadline`), anything else is
/// read for the image engine within the image byte limit.
pub fn prepare(
    path: &Path,
    media: &Media<'_>,
    deadline: Option<Instant>,
) -> Result<Prepared, MediaError> {
    let head = read_head(path).map_err(|e| MediaError::io(format!("cannot read: {e}")))?;
    if let Some(video) = &media.video {
        if let Some(prepared) = prepare_video(path, &head, video, deadline)? {
            return Ok(prepared);
        }
    }
    read_limited(path, media.image.limits().max_input_bytes)
        .map(|bytes| Prepared::Image(Bytes::from(bytes)))
}

/// A video container (a GIF only when animated GIFs are videos), probed;
/// `None` when it is an image after all (a GIF with one frame).
fn prepare_video(
    path: &Path,
    head: &[u8],
    video: &VideoMedia<'_>,
    deadline: Option<Instant>,
) -> Result<Option<Prepared>, MediaError> {
    let Some(container) = mediaflow_video::sniff(head) else {
        return Ok(None);
    };
    if container == Container::Gif && !video.plan.animated_gif() {
        return Ok(None);
    }
    let limit = video.plan.limits().max_input_bytes;
    let len = fs::metadata(path)
        .map_err(|e| MediaError::io(format!("cannot read metadata: {e}")))?
        .len();
    if len > limit {
        return Err(MediaError::limits(format!(
            "input is {len} bytes, over the video limit of {limit} bytes"
        )));
    }
    let started = Instant::now();
    let probe =
        mediaflow_video::probe_source(video.tools, path, container, video.plan.limits(), deadline)?;
    let probe_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !mediaflow_video::is_video(container, &probe, video.plan) {
        return Ok(None);
    }
    Ok(Some(Prepared::Video {
        path: path.to_path_buf(),
        container,
        probe: Box::new(probe),
        probe_ms,
    }))
}

impl Prepared {
    /// Step 2: the estimated peak memory of [`Prepared::process`], from the
    /// image's header or the video's probe. An image the engine would
    /// refuse fails here the same way, before any pixel is allocated.
    pub fn memory(&self, media: &Media<'_>) -> Result<u64, MediaError> {
        match self {
            Prepared::Image(bytes) => mediaflow_engine::estimate_memory(bytes, media.image),
            Prepared::Video { probe, .. } => {
                let video = media
                    .video
                    .as_ref()
                    .ok_or_else(|| MediaError::internal("a video prepared without a video plan"))?;
                Ok(mediaflow_video::estimate_memory(probe, video.plan))
            }
        }
    }

    /// Step 3: the image engine (stopping at its next stage once `stop`
    /// is set), or the video job writing renditions into `work_dir`
    /// (ffmpeg is killed at `deadline`).
    pub fn process(
        self,
        media: &Media<'_>,
        work_dir: &Path,
        deadline: Option<Instant>,
        stop: &Stop,
    ) -> Result<Produced, MediaError> {
        match self {
            Prepared::Image(bytes) => mediaflow_engine::process_with(&bytes, media.image, stop)
                .map(|output| Produced::Image(Box::new(output))),
            Prepared::Video {
                path,
                container,
                probe,
                probe_ms,
            } => {
                let video = media
                    .video
                    .as_ref()
                    .ok_or_else(|| MediaError::internal("a video prepared without a video plan"))?;
                let job = mediaflow_video::Job {
                    tools: video.tools,
                    plan: video.plan,
                    image_plan: media.image,
                    work_dir,
                    deadline,
                };
                let mut output = job.run(&path, container, *probe)?;
                output.timings.probe_ms = probe_ms;
                output.timings.total_ms += probe_ms;
                Ok(Produced::Video(Box::new(output)))
            }
        }
    }
}

/// The three steps on the calling thread: prepare, wait until `budget`
/// admits the estimate (a source that could never fit fails with
/// `limits`), process. Video renditions are written into `work_dir`.
pub fn process_file(
    path: &Path,
    media: &Media<'_>,
    work_dir: &Path,
    deadline: Option<Instant>,
    budget: &MemoryBudget,
) -> Result<Produced, MediaError> {
    let prepared = prepare(path, media, deadline)?;
    let need = prepared.memory(media)?;
    let _memory = budget.admit_blocking(need).map_err(MediaError::limits)?;
    prepared.process(media, work_dir, deadline, &Stop::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_limited_checks_size_first() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        fs::write(&path, vec![0u8; 100]).unwrap();
        assert_eq!(read_limited(&path, 100).unwrap().len(), 100);
        assert_eq!(
            read_limited(&path, 99).unwrap_err().to_string(),
            "limits: input is 100 bytes, over the limit of 99 bytes"
        );
        assert_eq!(
            read_limited(&tmp.path().join("nope"), 9)
                .unwrap_err()
                .kind(),
            "io"
        );
    }

    #[test]
    fn without_a_video_plan_a_clip_is_read_as_an_image() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("clip.mp4");
        let mut mp4 = b"\0\0\0\x18ftypisom\0\0\0\0isommp41".to_vec();
        mp4.resize(200, 0);
        fs::write(&path, &mp4).unwrap();
        let plan = Plan::builtin();
        let media = Media {
            image: &plan,
            video: None,
        };
        match prepare(&path, &media, None).unwrap() {
            Prepared::Image(bytes) => assert_eq!(bytes, mp4.as_slice()),
            other => panic!("{other:?}"),
        }
    }
}
