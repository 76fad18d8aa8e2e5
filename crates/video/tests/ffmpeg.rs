//! The video path against Debian's ffmpeg on the committed clips. Every
//! output is checked with ffprobe (codecs, size, duration, pixel format,
//! faststart, no rotation left) and the posters are decoded and looked at.

use mediaflow_engine::{decode_upright, Limits, Plan};
use mediaflow_testkit::sample_path;
use mediaflow_video::{
    is_video, probe_source, sniff, Container, ErrorKind, Job, PosterAt, Rendition, Tools,
    VideoLimits, VideoOutput, VideoPlan,
};
use serde_json::Value;
use std::path::Path;
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

fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Top-level ISO-BMFF box types in file order.
fn boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let mut at = 0usize;
    let mut types = Vec::new();
    while at + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
        } else if size == 0 {
            size = (data.len() - at) as u64;
        }
        types.push(kind);
        at += size as usize;
    }
    types
}

/// Asserts an output is a web-ready MP4: H.264 High yuv420p, AAC (or no
/// audio), moov before mdat, no rotation, the given size and duration.
fn assert_web_mp4(path: &Path, w: u64, h: u64, duration: f64, audio: bool) {
    let j = ffprobe(path);
    let streams = j["streams"].as_array().unwrap();
    let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(v["codec_name"], "h264", "{}", path.display());
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!(
        (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()),
        (w, h)
    );
    assert!(
        v.get("side_data_list").is_none(),
        "no display matrix left: {v}"
    );
    assert!(v["tags"].get("rotate").is_none());
    let a = streams.iter().find(|s| s["codec_type"] == "audio");
    if audio {
        let a = a.expect("an audio stream");
        assert_eq!(a["codec_name"], "aac");
        assert!(a["channels"].as_u64().unwrap() <= 2);
    } else {
        assert!(a.is_none(), "no audio stream expected");
    }
    let d: f64 = j["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (d - duration).abs() < 0.15,
        "duration {d}, expected {duration}"
    );
    let b = boxes(path);
    let moov = b.iter().position(|t| t == "moov").unwrap();
    let mdat = b.iter().position(|t| t == "mdat").unwrap();
    assert!(moov < mdat, "faststart: moov before mdat, got {b:?}");
    // No source metadata carried over (phones put GPS here).
    let tags = &j["format"]["tags"];
    assert!(
        tags.get("location").is_none() && tags.get("creation_time").is_none(),
        "{tags}"
    );
}

/// Runs the whole job on `path`; the outputs live as long as the returned
/// work directory.
fn run(
    path: &Path,
    plan: &VideoPlan,
) -> Result<(VideoOutput, tempfile::TempDir), mediaflow_video::MediaError> {
    let tools = tools();
    let head = std::fs::read(path).unwrap();
    let container = sniff(&head).expect("a video container");
    let probe = probe_source(&tools, path, container, plan.limits(), Some(soon()))?;
    let work = tempfile::tempdir().unwrap();
    let image_plan = Plan::builtin();
    let out = Job {
        tools: &tools,
        plan,
        image_plan: &image_plan,
        work_dir: work.path(),
        deadline: Some(soon()),
    }
    .run(path, container, probe)?;
    Ok((out, work))
}

fn two_renditions() -> VideoPlan {
    let mut small = Rendition::new("360p");
    small.max_height = Some(360);
    small.crf = 28;
    small.audio_bitrate_kbps = 64;
    VideoPlan::new(
        vec![Rendition::new("720p"), small],
        PosterAt::Fraction(0.1),
        VideoLimits::default(),
        false,
    )
    .unwrap()
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn big_buck_bunny_gives_two_web_mp4s_and_a_poster() {
    let src = sample_path("bigbuckbunny.mp4");
    let (out, _work) = run(&src, &two_renditions()).unwrap();
    assert_eq!(out.container, Container::Mp4);
    assert_eq!(out.probe.display_size(), (1280, 720));
    assert_eq!(out.probe.audio.as_ref().unwrap().channels, 6);
    let [big, small] = &out.renditions[..] else {
        panic!("two renditions")
    };
    assert_web_mp4(&big.path, 1280, 720, out.probe.duration_seconds, true);
    assert_web_mp4(&small.path, 640, 360, out.probe.duration_seconds, true);
    assert_eq!(
        (big.width, big.height, small.width, small.height),
        (1280, 720, 640, 360)
    );
    assert_eq!(big.video_codec, "h264");
    assert_eq!(big.audio_codec.as_deref(), Some("aac"));
    assert!(small.bytes < big.bytes, "{} < {}", small.bytes, big.bytes);
    assert_eq!(big.bytes, std::fs::metadata(&big.path).unwrap().len());
    // Poster at 10 % of 5.3 s, through the built-in image plan.
    assert!((out.poster_at - 0.531).abs() < 0.01, "{}", out.poster_at);
    assert_eq!(
        (out.poster.source.width, out.poster.source.height),
        (1280, 720)
    );
    let names: Vec<_> = out
        .poster
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.width))
        .collect();
    assert!(names.contains(&("w1024", 1024)), "{names:?}");
    assert!(out.poster.placeholder.is_some());
}

/// The mean RGB of a horizontal band of an upright image.
fn band(img: &mediaflow_engine::RgbImage, y0: f64, y1: f64) -> [f64; 3] {
    let c = usize::from(img.channels);
    let (w, h) = (img.width as usize, img.height as usize);
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    for y in (h as f64 * y0) as usize..(h as f64 * y1) as usize {
        for x in w / 4..w * 3 / 4 {
            let p = &img.data[(y * w + x) * c..];
            for k in 0..3 {
                sum[k] += f64::from(p[k]);
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

fn assert_red_over_blue(img: &mediaflow_engine::RgbImage, what: &str) {
    assert!(
        img.height > img.width,
        "{what}: portrait, got {}x{}",
        img.width,
        img.height
    );
    let top = band(img, 0.15, 0.4);
    let bottom = band(img, 0.6, 0.85);
    assert!(
        top[0] > 180.0 && top[2] < 60.0,
        "{what}: top is red, got {top:?}"
    );
    assert!(
        bottom[2] > 180.0 && bottom[0] < 60.0,
        "{what}: bottom is blue, got {bottom:?}"
    );
}

/// The first frame of an MP4 as stored (no autorotation), as RGB.
fn stored_frame(path: &Path) -> mediaflow_engine::RgbImage {
    let png = tempfile::NamedTempFile::with_suffix(".png").unwrap();
    let ok = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-noautorotate", "-i"])
        .arg(path)
        .args(["-frames:v", "1"])
        .arg(png.path())
        .status()
        .unwrap();
    assert!(ok.success());
    decode_upright(&std::fs::read(png.path()).unwrap(), &Limits::default()).unwrap()
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn phone_clips_shot_upright_come_out_upright() {
    for clip in [
        "fixtures/video/phone-rotated.mp4",
        "fixtures/video/phone-rotated.mov",
    ] {
        let src = sample_path(clip);
        let (out, _work) = run(&src, &VideoPlan::builtin()).unwrap();
        assert_eq!(out.probe.video.rotation, 90, "{clip}");
        assert_eq!((out.probe.video.width, out.probe.video.height), (640, 360));
        assert_eq!(out.probe.display_size(), (360, 640));
        let mp4 = &out.renditions[0];
        assert_web_mp4(&mp4.path, 360, 640, out.probe.duration_seconds, true);
        // The pixels themselves are upright: players need no rotation.
        assert_red_over_blue(&stored_frame(&mp4.path), clip);
        // And the poster's variants.
        assert_eq!(
            (out.poster.source.width, out.poster.source.height),
            (360, 640)
        );
        for v in &out.poster.variants {
            let img = decode_upright(&v.data, &Limits::default()).unwrap();
            assert_red_over_blue(&img, &format!("{clip} poster {} {}", v.name, v.format));
        }
    }
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn webm_and_odd_sizes_become_even_yuv420p_h264() {
    let (out, _work) = run(
        &sample_path("fixtures/video/clip.webm"),
        &VideoPlan::builtin(),
    )
    .unwrap();
    assert_eq!(out.container, Container::Webm);
    assert_eq!(out.probe.video.codec, "vp9");
    assert_web_mp4(
        &out.renditions[0].path,
        320,
        240,
        out.probe.duration_seconds,
        true,
    );

    let (out, _work) = run(
        &sample_path("fixtures/video/odd.mp4"),
        &VideoPlan::builtin(),
    )
    .unwrap();
    assert_eq!((out.probe.video.width, out.probe.video.height), (321, 241));
    assert_eq!(out.probe.video.pix_fmt.as_deref(), Some("yuv444p"));
    assert_web_mp4(
        &out.renditions[0].path,
        320,
        240,
        out.probe.duration_seconds,
        false,
    );
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn bad_clips_fail_permanently_with_the_reason() {
    let cases = [
        ("truncated.mp4", ErrorKind::Corrupt, "moov atom not found"),
        ("garbage.mp4", ErrorKind::Corrupt, "moov atom not found"),
        (
            "no-video.mp4",
            ErrorKind::Unsupported,
            "no video stream (only audio aac)",
        ),
    ];
    for (name, kind, reason) in cases {
        let e = run(
            &sample_path(&format!("fixtures/video/{name}")),
            &VideoPlan::builtin(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert!(e.message().contains(reason), "{name}: {e}");
        assert!(e.is_permanent(), "{name}");
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn limits_are_checked_before_transcoding() {
    let plan = VideoPlan::new(
        vec![Rendition::new("mp4")],
        PosterAt::Fraction(0.1),
        VideoLimits {
            max_duration_seconds: 1.5,
            ..VideoLimits::default()
        },
        false,
    )
    .unwrap();
    let e = run(&sample_path("fixtures/video/phone-rotated.mp4"), &plan).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limits);
    assert!(
        e.message().contains("2.0 s, over the limit of 1.5 s"),
        "{e}"
    );
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn a_clip_that_cannot_finish_in_time_is_not_started() {
    let tools = tools();
    let src = sample_path("bigbuckbunny.mp4");
    let probe = probe_source(
        &tools,
        &src,
        Container::Mp4,
        &VideoLimits::default(),
        Some(soon()),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let image_plan = Plan::builtin();
    let e = Job {
        tools: &tools,
        plan: &VideoPlan::builtin(),
        image_plan: &image_plan,
        work_dir: work.path(),
        deadline: Some(Instant::now() + Duration::from_millis(500)),
    }
    .run(&src, Container::Mp4, probe)
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(!e.is_permanent());
    assert!(e.message().contains("needs about"), "{e}");
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "nothing started"
    );
}

#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn animated_gifs_become_silent_mp4s_only_when_configured() {
    let tools = tools();
    let src = sample_path("fixtures/animated.gif");
    let head = std::fs::read(&src).unwrap();
    assert_eq!(sniff(&head), Some(Container::Gif));
    let probe = probe_source(
        &tools,
        &src,
        Container::Gif,
        &VideoLimits::default(),
        Some(soon()),
    )
    .unwrap();
    assert!(probe.frames.unwrap() > 1, "{:?}", probe.frames);
    assert!(!is_video(Container::Gif, &probe, &VideoPlan::builtin()));
    let plan = VideoPlan::builtin().with_animated_gif(true);
    assert!(is_video(Container::Gif, &probe, &plan));
    let (out, _work) = run(&src, &plan).unwrap();
    assert_web_mp4(
        &out.renditions[0].path,
        96,
        64,
        out.probe.duration_seconds,
        false,
    );
    assert_eq!(out.renditions[0].audio_codec, None);
}
