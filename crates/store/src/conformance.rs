//! The conformance suite every [`ObjectStore`] must pass.
//!
//! Each store's tests call [`run_all`] with a bucket that exists (and is
//! empty below the given prefix) and the name of one that does not. A failed
//! check panics with a message naming the operation and key.

use crate::{md5_etag, ObjectStore, PutOptions, StoreError};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// Keys that break naive encoders: spaces, parentheses, '+', '%', non-ASCII.
pub const AWKWARD_KEYS: &[&str] = &[
    "my photo (1).jpg",
    "ünï/фото.jpg",
    "a+b.jpg",
    "100% real;=&?.png",
    "deep/er/still/deeper/x.webp",
];

/// Runs every check under `prefix` in `bucket`.
pub async fn run_all(store: &dyn ObjectStore, bucket: &str, missing_bucket: &str, prefix: &str) {
    round_trip(store, bucket, prefix).await;
    missing(store, bucket, missing_bucket, prefix).await;
    size_limit(store, bucket, prefix).await;
    overwrite(store, bucket, prefix).await;
    awkward_keys(store, bucket, prefix).await;
    listing(store, bucket, prefix).await;
    metadata_rules(store, bucket, prefix).await;
    files(store, bucket, prefix).await;
    heads_and_deletes(store, bucket, prefix).await;
}

fn options(ct: &str) -> PutOptions {
    PutOptions {
        content_type: Some(ct.into()),
        cache_control: Some("public, max-age=31536000".into()),
        metadata: BTreeMap::from([
            ("mediaflow-source-key".to_string(), "a%20b.jpg".to_string()),
            ("mediaflow-plan".to_string(), "0123abcd".to_string()),
        ]),
    }
}

pub async fn round_trip(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let key = format!("{prefix}rt/photo.webp");
    let body = Bytes::from_static(b"RIFF\0\0\0\0WEBPVP8 not really");
    let opts = options("image/webp");
    let etag = store
        .put(bucket, &key, body.clone(), &opts)
        .await
        .expect("put");
    if let Some(etag) = &etag {
        assert_eq!(etag, &md5_etag(&body), "put {key}: ETag is the body's MD5");
    }
    let got = store.get(bucket, &key, 1 << 20).await.expect("get");
    assert_eq!(got.body, body, "get {key}: body");
    assert_eq!(got.info.key, key);
    assert_eq!(got.info.size, body.len() as u64, "get {key}: size");
    assert_eq!(
        got.info.etag.as_deref(),
        Some(md5_etag(&body).as_str()),
        "get {key}: etag"
    );
    assert_eq!(
        got.info.content_type.as_deref(),
        Some("image/webp"),
        "get {key}: content type"
    );
    assert_eq!(
        got.info.cache_control.as_deref(),
        Some("public, max-age=31536000"),
        "get {key}: cache control"
    );
    assert_eq!(got.info.metadata, opts.metadata, "get {key}: metadata");
    let head = store
        .head(bucket, &key)
        .await
        .expect("head")
        .expect("head finds it");
    assert_eq!(head.size, got.info.size, "head {key}: size");
    assert_eq!(head.etag, got.info.etag, "head {key}: etag");
    assert_eq!(
        head.content_type, got.info.content_type,
        "head {key}: content type"
    );
    assert_eq!(
        head.cache_control, got.info.cache_control,
        "head {key}: cache control"
    );
    assert_eq!(head.metadata, opts.metadata, "head {key}: metadata");

    let empty = format!("{prefix}rt/empty.bin");
    store
        .put(bucket, &empty, Bytes::new(), &PutOptions::default())
        .await
        .expect("put empty");
    let got = store
        .get(bucket, &empty, 0)
        .await
        .expect("get empty with limit 0");
    assert!(got.body.is_empty());
    assert_eq!(got.info.size, 0);
}

pub async fn missing(store: &dyn ObjectStore, bucket: &str, missing_bucket: &str, prefix: &str) {
    let key = format!("{prefix}missing/nothing.jpg");
    assert_eq!(
        store.head(bucket, &key).await.expect("head missing"),
        None,
        "head {key}"
    );
    match store.get(bucket, &key, 1 << 20).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("get {key}: expected NotFound, got {other:?}"),
    }
    match store.get(missing_bucket, "a.jpg", 1 << 20).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("get from missing bucket: expected NotFound, got {other:?}"),
    }
    match store
        .put(
            missing_bucket,
            "a.jpg",
            Bytes::from_static(b"x"),
            &PutOptions::default(),
        )
        .await
    {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("put to missing bucket: expected NotFound, got {other:?}"),
    }
}

pub async fn size_limit(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let key = format!("{prefix}limit/big.bin");
    let body = Bytes::from(vec![7u8; 100_000]);
    store
        .put(bucket, &key, body.clone(), &PutOptions::default())
        .await
        .expect("put");
    match store.get(bucket, &key, 99_999).await {
        Err(StoreError::TooLarge { size, limit }) => {
            assert_eq!(
                (size, limit),
                (100_000, 99_999),
                "get {key}: TooLarge fields"
            );
        }
        other => panic!("get {key} over the limit: expected TooLarge, got {other:?}"),
    }
    let got = store
        .get(bucket, &key, 100_000)
        .await
        .expect("get at exactly the limit");
    assert_eq!(got.body, body);
}

pub async fn overwrite(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let key = format!("{prefix}over/x.jpg");
    store
        .put(
            bucket,
            &key,
            Bytes::from_static(b"first"),
            &options("image/jpeg"),
        )
        .await
        .expect("put 1");
    let second = PutOptions {
        content_type: Some("image/png".into()),
        ..PutOptions::default()
    };
    store
        .put(bucket, &key, Bytes::from_static(b"second!"), &second)
        .await
        .expect("put 2");
    let got = store.get(bucket, &key, 1 << 20).await.expect("get");
    assert_eq!(&got.body[..], b"second!", "overwrite {key}: body replaced");
    assert_eq!(got.info.content_type.as_deref(), Some("image/png"));
    assert!(
        got.info.metadata.is_empty(),
        "overwrite {key}: metadata replaced, not merged"
    );
    assert_eq!(
        got.info.etag.as_deref(),
        Some(md5_etag(b"second!").as_str())
    );
}

pub async fn awkward_keys(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    for name in AWKWARD_KEYS {
        let key = format!("{prefix}awk/{name}");
        let body = Bytes::from(key.clone().into_bytes());
        store
            .put(bucket, &key, body.clone(), &options("image/jpeg"))
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
        let got = store
            .get(bucket, &key, 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("get {key:?}: {e}"));
        assert_eq!(got.body, body, "get {key:?}");
        assert!(
            store.head(bucket, &key).await.expect("head").is_some(),
            "head {key:?}"
        );
    }
    let listed: BTreeSet<String> = list_all(store, bucket, &format!("{prefix}awk/"), 1000)
        .await
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = AWKWARD_KEYS
        .iter()
        .map(|n| format!("{prefix}awk/{n}"))
        .collect();
    assert_eq!(listed, expected, "list returns the exact awkward keys");
}

pub async fn listing(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let base = format!("{prefix}list/");
    let mut expected = Vec::new();
    for i in 0..7 {
        let key = format!(
            "{base}{}/img-{i}.jpg",
            if i % 2 == 0 { "even" } else { "odd" }
        );
        store
            .put(
                bucket,
                &key,
                Bytes::from(vec![b'x'; i + 1]),
                &PutOptions::default(),
            )
            .await
            .expect("put");
        expected.push(key);
    }
    // A neighbour that shares the prefix text but not the folder.
    store
        .put(
            bucket,
            &format!("{prefix}listing-not.jpg"),
            Bytes::from_static(b"n"),
            &PutOptions::default(),
        )
        .await
        .expect("put neighbour");
    expected.sort();
    let all = list_all(store, bucket, &base, 2).await;
    assert_eq!(all, expected, "paged listing (2 per page) under {base}");
    let page = store.list(bucket, &base, None, 1000).await.expect("list");
    assert!(page.next.is_none(), "a complete page has no continuation");
    let sizes: Vec<u64> = page.entries.iter().map(|e| e.size).collect();
    assert_eq!(sizes.len(), 7);
    assert!(
        page.entries.iter().all(|e| e.etag.is_some()),
        "listing has ETags"
    );
    assert!(
        page.entries.iter().all(|e| e.last_modified.is_some()),
        "listing has times (a backfill tells a manifest older than its outputs by them)"
    );
    // Resuming after a key (S3's StartAfter), whether or not it exists,
    // then continuing through `list`.
    let after = store
        .list_after(bucket, &base, &expected[2], 2)
        .await
        .expect("list_after");
    let mut resumed: Vec<String> = after.entries.into_iter().map(|e| e.key).collect();
    let mut next = after.next;
    while let Some(n) = next {
        let page = store.list(bucket, &base, Some(&n), 2).await.expect("list");
        resumed.extend(page.entries.into_iter().map(|e| e.key));
        next = page.next;
    }
    assert_eq!(resumed, expected[3..], "list_after an existing key");
    let between = format!("{}!", expected[4]);
    let after = store
        .list_after(bucket, &base, &between, 1000)
        .await
        .expect("list_after");
    let keys: Vec<String> = after.entries.into_iter().map(|e| e.key).collect();
    assert_eq!(keys, expected[5..], "list_after a key that does not exist");
    let odd = list_all(store, bucket, &format!("{base}odd/"), 1000).await;
    assert_eq!(odd.len(), 3, "prefix filter");
    let none = store
        .list(bucket, &format!("{prefix}nothing-here/"), None, 10)
        .await
        .expect("list");
    assert!(none.entries.is_empty() && none.next.is_none());
}

pub async fn metadata_rules(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let key = format!("{prefix}meta/x.jpg");
    let mut opts = PutOptions::default();
    opts.metadata.insert("source".into(), "фото.jpg".into());
    assert!(
        store
            .put(bucket, &key, Bytes::from_static(b"x"), &opts)
            .await
            .is_err(),
        "non-ASCII metadata values are refused (S3 sends them as headers)"
    );
}

/// Every key under `prefix`, following continuations with pages of `limit`.
pub async fn list_all(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
    limit: usize,
) -> Vec<String> {
    let mut keys = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..10_000 {
        let page = store
            .list(bucket, prefix, next.as_deref(), limit)
            .await
            .expect("list");
        assert!(page.entries.len() <= limit, "page larger than the limit");
        keys.extend(page.entries.into_iter().map(|e| e.key));
        match page.next {
            Some(n) => next = Some(n),
            None => return keys,
        }
    }
    panic!("listing never ended");
}

/// `put_file` and `get_to_file`: the same bytes, ETag and headers as the
/// in-memory calls, and `get_to_file`'s size limit.
pub async fn files(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let dir = std::env::temp_dir().join(format!(
        "mediaflow-conformance-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.join("clip.mp4");
    std::fs::write(&src, &body).expect("write the local file");
    let key = format!("{prefix}files/my clip (1).mp4");
    let opts = options("video/mp4");
    let etag = store
        .put_file(bucket, &key, &src, &opts)
        .await
        .expect("put_file");
    if let Some(etag) = &etag {
        assert_eq!(etag, &md5_etag(&body), "put_file {key}: ETag is the MD5");
    }
    let dst = dir.join("copy.mp4");
    let info = store
        .get_to_file(bucket, &key, &dst, 300_000)
        .await
        .expect("get_to_file at exactly the limit");
    assert_eq!(
        std::fs::read(&dst).expect("read back"),
        body,
        "get_to_file {key}: bytes"
    );
    assert_eq!(info.size, 300_000, "get_to_file {key}: size");
    assert_eq!(info.etag.as_deref(), Some(md5_etag(&body).as_str()));
    assert_eq!(info.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(info.metadata, opts.metadata, "get_to_file {key}: metadata");
    match store.get_to_file(bucket, &key, &dst, 299_999).await {
        Err(StoreError::TooLarge { size, limit }) => {
            assert_eq!((size, limit), (300_000, 299_999))
        }
        other => panic!("get_to_file {key} over the limit: expected TooLarge, got {other:?}"),
    }
    match store
        .get_to_file(bucket, &format!("{prefix}files/none.mp4"), &dst, 1 << 20)
        .await
    {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("get_to_file of a missing key: expected NotFound, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `get_head` reads the first bytes only (all of a short object); `delete`
/// removes an object, and removing a missing one succeeds.
pub async fn heads_and_deletes(store: &dyn ObjectStore, bucket: &str, prefix: &str) {
    let key = format!("{prefix}del/a+b c.jpg");
    let body = Bytes::from_static(b"0123456789abcdef");
    store
        .put(bucket, &key, body.clone(), &options("image/jpeg"))
        .await
        .expect("put");
    let head = store.get_head(bucket, &key, 4).await.expect("get_head");
    assert_eq!(&head[..], b"0123", "get_head {key:?}: the first 4 bytes");
    let all = store.get_head(bucket, &key, 64).await.expect("get_head");
    assert_eq!(all, body, "get_head {key:?}: a short object whole");
    let missing = format!("{prefix}del/missing.jpg");
    assert!(
        matches!(
            store.get_head(bucket, &missing, 4).await,
            Err(StoreError::NotFound(_))
        ),
        "get_head of a missing key is NotFound"
    );
    store.delete(bucket, &key).await.expect("delete");
    assert!(
        store.head(bucket, &key).await.expect("head").is_none(),
        "delete {key:?}: gone"
    );
    store
        .delete(bucket, &key)
        .await
        .expect("delete again is a no-op");
    store
        .delete(bucket, &missing)
        .await
        .expect("delete of a missing key");
    assert!(list_all(store, bucket, &format!("{prefix}del/"), 1000)
        .await
        .is_empty());
}
