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
use mediaflow_s3_local::REGION;
use mediaflow_store::ObjectStore;
use mediaflow_store_s3::SqsQueue;
use mediaflow_testkit::moto::{MotoServer, MOTO_ACCESS_KEY, MOTO_SECRET_KEY};
use mediaflow_testkit::{sample, step};
use mediaflow_testkit_lambda::{s3_event, sqs_event, Fixture, Upload};
use serde_json::{json, Value};
use std::collections::BTreeSet;

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
    every_step(env!("CARGO_BIN_EXE_on-upload")).await;
}

/// The arm64 bootstrap as SAM and CDK deploy it (`cargo lambda build
/// --release --arm64`), under qemu-user: the same steps and checks as the
/// binary above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the arm64 bootstrap in MEDIAFLOW_ARM64_ON_UPLOAD, qemu-aarch64 and cargo-lambda: scripts/test-aarch64 builds it and runs this"]
async fn arm64_bootstrap_under_qemu_against_local_s3() {
    let bootstrap = std::env::var("MEDIAFLOW_ARM64_ON_UPLOAD").unwrap_or_else(|_| {
        panic!("MEDIAFLOW_ARM64_ON_UPLOAD is not set: scripts/test-aarch64 builds the arm64 bootstrap and runs this test")
    });
    assert!(
        std::path::Path::new(&bootstrap).is_absolute(),
        "MEDIAFLOW_ARM64_ON_UPLOAD={bootstrap}: give an absolute path (tests run in their package's directory)"
    );
    assert!(
        mediaflow_testkit_lambda::is_arm64_elf(std::path::Path::new(&bootstrap)),
        "{bootstrap} is not an arm64 executable"
    );
    every_step(&bootstrap).await;
}

/// Every step below against `binary` (run under qemu when it is arm64).
async fn every_step(binary: &str) {
    // The function binary, configured as in Lambda, pointed at the local
    // S3 server and the emulator (Invoke API and Runtime API on one port).
    // Video uploads are forwarded to a queue: a real SQS API (moto_server)
    // on loopback.
    let moto = MotoServer::start();
    let sqs = SqsQueue::with_static_credentials(
        &moto.endpoint(),
        MOTO_ACCESS_KEY,
        MOTO_SECRET_KEY,
        REGION,
        "",
    );
    let queue_url = sqs
        .client()
        .create_queue()
        .queue_name("transcode")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let fx = Fixture::start(
        binary,
        FUNCTION,
        &[
            ("MEDIAFLOW_OUTPUT_BUCKET", "media"),
            ("MEDIAFLOW_OUTPUT_PREFIX", ""),
            ("MEDIAFLOW_VIDEO_QUEUE_URL", &queue_url),
            ("AWS_ENDPOINT_URL_SQS", &moto.endpoint()),
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
    step!(an_objects_whole_life(&fx)).await;
    step!(every_upload_is_routed_by_its_bytes(&fx, &sqs, &queue_url)).await;
    fx.stop().await;
    drop(moto);
}

/// Every output key a manifest lists.
fn listed(m: &Value) -> BTreeSet<String> {
    m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect()
}

async fn manifest(fx: &Fixture, key: &str) -> Option<Value> {
    fx.store
        .get("media", &format!("manifest/{key}.json"), 1 << 20)
        .await
        .ok()
        .map(|o| serde_json::from_slice(&o.body).unwrap())
}

async fn exists(fx: &Fixture, key: &str) -> bool {
    fx.store.head("media", key).await.unwrap().is_some()
}

/// The last event S3 sent for `key` (an upload or a delete).
fn last_event(fx: &Fixture, key: &str) -> Upload {
    fx.uploads
        .in_bucket("uploads")
        .into_iter()
        .rev()
        .find(|u| u.key == key)
        .unwrap()
}

/// Issue 15 through the real binary: `a.jpg` and `a.png` keep their own
/// outputs; a re-upload replaces them and removes the stale ones; a delete
/// removes exactly that source's outputs, once; an old delete after a
/// newer upload removes nothing.
async fn an_objects_whole_life(fx: &Fixture) {
    fx.upload("life/a.jpg", sample("rocket.jpg")).await;
    fx.upload("life/a.png", sample("chelsea.png")).await;
    let both = [last_event(fx, "life/a.jpg"), last_event(fx, "life/a.png")];
    let (_, reply) = fx.invoke(&s3_event(&both)).await;
    assert_eq!(reply["processed"], 2, "{reply}");
    let (ka, kb) = (
        listed(&manifest(fx, "life/a.jpg").await.unwrap()),
        listed(&manifest(fx, "life/a.png").await.unwrap()),
    );
    assert!(ka.is_disjoint(&kb), "{ka:?} {kb:?}");

    // Re-upload a.jpg with another picture.
    fx.upload("life/a.jpg", sample("horse.png")).await;
    let (_, reply) = fx.invoke(&s3_event(&[last_event(fx, "life/a.jpg")])).await;
    assert_eq!(reply["processed"], 1, "{reply}");
    let m = manifest(fx, "life/a.jpg").await.unwrap();
    assert_eq!(m["source"]["width"], 400, "the new picture");
    for k in listed(&m) {
        assert!(exists(fx, &k).await, "{k}");
    }
    for k in &ka {
        assert!(!exists(fx, k).await, "stale {k} removed");
    }

    // Delete a.png: exactly its outputs go, once.
    fx.store.delete("uploads", "life/a.png").await.unwrap();
    let delete = last_event(fx, "life/a.png");
    assert_eq!(delete.event_name, "ObjectRemoved:Delete");
    let (_, reply) = fx.invoke(&s3_event(std::slice::from_ref(&delete))).await;
    assert_eq!(reply["removed"], 1, "{reply}");
    assert!(manifest(fx, "life/a.png").await.is_none());
    for k in &kb {
        assert!(!exists(fx, k).await, "{k} removed");
    }
    for k in listed(&m) {
        assert!(exists(fx, &k).await, "a.jpg's {k} kept");
    }
    let (_, reply) = fx.invoke(&s3_event(&[delete])).await;
    assert_eq!(reply["skipped"], 1, "a repeated delete is a no-op: {reply}");

    // An old delete arriving after a newer upload of the key removes nothing.
    fx.upload("life/b.jpg", sample("rocket.jpg")).await;
    fx.store.delete("uploads", "life/b.jpg").await.unwrap();
    let old_delete = last_event(fx, "life/b.jpg");
    fx.upload("life/b.jpg", sample("rocket.jpg")).await;
    let (_, reply) = fx.invoke(&s3_event(&[last_event(fx, "life/b.jpg")])).await;
    assert_eq!(reply["processed"], 1, "{reply}");
    let kb2 = listed(&manifest(fx, "life/b.jpg").await.unwrap());
    let (_, reply) = fx.invoke(&s3_event(&[old_delete])).await;
    assert_eq!(reply["removed"], 0, "{reply}");
    assert_eq!(reply["skipped"], 1, "{reply}");
    for k in &kb2 {
        assert!(exists(fx, k).await, "{k} kept");
    }
}

/// Whatever the key says: `IMG_0001` (JPEG bytes) and `photo.Jpeg` are
/// processed, `clip.Mp4` and an extension-less clip are forwarded to the
/// transcode queue (read back from it), and a text file fails permanently,
/// is logged with its key, and is returned as a batch item failure so it
/// reaches the dead-letter queue.
async fn every_upload_is_routed_by_its_bytes(fx: &Fixture, sqs: &SqsQueue, queue_url: &str) {
    let clip = sample("bigbuckbunny.mp4");
    fx.upload("IMG_0001", sample("rocket.jpg")).await;
    fx.upload("photo.Jpeg", sample("rocket.jpg")).await;
    fx.upload("clip.Mp4", clip.clone()).await;
    fx.upload("VID_0002", clip).await;
    fx.upload("notes.txt", Bytes::from_static(b"not a picture\n"))
        .await;
    let keys = [
        "IMG_0001",
        "photo.Jpeg",
        "clip.Mp4",
        "VID_0002",
        "notes.txt",
    ];
    let uploads: Vec<Upload> = keys.iter().map(|k| last_event(fx, k)).collect();
    let (event, ids) = sqs_event(&uploads);
    let (status, reply) = fx.invoke(&event).await;
    assert_eq!(status, 200, "{reply}");
    let failures: Vec<&str> = reply["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures, [ids[4].as_str()], "only the text file: {reply}");
    for key in ["IMG_0001", "photo.Jpeg"] {
        assert!(manifest(fx, key).await.is_some(), "{key}");
    }
    let mut forwarded = BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while forwarded.len() < 2 && std::time::Instant::now() < deadline {
        let out = sqs
            .client()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let n = mediaflow_pipeline::parse_body(m.body.as_deref().unwrap()).unwrap();
            forwarded.extend(n.objects.into_iter().map(|o| o.key));
        }
    }
    assert_eq!(
        forwarded,
        BTreeSet::from(["VID_0002".to_string(), "clip.Mp4".to_string()])
    );
    let line = fx
        .log_lines()
        .into_iter()
        .find(|l| l["level"] == "ERROR" && l["fields"]["object"] == "s3://uploads/notes.txt")
        .expect("the text file's error line");
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("neither an image nor a video"),
        "{line}"
    );
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
        json!({"processed": 4, "skipped": 0, "failed": 0, "ignored": 0, "removed": 0, "forwarded": 0})
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
                Some("public, max-age=31536000, immutable"),
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
        json!({"processed": 0, "skipped": 4, "failed": 0, "ignored": 0, "removed": 0, "forwarded": 0})
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
