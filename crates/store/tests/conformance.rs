//! The shared conformance suite against the memory and filesystem stores.
//! (The S3 store runs the same suite in `mediaflow-store-s3`.)

use mediaflow_store::{conformance, FsStore, MemoryStore};

#[tokio::test]
async fn memory_store_conforms() {
    let store = MemoryStore::new(&["media"]);
    conformance::run_all(&store, "media", "no-such-bucket", "").await;
    conformance::run_all(&store, "media", "no-such-bucket", "again/").await;
}

#[tokio::test]
async fn fs_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), &["media"]).unwrap();
    conformance::run_all(&store, "media", "no-such-bucket", "").await;
    conformance::run_all(&store, "media", "no-such-bucket", "again/").await;
}
