//! The pipeline against in-memory stores and real sample images.

use async_trait::async_trait;
use bytes::Bytes;
use mediaflow_engine::Plan;
use mediaflow_pipeline::{
    Outcome, Pipeline, PipelineConfig, Retry, Skip, SourceObject, MANIFEST_CACHE_CONTROL,
    META_OUTPUT, META_PLAN, META_SOURCE_ETAG, META_SOURCE_KEY,
};
use mediaflow_store::{
    md5_etag, ListPage, MemoryStore, Object, ObjectInfo, ObjectStore, PutOptions, Result,
    StoreError,
};
use mediaflow_testkit::sample;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Builds the error a failing store returns.
type MakeError = fn(String) -> StoreError;

/// A store that records the order of writes and can be told to fail them.
#[derive(Debug)]
struct Recording {
    inner: MemoryStore,
    puts: Mutex<Vec<String>>,
    fail_puts_with: Mutex<Option<MakeError>>,
    slow_gets: Mutex<Option<Duration>>,
}

impl Recording {
    fn new(buckets: &[&str]) -> Arc<Recording> {
        Arc::new(Recording {
            inner: MemoryStore::new(buckets),
            puts: Mutex::default(),
            fail_puts_with: Mutex::default(),
            slow_gets: Mutex::default(),
        })
    }
    fn puts(&self) -> Vec<String> {
        self.puts.lock().unwrap().clone()
    }
}

#[async_trait]
impl ObjectStore for Recording {
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object> {
        let delay = *self.slow_gets.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.inner.get(bucket, key, max_bytes).await
    }
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        self.inner.head(bucket, key).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        if let Some(fail) = *self.fail_puts_with.lock().unwrap() {
            return Err(fail(format!("{bucket}/{key}")));
        }
        self.puts.lock().unwrap().push(format!("{bucket}/{key}"));
        self.inner.put(bucket, key, body, options).await
    }
    async fn get_head(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes> {
        self.inner.get_head(bucket, key, len).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.puts
            .lock()
            .unwrap()
            .push(format!("delete {bucket}/{key}"));
        self.inner.delete(bucket, key).await
    }
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        self.inner.list(bucket, prefix, continuation, limit).await
    }
    async fn list_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<ListPage> {
        self.inner
            .list_after(bucket, prefix, start_after, limit)
            .await
    }
}

/// Uploads `body` as a source and returns the event's view of it.
async fn upload(store: &dyn ObjectStore, bucket: &str, key: &str, body: Bytes) -> SourceObject {
    let etag = md5_etag(&body);
    let size = body.len() as u64;
    store
        .put(bucket, key, body, &PutOptions::default())
        .await
        .unwrap();
    SourceObject {
        bucket: bucket.into(),
        key: key.into(),
        size: Some(size),
        etag: Some(etag),
        version_id: None,
        event_name: "ObjectCreated:Put".into(),
        sequencer: None,
    }
}

fn pipeline(store: Arc<Recording>, bucket: &str, prefix: &str) -> Pipeline {
    Pipeline::new(store, Plan::builtin(), PipelineConfig::new(bucket, prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_a_photo_into_every_variant_and_a_manifest_last() {
    let store = Recording::new(&["uploads", "media"]);
    let src = upload(
        &*store,
        "uploads",
        "ünï/my photo (1).jpg",
        sample("rocket.jpg"),
    )
    .await;
    let p = pipeline(store.clone(), "media", "out/");
    let report = p.process(&src, None).await;
    let Outcome::Processed {
        manifest_key,
        variants,
        bytes_out,
    } = &report.outcome
    else {
        panic!("{:?}", report.outcome)
    };
    assert_eq!(manifest_key, "out/manifest/ünï/my photo (1).jpg.json");
    assert_eq!(*variants, 8);
    let listed_bytes: u64 = {
        let m = store
            .inner
            .get("media", manifest_key, 1 << 20)
            .await
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        m["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["bytes"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(*bytes_out, listed_bytes);
    assert_eq!(report.bytes_in, 112_525);
    assert!(report.times.fetch_ms >= 0.0 && report.times.total_ms > 0.0);

    let puts = store.puts();
    assert_eq!(puts.len(), 1 + 8 + 1, "{puts:?}");
    assert_eq!(
        puts.last().unwrap(),
        "media/out/manifest/ünï/my photo (1).jpg.json",
        "manifest last"
    );

    let manifest = store
        .inner
        .get("media", manifest_key, 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        manifest.info.content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(
        manifest.info.cache_control.as_deref(),
        Some(MANIFEST_CACHE_CONTROL)
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest.body).unwrap();
    assert_eq!(m["source"]["key"], "ünï/my photo (1).jpg");
    assert_eq!(m["source"]["etag"], src.etag.clone().unwrap());
    assert_eq!(m["source"]["width"], 640);
    let listed = m["variants"].as_array().unwrap();
    assert_eq!(listed.len(), 8);
    for v in listed {
        let key = v["key"].as_str().unwrap();
        assert!(
            key.starts_with("out/w") && key.contains("/ünï/my photo (1)."),
            "{key}"
        );
        let obj = store.inner.get("media", key, 1 << 24).await.unwrap();
        assert_eq!(obj.info.content_type.as_deref(), v["content_type"].as_str());
        assert_eq!(
            obj.info.cache_control.as_deref(),
            Some(mediaflow_engine::keys::IMMUTABLE_CACHE_CONTROL)
        );
        assert_eq!(obj.body.len() as u64, v["bytes"].as_u64().unwrap());
        let size = imagesize::blob_size(&obj.body).unwrap();
        assert_eq!(
            (size.width as u64, size.height as u64),
            (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
        );
        let meta = &obj.info.metadata;
        assert_eq!(meta[META_OUTPUT], "1");
        assert_eq!(meta[META_SOURCE_ETAG], src.etag.clone().unwrap());
        assert_eq!(
            meta[META_SOURCE_KEY],
            "%C3%BCn%C3%AF%2Fmy%20photo%20%281%29%2Ejpg"
        );
        assert_eq!(meta[META_PLAN], Plan::builtin().fingerprint());
    }
    let w256 = listed
        .iter()
        .find(|v| v["name"] == "w256" && v["format"] == "jpeg")
        .unwrap();
    assert_eq!(
        (w256["width"].as_u64(), w256["height"].as_u64()),
        (Some(256), Some(171))
    );
    // The original is untouched.
    let original = store.inner.get("uploads", &src.key, 1 << 24).await.unwrap();
    assert_eq!(original.body, sample("rocket.jpg"));
    assert!(original.info.metadata.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_event_writes_nothing() {
    let store = Recording::new(&["uploads", "media"]);
    let src = upload(&*store, "uploads", "a+b.png", sample("horse.png")).await;
    let p = pipeline(store.clone(), "media", "");
    assert!(matches!(
        p.process(&src, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let writes = store.puts().len();
    for _ in 0..3 {
        assert_eq!(
            p.process(&src, None).await.outcome,
            Outcome::Skipped(Skip::AlreadyDone)
        );
    }
    assert_eq!(store.puts().len(), writes);

    // A new config (another plan fingerprint) reprocesses.
    let plan = mediaflow_config::parse(
        "[[variant]]\nname = \"small\"\nwidth = 64\nformats = [\"webp\"]\n",
    )
    .unwrap();
    let p2 = Pipeline::new(store.clone(), plan, PipelineConfig::new("media", ""));
    assert!(matches!(
        p2.process(&src, None).await.outcome,
        Outcome::Processed { variants: 1, .. }
    ));

    // So does a new upload under the same key (another ETag).
    let src2 = upload(&*store, "uploads", "a+b.png", sample("chelsea.png")).await;
    assert_ne!(src2.etag, src.etag);
    assert!(matches!(
        p.process(&src2, None).await.outcome,
        Outcome::Processed { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_an_older_version_still_skips_when_the_current_one_is_done() {
    let store = Recording::new(&["uploads", "media"]);
    let old = upload(&*store, "uploads", "x.jpg", sample("rocket.jpg")).await;
    let new = upload(&*store, "uploads", "x.jpg", sample("fixtures/upright.jpg")).await;
    let p = pipeline(store.clone(), "media", "");
    assert!(matches!(
        p.process(&new, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let writes = store.puts().len();
    // The late event for the replaced upload reads the current bytes, which are done.
    assert_eq!(
        p.process(&old, None).await.outcome,
        Outcome::Skipped(Skip::AlreadyDone)
    );
    assert_eq!(store.puts().len(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_in_the_source_bucket_are_never_processed_again() {
    let store = Recording::new(&["photos"]);
    let src = upload(&*store, "photos", "cat.png", sample("chelsea.png")).await;
    let p = pipeline(store.clone(), "photos", "media/");
    assert!(matches!(
        p.process(&src, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let before = store.puts().len();
    for key in store
        .inner
        .keys("photos")
        .into_iter()
        .filter(|k| k.starts_with("media/"))
    {
        let info = store.inner.head("photos", &key).await.unwrap().unwrap();
        let ev = SourceObject {
            bucket: "photos".into(),
            key: key.clone(),
            size: Some(info.size),
            etag: info.etag,
            version_id: None,
            event_name: "ObjectCreated:Put".into(),
            sequencer: None,
        };
        assert_eq!(
            p.process(&ev, None).await.outcome,
            Outcome::Skipped(Skip::OutputKey),
            "{key}"
        );
    }
    // With no prefix, the metadata marker still stops the loop.
    let p = pipeline(store.clone(), "photos", "");
    let output = store
        .inner
        .keys("photos")
        .into_iter()
        .find(|k| k.starts_with("media/w256/"))
        .unwrap();
    let ev = SourceObject {
        key: output,
        ..src.clone()
    };
    assert_eq!(
        p.process(&ev, None).await.outcome,
        Outcome::Skipped(Skip::OutputObject)
    );
    assert_eq!(store.puts().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_upload_fails_permanently_and_its_neighbours_succeed() {
    let store = Recording::new(&["uploads", "media"]);
    let mut truncated = sample("rocket.jpg").to_vec();
    truncated.truncate(2000);
    let objects = vec![
        upload(&*store, "uploads", "good 1.jpg", sample("rocket.jpg")).await,
        upload(&*store, "uploads", "broken.jpg", Bytes::from(truncated)).await,
        upload(
            &*store,
            "uploads",
            "notes.txt",
            Bytes::from_static(b"hello, not an image"),
        )
        .await,
        upload(&*store, "uploads", "good 2.png", sample("horse.png")).await,
    ];
    let reports = pipeline(store.clone(), "media", "")
        .process_all(&objects, None)
        .await;
    assert_eq!(reports.len(), 4);
    assert_eq!(
        reports.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["good 1.jpg", "broken.jpg", "notes.txt", "good 2.png"]
    );
    assert!(matches!(reports[0].outcome, Outcome::Processed { .. }));
    assert!(matches!(reports[3].outcome, Outcome::Processed { .. }));
    let e = reports[1].failure().unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("corrupt", Retry::Permanent),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("s3://uploads/broken.jpg: corrupt: "),
        "{e}"
    );
    // Not media at all: permanent, but dead-lettered rather than recorded
    // (issue 15: an operator sees it in the DLQ).
    let e = reports[2].failure().unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("unsupported", Retry::DeadLetter),
        "{e}"
    );
    // No outputs for them, only the corrupt one's failure record (issue
    // 13: the record lets the event be acknowledged instead of retried).
    let keys = store.inner.keys("media");
    assert!(
        !keys
            .iter()
            .any(|k| (k.contains("broken") || k.contains("notes")) && !k.starts_with("failed/")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"failed/broken.jpg.json".to_string()),
        "{keys:?}"
    );
    assert!(
        !keys.contains(&"failed/notes.txt.json".to_string()),
        "{keys:?}"
    );
    let record = store
        .inner
        .get("media", "failed/broken.jpg.json", 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        record.info.metadata.get(META_OUTPUT).map(String::as_str),
        Some("1")
    );
    let json: serde_json::Value = serde_json::from_slice(&record.body).unwrap();
    assert_eq!(json["category"], "corrupt");
    assert_eq!(json["reason"], reports[1].failure().unwrap().reason);
    assert_eq!(json["source"]["etag"], objects[1].etag.clone().unwrap());

    // A replay is skipped by the record, without reading the source.
    let again = pipeline(store.clone(), "media", "")
        .process_all(&objects[1..2], None)
        .await;
    for r in &again {
        assert_eq!(
            r.outcome,
            Outcome::Skipped(Skip::AlreadyFailed),
            "{}",
            r.key
        );
        assert_eq!(r.bytes_in, 0);
    }
    // A new upload under the same key (another ETag) is processed.
    let fixed = upload(&*store, "uploads", "broken.jpg", sample("rocket.jpg")).await;
    let r = pipeline(store.clone(), "media", "")
        .process(&fixed, None)
        .await;
    assert!(
        matches!(r.outcome, Outcome::Processed { .. }),
        "{:?}",
        r.outcome
    );
}

/// A permanent failure that cannot be recorded is not acknowledged: it is
/// reported retryable, so the message is retried (and dead-lettered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_that_cannot_be_recorded_is_retried() {
    let store = Recording::new(&["uploads", "media"]);
    let mut truncated = sample("rocket.jpg").to_vec();
    truncated.truncate(2000);
    let broken = upload(&*store, "uploads", "broken.jpg", Bytes::from(truncated)).await;
    *store.fail_puts_with.lock().unwrap() = Some(StoreError::Transient);
    let e = pipeline(store.clone(), "media", "")
        .process(&broken, None)
        .await
        .failure()
        .cloned()
        .unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("corrupt", Retry::Retryable),
        "{e}"
    );
    assert!(
        e.reason
            .contains("recording the failure at failed/broken.jpg.json failed"),
        "{e}"
    );
    assert!(store.inner.keys("media").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_missing_sources_and_denied_writes() {
    let store = Recording::new(&["uploads", "media"]);
    let big = upload(&*store, "uploads", "big.jpg", sample("rocket.jpg")).await;
    let plan = mediaflow_config::parse(
        "[limits]\nmax_input_bytes = 100000\n[[variant]]\nname = \"s\"\nwidth = 64\n",
    )
    .unwrap();
    let p = Pipeline::new(store.clone(), plan, PipelineConfig::new("media", ""));
    let e = p.process(&big, None).await.failure().cloned().unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("limits", Retry::Permanent),
        "{e}"
    );
    assert!(
        e.reason.contains("112525") && e.reason.contains("100000"),
        "{e}"
    );

    let gone = SourceObject {
        key: "never uploaded.jpg".into(),
        ..big.clone()
    };
    assert_eq!(
        p.process(&gone, None).await.outcome,
        Outcome::Skipped(Skip::Gone)
    );

    let p = pipeline(store.clone(), "media", "");
    *store.fail_puts_with.lock().unwrap() = Some(StoreError::Denied);
    let e = p.process(&big, None).await.failure().cloned().unwrap();
    // Permanent, but its failure record is denied too: retried, not lost.
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("denied", Retry::Retryable),
        "{e}"
    );
    assert!(e.reason.contains("recording the failure"), "{e}");
    *store.fail_puts_with.lock().unwrap() = Some(StoreError::Transient);
    let e = p.process(&big, None).await.failure().cloned().unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("transient", Retry::Retryable),
        "{e}"
    );
    *store.fail_puts_with.lock().unwrap() = None;
    // Nothing half-done was recorded as done: the retry processes it.
    assert!(matches!(
        p.process(&big, None).await.outcome,
        Outcome::Processed { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_deadline_records_fail_as_retryable_without_writing() {
    let store = Recording::new(&["uploads", "media"]);
    let src = upload(
        &*store,
        "uploads",
        "late.jpg",
        sample("seeding_by_Clements_Engelhardt.jpg"),
    )
    .await;
    let p = pipeline(store.clone(), "media", "");
    let before = store.puts().len();

    let e = p
        .process(&src, Some(Instant::now() + Duration::from_millis(600)))
        .await
        .failure()
        .cloned()
        .unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("timeout", Retry::Retryable),
        "{e}"
    );
    assert!(e.reason.contains("not starting"), "{e}");

    // Enough time to start but not to finish (the source takes 5 s to
    // read): stopped at deadline - 500 ms, before any manifest.
    *store.slow_gets.lock().unwrap() = Some(Duration::from_secs(5));
    let started = Instant::now();
    let e = p
        .process(&src, Some(Instant::now() + Duration::from_millis(1100)))
        .await
        .failure()
        .cloned()
        .unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("timeout", Retry::Retryable),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up at the reserve, not after the slow read"
    );
    assert_eq!(store.puts().len(), before, "nothing written");
    *store.slow_gets.lock().unwrap() = None;
    let late = p
        .process(&src, Some(Instant::now() + Duration::from_secs(60)))
        .await;
    assert!(
        matches!(late.outcome, Outcome::Processed { .. }),
        "{:?}",
        late.outcome
    );
}

/// Issue 13: engine work started for a record whose deadline passed ran
/// on into the next invocation, outside the concurrency limit. Now it is
/// told to stop, and its slot stays taken until it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_abandoned_at_the_deadline_keeps_its_slot_until_it_stops() {
    let store = Recording::new(&["uploads", "media"]);
    let src = upload(
        &*store,
        "uploads",
        "heavy.jpg",
        sample("seeding_by_Clements_Engelhardt.jpg"),
    )
    .await;
    // Seconds of work: full-size AVIF and WebP before the small variants.
    let plan = mediaflow_config::parse(
        "[[variant]]\nname = \"full\"\nwidth = 4000\nformats = [\"avif\", \"webp\"]\n\
         [[variant]]\nname = \"half\"\nwidth = 2000\nformats = [\"avif\", \"webp\"]\n",
    )
    .unwrap();
    let mut config = PipelineConfig::new("media", "");
    config.concurrency = 1;
    let p = Pipeline::new(store.clone(), plan, config);
    assert_eq!(p.idle_slots(), 1);
    let e = p
        .process(&src, Some(Instant::now() + Duration::from_millis(1500)))
        .await
        .failure()
        .cloned()
        .unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("timeout", Retry::Retryable),
        "{e}"
    );
    assert_eq!(
        p.idle_slots(),
        0,
        "the engine still runs and holds its slot"
    );
    let waited = Instant::now();
    while p.idle_slots() == 0 && waited.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        p.idle_slots(),
        1,
        "the slot comes back once the engine stops"
    );
    assert!(
        store.puts().iter().all(|k| !k.starts_with("media/")),
        "{:?}",
        store.puts()
    );
}

/// A plan whose estimate for the sample photo is hundreds of MiB
/// (full-size AVIF and WebP).
fn heavy_plan() -> Plan {
    mediaflow_config::parse(
        "[[variant]]\nname = \"full\"\nwidth = 4000\nformats = [\"avif\", \"webp\"]\n",
    )
    .unwrap()
}

/// Work is admitted through the memory budget: a source whose estimate is
/// over the whole budget fails as `limits` before it is decoded (and is
/// recorded, so it is not retried); the budget is whole again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_can_never_fit_the_memory_budget_fails_as_limits() {
    let store = Recording::new(&["uploads", "media"]);
    let photo = sample("seeding_by_Clements_Engelhardt.jpg");
    let need = mediaflow_engine::estimate_memory(&photo, &heavy_plan()).unwrap();
    assert!(need > 64 << 20, "{need}");
    let src = upload(&*store, "uploads", "big.jpg", photo).await;
    let mut config = PipelineConfig::new("media", "");
    config.memory_budget = Some(64 << 20);
    let p = Pipeline::new(store.clone(), heavy_plan(), config);
    let started = Instant::now();
    let report = p.process(&src, None).await;
    let e = report.failure().cloned().unwrap();
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("limits", Retry::Permanent),
        "{e}"
    );
    assert_eq!(
        e.reason,
        format!(
            "needs about {} MiB to process, more than the memory budget of 64 MiB (give the function more memory, or lower the pixel limit)",
            need.div_ceil(1 << 20)
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused before the encode"
    );
    let written: Vec<String> = store
        .puts()
        .into_iter()
        .filter(|k| k.starts_with("media/"))
        .collect();
    assert_eq!(written, ["media/failed/big.jpg.json"]);
    assert_eq!(p.memory_budget().unwrap().available_bytes(), 64 << 20);
}

/// Two sources that each take more than half the budget run one after the
/// other, and both complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_over_half_the_budget_take_turns() {
    let store = Recording::new(&["uploads", "media"]);
    let photo = sample("seeding_by_Clements_Engelhardt.jpg");
    let plan = Plan::builtin();
    let need = mediaflow_engine::estimate_memory(&photo, &plan).unwrap();
    let budget = need * 3 / 2;
    assert!(budget > 64 << 20, "{need}: over the smallest budget");
    let a = upload(&*store, "uploads", "a.jpg", photo.clone()).await;
    let b = upload(&*store, "uploads", "b.jpg", photo).await;
    let mut config = PipelineConfig::new("media", "");
    config.concurrency = 2;
    config.memory_budget = Some(budget);
    let p = Pipeline::new(store.clone(), plan, config);
    let budget = p.memory_budget().unwrap().clone();
    // Watch what is held while the two run: never both at once.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let low = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let watcher = {
        let (budget, watching, low) = (budget.clone(), watching.clone(), low.clone());
        tokio::spawn(async move {
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                low.fetch_min(
                    budget.available_bytes(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let reports = p.process_all(&[a, b], None).await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    watcher.await.unwrap();
    for r in &reports {
        assert!(
            matches!(r.outcome, Outcome::Processed { .. }),
            "{:?}",
            r.outcome
        );
    }
    let held_at_most = budget.bytes() - low.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        held_at_most < 2 * need,
        "both admitted at once: {held_at_most} held, {need} each"
    );
    assert_eq!(budget.available_bytes(), budget.bytes());
}
