//! End to end: the real `on-upload` binary under `cargo lambda watch` (the
//! Lambda runtime emulator) on loopback, against an S3-compatible server on
//! loopback (in-process `s3s` + `s3s-fs`), with real images uploaded
//! through the AWS SDK under awkward keys.
//!
//! Needs `cargo-lambda` on PATH (`./scripts/test` installs it and runs this
//! with `--include-ignored`). One fixture (server, emulator, function) is
//! started once and the named steps below run against it in order: later
//! steps build on earlier ones (the replay needs the first event's outputs,
//! the EMF count covers every step), and starting the emulator and the
//! function once keeps the test as fast as one function. Every child
//! process is killed by PID when the test ends, pass or fail, and every
//! wait is bounded.

use bytes::Bytes;
use mediaflow_store::ObjectStore;
use mediaflow_testkit::lambda::{s3_event, sqs_event, Fixture, Upload};
use mediaflow_testkit::{sample, step};
use serde_json::{json, Value};

const FUNCTION: &str = "on-upload";

/// Real images under awkward keys: (key, sample, displayed width, height;
/// 0 for not checked).
const SOURCES: &[(&str, &str, u32, u32)] = &[
    ("my photo (1).jpg", "rocket.jpg", 640, 427),
    ("ünï/фото.jpg", "Wine_by_Jakkub_Mede.jpg", 2560, 3837),
    ("a+b.png", "horse.png", 400, 328),
    ("phone/upright 6.jpg", "fixtures/orientation-6.jpg", 0, 0),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo-lambda (cargo lambda watch): ./scripts/test runs it"]
async fn on_upload_under_cargo_lambda_watch_against_local_s3() {
    // The function binary, configured as in Lambda, pointed at the local
    // S3 server and the emulator (Invoke API and Runtime API on one port).
    let fx = Fixture::start(
        env!("CARGO_BIN_EXE_on-upload"),
        FUNCTION,
        &[
            ("MEDIAFLOW_OUTPUT_BUCKET", "media"),
            ("MEDIAFLOW_OUTPUT_PREFIX", ""),
        ],
    )
    .await;
    let (event, first, first_event_ms) = step!(a_direct_s3_event_processes_every_upload(&fx)).await;
    step!(every_manifest_lists_typed_sized_variants(&fx, &first)).await;
    step!(a_phone_photo_comes_out_upright(&fx)).await;
    step!(replaying_the_event_writes_nothing(&fx, &event)).await;
    step!(an_sqs_batch_records_a_corrupt_upload_and_acknowledges_it(
        &fx
    ))
    .await;
    step!(the_corrupt_upload_is_logged_as_an_error_with_its_request_id(&fx));
    step!(one_emf_line_per_object_and_the_cold_start(
        &fx,
        first_event_ms
    ));
    fx.stop().await;
}

/// The images uploaded with the AWS SDK, then one direct S3 event with all
/// four records. Returns the event, the uploads and when (after the
/// function's spawn) the first invoke returned.
async fn a_direct_s3_event_processes_every_upload(fx: &Fixture) -> (Value, Vec<Upload>, f64) {
    for (key, file, _, _) in SOURCES {
        fx.upload(key, sample(file)).await;
    }
    let first = fx.uploads.in_bucket("uploads");
    assert_eq!(first.len(), SOURCES.len());

    let event = s3_event(&first);
    let (status, reply) = fx.invoke(&event).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"processed": 4, "skipped": 0, "failed": 0, "ignored": 0})
    );
    let first_event_ms = fx.spawned.elapsed().as_secs_f64() * 1000.0;
    (event, first, first_event_ms)
}

/// Every manifest, every variant it lists: present, typed, sized.
async fn every_manifest_lists_typed_sized_variants(fx: &Fixture, first: &[Upload]) {
    let store = &fx.store;
    for (key, _, w, h) in SOURCES {
        let manifest = store
            .get("media", &format!("manifest/{key}.json"), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            manifest.info.content_type.as_deref(),
            Some("application/json")
        );
        let m: Value = serde_json::from_slice(&manifest.body).unwrap();
        assert_eq!(m["source"]["key"], *key);
        let etag = first.iter().find(|u| u.key == *key).unwrap().etag.clone();
        assert_eq!(m["source"]["etag"], etag);
        if *w > 0 {
            assert_eq!(
                (
                    m["source"]["width"].as_u64(),
                    m["source"]["height"].as_u64()
                ),
                (Some(*w as u64), Some(*h as u64))
            );
        }
        let variants = m["variants"].as_array().unwrap();
        assert_eq!(variants.len(), 8, "{key}");
        for v in variants {
            let vkey = v["key"].as_str().unwrap();
            let obj = store.get("media", vkey, 1 << 26).await.unwrap();
            assert_eq!(
                obj.info.content_type.as_deref(),
                v["content_type"].as_str(),
                "{vkey}"
            );
            assert_eq!(
                obj.info.cache_control.as_deref(),
                Some("public, max-age=31536000"),
                "{vkey}"
            );
            assert_eq!(
                obj.info.metadata.get("mediaflow-source-etag"),
                Some(&etag),
                "{vkey}"
            );
            let size = imagesize::blob_size(&obj.body).unwrap_or_else(|e| panic!("{vkey}: {e}"));
            assert_eq!(
                (size.width as u64, size.height as u64),
                (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()),
                "{vkey}"
            );
            if v["name"] == "w512" {
                assert_eq!(
                    v["width"].as_u64(),
                    Some(512.min(m["source"]["width"].as_u64().unwrap())),
                    "{vkey}"
                );
            }
        }
    }
}

/// The phone photo (EXIF orientation 6) comes out upright: its variants
/// have the displayed shape, the stored one turned a quarter.
async fn a_phone_photo_comes_out_upright(fx: &Fixture) {
    let phone: Value = serde_json::from_slice(
        &fx.store
            .get("media", "manifest/phone/upright 6.jpg.json", 1 << 20)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    let src = &phone["source"];
    assert_eq!(src["orientation"], 6);
    assert_eq!(
        (src["width"].clone(), src["height"].clone()),
        (src["stored_height"].clone(), src["stored_width"].clone())
    );
    let w256 = phone["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "w256")
        .unwrap();
    assert_eq!(
        (w256["width"].clone(), w256["height"].clone()),
        (src["width"].clone(), src["height"].clone()),
        "{w256}"
    );
}

/// Replaying the same event writes nothing new.
async fn replaying_the_event_writes_nothing(fx: &Fixture, event: &Value) {
    let media_writes = fx.uploads.in_bucket("media").len();
    assert_eq!(media_writes, 4 * 9);
    let (status, reply) = fx.invoke(event).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"processed": 0, "skipped": 4, "failed": 0, "ignored": 0})
    );
    assert_eq!(
        fx.uploads.in_bucket("media").len(),
        media_writes,
        "replay wrote nothing"
    );
}

/// SQS-wrapped: a corrupt upload between two good ones.
async fn an_sqs_batch_records_a_corrupt_upload_and_acknowledges_it(fx: &Fixture) {
    let mut broken = sample("rocket.jpg").to_vec();
    broken.truncate(4000);
    fx.upload("sqs/first.png", sample("chelsea.png")).await;
    fx.upload("sqs/broken (copy).jpg", Bytes::from(broken))
        .await;
    fx.upload("sqs/last.jpg", sample("fixtures/cmyk-adobe.jpg"))
        .await;
    let batch: Vec<Upload> = fx
        .uploads
        .in_bucket("uploads")
        .into_iter()
        .skip(SOURCES.len())
        .collect();
    assert_eq!(batch.len(), 3);
    let (event, ids) = sqs_event(&batch);
    let (status, reply) = fx.invoke(&event).await;
    assert_eq!(status, 200, "{reply}");
    // The corrupt one ({ids[1]}) failed permanently: recorded, acknowledged.
    assert_eq!(reply, json!({"batchItemFailures": []}), "{}", ids[1]);
    for key in [
        "manifest/sqs/first.png.json",
        "manifest/sqs/last.jpg.json",
        "failed/sqs/broken (copy).jpg.json",
    ] {
        assert!(
            fx.store.head("media", key).await.unwrap().is_some(),
            "{key}"
        );
    }
    assert!(fx
        .store
        .head("media", "manifest/sqs/broken (copy).jpg.json")
        .await
        .unwrap()
        .is_none());
}

/// The clear log line: key and reason, as an error, in Lambda's JSON
/// format, with the request id of the invocation it belongs to.
fn the_corrupt_upload_is_logged_as_an_error_with_its_request_id(fx: &Fixture) {
    let log = std::fs::read_to_string(&fx.log).unwrap();
    let error_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["level"] == "ERROR" && l["fields"]["object"] == "s3://uploads/sqs/broken (copy).jpg"
        })
        .unwrap_or_else(|| panic!("no error line for the corrupt upload in:\n{log}"));
    let message = error_line["fields"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("s3://uploads/sqs/broken (copy).jpg: corrupt: "),
        "{message}"
    );
    assert_eq!(error_line["fields"]["retryable"], false);
    assert!(error_line["span"]["requestId"].is_string(), "{error_line}");
}

/// One EMF line per object processed, skipped or failed over all the
/// steps (4 + 4 + 3), and the cold start as the function measured it
/// (process start to first event handled).
fn one_emf_line_per_object_and_the_cold_start(fx: &Fixture, first_event_ms: f64) {
    let log = std::fs::read_to_string(&fx.log).unwrap();
    let emf = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["_aws"]["CloudWatchMetrics"].is_array() && l["key"].is_string())
        .count();
    assert_eq!(emf, 11, "{log}");

    let cold = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| l["ColdStartMs"].as_f64())
        .expect("a ColdStartMs EMF line");
    let ready = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| l["fields"]["init_ms"].as_f64())
        .expect("a 'ready' log line with init_ms");
    assert!(
        ready < cold,
        "ready ({ready} ms) comes before the first event is handled ({cold} ms)"
    );
    eprintln!(
        "cold start proxy: runtime ready {ready:.1} ms after process start; first event (4 photos) handled at \
         {cold:.1} ms; first invoke returned {first_event_ms:.0} ms after spawn"
    );
}
