//! The shared store conformance suite against S3, served on loopback by the
//! in-process `s3s` + `s3s-fs` server (started and stopped here).

use mediaflow_s3_local::{LocalS3, ACCESS_KEY, REGION};
use mediaflow_store::{conformance, ObjectStore, StoreError};
use mediaflow_store_s3::S3Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalS3::start(dir.path(), "127.0.0.1:0".parse().unwrap(), &["media"])
        .await
        .expect("start local S3");
    let store = S3Store::with_static_credentials(
        &server.endpoint(),
        ACCESS_KEY,
        &server.credentials().secret_key,
        REGION,
    );
    conformance::run_all(&store, "media", "no-such-bucket", "").await;
    conformance::run_all(&store, "media", "no-such-bucket", "again/").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalS3::start(dir.path(), "127.0.0.1:0".parse().unwrap(), &["media"])
        .await
        .expect("start local S3");
    let store = S3Store::with_static_credentials(&server.endpoint(), ACCESS_KEY, "wrong", REGION);
    match store.get("media", "a.jpg", 10).await {
        Err(StoreError::Denied(msg)) => assert!(msg.contains("s3://media/a.jpg"), "{msg}"),
        other => panic!("expected Denied, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_transient() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let port = mediaflow_testkit::free_port();
    let store = S3Store::with_static_credentials(
        &format!("http://127.0.0.1:{port}"),
        ACCESS_KEY,
        "any-secret",
        REGION,
    );
    match store.head("media", "a.jpg").await {
        Err(e @ StoreError::Transient(_)) => assert!(!e.is_permanent()),
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalS3::start(dir.path(), "127.0.0.1:0".parse().unwrap(), &["media"])
        .await
        .expect("start local S3");
    let store = S3Store::with_static_credentials(
        &server.endpoint(),
        ACCESS_KEY,
        &server.credentials().secret_key,
        REGION,
    );
    // Every part but the last must be at least 5 MiB, as on S3.
    let parts: Vec<bytes::Bytes> = (0u8..3)
        .map(|i| bytes::Bytes::from(vec![i; if i < 2 { 5 << 20 } else { 1000 }]))
        .collect();
    let whole: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
    let options = mediaflow_store::PutOptions {
        content_type: Some("image/jpeg".into()),
        ..Default::default()
    };
    let etag = store
        .put_multipart("media", "big/ünï photo.jpg", parts, &options)
        .await
        .unwrap();
    assert!(
        etag.as_deref().is_some_and(|e| e.ends_with("-3")),
        "{etag:?}"
    );
    let got = store
        .get("media", "big/ünï photo.jpg", 11 << 20)
        .await
        .unwrap();
    assert!(got.body.to_vec() == whole, "multipart body differs");
    assert_eq!(got.info.etag, etag);
    assert_eq!(got.info.content_type.as_deref(), Some("image/jpeg"));
    let err = store
        .put_multipart(
            "no-such-bucket",
            "x",
            vec![bytes::Bytes::from_static(b"x")],
            &options,
        )
        .await;
    assert!(matches!(err, Err(StoreError::NotFound(_))), "{err:?}");
    server.stop().await;
}
