//! Keys are data, not paths: legal S3 keys that look like paths, carry
//! control characters or are long, through the pipeline (memory store).

use bytes::Bytes;
use mediaflow_engine::Plan;
use mediaflow_pipeline::{Outcome, Pipeline, PipelineConfig, Retry, SourceObject, META_SOURCE_KEY};
use mediaflow_store::{md5_etag, MemoryStore, ObjectStore, PutOptions};
use mediaflow_testkit::sample;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

async fn upload(store: &MemoryStore, key: &str, body: Bytes) -> SourceObject {
    let etag = md5_etag(&body);
    let size = body.len() as u64;
    store
        .put("uploads", key, body, &PutOptions::default())
        .await
        .unwrap();
    SourceObject {
        bucket: "uploads".into(),
        key: key.into(),
        size: Some(size),
        etag: Some(etag),
        version_id: None,
        event_name: "ObjectCreated:Put".into(),
        sequencer: None,
    }
}

fn pipeline(store: Arc<MemoryStore>) -> Pipeline {
    Pipeline::new(store, Plan::builtin(), PipelineConfig::new("media", ""))
}

/// `a/../b.jpg` is not `b.jpg` to S3, and its outputs are not `b.jpg`'s:
/// nothing resolves dot segments, empty segments or control characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_like_and_control_character_keys_get_their_own_outputs() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let keys = [
        "b.jpg",
        "a/../b.jpg",
        "../b.jpg",
        "./b.jpg",
        "a//b.jpg",
        "/b.jpg",
        "b\n.jpg",
        "b\r\u{1b}[31m.jpg",
    ];
    let mut sources = Vec::new();
    for key in keys {
        sources.push(upload(&store, key, sample("horse.png")).await);
    }
    let reports = pipeline(store.clone()).process_all(&sources, None).await;
    let mut outputs = BTreeSet::new();
    for (key, report) in keys.iter().zip(&reports) {
        let Outcome::Processed { manifest_key, .. } = &report.outcome else {
            panic!("{key:?}: {:?}", report.outcome);
        };
        assert_eq!(manifest_key, &format!("manifest/{key}.json"));
        let m = store.get("media", manifest_key, 1 << 20).await.unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(m["source"]["key"], *key);
        assert!(outputs.insert(manifest_key.clone()), "{key:?}");
        for v in m["variants"].as_array().unwrap() {
            let v = v["key"].as_str().unwrap().to_string();
            assert!(store.head("media", &v).await.unwrap().is_some(), "{v:?}");
            assert!(
                outputs.insert(v.clone()),
                "{key:?}: {v:?} is another source's"
            );
        }
    }
    assert_eq!(outputs.len(), keys.len() * 9);
    assert_eq!(store.keys("media").len(), outputs.len());
}

/// S3 refuses keys over 1,024 bytes: a source whose outputs would be longer
/// fails permanently, as `limits`, before it is read; one byte shorter and
/// it is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_whose_outputs_would_be_too_long_fail_before_reading() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    // The longest output is the w2048 WebP: "w2048/", the key, ".", the
    // 16-digit hash, ".webp": the key plus 28 bytes.
    let long = |len: usize| format!("{}/{}.png", "d".repeat(500), "ф".repeat((len - 505) / 2));
    let over = upload(&store, &long(997), sample("horse.png")).await;
    let fits = upload(&store, &long(995), sample("horse.png")).await;
    assert_eq!((over.key.len(), fits.key.len()), (997, 995));
    let p = pipeline(store.clone());
    let report = p.process(&over, None).await;
    let Outcome::Failed(e) = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert_eq!(e.category, "limits");
    assert_eq!(e.retry, Retry::Permanent);
    assert_eq!(
        e.reason,
        "key is 997 bytes; outputs would be 1025 bytes, over S3's 1024"
    );
    assert_eq!(report.bytes_in, 0, "not read");
    // Its failure record's key (7 bytes shorter than the manifest's) fits.
    assert_eq!(store.keys("media"), [format!("failed/{}.json", over.key)]);
    // A replay fails the same way, still without reading the source.
    let again = p.process(&over, None).await;
    assert_eq!(again.outcome, report.outcome);
    assert_eq!(again.bytes_in, 0, "not read");

    // Longer still, not even the failure record fits: the failure stays
    // permanent (acknowledged, never retried) and says it was not recorded.
    let other = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let longest = upload(&other, &long(1020), sample("horse.png")).await;
    let report = pipeline(other.clone()).process(&longest, None).await;
    let Outcome::Failed(e) = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert_eq!(e.retry, Retry::Permanent);
    assert!(
        e.reason.ends_with(
            "(not recorded: the failure record's key would be over S3's 1024-byte limit)"
        ),
        "{}",
        e.reason
    );
    assert!(other.keys("media").is_empty());

    let report = p.process(&fits, None).await;
    assert!(
        matches!(report.outcome, Outcome::Processed { .. }),
        "{:?}",
        report.outcome
    );
    let written: Vec<String> = store
        .keys("media")
        .into_iter()
        .filter(|k| !k.starts_with("failed/"))
        .collect();
    assert_eq!(written.len(), 9);
    assert!(written.iter().all(|k| k.len() <= 1024), "{written:?}");
    assert!(written.iter().any(|k| k.len() == 1023));
    // Percent-encoded, this key is over 2,000 bytes: S3 would refuse it as
    // user metadata (2 KB in all), so the outputs do not carry it.
    let manifest = store
        .head("media", &format!("manifest/{}.json", fits.key))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !manifest.metadata.contains_key(META_SOURCE_KEY),
        "{:?}",
        manifest.metadata
    );
    let total: usize = manifest
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    assert!(total < 2048, "{total}");
}

/// A writer tracing can log into, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

const FORGING: &str = "evil.jpg\nINFO mediaflow: processed s3://uploads/forged.jpg\r\u{1b}[2K\u{1b}[31mred\u{2028}.jpg";

async fn process_hostile(store: &Arc<MemoryStore>) -> Vec<mediaflow_pipeline::ObjectReport> {
    let ok = upload(store, FORGING, sample("horse.png")).await;
    let broken = upload(
        store,
        &format!("{FORGING}.broken.jpg"),
        sample("rocket.jpg").slice(..5000),
    )
    .await;
    pipeline(store.clone())
        .process_all(&[ok, broken], None)
        .await
}

/// A key with a newline, a carriage return and ANSI escapes logs one line
/// per object in the text format (and in the error's own text).
#[tokio::test]
async fn a_hostile_key_is_one_line_in_text_logs() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let reports = process_hostile(&store).await;
    assert!(matches!(reports[0].outcome, Outcome::Processed { .. }));
    let e = reports[1].failure().expect("the broken one fails");
    assert!(!e.to_string().contains(['\n', '\r', '\u{1b}']), "{e}");
    assert!(e.to_string().starts_with(
        "s3://uploads/evil.jpg\\nINFO mediaflow: processed s3://uploads/forged.jpg\\r\\u{1b}[2K\\u{1b}[31mred\\u{2028}.jpg.broken.jpg: corrupt: "
    ), "{e}");

    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one line per object:\n{text}");
    // Either may finish first.
    assert!(
        lines.iter().any(|l| l.contains(" processed "))
            && lines.iter().any(|l| l.contains(" corrupt: ")),
        "{text}"
    );
    assert!(!text.contains(['\r', '\u{1b}', '\u{2028}']), "{text:?}");
    assert!(lines.iter().all(|l| !l.starts_with("INFO")), "{text}");
}

/// The JSON format escapes by itself (serde): one line per object, and the
/// escaped key in the fields.
#[tokio::test]
async fn a_hostile_key_is_one_line_in_json_logs() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    process_hostile(&store).await;
    let text = out.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let processed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "processed")
        .expect("a processed line");
    assert_eq!(
        processed["fields"]["object"],
        format!("s3://uploads/{}", mediaflow_store::escape_key(FORGING))
    );
}
