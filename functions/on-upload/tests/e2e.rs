//! End to end: the real `on-upload` binary under `cargo lambda watch` (the
//! Lambda runtime emulator) on loopback, against an S3-compatible server on
//! loopback (in-process `s3s` + `s3s-fs`), with real images uploaded
//! through the AWS SDK under awkward keys.
//!
//! Needs `cargo-lambda` on PATH (`./scripts/test` installs it). Every child
//! process is killed by PID when the test ends, pass or fail, and every
//! wait is bounded.

use bytes::Bytes;
use mediaflow_e2e_support::{
    invoke, s3_event, sample, sqs_event, start_emulator, start_function, Upload, Uploads,
};
use mediaflow_s3_local::{Credentials, LocalS3, REGION};
use mediaflow_store::{ObjectStore, PutOptions};
use mediaflow_store_s3::S3Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

const FUNCTION: &str = "on-upload";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_upload_under_cargo_lambda_watch_against_local_s3() {
    let dir = tempfile::tempdir().unwrap();

    // 1. The S3-compatible server, watching uploads so the test can build
    //    the exact notification S3 would send.
    let uploads = Arc::new(Uploads::default());
    let s3 = LocalS3::start_observed(
        &dir.path().join("s3"),
        "127.0.0.1:0".parse().unwrap(),
        &["uploads", "media"],
        Some(uploads.clone()),
        Credentials::random().unwrap(),
    )
    .await
    .unwrap();
    let store = S3Store::with_static_credentials(
        &s3.endpoint(),
        &s3.credentials().access_key,
        &s3.credentials().secret_key,
        REGION,
    );

    // 2. The Lambda runtime emulator (Invoke API and Runtime API on one port).
    let (port, _watch) = start_emulator(dir.path());

    // 3. The function binary, configured as in Lambda, pointed at both.
    let function_log = dir.path().join("on-upload.log");
    let spawned = Instant::now();
    let _function = start_function(
        env!("CARGO_BIN_EXE_on-upload"),
        FUNCTION,
        port,
        &s3.endpoint(),
        s3.credentials(),
        &[
            ("MEDIAFLOW_OUTPUT_BUCKET", "media"),
            ("MEDIAFLOW_OUTPUT_PREFIX", ""),
        ],
        &function_log,
    );

    // 4. Real images under awkward keys, uploaded with the AWS SDK.
    let sources: &[(&str, &str, u32, u32)] = &[
        ("my photo (1).jpg", "rocket.jpg", 640, 427),
        ("ünï/фото.jpg", "Wine_by_Jakkub_Mede.jpg", 2560, 3837),
        ("a+b.png", "horse.png", 400, 328),
        ("phone/upright 6.jpg", "fixtures/orientation-6.jpg", 0, 0),
    ];
    for (key, file, _, _) in sources {
        store
            .put("uploads", key, sample(file), &PutOptions::default())
            .await
            .unwrap();
    }
    let first = uploads.in_bucket("uploads");
    assert_eq!(first.len(), sources.len());

    // 5. A direct S3 event with all four records.
    let event = s3_event(&first);
    let (status, reply) = invoke(port, FUNCTION, &event).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"processed": 4, "skipped": 0, "failed": 0, "ignored": 0})
    );
    let first_event_ms = spawned.elapsed().as_secs_f64() * 1000.0;

    // Every manifest, every variant it lists: present, typed, sized.
    for (key, _, w, h) in sources {
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
    // The phone photo (EXIF orientation 6) comes out upright: its
    // variants have the displayed shape, the stored one turned a quarter.
    let phone: Value = serde_json::from_slice(
        &store
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

    // 6. Replaying the same event writes nothing new.
    let media_writes = uploads.in_bucket("media").len();
    assert_eq!(media_writes, 4 * 9);
    let (status, reply) = invoke(port, FUNCTION, &event).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"processed": 0, "skipped": 4, "failed": 0, "ignored": 0})
    );
    assert_eq!(
        uploads.in_bucket("media").len(),
        media_writes,
        "replay wrote nothing"
    );

    // 7. SQS-wrapped: a corrupt upload between two good ones.
    let mut broken = sample("rocket.jpg").to_vec();
    broken.truncate(4000);
    store
        .put(
            "uploads",
            "sqs/first.png",
            sample("chelsea.png"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put(
            "uploads",
            "sqs/broken (copy).jpg",
            Bytes::from(broken),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put(
            "uploads",
            "sqs/last.jpg",
            sample("fixtures/cmyk-adobe.jpg"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let batch: Vec<Upload> = uploads
        .in_bucket("uploads")
        .into_iter()
        .skip(sources.len())
        .collect();
    assert_eq!(batch.len(), 3);
    let (event, ids) = sqs_event(&batch);
    let (status, reply) = invoke(port, FUNCTION, &event).await;
    assert_eq!(status, 200, "{reply}");
    // The corrupt one ({ids[1]}) failed permanently: recorded, acknowledged.
    assert_eq!(reply, json!({"batchItemFailures": []}), "{}", ids[1]);
    for key in [
        "manifest/sqs/first.png.json",
        "manifest/sqs/last.jpg.json",
        "failed/sqs/broken (copy).jpg.json",
    ] {
        assert!(store.head("media", key).await.unwrap().is_some(), "{key}");
    }
    assert!(store
        .head("media", "manifest/sqs/broken (copy).jpg.json")
        .await
        .unwrap()
        .is_none());

    // The clear log line: key and reason, as an error, in Lambda's JSON format.
    let log = std::fs::read_to_string(&function_log).unwrap();
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
    // …and the request id of the invocation it belongs to.
    assert!(error_line["span"]["requestId"].is_string(), "{error_line}");

    // One EMF line per object processed, skipped or failed (4 + 4 + 3).
    let emf = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["_aws"]["CloudWatchMetrics"].is_array() && l["key"].is_string())
        .count();
    assert_eq!(emf, 11, "{log}");

    // The cold start as the function measured it (process start to first event handled).
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

    s3.stop().await;
}
