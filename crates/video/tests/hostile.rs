//! Uploads crafted to attack the video path (issue 13), each built here
//! with Debian's ffmpeg the way an attacker would build it, and run
//! through the same calls the pipeline makes.

use mediaflow_engine::Plan;
use mediaflow_video::{
    probe_source, sniff, Container, ErrorKind, Job, Rendition, Tools, VideoLimits, VideoPlan,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tools() -> Tools {
    let tools = Tools::new("ffmpeg", None);
    tools
        .check()
        .expect("ffmpeg and ffprobe on the PATH (scripts/deps installs them)");
    tools
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

/// Runs ffmpeg with `args` (a fixture generator, not the code under test).
fn ffmpeg(dir: &Path, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn plan(limits: VideoLimits) -> VideoPlan {
    let mut r = Rendition::new("small");
    r.max_height = Some(64);
    r.audio = false;
    VideoPlan::new(
        vec![r],
        mediaflow_video::PosterAt::Seconds(0.0),
        limits,
        false,
    )
    .unwrap()
}

/// The job as the pipeline runs it: sniff, probe, transcode, poster.
fn run(
    path: &Path,
    plan: &VideoPlan,
) -> Result<mediaflow_video::VideoOutput, mediaflow_video::MediaError> {
    let tools = tools();
    let head = std::fs::read(path).unwrap();
    let container = sniff(&head[..head.len().min(64)]).expect("sniffed as a video");
    let probe = probe_source(&tools, path, container, plan.limits(), Some(soon()))?;
    let work = path.with_extension("out");
    std::fs::create_dir_all(&work).unwrap();
    let image_plan = Plan::builtin();
    Job {
        tools: &tools,
        plan,
        image_plan: &image_plan,
        work_dir: &work,
        deadline: Some(soon()),
    }
    .run(path, container, probe)
}

/// A "video" that is a DASH playlist naming another customer's file. It
/// used to pass the sniffer (`<!--ftyp` + `jp2 `) and ffmpeg's DASH
/// demuxer then read `../victim/secret.mp4` into the attacker's poster.
#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn a_playlist_upload_never_makes_ffmpeg_open_another_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("victim")).unwrap();
    std::fs::create_dir_all(dir.path().join("attacker")).unwrap();
    ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "victim/secret.mp4",
        ],
    );
    let mpd = concat!(
        "<!--ftypjp2 -->\n",
        r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" "#,
        r#"type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S"><Period><AdaptationSet mimeType="video/mp4">"#,
        r#"<Representation id="1" bandwidth="100000" width="160" height="120" codecs="avc1.64000d">"#,
        "<BaseURL>../victim/secret.mp4</BaseURL><SegmentBase/></Representation></AdaptationSet></Period></MPD>\n"
    );
    let upload = dir.path().join("attacker/upload.mp4");
    std::fs::write(&upload, mpd).unwrap();

    // The sniffer no longer calls it a video...
    assert_eq!(sniff(mpd.as_bytes()), None);
    // ...and had it got through (as any container), the forced demuxer
    // reads the upload as that container only: no playlist is followed.
    let tools = tools();
    for container in [Container::Mp4, Container::Matroska, Container::Gif] {
        let e = probe_source(
            &tools,
            &upload,
            container,
            &VideoLimits::default(),
            Some(soon()),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{container}: {e}");
    }
    // The same playlist with a real MP4 header in front (a valid ftyp box,
    // then the XML) is read as MP4 and fails as one.
    let mut dressed = b"\0\0\0\x18ftypisom\0\0\x02\0isommp41".to_vec();
    dressed.extend_from_slice(&mpd.as_bytes()[15..]);
    let dressed_path = dir.path().join("attacker/dressed.mp4");
    std::fs::write(&dressed_path, &dressed).unwrap();
    assert_eq!(sniff(&dressed), Some(Container::Mp4));
    let e = run(&dressed_path, &plan(VideoLimits::default())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
}

/// A 12 s clip whose Matroska header says it lasts 1 s passed the 5 s
/// limit and came out 12 s long. Now the rendition is cut at the limit
/// and, having reached it, refused.
#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn a_header_that_lies_about_the_duration_is_caught_by_the_rendition() {
    let dir = tempfile::tempdir().unwrap();
    ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "color=red:size=64x64:rate=10",
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "long.mkv",
        ],
    );
    let mut data = std::fs::read(dir.path().join("long.mkv")).unwrap();
    // Segment Info's Duration (ID 0x4489, an 8-byte float in ms).
    let at = data
        .windows(3)
        .position(|w| w == [0x44, 0x89, 0x88])
        .expect("a Duration element");
    data[at + 3..at + 11].copy_from_slice(&1000.0f64.to_be_bytes());
    let liar = dir.path().join("liar.mkv");
    std::fs::write(&liar, &data).unwrap();

    let limits = VideoLimits {
        max_duration_seconds: 5.0,
        ..VideoLimits::default()
    };
    let probe = probe_source(&tools(), &liar, Container::Matroska, &limits, Some(soon())).unwrap();
    assert!(probe.duration_seconds < 1.5, "the header lies: {probe:?}");
    let e = run(&liar, &plan(limits)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limits, "{e}");
    assert!(e.message().contains("over the limit of 5 s"), "{e}");
    assert!(e.message().contains("header says 1.0 s"), "{e}");
}

/// Three frames 25 s apart at 200 fps: ffmpeg's constant-frame-rate
/// output used to duplicate them into ~15,000 frames. Now the output
/// keeps the source's frames.
#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn timestamp_gaps_are_not_filled_with_duplicated_frames() {
    let dir = tempfile::tempdir().unwrap();
    ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "color=red:size=64x64:rate=200",
            "-frames:v",
            "3",
            "-vf",
            "setpts=N*25/TB",
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "gap.mkv",
        ],
    );
    let out = run(&dir.path().join("gap.mkv"), &plan(VideoLimits::default())).unwrap();
    let r = &out.renditions[0];
    assert!(r.duration_seconds > 49.0, "{r:?}");
    assert!(frames(&r.path) <= 3, "{} frames", frames(&r.path));
}

/// An H.264 stream whose header says 64x64 and which switches to 640x640
/// after five frames (640x640 stands for 8192x8192; the limit is scaled
/// down with it). The decoder now refuses frames over the pixel limit.
#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn a_stream_that_grows_past_the_pixel_limit_mid_way_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ffmpeg(
        d,
        &[
            "-f",
            "lavfi",
            "-i",
            "color=blue:size=64x64:rate=10",
            "-frames:v",
            "5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-f",
            "h264",
            "a.h264",
        ],
    );
    ffmpeg(
        d,
        &[
            "-f",
            "lavfi",
            "-i",
            "color=green:size=640x640:rate=10",
            "-frames:v",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-f",
            "h264",
            "b.h264",
        ],
    );
    let mut stream = std::fs::read(d.join("a.h264")).unwrap();
    stream.extend(std::fs::read(d.join("b.h264")).unwrap());
    std::fs::write(d.join("ab.h264"), stream).unwrap();
    ffmpeg(
        d,
        &[
            "-r",
            "10",
            "-f",
            "h264",
            "-i",
            "ab.h264",
            "-c",
            "copy",
            "switch.mp4",
        ],
    );
    let limits = VideoLimits {
        max_pixels: 100 * 100,
        ..VideoLimits::default()
    };
    let path: PathBuf = d.join("switch.mp4");
    let probe = probe_source(&tools(), &path, Container::Mp4, &limits, Some(soon())).unwrap();
    assert_eq!((probe.video.width, probe.video.height), (64, 64));
    let e = run(&path, &plan(limits)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.is_permanent());
}
