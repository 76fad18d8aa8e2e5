//! End to end: the real `transcode` binary under `cargo lambda watch`
//! against the in-process S3-compatible server, with Debian's ffmpeg in
//! place of the layer's. Clips are uploaded through the AWS SDK and
//! delivered as the SQS batch an event source mapping would send; the
//! outputs are downloaded and checked with ffprobe.
//!
//! Needs `cargo-lambda` and ffmpeg on PATH (`./scripts/test` installs both
//! and runs this with `--include-ignored`). One fixture (server, emulator,
//! function) is started once and the named steps below run against it in
//! order: the checks read the outputs of one batch and the replay needs
//! them, and starting the emulator and the function once keeps the test
//! as fast as one function. Every child process is killed by PID when the
//! test ends, pass or fail, and every wait is bounded.

use mediaflow_store::ObjectStore;
use mediaflow_testkit::{sample, step};
use mediaflow_testkit_lambda::sqs_event;
use mediaflow_testkit_lambda::Fixture;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FUNCTION: &str = "transcode";

const CONFIG: &str = r#"
[[variant]]
name = "poster"
width = 480
formats = ["jpeg", "webp"]

[[video]]
name = "720p"
max_height = 720

[[video]]
name = "360p"
max_height = 360
crf = 28
audio_bitrate_kbps = 64
"#;

fn ffmpeg() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v ffmpeg"])
        .output()
        .unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!path.is_empty(), "ffmpeg is not on PATH: run scripts/deps");
    path
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

/// moov before mdat: playable while it downloads.
fn faststart(data: &[u8]) -> bool {
    let (mut at, mut moov, mut mdat) = (0usize, None, None);
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        match &data[at + 4..at + 8] {
            b"moov" => moov = Some(at),
            b"mdat" => mdat = Some(at),
            _ => {}
        }
        if size < 8 {
            break;
        }
        at += size;
    }
    matches!((moov, mdat), (Some(a), Some(b)) if a < b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo-lambda (cargo lambda watch) and ffmpeg: ./scripts/test runs it"]
async fn transcode_under_cargo_lambda_watch_against_local_s3() {
    let ffmpeg = ffmpeg();
    let fx = Fixture::start(
        env!("CARGO_BIN_EXE_transcode"),
        FUNCTION,
        &[
            ("MEDIAFLOW_OUTPUT_BUCKET", "media"),
            ("MEDIAFLOW_CONFIG", CONFIG),
            ("MEDIAFLOW_FFMPEG", &ffmpeg),
        ],
    )
    .await;
    let (event, took) = step!(an_sqs_batch_is_acknowledged_and_the_broken_clip_recorded(
        &fx
    ))
    .await;
    step!(clips_get_faststart_h264_renditions_and_upright_posters(&fx)).await;
    step!(a_photo_sent_to_transcode_is_handled_as_a_photo(&fx)).await;
    step!(the_broken_clip_is_logged_as_an_error_with_its_request_id(
        &fx
    ));
    step!(replaying_the_batch_writes_nothing(&fx, &event)).await;
    eprintln!("batch of 2 clips + 1 photo + 1 broken clip handled in {took:?}");
    fx.stop().await;
}

/// A phone clip shot upright, a real film clip (5.1 audio, moov at the
/// end), a truncated clip and a photo, uploaded through the AWS SDK and
/// sent in one SQS batch. Returns the event and how long the invoke took.
async fn an_sqs_batch_is_acknowledged_and_the_broken_clip_recorded(
    fx: &Fixture,
) -> (Value, Duration) {
    let sources = [
        (
            "clips/phone clip (1).mov",
            "fixtures/video/phone-rotated.mov",
        ),
        ("clips/bünny+film.mp4", "bigbuckbunny.mp4"),
        ("clips/broken.mp4", "fixtures/video/truncated.mp4"),
        ("clips/photo.jpg", "rocket.jpg"),
    ];
    for (key, file) in sources {
        fx.upload(key, sample(file)).await;
    }
    let batch = fx.uploads.in_bucket("uploads");
    let (event, ids) = sqs_event(&batch);
    let started = Instant::now();
    let (status, reply) = fx.invoke(&event).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{reply}");
    // The broken clip ({ids[2]}) failed permanently: recorded, acknowledged.
    assert_eq!(reply, json!({"batchItemFailures": []}), "{}", ids[2]);
    assert!(fx
        .store
        .head("media", "failed/clips/broken.mp4.json")
        .await
        .unwrap()
        .is_some());
    (event, took)
}

async fn manifest(fx: &Fixture, key: &str) -> Value {
    let m = fx
        .store
        .get("media", &format!("manifest/{key}.json"), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice::<Value>(&m.body).unwrap()
}

/// Both clips: a video manifest, two faststart H.264/AAC renditions of the
/// planned sizes (checked with ffprobe), the poster's variants upright.
async fn clips_get_faststart_h264_renditions_and_upright_posters(fx: &Fixture) {
    let store = &fx.store;
    // (key, displayed size, 720p size, 360p size)
    let videos = [
        (
            "clips/phone clip (1).mov",
            (360, 640),
            (360, 640),
            (202, 360),
        ),
        ("clips/bünny+film.mp4", (1280, 720), (1280, 720), (640, 360)),
    ];
    for (key, shown, big, small) in videos {
        let m = manifest(fx, key).await;
        assert_eq!(m["kind"], "video", "{key}");
        assert_eq!(m["source"]["key"], key);
        let (w, h) = shown;
        assert_eq!(
            (
                m["source"]["width"].as_u64(),
                m["source"]["height"].as_u64()
            ),
            (Some(w), Some(h))
        );
        let duration = m["source"]["duration_seconds"].as_f64().unwrap();
        let renditions = m["renditions"].as_array().unwrap();
        assert_eq!(renditions.len(), 2);
        for (r, (w, h)) in renditions.iter().zip([big, small]) {
            let rkey = r["key"].as_str().unwrap();
            let obj = store.get("media", rkey, 1 << 28).await.unwrap();
            assert_eq!(
                obj.info.content_type.as_deref(),
                Some("video/mp4"),
                "{rkey}"
            );
            assert_eq!(r["bytes"].as_u64(), Some(obj.body.len() as u64));
            assert!(faststart(&obj.body), "{rkey}: moov before mdat");
            let file = fx.dir.path().join("check.mp4");
            std::fs::write(&file, &obj.body).unwrap();
            let p = ffprobe(&file);
            let streams = p["streams"].as_array().unwrap();
            let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
            let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
            assert_eq!(
                (v["codec_name"].as_str(), v["pix_fmt"].as_str()),
                (Some("h264"), Some("yuv420p"))
            );
            assert_eq!(
                (v["width"].as_u64(), v["height"].as_u64()),
                (Some(w), Some(h)),
                "{rkey}"
            );
            assert!(
                v.get("side_data_list").is_none(),
                "{rkey}: no rotation left"
            );
            assert_eq!(a["codec_name"], "aac");
            assert!(a["channels"].as_u64().unwrap() <= 2);
            let d: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
            assert!((d - duration).abs() < 0.15, "{rkey}: {d} vs {duration}");
            assert_eq!(
                (r["width"].as_u64(), r["height"].as_u64()),
                (Some(w), Some(h))
            );
        }
        // The poster's variants: upright (the displayed shape), 480 wide at most.
        for v in m["variants"].as_array().unwrap() {
            let vkey = v["key"].as_str().unwrap();
            let obj = store.get("media", vkey, 1 << 24).await.unwrap();
            let size = imagesize::blob_size(&obj.body).unwrap();
            assert_eq!(
                (size.width as u64, size.height as u64),
                (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
            );
            assert_eq!(size.width > size.height, w > h, "{vkey}: upright poster");
            assert!(size.width <= 480);
        }
    }
}

/// The photo sent to transcode is handled as a photo; the broken clip has
/// no manifest.
async fn a_photo_sent_to_transcode_is_handled_as_a_photo(fx: &Fixture) {
    let m = manifest(fx, "clips/photo.jpg").await;
    assert!(m.get("kind").is_none());
    assert_eq!(m["variants"].as_array().unwrap().len(), 2);
    assert!(fx
        .store
        .head("media", "manifest/clips/broken.mp4.json")
        .await
        .unwrap()
        .is_none());
}

/// The broken clip's log line: key and reason, as an error, in Lambda's
/// JSON format, with the request id of its invocation.
fn the_broken_clip_is_logged_as_an_error_with_its_request_id(fx: &Fixture) {
    let lines = fx.log_lines();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR" && l["fields"]["object"] == "s3://uploads/clips/broken.mp4")
        .unwrap_or_else(|| panic!("no error line for the broken clip in {lines:?}"));
    let message = error["fields"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("s3://uploads/clips/broken.mp4: corrupt: ffprobe: "),
        "{message}"
    );
    assert_eq!(error["fields"]["retryable"], false);
    assert!(error["span"]["requestId"].is_string());
}

/// At-least-once delivery: the batch again writes nothing.
async fn replaying_the_batch_writes_nothing(fx: &Fixture, event: &Value) {
    let writes = fx.uploads.in_bucket("media").len();
    let (status, reply) = fx.invoke(event).await;
    assert_eq!(status, 200);
    assert_eq!(reply, json!({"batchItemFailures": []}));
    assert_eq!(
        fx.uploads.in_bucket("media").len(),
        writes,
        "replay wrote nothing"
    );
}

#[test]
fn refuses_to_start_without_ffmpeg() {
    let out = Command::new(env!("CARGO_BIN_EXE_transcode"))
        .env_clear()
        .env("MEDIAFLOW_OUTPUT_BUCKET", "media")
        .env("MEDIAFLOW_FFMPEG", "/opt/missing-layer/bin/ffmpeg")
        .env("AWS_LAMBDA_LOG_FORMAT", "Text")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("cannot start: ffmpeg is not usable at /opt/missing-layer/bin/ffmpeg"),
        "{text}"
    );
}
