//! The plain async handler, called directly with the fixture events of
//! `crates/pipeline/tests/events/` against an in-memory store.

use bytes::Bytes;
use mediaflow_function::{handle, App, Function, HandlerError, Settings};
use mediaflow_store::{MemoryQueue, MemoryStore, MessageQueue, ObjectStore, PutOptions};
use mediaflow_testkit::{sample, workspace_root};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Value {
    let path = workspace_root()
        .join("crates/pipeline/tests/events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Harness {
    store: Arc<MemoryStore>,
    app: App,
    metrics: Arc<Mutex<Vec<Value>>>,
}

impl Harness {
    fn new() -> Harness {
        let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
        let metrics: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = {
            let metrics = Arc::clone(&metrics);
            Arc::new(move |line: &str| {
                metrics
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(line).unwrap())
            })
        };
        let settings = Settings::from_lookup(Function::OnUpload, |k| {
            (k == "MEDIAFLOW_OUTPUT_BUCKET").then(|| "media".to_string())
        })
        .unwrap();
        let app = App::new(settings, store.clone(), "on-upload", sink, Instant::now());
        Harness {
            store,
            app,
            metrics,
        }
    }

    async fn upload(&self, key: &str, body: Bytes) {
        self.store
            .put("uploads", key, body, &PutOptions::default())
            .await
            .unwrap();
    }

    fn object_metrics(&self) -> Vec<Value> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.get("key").is_some())
            .cloned()
            .collect()
    }

    fn media_keys(&self) -> Vec<String> {
        self.store.keys("media")
    }
}

fn corrupt() -> Bytes {
    Bytes::copy_from_slice(&sample("rocket.jpg")[..3000])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_from_moto_processes_awkward_keys_and_records_the_corrupt_one_instead_of_retrying_it(
) {
    let h = Harness::new();
    h.upload("my photo (1).jpg", sample("rocket.jpg")).await;
    h.upload("ünï/фото.jpg", sample("fixtures/orientation-6.jpg"))
        .await;
    h.upload("a+b.jpg", corrupt()).await;
    h.upload("plain.jpg", sample("fixtures/cmyk-adobe.jpg"))
        .await;
    let event = fixture("moto-sqs-keys.json");
    let corrupt_id = event["Records"][3]["messageId"]
        .as_str()
        .unwrap()
        .to_string();

    // The corrupt upload fails permanently: it is recorded and its message
    // acknowledged (issue 13: it used to be retried until maxReceiveCount).
    let reply = handle(&h.app, event.clone(), None).await.unwrap();
    assert_eq!(
        reply,
        json!({"batchItemFailures": []}),
        "{corrupt_id} acknowledged"
    );
    let keys = h.media_keys();
    for m in [
        "manifest/my photo (1).jpg.json",
        "manifest/ünï/фото.jpg.json",
        "manifest/plain.jpg.json",
        "failed/a+b.jpg.json",
    ] {
        assert!(keys.contains(&m.to_string()), "{m} missing from {keys:?}");
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("a+b") && k != "failed/a+b.jpg.json"),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 3 * 9 + 1);
    let record: Value = serde_json::from_slice(
        &h.store
            .get("media", "failed/a+b.jpg.json", 1 << 20)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(record["category"], "corrupt");
    assert_eq!(record["retryable"], false);
    assert_eq!(record["source"]["key"], "a+b.jpg");
    assert!(
        record["reason"].as_str().unwrap().contains("JPEG"),
        "{record}"
    );

    let m = h.object_metrics();
    assert_eq!(m.len(), 4, "one EMF line per object");
    let failed: Vec<_> = m.iter().filter(|l| l["Failed"] == 1).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["key"], "a+b.jpg");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("s3://uploads/a+b.jpg: corrupt: "),
        "{}",
        failed[0]
    );
    let cold: Vec<_> = h
        .metrics
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.get("ColdStartMs").is_some())
        .cloned()
        .collect();
    assert_eq!(cold.len(), 1);

    // Redelivery of the whole batch: nothing new is written, and the
    // corrupt one is skipped by its failure record (not decoded again; the
    // fixture's ETags are moto's, so each source is read to compare).
    let before = h.store.put_count();
    let reply = handle(&h.app, event, None).await.unwrap();
    assert_eq!(reply, json!({"batchItemFailures": []}));
    assert_eq!(h.store.put_count(), before);
    let skipped = h
        .object_metrics()
        .iter()
        .filter(|l| l["key"] == "a+b.jpg" && l["Skipped"] == 1)
        .count();
    assert_eq!(skipped, 1, "{:?}", h.object_metrics());
    let cold = h
        .metrics
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.get("ColdStartMs").is_some())
        .count();
    assert_eq!(cold, 1, "cold start reported once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_test_events_are_acknowledged_and_bad_bodies_fail_alone() {
    let h = Harness::new();
    let reply = handle(&h.app, fixture("sqs-s3-test-event.json"), None)
        .await
        .unwrap();
    assert_eq!(reply, json!({"batchItemFailures": []}));

    h.upload("a+b.jpg", sample("rocket.jpg")).await;
    let mut event = fixture("sqs-s3-put.json");
    event["Records"][0]["body"] = json!("{\"not\": \"an S3 event\"}");
    let bad_id = event["Records"][0]["messageId"].clone();
    let reply = handle(&h.app, event, None).await.unwrap();
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": bad_id}]})
    );
    assert!(h
        .media_keys()
        .contains(&"manifest/a+b.jpg.json".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_s3_event_processes_then_replays_as_a_no_op() {
    let h = Harness::new();
    h.upload("my photo (1).jpg", sample("rocket.jpg")).await;
    h.upload("ünï/фото.jpg", sample("horse.png")).await;
    h.upload("a+b.jpg", sample("fixtures/upright.jpg")).await;
    let reply = handle(&h.app, fixture("s3-put.json"), None).await.unwrap();
    assert_eq!(
        reply,
        json!({"processed": 3, "skipped": 0, "failed": 0, "ignored": 0, "removed": 0, "forwarded": 0})
    );
    let before = h.store.put_count();
    let reply = handle(&h.app, fixture("s3-put.json"), None).await.unwrap();
    assert_eq!(
        reply,
        json!({"processed": 0, "skipped": 3, "failed": 0, "ignored": 0, "removed": 0, "forwarded": 0})
    );
    assert_eq!(h.store.put_count(), before, "replay wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_failures_carry_a_permanent_or_retryable_error_type() {
    let h = Harness::new();
    h.upload("my photo (1).jpg", sample("rocket.jpg")).await;
    h.upload("ünï/фото.jpg", corrupt()).await;
    h.upload("a+b.jpg", sample("rocket.jpg")).await;
    let e: HandlerError = handle(&h.app, fixture("s3-put.json"), None)
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Mediaflow.PermanentError");
    assert!(
        e.message
            .starts_with("s3://uploads/ünï/фото.jpg: corrupt: "),
        "{e}"
    );
    assert!(
        h.media_keys()
            .contains(&"manifest/a+b.jpg.json".to_string()),
        "neighbours done"
    );

    // Too little time left: retryable.
    let h = Harness::new();
    h.upload("ünï/фото.jpg", sample("rocket.jpg")).await;
    let e = handle(
        &h.app,
        fixture("eventbridge-object-created.json"),
        Some(Instant::now() + Duration::from_millis(200)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "Mediaflow.RetryableError", "{e}");
    assert!(e.message.contains("timeout"), "{e}");

    let e = handle(&h.app, json!({"hello": "world"}), None)
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Mediaflow.PermanentError");
    assert!(e.message.contains("not an S3 notification"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_and_ignored_events() {
    let h = Harness::new();
    h.upload("ünï/фото.jpg", sample("chelsea.png")).await;
    let reply = handle(&h.app, fixture("eventbridge-object-created.json"), None)
        .await
        .unwrap();
    assert_eq!(reply["processed"], 1);
    // A delete for a key that was never processed and is gone: nothing to do.
    let deleted = fixture("eventbridge-object-deleted.json");
    let reply = handle(&h.app, deleted.clone(), None).await.unwrap();
    assert_eq!(
        reply,
        json!({"processed": 0, "skipped": 1, "failed": 0, "ignored": 0, "removed": 0, "forwarded": 0})
    );
    // A delete whose key exists again (a newer upload) removes nothing: it
    // makes the current object's outputs (and, delivered again, skips).
    h.upload("old/gone.jpg", sample("rocket.jpg")).await;
    let reply = handle(&h.app, deleted.clone(), None).await.unwrap();
    assert_eq!(reply["processed"], 1, "{reply}");
    let reply = handle(&h.app, deleted.clone(), None).await.unwrap();
    assert_eq!(reply["skipped"], 1, "{reply}");
    // Once the source is gone, the same delete removes exactly its outputs.
    h.store.delete("uploads", "old/gone.jpg").await.unwrap();
    let reply = handle(&h.app, deleted, None).await.unwrap();
    assert_eq!(reply["removed"], 1, "{reply}");
    assert!(
        h.media_keys().iter().all(|k| !k.contains("old/gone.jpg")),
        "{:?}",
        h.media_keys()
    );
    assert!(h.media_keys().iter().any(|k| k.contains("фото.jpg")));
    let reply = handle(&h.app, fixture("s3-mixed.json"), None)
        .await
        .unwrap();
    // The folder marker is ignored; the two created objects were never
    // uploaded here (gone), and the delete finds nothing to remove.
    assert_eq!(
        reply,
        json!({"processed": 0, "skipped": 3, "failed": 0, "ignored": 1, "removed": 0, "forwarded": 0})
    );
}

/// The queue on-upload forwards videos to reaches the pipeline's config;
/// `App::new` has none.
#[test]
fn the_video_queue_is_the_pipelines() {
    let settings = || {
        Settings::from_lookup(Function::OnUpload, |k| match k {
            "MEDIAFLOW_OUTPUT_BUCKET" => Some("media".to_string()),
            "MEDIAFLOW_VIDEO_QUEUE_URL" => Some("https://sqs.eu-west-1.amazonaws.com/1/v".into()),
            _ => None,
        })
        .unwrap()
    };
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let sink: mediaflow_function::MetricSink = Arc::new(|_: &str| {});
    let queue: Arc<dyn MessageQueue> = Arc::new(MemoryQueue::new("videos"));
    let app = App::with_video_queue(
        settings(),
        store.clone(),
        Some(queue),
        "on-upload",
        sink.clone(),
        Instant::now(),
    );
    let config = app.pipeline().config();
    assert_eq!(
        config.video_queue.as_ref().map(|q| q.name()),
        Some("videos")
    );
    assert!(config.video.is_none());
    let app = App::new(settings(), store, "on-upload", sink, Instant::now());
    assert!(app.pipeline().config().video_queue.is_none());
}
