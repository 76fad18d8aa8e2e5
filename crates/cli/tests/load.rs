//! Load and fault test of `mediaflow dev`: 1,000 uploads from 16 concurrent
//! clients while the local S3 endpoint answers a share of all requests (the
//! clients' and the pipeline's) with `503 SlowDown`, `503
//! ServiceUnavailable`, a dropped connection or a delay. Every upload must
//! end with exactly one complete manifest (valid images) or a failure record
//! (the deliberately corrupt ones); nothing is lost and nothing is processed
//! twice. Prints the throughput and the fault and retry counts.
//!
//! Run by `./scripts/test` (`cargo test --workspace --test load --
//! --ignored --nocapture`); `MEDIAFLOW_LOAD_UPLOADS=N` runs a smaller load.

mod support;
use bytes::Bytes;
use mediaflow_store::{ObjectStore, PutOptions, StoreError};
use mediaflow_store_s3::S3Store;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Dev;

const UPLOADS: usize = 1000;
const CLIENTS: usize = 16;
/// Every CORRUPT_EVERY-th upload is broken on purpose.
const CORRUPT_EVERY: usize = 25;
/// Attempts a test client makes at one request (each is itself up to 3
/// attempts inside the SDK).
const CLIENT_ATTEMPTS: u32 = 6;
const FAULTS: &[&str] = &[
    "--fault-slowdown",
    "0.05",
    "--fault-503",
    "0.03",
    "--fault-drop",
    "0.02",
    "--fault-delay",
    "0.05:200ms",
    "--fault-seed",
    "13",
];
/// Two small variants, so the run measures the pipeline's plumbing rather
/// than the encoders.
const CONFIG: &str = r#"
[[variant]]
name = "thumb"
width = 32
height = 32
fit = "cover"
formats = ["jpeg"]

[[variant]]
name = "small"
width = 48
formats = ["webp"]
"#;
const VARIANTS: usize = 2;

/// Upload `i`: its key, its bytes and whether it is a valid image.
fn upload(i: usize) -> (String, Bytes, bool) {
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        let i = i as u32;
        image::Rgb([
            (x * 4 + i) as u8,
            (y * 4 + i * 7) as u8,
            ((x ^ y) * 3 + i * 13) as u8,
        ])
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    let (ext, format) = if i.is_multiple_of(2) {
        ("png", image::ImageFormat::Png)
    } else {
        ("jpg", image::ImageFormat::Jpeg)
    };
    img.write_to(&mut buf, format).unwrap();
    let mut bytes = buf.into_inner();
    let valid = i % CORRUPT_EVERY != CORRUPT_EVERY - 1;
    if !valid {
        match (i / CORRUPT_EVERY) % 3 {
            // Cut off in the middle of the image data.
            0 | 1 => bytes.truncate(bytes.len() / 2),
            // An image's signature, then no image at all. (Bytes no
            // sniffer knows are dead-lettered without a failure record:
            // tests/dev.rs covers those.)
            _ => {
                bytes.truncate(8);
                bytes.extend(
                    format!("upload {i} is not an image\n")
                        .repeat(20)
                        .into_bytes(),
                )
            }
        }
    }
    (format!("load/{i:04}.{ext}"), Bytes::from(bytes), valid)
}

/// Runs `op` until it succeeds or fails with other than a transient error,
/// at most `CLIENT_ATTEMPTS` times; counts the extra attempts in `retries`.
async fn with_retries<T, F, Fut>(retries: &AtomicU64, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(StoreError::Transient(e)) if attempt < CLIENT_ATTEMPTS => {
                eprintln!("client: attempt {attempt} failed, retrying: {e}");
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Every key under `prefix` in the media bucket.
async fn list_all(store: &S3Store, prefix: &str, retries: &AtomicU64) -> HashSet<String> {
    let mut keys = HashSet::new();
    let mut next: Option<String> = None;
    loop {
        let page = with_retries(retries, || {
            store.list("media", prefix, next.as_deref(), 1000)
        })
        .await
        .unwrap_or_else(|e| panic!("listing media/{prefix}: {e}"));
        keys.extend(page.entries.into_iter().map(|e| e.key));
        match page.next {
            Some(n) => next = Some(n),
            None => return keys,
        }
    }
}

async fn get_json(store: &S3Store, key: &str, retries: &AtomicU64) -> Value {
    let object = with_retries(retries, || store.get("media", key, 1 << 20))
        .await
        .unwrap_or_else(|e| panic!("GET media/{key}: {e}"));
    serde_json::from_slice(&object.body).unwrap_or_else(|e| panic!("media/{key}: {e}"))
}

/// The number just before `label` in `line` ("…, 12 processed, …").
fn count_before(line: &str, label: &str) -> u64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    line[..at]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {label:?} in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "load test: run by scripts/test"]
async fn a_thousand_uploads_through_faults_all_end_once() {
    let n: usize = std::env::var("MEDIAFLOW_LOAD_UPLOADS")
        .ok()
        .map(|v| v.parse().expect("MEDIAFLOW_LOAD_UPLOADS is a number"))
        .unwrap_or(UPLOADS);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("load.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(FAULTS);
    let mut dev = Dev::start_logging(dir.path(), &args, "warn");
    assert!(
        dev.out().contains(
            "faults:       SlowDown 5%, 503 3%, dropped 2%, delayed 5% by 200 ms (seed 13)"
        ),
        "{}",
        dev.logs()
    );
    let store = dev.store();

    // 16 clients share the work; each PUT's ETag is kept.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let client_retries = Arc::new(AtomicU64::new(0));
    let etags: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (store, next, retries, etags) = (
            store.clone(),
            Arc::clone(&next),
            Arc::clone(&client_retries),
            Arc::clone(&etags),
        );
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let (key, body, _) = upload(i);
                let options = PutOptions::default();
                let etag = with_retries(&retries, || {
                    store.put("uploads", &key, body.clone(), &options)
                })
                .await
                .unwrap_or_else(|e| panic!("uploading {key}: {e}"))
                .unwrap_or_else(|| panic!("no ETag for {key}"));
                etags.lock().unwrap().insert(i, etag);
            }
        });
    }
    let upload_deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while let Some(joined) = tokio::time::timeout_at(upload_deadline, clients.join_next())
        .await
        .unwrap_or_else(|_| panic!("uploads not done within 300 s: {}", dev.logs()))
    {
        joined.unwrap();
    }
    let uploaded_in = started.elapsed();
    let etags = etags.lock().unwrap().clone();
    assert_eq!(etags.len(), n);

    // Wait (at most 10 minutes) until every upload has its manifest or its
    // failure record.
    let expected: Vec<(usize, String, bool)> = (0..n)
        .map(|i| {
            let (key, _, valid) = upload(i);
            (i, key, valid)
        })
        .collect();
    let check_retries = AtomicU64::new(0);
    let wait_until = Instant::now() + Duration::from_secs(600);
    let (manifests, failures) = loop {
        let manifests = list_all(&store, "manifest/load/", &check_retries).await;
        let failures = list_all(&store, "failed/load/", &check_retries).await;
        let missing: Vec<&str> = expected
            .iter()
            .filter(|(_, key, _)| {
                !manifests.contains(&format!("manifest/{key}.json"))
                    && !failures.contains(&format!("failed/{key}.json"))
            })
            .map(|(_, key, _)| key.as_str())
            .collect();
        if missing.is_empty() {
            break (manifests, failures);
        }
        assert!(
            Instant::now() < wait_until,
            "{} of {n} uploads have neither a manifest nor a failure record after 10 minutes, e.g. {:?}: {}",
            missing.len(),
            &missing[..missing.len().min(5)],
            dev.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let done_in = started.elapsed();

    // Every valid upload: one manifest for its bytes, all variants present,
    // no failure record. Every corrupt one: a permanent failure record.
    let variants = Arc::new(list_all(&store, "", &check_retries).await);
    let valid_count = expected.iter().filter(|(_, _, valid)| *valid).count();
    for (_, key, valid) in &expected {
        let (manifest_key, failure_key) =
            (format!("manifest/{key}.json"), format!("failed/{key}.json"));
        if *valid {
            assert!(manifests.contains(&manifest_key), "no manifest for {key}");
            assert!(
                !failures.contains(&failure_key),
                "{key} is valid but failed"
            );
        } else {
            assert!(
                failures.contains(&failure_key),
                "no failure record for corrupt {key}"
            );
            assert!(
                !manifests.contains(&manifest_key),
                "corrupt {key} has a manifest"
            );
        }
    }
    // Read every manifest and record, CLIENTS at a time.
    let check_retries = Arc::new(check_retries);
    let expected = Arc::new(expected);
    let etags = Arc::new(etags);
    let next = Arc::new(AtomicUsize::new(0));
    let mut checkers = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (store, next, retries, expected, etags, variants) = (
            store.clone(),
            Arc::clone(&next),
            Arc::clone(&check_retries),
            Arc::clone(&expected),
            Arc::clone(&etags),
            Arc::clone(&variants),
        );
        checkers.spawn(async move {
            while let Some((i, key, valid)) = expected.get(next.fetch_add(1, Ordering::Relaxed)) {
                if *valid {
                    let m = get_json(&store, &format!("manifest/{key}.json"), &retries).await;
                    assert_eq!(m["source"]["key"], key.as_str());
                    assert_eq!(m["source"]["etag"], etags[i].as_str(), "{key}");
                    assert_eq!(
                        (
                            m["source"]["width"].as_u64(),
                            m["source"]["height"].as_u64()
                        ),
                        (Some(64), Some(64))
                    );
                    let listed = m["variants"].as_array().unwrap();
                    assert_eq!(listed.len(), VARIANTS, "{key}: {m}");
                    for v in listed {
                        let vk = v["key"].as_str().unwrap();
                        assert!(variants.contains(vk), "{key}: variant {vk} missing");
                    }
                } else {
                    let f = get_json(&store, &format!("failed/{key}.json"), &retries).await;
                    assert_eq!(f["source"]["key"], key.as_str(), "{f}");
                    assert_eq!(f["retryable"], false, "{key}: {f}");
                }
            }
        });
    }
    let check_deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while let Some(joined) = tokio::time::timeout_at(check_deadline, checkers.join_next())
        .await
        .expect("checks done within 300 s")
    {
        joined.unwrap();
    }
    // Nothing else under the outputs: no stray manifest or record.
    assert_eq!(manifests.len(), valid_count);
    assert_eq!(failures.len(), n - valid_count);

    // Stop the server and read what it did.
    dev.interrupt();
    let out = dev.out();
    let mut processed: BTreeMap<&str, u32> = BTreeMap::new();
    let mut final_failures: BTreeMap<&str, u32> = BTreeMap::new();
    // A fault after the manifest was written (the source's re-check, the
    // stale cleanup) fails the attempt retryably; the retry finds the work
    // done. That ends the upload once too, as "skipped: already processed".
    let mut done_before: BTreeMap<&str, u32> = BTreeMap::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("processed s3://uploads/") {
            let key = rest.split(": ").next().unwrap();
            *processed.entry(key).or_default() += 1;
        } else if let Some(rest) = line.strip_prefix("skipped s3://uploads/") {
            let (key, why) = rest.split_once(": ").unwrap();
            assert!(why.starts_with("already processed"), "{line}");
            *done_before.entry(key).or_default() += 1;
        } else if let Some(rest) = line.strip_prefix("failed s3://uploads/") {
            if !line.contains("; retrying in ") {
                let key = rest.split(": ").next().unwrap();
                *final_failures.entry(key).or_default() += 1;
            }
        }
    }
    for (_, key, valid) in expected.iter() {
        let (p, f) = (
            processed.get(key.as_str()).copied().unwrap_or(0)
                + done_before.get(key.as_str()).copied().unwrap_or(0),
            final_failures.get(key.as_str()).copied().unwrap_or(0),
        );
        if *valid {
            assert_eq!(
                (p, f),
                (1, 0),
                "{key}: processed {p} time(s), failed {f} time(s)"
            );
        } else {
            assert_eq!(
                (p, f),
                (0, 1),
                "{key}: processed {p} time(s), failed {f} time(s)"
            );
        }
    }
    let summary = out
        .lines()
        .find(|l| l.starts_with("summary: "))
        .unwrap_or_else(|| panic!("no summary line: {}", dev.logs()))
        .to_string();
    let faults = out
        .lines()
        .find(|l| l.starts_with("faults injected: "))
        .unwrap_or_else(|| panic!("no fault counts: {}", dev.logs()))
        .to_string();
    // One event per upload (a refused or dropped PUT never reached the
    // store, so it sent none), none dead-lettered after its last attempt.
    assert_eq!(
        count_before(&summary, " upload event(s)"),
        n as u64,
        "{summary}"
    );
    let skipped: u32 = done_before.values().sum();
    assert_eq!(
        count_before(&summary, " processed"),
        valid_count as u64 - u64::from(skipped),
        "{summary}"
    );
    assert_eq!(
        count_before(&summary, " skipped"),
        u64::from(skipped),
        "{summary}"
    );
    assert_eq!(
        count_before(&summary, " failed permanently"),
        (n - valid_count) as u64,
        "{summary}"
    );
    assert_eq!(count_before(&summary, " failed after"), 0, "{summary}");
    let dispatcher_retries = count_before(&summary, " retries");
    let requests = count_before(&faults, " requests");
    let slowdown = count_before(&faults, " SlowDown");
    let unavailable = count_before(&faults, " 503");
    let dropped = count_before(&faults, " dropped");
    let delayed = count_before(&faults, " delayed");
    let sdk_retries = count_before(&faults, " SDK retries");
    // Every kind of fault happened, and the SDK retried.
    for (what, count) in [
        ("SlowDown", slowdown),
        ("503", unavailable),
        ("dropped", dropped),
        ("delayed", delayed),
        ("SDK retries", sdk_retries),
    ] {
        assert!(count > 0, "no {what} in {faults}");
    }
    let dead_letter_file = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("failures:"))
        .and_then(|l| l.split("appended to ").nth(1))
        .unwrap_or_else(|| panic!("no dead-letter file in the banner: {}", dev.logs()))
        .trim()
        .to_string();
    let dead: Vec<Value> = std::fs::read_to_string(&dead_letter_file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        dead.len(),
        n - valid_count,
        "dead letters: one per corrupt upload"
    );
    assert!(dead.iter().all(|d| d["retryable"] == false), "{dead:?}");

    println!(
        "load: {n} uploads ({} corrupt) from {CLIENTS} clients: uploaded in {:.1} s, all manifests/failure records in {:.1} s = {:.1} uploads/s end to end",
        n - valid_count,
        uploaded_in.as_secs_f64(),
        done_in.as_secs_f64(),
        n as f64 / done_in.as_secs_f64()
    );
    println!("load: server {faults}");
    println!("load: dev {summary}");
    println!(
        "load: dispatcher retries {dispatcher_retries}; SDK retries seen by the server {sdk_retries} of {requests} requests; test-client retries after the SDK gave up {} (uploads), {} (checks)",
        client_retries.load(Ordering::Relaxed),
        check_retries.load(Ordering::Relaxed)
    );
}
