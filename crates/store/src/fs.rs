//! A store on the local filesystem: `root/<bucket>/<key>`, with headers and
//! metadata in a sidecar `root/.mediaflow-meta/<bucket>/<key>.json`.
//!
//! Buckets are the directories directly under the root (created up front, as
//! on S3). Writes go to a temporary file that is renamed into place, so a
//! reader never sees half an object.

use crate::{
    check_metadata, md5_etag, ListEntry, ListPage, Object, ObjectInfo, ObjectStore, PutOptions,
    Result, StoreError, MAX_LIST_PAGE,
};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const META_DIR: &str = ".mediaflow-meta";
const TMP_DIR: &str = ".mediaflow-tmp";

/// Objects as files under a root directory.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Sidecar {
    etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_control: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl FsStore {
    /// A store over `root`, creating it and the given bucket directories.
    pub fn new(root: impl Into<PathBuf>, buckets: &[&str]) -> Result<FsStore> {
        let root = root.into();
        for b in buckets {
            check_bucket(b)?;
            std::fs::create_dir_all(root.join(b)).map_err(|e| io_error(&root.join(b), e))?;
        }
        std::fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
        Ok(FsStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf> {
        check_bucket(bucket)?;
        let dir = self.root.join(bucket);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(StoreError::NotFound(format!(
                "bucket {bucket:?} does not exist"
            )))
        }
    }

    fn paths(&self, bucket: &str, key: &str) -> Result<(PathBuf, PathBuf)> {
        let rel = key_path(key)?;
        let data = self.bucket_dir(bucket)?.join(&rel);
        let mut meta = self.root.join(META_DIR).join(bucket).join(&rel);
        let mut name = meta.file_name().unwrap_or_default().to_os_string();
        name.push(".json");
        meta.set_file_name(name);
        Ok((data, meta))
    }

    fn get_sync(&self, bucket: &str, key: &str, max_bytes: Option<u64>) -> Result<Option<Object>> {
        let (data, meta) = self.paths(bucket, key)?;
        let mut file = match std::fs::File::open(&data) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&data, e)),
        };
        let md = file.metadata().map_err(|e| io_error(&data, e))?;
        if !md.is_file() {
            return Ok(None);
        }
        let size = md.len();
        if let Some(limit) = max_bytes {
            if size > limit {
                return Err(StoreError::TooLarge { size, limit });
            }
        }
        let sidecar: Option<Sidecar> = match std::fs::read(&meta) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::Other(format!("{}: corrupt metadata: {e}", meta.display()))
            })?),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&meta, e)),
        };
        // A head of a file without a sidecar (placed by hand) still needs the
        // body for its ETag.
        let need_body = max_bytes.is_some() || sidecar.is_none();
        let body = if need_body {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).map_err(|e| io_error(&data, e))?;
            Bytes::from(buf)
        } else {
            Bytes::new()
        };
        let sidecar = sidecar.unwrap_or_else(|| Sidecar {
            etag: md5_etag(&body),
            ..Sidecar::default()
        });
        let info = ObjectInfo {
            key: key.to_string(),
            size,
            etag: Some(sidecar.etag),
            version_id: None,
            content_type: sidecar.content_type,
            cache_control: sidecar.cache_control,
            metadata: sidecar.metadata,
            last_modified: md.modified().ok(),
        };
        Ok(Some(Object { info, body }))
    }

    fn put_sync(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        options: &PutOptions,
    ) -> Result<String> {
        check_metadata(&options.metadata)?;
        let (data, meta) = self.paths(bucket, key)?;
        let etag = md5_etag(body);
        let sidecar = Sidecar {
            etag: etag.clone(),
            content_type: options.content_type.clone(),
            cache_control: options.cache_control.clone(),
            metadata: options.metadata.clone(),
        };
        let sidecar = serde_json::to_vec(&sidecar).expect("sidecar serialises");
        self.write_atomic(&data, body)?;
        self.write_atomic(&meta, &sidecar)?;
        Ok(etag)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let parent = path.parent().expect("object paths have a parent");
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        let tmp_dir = self.root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp_dir).map_err(|e| io_error(&tmp_dir, e))?;
        let tmp = tmp_dir.join(format!(
            "{}-{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error(path, e)
        })
    }

    fn list_sync(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let dir = self.bucket_dir(bucket)?;
        let mut keys = Vec::new();
        walk(&dir, String::new(), &mut keys)?;
        keys.sort();
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let mut page = ListPage::default();
        for key in keys.into_iter().filter(|k| k.starts_with(prefix)) {
            if continuation.is_some_and(|c| key.as_str() <= c) {
                continue;
            }
            if page.entries.len() == limit {
                page.next = page.entries.last().map(|e| e.key.clone());
                break;
            }
            let Some(obj) = self.get_sync(bucket, &key, None)? else {
                continue; // removed while listing
            };
            page.entries.push(ListEntry {
                key,
                size: obj.info.size,
                etag: obj.info.etag,
                last_modified: obj.info.last_modified,
            });
        }
        Ok(page)
    }
}

fn walk(dir: &Path, rel: String, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // not a UTF-8 name: cannot be a key
        };
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        if ft.is_dir() {
            walk(&entry.path(), key, out)?;
        } else if ft.is_file() {
            out.push(key);
        }
    }
    Ok(())
}

fn check_bucket(bucket: &str) -> Result<()> {
    let ok = !bucket.is_empty()
        && !bucket.starts_with('.')
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Other(format!("invalid bucket name {bucket:?}")))
    }
}

/// A key as a relative path, refusing anything that could escape the bucket
/// or that a filesystem cannot hold as a file.
fn key_path(key: &str) -> Result<PathBuf> {
    let bad = |why: &str| {
        Err(StoreError::Other(format!(
            "key \"{}\" {why}",
            crate::escape_key(key)
        )))
    };
    if let Some(why) = crate::path_key_problem(key) {
        return bad(why);
    }
    if key.contains('\\') {
        return bad("has a backslash, which the filesystem store cannot hold");
    }
    if key.ends_with('/') {
        return bad(
            "ends in '/' (a folder marker), which the filesystem store cannot hold as a file",
        );
    }
    Ok(PathBuf::from(key))
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    let msg = format!("{}: {e}", path.display());
    match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound(msg),
        ErrorKind::PermissionDenied => StoreError::Denied(msg),
        ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            StoreError::Transient(msg)
        }
        _ => StoreError::Other(msg),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Other(format!("filesystem task failed: {e}")))?
}

#[async_trait]
impl ObjectStore for FsStore {
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object> {
        let (me, b, k) = (self.clone_handle(), bucket.to_string(), key.to_string());
        blocking(move || {
            me.get_sync(&b, &k, Some(max_bytes))?
                .ok_or_else(|| StoreError::NotFound(format!("s3://{b}/{k}")))
        })
        .await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        let (me, b, k) = (self.clone_handle(), bucket.to_string(), key.to_string());
        blocking(move || Ok(me.get_sync(&b, &k, None)?.map(|o| o.info))).await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        let (me, b, k, o) = (
            self.clone_handle(),
            bucket.to_string(),
            key.to_string(),
            options.clone(),
        );
        blocking(move || me.put_sync(&b, &k, &body, &o).map(Some)).await
    }

    async fn get_head(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes> {
        let (me, b, k) = (self.clone_handle(), bucket.to_string(), key.to_string());
        blocking(move || {
            let (data, _) = me.paths(&b, &k)?;
            let not_found = || StoreError::NotFound(crate::object_url(&b, &k));
            let file = match std::fs::File::open(&data) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(not_found()),
                Err(e) => return Err(io_error(&data, e)),
            };
            if !file.metadata().map_err(|e| io_error(&data, e))?.is_file() {
                return Err(not_found());
            }
            let mut buf = Vec::new();
            file.take(len)
                .read_to_end(&mut buf)
                .map_err(|e| io_error(&data, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let (me, b, k) = (self.clone_handle(), bucket.to_string(), key.to_string());
        blocking(move || {
            let (data, meta) = me.paths(&b, &k)?;
            for path in [data, meta] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let (me, b, p, c) = (
            self.clone_handle(),
            bucket.to_string(),
            prefix.to_string(),
            continuation.map(str::to_string),
        );
        blocking(move || me.list_sync(&b, &p, c.as_deref(), limit)).await
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

impl FsStore {
    fn clone_handle(&self) -> FsStore {
        FsStore {
            root: self.root.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(key_path("a/b.jpg").is_ok());
        assert!(key_path("ünï/фото.jpg").is_ok());
        for bad in [
            "",
            "/abs",
            "a/../../etc",
            "./a",
            "a//b",
            "dir/",
            "a\\b",
            "a\0b",
        ] {
            assert!(key_path(bad).is_err(), "{bad:?}");
        }
    }
}
