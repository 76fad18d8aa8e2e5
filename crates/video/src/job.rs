//! One video source: probe, limits, time check, renditions, poster.

use crate::error::{corrupt, internal, limits, timeout, Result};
use crate::plan::{Rendition, VideoLimits, VideoPlan};
use crate::probe::{probe, Probe};
use crate::sniff::Container;
use crate::tools::{failure, or_a_day, run, Input, Tools};
use mediaflow_engine::Plan;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One MP4 written to the work directory, with what ffprobe says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionOutput {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub bitrate: u64,
}

/// Milliseconds per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VideoTimings {
    pub probe_ms: f64,
    pub transcode_ms: f64,
    pub poster_ms: f64,
    pub total_ms: f64,
}

/// Everything made from one video source.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOutput {
    pub container: Container,
    pub probe: Probe,
    pub renditions: Vec<RenditionOutput>,
    /// The poster frame through the image engine: its variants, placeholder
    /// and facts.
    pub poster: mediaflow_engine::Output,
    /// Seconds into the clip the poster was taken at.
    pub poster_at: f64,
    pub timings: VideoTimings,
}

/// x264 `medium` throughput assumed by [`estimate`], output pixels per
/// second. Measured on a 2-core x86_64 machine at about 75 MP/s for 720p
/// (ffmpeg 5.1, synthetic content); a third of that leaves room for real
/// footage and smaller Lambda functions.
const MEDIUM_PIXELS_PER_SECOND: f64 = 25e6;
/// Decoding throughput assumed by [`estimate`], source pixels per second.
const DECODE_PIXELS_PER_SECOND: f64 = 200e6;

/// A conservative estimate of the time `plan` takes on `probe`'s clip.
pub fn estimate(probe: &Probe, plan: &VideoPlan) -> Duration {
    let fps = if probe.video.frame_rate > 0.0 {
        probe.video.frame_rate.min(240.0)
    } else {
        30.0
    };
    let frames = probe.duration_seconds * fps;
    let (dw, dh) = probe.display_size();
    let source_pixels = f64::from(probe.video.width) * f64::from(probe.video.height);
    let mut seconds = 1.0;
    for r in plan.renditions() {
        let (w, h) = r.output_size(dw, dh);
        seconds += frames * source_pixels / DECODE_PIXELS_PER_SECOND;
        seconds += frames * f64::from(w) * f64::from(h)
            / (MEDIUM_PIXELS_PER_SECOND * r.preset.relative_speed());
    }
    Duration::from_secs_f64(seconds)
}

/// ffmpeg's fixed memory per run (libraries, demuxer and muxer state).
const FFMPEG_BASE_BYTES: u64 = 64 << 20;
/// H.264 decoding, per source pixel (reference frames and per-thread
/// frame buffers).
const DECODE_BYTES_PER_PIXEL: u64 = 24;
/// libx264 per output pixel at one thread (lookahead, reference and
/// analysis buffers), and what each further thread adds.
const X264_BYTES_PER_PIXEL: u64 = 220;
const X264_BYTES_PER_PIXEL_PER_THREAD: u64 = 16;

/// A conservative estimate of the peak memory `plan` takes on `probe`'s
/// clip, for admitting it through a memory budget. Renditions run one
/// after another, so the largest decides; the poster's PNG goes through
/// the image engine afterwards.
///
/// Measured peak RSS of ffmpeg 5.1 (`medium`, 2 cores, x264's default of
/// 1.5 threads per core) against this: 720p to 720p 264 MiB (estimate
/// 321 MiB), 1080p to 1080p 495 MiB (642 MiB), 2160p to 1080p 556 MiB
/// (784 MiB); at 1080p each further x264 thread adds about 20 MiB.
pub fn estimate_memory(probe: &Probe, plan: &VideoPlan) -> u64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let x264_threads = (threads * 3 / 2).clamp(1, 16);
    let (dw, dh) = probe.display_size();
    let source_px = u64::from(probe.video.width) * u64::from(probe.video.height);
    let renditions = plan
        .renditions()
        .iter()
        .map(|r| {
            let (w, h) = r.output_size(dw, dh);
            let out_px = u64::from(w) * u64::from(h);
            FFMPEG_BASE_BYTES
                + source_px * DECODE_BYTES_PER_PIXEL
                + out_px * (X264_BYTES_PER_PIXEL + X264_BYTES_PER_PIXEL_PER_THREAD * x264_threads)
        })
        .max()
        .unwrap_or(FFMPEG_BASE_BYTES);
    // The poster: one RGBA frame at display size, decoded, resized and
    // encoded by the engine (a few working copies).
    let poster = FFMPEG_BASE_BYTES + u64::from(dw) * u64::from(dh) * 4 * 4;
    renditions.max(poster)
}

/// Probes `input` as the sniffed `container` (counting frames for GIFs,
/// whose animation decides whether they are videos), stopping ffprobe at
/// `deadline` if given.
pub fn probe_source(
    tools: &Tools,
    input: &Path,
    container: Container,
    limits: &VideoLimits,
    deadline: Option<Instant>,
) -> Result<Probe> {
    let input = Input {
        path: input,
        container,
        max_pixels: limits.max_pixels,
    };
    probe(
        tools,
        input,
        container == Container::Gif,
        or_a_day(deadline),
    )
}

/// The most frames a rendition may have: the duration limit at 240 fps
/// (the fastest rate [`estimate`] plans for). Output frames are never
/// duplicated (`-fps_mode vfr`), so only a source that really has more
/// frames than this reaches it.
fn max_frames(l: &VideoLimits) -> u64 {
    (l.max_duration_seconds * 240.0).ceil() as u64 + 1
}

/// The largest rendition written: no bigger than the largest accepted
/// source (H.264 at web settings is far smaller than any real source).
fn max_output_bytes(l: &VideoLimits) -> u64 {
    l.max_input_bytes
}

/// A rendition checked against the limits the source had to meet: a
/// header that lied (a Matroska duration of 1 s on a 700 s clip) is
/// caught here, before the rendition is uploaded.
fn check_rendition(name: &str, facts: &Probe, source: &Probe, l: &VideoLimits) -> Result<()> {
    // `-t` cuts the output at the limit; reaching it means the source
    // was at least that long, whatever its header said.
    if facts.duration_seconds >= l.max_duration_seconds - 0.05 {
        return Err(limits(format!(
            "the clip lasts at least {:.1} s (its header says {:.1} s), over the limit of {} s",
            facts.duration_seconds, source.duration_seconds, l.max_duration_seconds
        )));
    }
    let pixels = u64::from(facts.video.width) * u64::from(facts.video.height);
    if pixels > l.max_pixels {
        return Err(limits(format!(
            "{name}: ffmpeg wrote {}x{} frames, over the limit of {} pixels",
            facts.video.width, facts.video.height, l.max_pixels
        )));
    }
    if facts.bytes >= max_output_bytes(l) {
        return Err(limits(format!(
            "{name}: the rendition reached {} bytes, the output limit",
            facts.bytes
        )));
    }
    Ok(())
}

/// Whether a probed source takes the video path: always for real video
/// containers; for GIFs only when animated and the plan says so.
pub fn is_video(container: Container, probe: &Probe, plan: &VideoPlan) -> bool {
    container != Container::Gif || (plan.animated_gif() && probe.frames.unwrap_or(1) > 1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one video source is processed with.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub tools: &'a Tools,
    pub plan: &'a VideoPlan,
    /// The poster frame goes through this plan (the image variants).
    pub image_plan: &'a Plan,
    /// Where the renditions and the poster frame are written; the caller
    /// owns (and removes) it.
    pub work_dir: &'a Path,
    /// When to stop, already less the caller's reserve.
    pub deadline: Option<Instant>,
}

impl Job<'_> {
    /// Transcodes a probed source: every rendition, then the poster frame
    /// through the image engine. A clip whose [`estimate`] does not fit
    /// before the deadline is not started, and a running ffmpeg is killed
    /// when the deadline passes; both fail as retryable timeouts.
    pub fn run(&self, input: &Path, container: Container, probe: Probe) -> Result<VideoOutput> {
        let started = Instant::now();
        let deadline = or_a_day(self.deadline);
        self.check_time(&probe, started, deadline)?;
        let source = Input {
            path: input,
            container,
            max_pixels: self.plan.limits().max_pixels,
        };
        let t = Instant::now();
        let renditions = self
            .plan
            .renditions()
            .iter()
            .map(|r| self.rendition(source, &probe, r, deadline))
            .collect::<Result<Vec<_>>>()?;
        let transcode_ms = ms(t.elapsed());
        let t = Instant::now();
        let (poster, poster_at) = self.poster(source, &probe, deadline)?;
        let poster_ms = ms(t.elapsed());
        Ok(VideoOutput {
            container,
            probe,
            renditions,
            poster,
            poster_at,
            timings: VideoTimings {
                probe_ms: 0.0,
                transcode_ms,
                poster_ms,
                total_ms: ms(started.elapsed()),
            },
        })
    }

    /// The probe within the limits, and the clip's estimated transcoding
    /// time within what is left before the deadline.
    fn check_time(&self, probe: &Probe, started: Instant, deadline: Instant) -> Result<()> {
        probe.check(self.plan.limits())?;
        let needed = estimate(probe, self.plan);
        let left = deadline.saturating_duration_since(started);
        if needed > left {
            let (w, h) = probe.display_size();
            return Err(timeout(format!(
                "a {:.1} s {w}x{h} clip needs about {:.0} s to transcode but only {:.0} s are left before the deadline; not starting (will be retried; give the function a longer timeout or more memory, or lower the limits)",
                probe.duration_seconds,
                needed.as_secs_f64(),
                left.as_secs_f64()
            )));
        }
        Ok(())
    }

    /// One rendition, transcoded into the work directory, then probed and
    /// checked against what was asked for.
    fn rendition(
        &self,
        source: Input<'_>,
        probe: &Probe,
        r: &Rendition,
        deadline: Instant,
    ) -> Result<RenditionOutput> {
        let limits = self.plan.limits();
        let out = self.work_dir.join(format!("{}.mp4", r.name));
        transcode(self.tools, source, probe, r, limits, &out, deadline)?;
        let written = Input {
            path: &out,
            container: Container::Mp4,
            max_pixels: limits.max_pixels,
        };
        let facts = crate::probe::probe(self.tools, written, false, deadline).map_err(|e| {
            internal(format!(
                "{}: ffmpeg wrote an unreadable MP4: {}",
                r.name,
                e.message()
            ))
        })?;
        check_rendition(&r.name, &facts, probe, limits)?;
        Ok(RenditionOutput {
            name: r.name.clone(),
            path: out,
            bytes: facts.bytes,
            width: facts.video.width,
            height: facts.video.height,
            duration_seconds: facts.duration_seconds,
            video_codec: facts.video.codec,
            audio_codec: facts.audio.map(|a| a.codec),
            bitrate: facts.bitrate,
        })
    }

    /// The poster frame (the first frame when the plan's moment cannot be
    /// decoded) through the image engine, and the moment it was taken at.
    fn poster(
        &self,
        source: Input<'_>,
        probe: &Probe,
        deadline: Instant,
    ) -> Result<(mediaflow_engine::Output, f64)> {
        let display = probe.display_size();
        let at = self
            .plan
            .poster_at()
            .resolve(probe.duration_seconds, probe.video.frame_rate);
        let frame = self.work_dir.join("poster.png");
        let mut png = extract_frame(self.tools, source, at, display, &frame, deadline)?;
        let mut poster_at = at;
        if png.is_empty() && at > 0.0 {
            // Some files cannot be seeked near their end: take the first frame.
            png = extract_frame(self.tools, source, 0.0, display, &frame, deadline)?;
            poster_at = 0.0;
        }
        if png.is_empty() {
            return Err(corrupt("ffmpeg decoded no frame for the poster"));
        }
        let poster = mediaflow_engine::process(&png, self.image_plan)
            .map_err(|e| e.context("poster frame"))?;
        Ok((poster, poster_at))
    }
}

/// The ffmpeg arguments for one rendition (ffmpeg's autorotation turns
/// the picture upright first, so `display` is the size filters see).
/// Besides the encoding settings, every run is bounded by the limits:
/// the output is cut at the duration limit (`-t`) and the output size
/// limit (`-fs`), frames are never duplicated to fill timestamp gaps
/// (`-fps_mode vfr`) and capped in number (`-frames:v`).
pub fn rendition_args(
    input: &Path,
    container: Container,
    probe: &Probe,
    r: &Rendition,
    limits: &VideoLimits,
    display: (u32, u32),
    out: &Path,
) -> Vec<OsString> {
    let input = Input {
        path: input,
        container,
        max_pixels: limits.max_pixels,
    };
    let (w, h) = r.output_size(display.0, display.1);
    let mut a: Vec<OsString> = ["-nostdin", "-hide_banner", "-v", "error", "-y"]
        .map(OsString::from)
        .to_vec();
    a.extend(input.args());
    let mut push = |v: &[&str]| a.extend(v.iter().map(OsString::from));
    push(&["-map", "0:v:0"]);
    let audio = probe.audio.as_ref().filter(|_| r.audio);
    if audio.is_some() {
        push(&["-map", "0:a:0"]);
    }
    let vf = format!("scale={w}:{h}:flags=lanczos,setsar=1,format=yuv420p");
    push(&["-vf", &vf]);
    push(&[
        "-c:v",
        "libx264",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-preset",
        r.preset.as_str(),
        "-crf",
        &r.crf.to_string(),
    ]);
    if let Some(max) = r.max_bitrate_kbps {
        push(&[
            "-maxrate",
            &format!("{max}k"),
            "-bufsize",
            &format!("{}k", max * 2),
        ]);
    }
    match audio {
        Some(s) => {
            push(&["-c:a", "aac", "-b:a", &format!("{}k", r.audio_bitrate_kbps)]);
            if s.channels > 2 {
                push(&["-ac", "2"]);
            }
        }
        None => push(&["-an"]),
    }
    push(&[
        "-t",
        &format!("{}", limits.max_duration_seconds),
        "-fs",
        &max_output_bytes(limits).to_string(),
        "-fps_mode",
        "vfr",
        "-frames:v",
        &max_frames(limits).to_string(),
    ]);
    push(&[
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]);
    a.push(out.as_os_str().to_owned());
    a
}

fn transcode(
    tools: &Tools,
    source: Input<'_>,
    probe: &Probe,
    r: &Rendition,
    limits: &VideoLimits,
    out: &Path,
    deadline: Instant,
) -> Result<()> {
    let display = probe.display_size();
    let args = rendition_args(
        source.path,
        source.container,
        probe,
        r,
        limits,
        display,
        out,
    );
    tracing::debug!(rendition = %r.name, ?args, "ffmpeg");
    let done = run(Command::new(&tools.ffmpeg).args(&args), deadline)?;
    if !done.status.success() {
        return Err(failure(&format!("ffmpeg ({})", r.name), &done, corrupt));
    }
    Ok(())
}

/// One upright frame at `at` seconds as PNG bytes (empty when the decoder
/// produced no frame there).
fn extract_frame(
    tools: &Tools,
    input: Input<'_>,
    at: f64,
    display: (u32, u32),
    out: &Path,
    deadline: Instant,
) -> Result<Vec<u8>> {
    let _ = std::fs::remove_file(out);
    let (w, h) = display;
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-ss"])
        .arg(format!("{at:.3}"))
        .args(input.args())
        .args(["-map", "0:v:0", "-frames:v", "1", "-vf"])
        .arg(format!("scale={w}:{h}:flags=lanczos,setsar=1"))
        .args(["-pix_fmt", "rgb24", "-c:v", "png", "-f", "image2"])
        .arg(out);
    let done = run(&mut cmd, deadline)?;
    if !done.status.success() {
        return Err(failure("ffmpeg (poster)", &done, corrupt));
    }
    match std::fs::read(out) {
        Ok(png) => Ok(png),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(internal(format!("reading the poster frame: {e}"))),
    }
}
