//! An in-memory store, for tests: fast, deterministic, and it counts writes.

use crate::{
    check_metadata, md5_etag, ListEntry, ListPage, Object, ObjectInfo, ObjectStore, PutOptions,
    Result, StoreError, MAX_LIST_PAGE,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Buckets of objects in memory. Buckets must be created up front, as on S3.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: Mutex<HashMap<String, BTreeMap<String, Object>>>,
    puts: AtomicU64,
    deletes: AtomicU64,
}

impl MemoryStore {
    /// A store with these (empty) buckets.
    pub fn new(buckets: &[&str]) -> MemoryStore {
        let store = MemoryStore::default();
        {
            let mut map = store.buckets.lock().expect("lock");
            for b in buckets {
                map.insert((*b).to_string(), BTreeMap::new());
            }
        }
        store
    }

    /// How many `put` calls have succeeded (to check that a replay writes nothing).
    pub fn put_count(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }

    /// How many `delete` calls removed an object.
    pub fn delete_count(&self) -> u64 {
        self.deletes.load(Ordering::SeqCst)
    }

    /// Every key in `bucket`, in order (empty if the bucket does not exist).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let map = self.buckets.lock().expect("lock");
        map.get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn no_bucket(bucket: &str) -> StoreError {
    StoreError::NotFound(format!("bucket {bucket:?} does not exist"))
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object> {
        let map = self.buckets.lock().expect("lock");
        let b = map.get(bucket).ok_or_else(|| no_bucket(bucket))?;
        let obj = b
            .get(key)
            .ok_or_else(|| StoreError::NotFound(crate::object_url(bucket, key)))?;
        if obj.info.size > max_bytes {
            return Err(StoreError::TooLarge {
                size: obj.info.size,
                limit: max_bytes,
            });
        }
        Ok(obj.clone())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        let map = self.buckets.lock().expect("lock");
        let b = map.get(bucket).ok_or_else(|| no_bucket(bucket))?;
        Ok(b.get(key).map(|o| o.info.clone()))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        check_metadata(&options.metadata)?;
        if key.is_empty() {
            return Err(StoreError::Other("empty key".into()));
        }
        // As S3 does, so a test against memory fails where S3 would.
        if key.len() > crate::MAX_KEY_BYTES {
            return Err(StoreError::Other(format!(
                "key is {} bytes, over S3's {}",
                key.len(),
                crate::MAX_KEY_BYTES
            )));
        }
        let etag = md5_etag(&body);
        let info = ObjectInfo {
            key: key.to_string(),
            size: body.len() as u64,
            etag: Some(etag.clone()),
            version_id: None,
            content_type: options.content_type.clone(),
            cache_control: options.cache_control.clone(),
            metadata: options.metadata.clone(),
            last_modified: Some(std::time::SystemTime::now()),
        };
        let mut map = self.buckets.lock().expect("lock");
        let b = map.get_mut(bucket).ok_or_else(|| no_bucket(bucket))?;
        b.insert(key.to_string(), Object { info, body });
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(Some(etag))
    }

    async fn get_head(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes> {
        let map = self.buckets.lock().expect("lock");
        let b = map.get(bucket).ok_or_else(|| no_bucket(bucket))?;
        let obj = b
            .get(key)
            .ok_or_else(|| StoreError::NotFound(crate::object_url(bucket, key)))?;
        let end = obj
            .body
            .len()
            .min(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(obj.body.slice(..end))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let mut map = self.buckets.lock().expect("lock");
        let b = map.get_mut(bucket).ok_or_else(|| no_bucket(bucket))?;
        if b.remove(key).is_some() {
            self.deletes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let map = self.buckets.lock().expect("lock");
        let b = map.get(bucket).ok_or_else(|| no_bucket(bucket))?;
        let mut entries = Vec::new();
        let mut next = None;
        let after = continuation.unwrap_or("");
        for (k, o) in b.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            if continuation.is_some() && k.as_str() <= after {
                continue;
            }
            if entries.len() == limit {
                next = entries.last().map(|e: &ListEntry| e.key.clone());
                break;
            }
            entries.push(ListEntry {
                key: k.clone(),
                size: o.info.size,
                etag: o.info.etag.clone(),
                last_modified: o.info.last_modified,
            });
        }
        Ok(ListPage { entries, next })
    }

    /// The continuation is the last key listed, so `start_after` is one.
    async fn list_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<ListPage> {
        self.list(bucket, prefix, Some(start_after), limit).await
    }
}
