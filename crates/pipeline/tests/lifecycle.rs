//! An object's whole life through the pipeline, against an in-memory store
//! and real sample images: keys that would meet, re-uploads, plan changes,
//! deletes (also out of order), versions racing (in a forced order),
//! routing by bytes, and cache headers that match the key.

use async_trait::async_trait;
use bytes::Bytes;
use mediaflow_engine::keys::IMMUTABLE_CACHE_CONTROL;
use mediaflow_engine::{KeyTemplate, Plan};
use mediaflow_pipeline::{
    parse_body, retired_key, ErrorKind, Outcome, Pipeline, PipelineConfig, Retry, Skip,
    SourceObject, MANIFEST_CACHE_CONTROL, META_SOURCE_ETAG, META_SOURCE_KEY,
};
use mediaflow_store::{
    md5_etag, ListPage, MemoryQueue, MemoryStore, Object, ObjectInfo, ObjectStore, PutOptions,
    Result,
};
use mediaflow_testkit::sample;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const IN: &str = "uploads";
const OUT: &str = "media";

/// A memory store that can hold one operation until the test releases it:
/// the first output PUT made from a given source ETag, or the first GET of
/// a given key (after reading it). This is how a test forces the order of
/// two versions in flight.
#[derive(Debug, Default)]
struct Gated {
    inner: MemoryStore,
    hold_put_for_etag: Mutex<Option<String>>,
    hold_get_of_key: Mutex<Option<String>>,
    /// Holds the first delete of an output (not a manifest or record).
    hold_output_delete: AtomicBool,
    reached: Notify,
    release: Notify,
    held: AtomicBool,
}

impl Gated {
    fn new() -> Arc<Gated> {
        Arc::new(Gated {
            inner: MemoryStore::new(&[IN, OUT]),
            ..Gated::default()
        })
    }
    async fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
        self.reached.notify_one();
        self.release.notified().await;
    }
}

#[async_trait]
impl ObjectStore for Gated {
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object> {
        let got = self.inner.get(bucket, key, max_bytes).await;
        let hold = {
            let mut h = self.hold_get_of_key.lock().unwrap();
            if h.as_deref() == Some(key) {
                *h = None;
                true
            } else {
                false
            }
        };
        if hold {
            self.hold().await;
        }
        got
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
        let hold = {
            let mut h = self.hold_put_for_etag.lock().unwrap();
            let etag = options.metadata.get(META_SOURCE_ETAG);
            if bucket == OUT && !key.contains("manifest/") && h.is_some() && etag == h.as_ref() {
                *h = None;
                true
            } else {
                false
            }
        };
        if hold {
            self.hold().await;
        }
        self.inner.put(bucket, key, body, options).await
    }
    async fn get_head(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes> {
        self.inner.get_head(bucket, key, len).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let output = bucket == OUT && !key.ends_with(".json");
        if output && self.hold_output_delete.swap(false, Ordering::SeqCst) {
            self.hold().await;
        }
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

fn event(key: &str, body: Option<&Bytes>, event_name: &str) -> SourceObject {
    SourceObject {
        bucket: IN.into(),
        key: key.into(),
        size: body.map(|b| b.len() as u64),
        etag: body.map(|b| md5_etag(b)),
        version_id: None,
        event_name: event_name.into(),
        sequencer: None,
    }
}

/// Uploads `body` under `key` and returns S3's event for it.
async fn upload(store: &dyn ObjectStore, key: &str, body: &Bytes) -> SourceObject {
    store
        .put(IN, key, body.clone(), &PutOptions::default())
        .await
        .unwrap();
    event(key, Some(body), "ObjectCreated:Put")
}

/// Deletes `key` and returns S3's event for it.
async fn delete(store: &dyn ObjectStore, key: &str) -> SourceObject {
    store.delete(IN, key).await.unwrap();
    event(key, None, "ObjectRemoved:Delete")
}

fn small_plan() -> Plan {
    let formats = [
        mediaflow_engine::FormatChoice::Fixed(mediaflow_engine::OutputFormat::Jpeg),
        mediaflow_engine::FormatChoice::Fixed(mediaflow_engine::OutputFormat::Webp),
    ];
    Plan::new(
        mediaflow_engine::Limits::default(),
        vec![
            mediaflow_engine::Variant::new("w128", Some(128), None).with_formats(formats),
            mediaflow_engine::Variant::new("w64", Some(64), None).with_formats(formats),
        ],
        mediaflow_engine::EncodeOptions::default(),
    )
    .unwrap()
    .with_placeholder(false)
}

fn with_template(plan: Plan, template: &str) -> Plan {
    plan.with_output_keys(KeyTemplate::parse(template).unwrap(), "public, max-age=60")
        .unwrap()
}

fn pipeline(store: Arc<dyn ObjectStore>, plan: Plan) -> Pipeline {
    let mut config = PipelineConfig::new(OUT, "m/");
    config.concurrency = 4;
    Pipeline::new(store, plan, config)
}

async fn manifest(store: &dyn ObjectStore, key: &str) -> Option<Value> {
    match store
        .get(OUT, &format!("m/manifest/{key}.json"), 1 << 20)
        .await
    {
        Ok(o) => Some(serde_json::from_slice(&o.body).unwrap()),
        Err(_) => None,
    }
}

fn listed(m: &Value) -> BTreeSet<String> {
    m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect()
}

/// Every output the manifest lists exists, belongs to `key`, and decodes
/// at the size the manifest gives, with the aspect ratio of `picture`.
async fn check_outputs(store: &MemoryStore, key: &str, picture: &Bytes) -> BTreeSet<String> {
    let m = manifest(store, key).await.expect("a manifest");
    assert_eq!(m["source"]["key"], key);
    assert_eq!(m["source"]["etag"], md5_etag(picture));
    let src = imagesize::blob_size(picture).unwrap();
    for v in m["variants"].as_array().unwrap() {
        let k = v["key"].as_str().unwrap();
        let o = store
            .get(OUT, k, 1 << 24)
            .await
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        let enc = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        assert_eq!(o.info.metadata.get(META_SOURCE_KEY), Some(&enc), "{k}");
        let img = imagesize::blob_size(&o.body).unwrap();
        assert_eq!(img.width as u64, v["width"].as_u64().unwrap(), "{k}");
        assert_eq!(img.height as u64, v["height"].as_u64().unwrap(), "{k}");
        let ratio = |w: usize, h: usize| w as f64 / h as f64;
        assert!(
            (ratio(img.width, img.height) - ratio(src.width, src.height)).abs() < 0.05,
            "{k} is another picture"
        );
    }
    listed(&m)
}

fn memory(store: &Arc<Gated>) -> &MemoryStore {
    &store.inner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpg_and_a_png_with_one_name_keep_their_own_outputs() {
    let store = Gated::new();
    let p = pipeline(store.clone(), small_plan());
    let (jpg, png) = (sample("rocket.jpg"), sample("chelsea.png"));
    let a = upload(&*store, "pics/a.jpg", &jpg).await;
    let b = upload(&*store, "pics/a.png", &png).await;
    for r in p.process_all(&[a, b], None).await {
        assert!(matches!(r.outcome, Outcome::Processed { .. }), "{r:?}");
    }
    let ka = check_outputs(memory(&store), "pics/a.jpg", &jpg).await;
    let kb = check_outputs(memory(&store), "pics/a.png", &png).await;
    assert!(ka.is_disjoint(&kb), "{ka:?} {kb:?}");
    assert!(ka
        .iter()
        .all(|k| k.starts_with("m/w") && k.contains("/pics/a.jpg.")));
    // Keys with the content hash never get other bytes: cached for good.
    let info = store.head(OUT, ka.first().unwrap()).await.unwrap().unwrap();
    assert_eq!(info.cache_control.as_deref(), Some(IMMUTABLE_CACHE_CONTROL));
    let m = store
        .head(OUT, "m/manifest/pics/a.jpg.json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.cache_control.as_deref(), Some(MANIFEST_CACHE_CONTROL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_lets_two_sources_meet_fails_the_second_and_overwrites_nothing() {
    let store = Gated::new();
    let plan = with_template(small_plan(), "{variant}/{dir}{stem}.{ext}");
    let p = pipeline(store.clone(), plan);
    let (jpg, png) = (sample("rocket.jpg"), sample("chelsea.png"));
    let a = upload(&*store, "pics/a.jpg", &jpg).await;
    assert!(matches!(
        p.process(&a, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let before: Vec<Bytes> = {
        let mut v = Vec::new();
        for k in listed(&manifest(&*store, "pics/a.jpg").await.unwrap()) {
            v.push(store.get(OUT, &k, 1 << 24).await.unwrap().body);
        }
        v
    };
    let b = upload(&*store, "pics/a.png", &png).await;
    let r = p.process(&b, None).await;
    let Outcome::Failed(e) = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(e.category, ErrorKind::Collision);
    assert_eq!(e.retry, Retry::Permanent);
    assert!(
        e.reason.contains("pics/a.png") && e.reason.contains("source pics/a.jpg"),
        "{e}"
    );
    // a.jpg's outputs are untouched and still its own; a.png has none.
    check_outputs(memory(&store), "pics/a.jpg", &jpg).await;
    let mut after = Vec::new();
    for k in listed(&manifest(&*store, "pics/a.jpg").await.unwrap()) {
        after.push(store.get(OUT, &k, 1 << 24).await.unwrap().body);
    }
    assert_eq!(before, after);
    assert!(manifest(&*store, "pics/a.png").await.is_none());
    // Overwritable keys get the short, configured Cache-Control.
    let k = listed(&manifest(&*store, "pics/a.jpg").await.unwrap());
    let info = store.head(OUT, k.first().unwrap()).await.unwrap().unwrap();
    assert_eq!(info.cache_control.as_deref(), Some("public, max-age=60"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reupload_gives_new_outputs_and_removes_the_stale_ones() {
    for template in [KeyTemplate::DEFAULT, "{variant}/{dir}{stem}.{ext}"] {
        let store = Gated::new();
        let p = pipeline(store.clone(), with_template(small_plan(), template));
        let (one, two) = (sample("rocket.jpg"), sample("chelsea.png"));
        let v1 = upload(&*store, "a.jpg", &one).await;
        assert!(matches!(
            p.process(&v1, None).await.outcome,
            Outcome::Processed { .. }
        ));
        let old = check_outputs(memory(&store), "a.jpg", &one).await;
        // The same key, another picture (a PNG under a .jpg name: the bytes decide).
        let v2 = upload(&*store, "a.jpg", &two).await;
        let r = p.process(&v2, None).await;
        assert!(
            matches!(r.outcome, Outcome::Processed { .. }),
            "{template}: {r:?}"
        );
        let new = check_outputs(memory(&store), "a.jpg", &two).await;
        let mut expected: BTreeSet<String> = new.clone();
        expected.insert("m/manifest/a.jpg.json".into());
        let all: BTreeSet<String> = memory(&store).keys(OUT).into_iter().collect();
        assert_eq!(
            all, expected,
            "{template}: only the new outputs and manifest remain"
        );
        if template == KeyTemplate::DEFAULT {
            assert!(old.is_disjoint(&new), "hashed keys change with the bytes");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_removes_the_outputs_it_no_longer_makes() {
    let store = Gated::new();
    let jpg = sample("rocket.jpg");
    let a = upload(&*store, "a.jpg", &jpg).await;
    let first = pipeline(store.clone(), small_plan());
    assert!(matches!(
        first.process(&a, None).await.outcome,
        Outcome::Processed { .. }
    ));
    assert_eq!(check_outputs(memory(&store), "a.jpg", &jpg).await.len(), 4);
    let fewer = Plan::new(
        mediaflow_engine::Limits::default(),
        vec![mediaflow_engine::Variant::new("w64", Some(64), None)],
        mediaflow_engine::EncodeOptions::default(),
    )
    .unwrap()
    .with_placeholder(false);
    let second = pipeline(store.clone(), fewer);
    assert!(matches!(
        second.process(&a, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let now = check_outputs(memory(&store), "a.jpg", &jpg).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(
        memory(&store).keys(OUT).len(),
        2,
        "{:?}",
        memory(&store).keys(OUT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_removes_exactly_that_sources_outputs_once() {
    let store = Gated::new();
    let p = pipeline(store.clone(), small_plan());
    let (jpg, png) = (sample("rocket.jpg"), sample("chelsea.png"));
    let a = upload(&*store, "a.jpg", &jpg).await;
    let b = upload(&*store, "b.png", &png).await;
    p.process_all(&[a, b], None).await;
    let kb = check_outputs(memory(&store), "b.png", &png).await;
    let gone = delete(&*store, "a.jpg").await;
    let r = p.process(&gone, None).await;
    assert!(
        matches!(r.outcome, Outcome::Removed { outputs: 4, .. }),
        "{r:?}"
    );
    let mut expected = kb.clone();
    expected.insert("m/manifest/b.png.json".into());
    let all: BTreeSet<String> = memory(&store).keys(OUT).into_iter().collect();
    assert_eq!(all, expected, "b.png's outputs and manifest alone remain");
    // At-least-once delivery: the same delete again is a no-op.
    let again = p.process(&gone, None).await;
    assert_eq!(again.outcome, Outcome::Skipped(Skip::NothingToRemove));
    assert!(!memory(&store)
        .keys(OUT)
        .contains(&retired_key("m/", "a.jpg")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_delete_after_a_newer_upload_removes_nothing() {
    let store = Gated::new();
    let p = pipeline(store.clone(), small_plan());
    let jpg = sample("rocket.jpg");
    let first = upload(&*store, "a.jpg", &jpg).await;
    p.process(&first, None).await;
    let old_delete = delete(&*store, "a.jpg").await;
    let again = upload(&*store, "a.jpg", &jpg).await;
    // The upload's event is handled, then the delete's arrives late.
    p.process(&again, None).await;
    let before: BTreeSet<String> = memory(&store).keys(OUT).into_iter().collect();
    let r = p.process(&old_delete, None).await;
    assert_eq!(r.outcome, Outcome::Skipped(Skip::AlreadyDone), "{r:?}");
    let after: BTreeSet<String> = memory(&store).keys(OUT).into_iter().collect();
    assert_eq!(before, after);
    check_outputs(memory(&store), "a.jpg", &jpg).await;
}

/// V1 is past its checks and about to write when V2 is uploaded and
/// processed completely; then V1 writes. It must end with V2's outputs
/// and manifest, with hashed keys and with keys overwritten in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_race_v1_writing_after_v2_ends_with_v2() {
    for template in [KeyTemplate::DEFAULT, "{variant}/{dir}{stem}.{ext}"] {
        let store = Gated::new();
        let p = pipeline(store.clone(), with_template(small_plan(), template));
        let (one, two) = (sample("rocket.jpg"), sample("chelsea.png"));
        let v1 = upload(&*store, "a.jpg", &one).await;
        *store.hold_put_for_etag.lock().unwrap() = Some(md5_etag(&one));
        let slow = tokio::spawn({
            let p = p.clone();
            async move { p.process(&v1, None).await }
        });
        tokio::time::timeout(std::time::Duration::from_secs(60), store.reached.notified())
            .await
            .expect("V1 reaches its first write");
        let v2 = upload(&*store, "a.jpg", &two).await;
        let r2 = p.process(&v2, None).await;
        assert!(matches!(r2.outcome, Outcome::Processed { .. }), "{r2:?}");
        store.release.notify_one();
        let r1 = tokio::time::timeout(std::time::Duration::from_secs(60), slow)
            .await
            .unwrap()
            .unwrap();
        assert!(store.held.load(Ordering::SeqCst));
        assert!(r1.failure().is_none(), "{template}: {r1:?}");
        let keys = check_outputs(memory(&store), "a.jpg", &two).await;
        let mut expected = keys.clone();
        expected.insert("m/manifest/a.jpg.json".into());
        let all: BTreeSet<String> = memory(&store).keys(OUT).into_iter().collect();
        assert_eq!(all, expected, "{template}: V1's outputs are gone");
    }
}

/// V1 has read its bytes when V2 is uploaded and processed; V1 then
/// stops before writing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_race_v1_finishing_late_is_superseded() {
    let store = Gated::new();
    let p = pipeline(store.clone(), small_plan());
    let (one, two) = (sample("rocket.jpg"), sample("chelsea.png"));
    let v1 = upload(&*store, "a.jpg", &one).await;
    *store.hold_get_of_key.lock().unwrap() = Some("a.jpg".into());
    let slow = tokio::spawn({
        let p = p.clone();
        async move { p.process(&v1, None).await }
    });
    tokio::time::timeout(std::time::Duration::from_secs(60), store.reached.notified())
        .await
        .expect("V1 reads its bytes");
    let v2 = upload(&*store, "a.jpg", &two).await;
    assert!(matches!(
        p.process(&v2, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let puts = memory(&store).put_count();
    store.release.notify_one();
    let r1 = slow.await.unwrap();
    assert_eq!(r1.outcome, Outcome::Skipped(Skip::Superseded));
    assert_eq!(memory(&store).put_count(), puts, "V1 wrote nothing");
    check_outputs(memory(&store), "a.jpg", &two).await;
}

/// The image function with a video queue: the bytes decide, whatever the
/// key's extension, its case, or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upload_is_routed_by_its_bytes() {
    let store = Gated::new();
    let queue = Arc::new(MemoryQueue::new("transcode-queue"));
    let mut config = PipelineConfig::new(OUT, "m/");
    config.video_queue = Some(queue.clone());
    // The clip (1 MB) is over this image limit (the photo, 110 KB, is not):
    // on-upload does not download it, it tells it apart from a ranged read
    // of its first bytes and forwards it.
    let limits = mediaflow_engine::Limits {
        max_input_bytes: 500_000,
        ..mediaflow_engine::Limits::default()
    };
    let plan = Plan::new(
        limits,
        small_plan().variants().to_vec(),
        mediaflow_engine::EncodeOptions::default(),
    )
    .unwrap();
    let p = Pipeline::new(store.clone(), plan, config);
    let jpg = sample("rocket.jpg");
    let clip = sample("bigbuckbunny.mp4");
    assert!(clip.len() > 500_000 && jpg.len() < 500_000);
    let text = Bytes::from_static(b"hello, this is not a picture\n");
    let cases = [
        ("IMG_0001", &jpg),
        ("photo.Jpeg", &jpg),
        ("clip.Mp4", &clip),
        ("VID_0002", &clip),
        ("notes.txt", &text),
        ("fake.jpg", &text),
    ];
    let mut events = Vec::new();
    for (key, body) in cases {
        events.push(upload(&*store, key, body).await);
    }
    let reports = p.process_all(&events, None).await;
    for (r, (key, _)) in reports.iter().zip(cases) {
        match key {
            "IMG_0001" | "photo.Jpeg" => {
                assert!(matches!(r.outcome, Outcome::Processed { .. }), "{r:?}");
                check_outputs(memory(&store), key, &jpg).await;
            }
            "clip.Mp4" | "VID_0002" => assert_eq!(
                r.outcome,
                Outcome::Forwarded {
                    queue: "transcode-queue".into()
                },
                "{key}"
            ),
            _ => {
                let e = r.failure().unwrap_or_else(|| panic!("{r:?}"));
                assert_eq!(e.retry, Retry::DeadLetter, "{e}");
                assert!(e.reason.contains("neither an image nor a video"), "{e}");
                assert!(e.to_string().contains(key), "{e}");
            }
        }
    }
    // The forwarded messages are S3 notifications for the same objects.
    let sent: Vec<SourceObject> = queue
        .messages()
        .iter()
        .flat_map(|m| parse_body(m).unwrap().objects)
        .collect();
    let keys: BTreeSet<&str> = sent.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["clip.Mp4", "VID_0002"]));
    assert!(sent
        .iter()
        .all(|o| o.etag.as_deref() == Some(md5_etag(&clip).as_str())));
    // Not media: no failure record (it goes to the dead-letter queue instead).
    assert!(store
        .head(OUT, "m/failed/notes.txt.json")
        .await
        .unwrap()
        .is_none());
    // Without a video queue, a video fails permanently and says why.
    let alone = pipeline(store.clone(), small_plan());
    let r = alone.process(&events[2], None).await;
    let e = r.failure().unwrap();
    assert_eq!(e.retry, Retry::Permanent);
    assert!(e.reason.contains("no video function"), "{e}");
}

/// A delete is removing a source's outputs when the same bytes are uploaded
/// again and processed completely (same ETag: the same keys). The removal
/// then deletes those fresh outputs; it must notice the key exists again
/// and redo it, so the manifest never lists missing outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_a_reupload_of_the_same_bytes_ends_with_outputs() {
    let store = Gated::new();
    let p = pipeline(store.clone(), small_plan());
    let jpg = sample("rocket.jpg");
    let first = upload(&*store, "a.jpg", &jpg).await;
    assert!(matches!(
        p.process(&first, None).await.outcome,
        Outcome::Processed { .. }
    ));
    let removal = delete(&*store, "a.jpg").await;
    store.hold_output_delete.store(true, Ordering::SeqCst);
    let slow = tokio::spawn({
        let p = p.clone();
        async move { p.process(&removal, None).await }
    });
    tokio::time::timeout(std::time::Duration::from_secs(60), store.reached.notified())
        .await
        .expect("the removal reaches its first output delete");
    let again = upload(&*store, "a.jpg", &jpg).await;
    let r = p.process(&again, None).await;
    assert!(matches!(r.outcome, Outcome::Processed { .. }), "{r:?}");
    store.release.notify_one();
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), slow)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r.outcome, Outcome::Processed { .. }), "{r:?}");
    let keys = check_outputs(memory(&store), "a.jpg", &jpg).await;
    let mut expected = keys.clone();
    expected.insert("m/manifest/a.jpg.json".into());
    let all: BTreeSet<String> = memory(&store).keys(OUT).into_iter().collect();
    assert_eq!(
        all, expected,
        "every listed output exists, no record left behind"
    );
}
