//! Backfill selection against the memory store, with outputs made by the
//! real pipeline: current, missing, stale (other bytes, other plan),
//! rejected (a failure record) and orphaned manifests, over awkward keys
//! whose output keys sort in another order than the source keys, with
//! pages of every size, resumed from any key, and with a key template
//! that forces a HEAD per manifest.

use bytes::Bytes;
use mediaflow_engine::{KeyTemplate, Plan};
use mediaflow_pipeline::backfill::inventory::{InventoryListing, InventoryManifest};
use mediaflow_pipeline::backfill::{
    BucketListing, Requests, Selection, Selector, SourceListing, State,
};
use mediaflow_pipeline::{Outcome, Pipeline, PipelineConfig, SourceObject};
use mediaflow_store::{md5_etag, ListEntry, MemoryStore, ObjectStore, PutOptions};
use mediaflow_testkit::sample;
use std::collections::BTreeMap;
use std::sync::Arc;

const IN: &str = "uploads";
const OUT: &str = "media";
const PREFIX: &str = "m/";

/// Keys whose manifests and outputs sort in another order than they do
/// (`a` < `a-b` but `a.json` > `a-b.json`), with spaces, `+`, `%`,
/// quotes and other scripts.
const KEYS: &[&str] = &[
    "a",
    "a b",
    "a+b",
    "a-b",
    "a.json",
    "a/b",
    "a/b c.png",
    "a0",
    "p/%41 100%.png",
    "p/it's \"q\" & <x>.png",
    "p/ünï/фото 1.png",
    "p/ünï/фото.png",
    "z",
];

fn plan(widths: &[u32], template: &str) -> Plan {
    let formats = [mediaflow_engine::FormatChoice::Fixed(
        mediaflow_engine::OutputFormat::Png,
    )];
    Plan::new(
        mediaflow_engine::Limits::default(),
        widths
            .iter()
            .map(|w| {
                mediaflow_engine::Variant::new(format!("w{w}"), Some(*w), None)
                    .with_formats(formats)
            })
            .collect(),
        mediaflow_engine::EncodeOptions::default(),
    )
    .unwrap()
    .with_placeholder(false)
    .with_output_keys(KeyTemplate::parse(template).unwrap(), "public, max-age=60")
    .unwrap()
}

async fn put(store: &MemoryStore, key: &str, body: &Bytes) -> SourceObject {
    store
        .put(IN, key, body.clone(), &PutOptions::default())
        .await
        .unwrap();
    SourceObject {
        bucket: IN.into(),
        key: key.into(),
        size: Some(body.len() as u64),
        etag: Some(md5_etag(body)),
        version_id: None,
        event_name: "ObjectCreated:Put".into(),
        sequencer: None,
    }
}

async fn process(store: &Arc<MemoryStore>, plan: &Plan, objects: &[SourceObject]) {
    let pipeline = Pipeline::new(
        Arc::clone(store) as Arc<dyn ObjectStore>,
        plan.clone(),
        PipelineConfig::new(OUT, PREFIX),
    );
    for report in pipeline.process_all(objects, None).await {
        assert!(
            matches!(
                report.outcome,
                Outcome::Processed { .. } | Outcome::Failed(_)
            ),
            "{}: {:?}",
            report.key,
            report.outcome
        );
    }
}

fn selection(plan: &Plan) -> Selection {
    Selection {
        source_bucket: IN.into(),
        source_prefix: String::new(),
        output_bucket: OUT.into(),
        output_prefix: PREFIX.into(),
        fingerprints: vec![plan.fingerprint()],
    }
}

/// Every source's state, walking the listing in pages of `page`.
async fn states(
    store: &Arc<MemoryStore>,
    plan: &Plan,
    after: Option<&str>,
    page: usize,
) -> (BTreeMap<String, State>, Arc<Requests>) {
    let requests = Arc::new(Requests::default());
    let dyn_store = Arc::clone(store) as Arc<dyn ObjectStore>;
    let mut selector = Selector::new(
        Arc::clone(&dyn_store),
        plan.clone(),
        selection(plan),
        after,
        Arc::clone(&requests),
    )
    .page_size(page);
    let mut listing = BucketListing::new(dyn_store, IN, "", after, Arc::clone(&requests));
    let mut out = BTreeMap::new();
    while let Some(entries) = listing.next_page().await.unwrap() {
        for e in selector.examine(entries).await.unwrap() {
            out.insert(e.entry.key, e.state.unwrap());
        }
    }
    (out, requests)
}

/// The bucket: every key uploaded; half processed; of those, one
/// re-uploaded with other bytes and one processed with another plan;
/// one corrupt upload (a failure record); one processed and then deleted.
async fn bucket(plan: &Plan) -> (Arc<MemoryStore>, BTreeMap<String, State>) {
    let store = Arc::new(MemoryStore::new(&[IN, OUT]));
    let (gray, other) = (
        sample("fixtures/gray.png"),
        sample("fixtures/gray-alpha.png"),
    );
    let mut expected = BTreeMap::new();
    let mut done = Vec::new();
    for (i, key) in KEYS.iter().enumerate() {
        let object = put(&store, key, &gray).await;
        if i % 2 == 0 {
            done.push(object);
            expected.insert(key.to_string(), State::Current);
        } else {
            expected.insert(key.to_string(), State::Missing);
        }
    }
    process(&store, plan, &done).await;
    // Other bytes: the manifest is of the old ETag.
    put(&store, KEYS[2], &other).await;
    expected.insert(KEYS[2].into(), State::Stale);
    // Another plan made the manifest.
    let older = plan_like(plan, &[48]);
    let by_older = put(&store, KEYS[4], &gray).await;
    process(&store, &older, &[by_older]).await;
    expected.insert(KEYS[4].into(), State::Stale);
    // A truncated image fails permanently: a failure record for this
    // ETag and plan.
    let bad = put(&store, "p/broken.png", &gray.slice(..gray.len() / 2)).await;
    process(&store, plan, std::slice::from_ref(&bad)).await;
    expected.insert(bad.key, State::Rejected);
    // A source deleted after processing leaves a manifest of no source.
    let gone = put(&store, "p/gone.png", &gray).await;
    process(&store, plan, &[gone]).await;
    store.delete(IN, "p/gone.png").await.unwrap();
    // A folder marker is no source.
    store
        .put(IN, "p/folder/", Bytes::new(), &PutOptions::default())
        .await
        .unwrap();
    (store, expected)
}

fn plan_like(plan: &Plan, widths: &[u32]) -> Plan {
    self::plan(widths, plan.keys().as_str())
}

#[tokio::test]
async fn listings_decide_every_state_without_a_head_per_manifest() {
    let plan = plan(&[32, 16], KeyTemplate::DEFAULT);
    let (store, expected) = bucket(&plan).await;
    for page in [1, 2, 3, 7, 1000] {
        let (got, requests) = states(&store, &plan, None, page).await;
        assert_eq!(got, expected, "pages of {page}");
        // Only the failure record is read; no manifest is.
        assert_eq!(requests.head(), 1, "pages of {page}");
        if page == 1000 {
            // Source, manifests, first variant's outputs, failure records.
            assert_eq!(requests.list(), 4);
        }
    }
}

#[tokio::test]
async fn a_resumed_selection_agrees_from_every_key() {
    let plan = plan(&[32, 16], KeyTemplate::DEFAULT);
    let (store, expected) = bucket(&plan).await;
    // Every key, and points between keys that are no key.
    let mut points: Vec<String> = expected.keys().cloned().collect();
    points.extend(["a!", "a.z", "p/", "a/"].map(String::from));
    for after in &points {
        for page in [1, 3] {
            let (got, _) = states(&store, &plan, Some(after), page).await;
            let want: BTreeMap<String, State> = expected
                .iter()
                .filter(|(k, _)| k.as_str() > after.as_str())
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            assert_eq!(got, want, "after {after:?}, pages of {page}");
        }
    }
}

#[tokio::test]
async fn without_hash_in_the_keys_each_manifest_is_read() {
    let plan = plan(&[32, 16], "{variant}/{key}.{ext}");
    let (store, expected) = bucket(&plan).await;
    let (got, requests) = states(&store, &plan, None, 2).await;
    assert_eq!(got, expected);
    let manifests = expected
        .values()
        .filter(|s| matches!(s, State::Current | State::Stale))
        .count() as u64;
    assert_eq!(
        requests.head(),
        manifests + 1,
        "each manifest and the failure record"
    );
}

#[tokio::test]
async fn a_plan_change_makes_every_manifest_stale() {
    let plan = plan(&[32, 16], KeyTemplate::DEFAULT);
    let (store, expected) = bucket(&plan).await;
    let changed = plan_like(&plan, &[32, 8]);
    let (got, _) = states(&store, &changed, None, 5).await;
    for (key, state) in &expected {
        let want = match state {
            State::Current | State::Stale => State::Stale,
            // The failure record was made with the old plan.
            State::Missing | State::Rejected => State::Missing,
        };
        assert_eq!(got[key], want, "{key}");
    }
}

const MANIFEST_JSON: &str = r#"{
  "sourceBucket": "uploads",
  "destinationBucket": "arn:aws:s3:::inventory",
  "version": "2016-11-30",
  "creationTimestamp": "1514944800000",
  "fileFormat": "CSV",
  "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
  "files": [{"key": "uploads/inv/data/1.csv.gz", "size": 1, "MD5checksum": "x"}]
}"#;

#[test]
fn inventory_rows_are_current_objects_under_the_prefix_with_keys_decoded() {
    let manifest = InventoryManifest::parse("manifest.json", MANIFEST_JSON.as_bytes()).unwrap();
    assert_eq!(manifest.destination_bucket, "inventory");
    let csv = "\"uploads\",\"p/my+photo+%281%29.jpg\",\"v2\",\"true\",\"false\",\"12\",\"2024-01-01T00:00:00.000Z\",\"abc\"\n\
               \"uploads\",\"p/old.jpg\",\"v1\",\"false\",\"false\",\"5\",\"2024-01-01T00:00:00.000Z\",\"def\"\n\
               \"uploads\",\"p/deleted.jpg\",\"v3\",\"true\",\"true\",\"\",\"2024-01-01T00:00:00.000Z\",\"\"\n\
               \"uploads\",\"q/elsewhere.jpg\",\"v4\",\"true\",\"false\",\"7\",\"2024-01-01T00:00:00.000Z\",\"ghi\"\n\
               \"uploads\",\"p/a%2Bb.jpg\",\"\",\"true\",\"false\",\"3\",\"2024-01-01T00:00:00.000Z\",\"jkl\"\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let rows = manifest.rows("1.csv.gz", &gz[..], "p/", 1 << 20).unwrap();
    assert_eq!(
        rows,
        vec![
            ListEntry {
                key: "p/my photo (1).jpg".into(),
                size: 12,
                etag: Some("abc".into()),
                last_modified: None,
            },
            ListEntry {
                key: "p/a+b.jpg".into(),
                size: 3,
                etag: Some("jkl".into()),
                last_modified: None,
            },
        ]
    );
    let bad = InventoryManifest::parse("m", br#"{"sourceBucket":"u","destinationBucket":"arn:aws:s3:::d","fileFormat":"Parquet","fileSchema":"message s3.inventory","files":[]}"#);
    assert!(bad.unwrap_err().to_string().contains("only CSV"));
}

#[tokio::test]
async fn inventory_listing_resumes_after_a_key() {
    let rows: Vec<ListEntry> = (0..2500)
        .map(|i| ListEntry {
            key: format!("k{i:05}"),
            size: 1,
            etag: None,
            last_modified: None,
        })
        .collect();
    let mut listing = InventoryListing::new(rows.clone(), Some("k01000"));
    assert_eq!(listing.len(), 1499);
    let first = listing.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 1000);
    assert_eq!(first[0].key, "k01001");
    assert_eq!(listing.next_page().await.unwrap().unwrap().len(), 499);
    assert!(listing.next_page().await.unwrap().is_none());
}

/// A write that stopped after the first variant's output of new bytes and
/// before their manifest: the output under the new hash is there, and the
/// manifest beside it is the old bytes'. The output is newer than the
/// manifest, so the manifest's HEAD decides: stale.
#[tokio::test]
async fn outputs_newer_than_their_manifest_are_looked_at_closer() {
    let plan = plan(&[32, 16], KeyTemplate::DEFAULT);
    let store = Arc::new(MemoryStore::new(&[IN, OUT]));
    let (gray, other) = (
        sample("fixtures/gray.png"),
        sample("fixtures/gray-alpha.png"),
    );
    let first = put(&store, "k.png", &gray).await;
    process(&store, &plan, &[first]).await;
    put(&store, "k.png", &other).await;
    let hash = mediaflow_engine::content_hash(&md5_etag(&other), &plan.fingerprint());
    let output = plan.keys().render(PREFIX, "w32", "k.png", &hash, "png");
    store
        .put(
            OUT,
            &output,
            Bytes::from_static(b"x"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let (got, requests) = states(&store, &plan, None, 1000).await;
    assert_eq!(got["k.png"], State::Stale);
    assert_eq!(requests.head(), 1, "the manifest, looked at closer");
}

/// Outputs of sources outside the listing (another prefix, deleted
/// sources) are not read through: the output listings start at the
/// source prefix and jump over pages no listed source needs.
#[tokio::test]
async fn outputs_of_other_sources_are_not_read_through() {
    let plan = plan(&[16], KeyTemplate::DEFAULT);
    let store = Arc::new(MemoryStore::new(&[IN, OUT]));
    let gray = sample("fixtures/gray.png");
    let mut done = Vec::new();
    for i in 0..3 {
        done.push(put(&store, &format!("b/{i}.png"), &gray).await);
    }
    process(&store, &plan, &done).await;
    // 400 manifests and outputs of sources that are not listed: under
    // another prefix, and between the listed ones (deleted sources).
    for key in (0..200)
        .map(|i| format!("a/{i:03}.png"))
        .chain((0..200).map(|i| format!("b/1-{i:03}.png")))
    {
        for k in [
            mediaflow_engine::manifest_key(PREFIX, &key),
            plan.keys()
                .render(PREFIX, "w16", &key, "0123456789abcdef", "png"),
        ] {
            store
                .put(OUT, &k, Bytes::from_static(b"x"), &PutOptions::default())
                .await
                .unwrap();
        }
    }
    let requests = Arc::new(Requests::default());
    let dyn_store = Arc::clone(&store) as Arc<dyn ObjectStore>;
    let mut selector = Selector::new(
        Arc::clone(&dyn_store),
        plan.clone(),
        Selection {
            source_prefix: "b/".into(),
            ..selection(&plan)
        },
        None,
        Arc::clone(&requests),
    )
    .page_size(10);
    let mut listing = BucketListing::new(dyn_store, IN, "b/", None, Arc::clone(&requests));
    let mut states = BTreeMap::new();
    while let Some(entries) = listing.next_page().await.unwrap() {
        for e in selector.examine(entries).await.unwrap() {
            states.insert(e.entry.key, e.state.unwrap());
        }
    }
    assert_eq!(states.len(), 3);
    assert!(states.values().all(|s| *s == State::Current), "{states:?}");
    // 1 source page; manifests and outputs: the pages holding b/0 and b/1,
    // one page into the gap after b/1, a jump to b/2 (and failures: 1).
    assert!(requests.list() <= 10, "{} LIST requests", requests.list());
}

/// A listing out of key order would make every decision wrong: refused.
#[tokio::test]
async fn a_source_listing_out_of_order_is_refused() {
    let plan = plan(&[16], KeyTemplate::DEFAULT);
    let store = Arc::new(MemoryStore::new(&[IN, OUT])) as Arc<dyn ObjectStore>;
    let mut selector = Selector::new(
        store,
        plan.clone(),
        selection(&plan),
        None,
        Arc::new(Requests::default()),
    );
    let entry = |k: &str| ListEntry {
        key: k.into(),
        size: 1,
        etag: Some("e".into()),
        last_modified: None,
    };
    let err = selector
        .examine(vec![entry("b"), entry("a")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not in key order"), "{err}");
}

/// A gzip bomb in a report is refused at the cap, before its rows are kept.
#[test]
fn an_inventory_file_that_inflates_past_the_cap_is_refused() {
    let manifest = InventoryManifest::parse("manifest.json", MANIFEST_JSON.as_bytes()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let row = b"\"uploads\",\"p/x.jpg\",\"\",\"true\",\"false\",\"1\",\"d\",\"e\"\n";
    for _ in 0..100_000 {
        std::io::Write::write_all(&mut gz, row).unwrap();
    }
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 200_000, "{} bytes compressed", gz.len());
    let err = manifest
        .rows("bomb.csv.gz", &gz[..], "p/", 1 << 20)
        .unwrap_err();
    assert!(err.to_string().contains("inflates to more than"), "{err}");
    // Under the cap, the same file is read whole.
    let rows = manifest.rows("ok.csv.gz", &gz[..], "p/", 64 << 20).unwrap();
    assert_eq!(rows.len(), 100_000);
}
