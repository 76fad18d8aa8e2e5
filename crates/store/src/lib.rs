//! One narrow async object-store interface for mediaflow.
//!
//! [`ObjectStore`] is what the pipeline needs from S3 and nothing more: a
//! bounded `get`, `head`, `put` with HTTP headers and user metadata, and a
//! paged `list` (for backfills). Implementations:
//!
//! - [`MemoryStore`]: a map in memory, for handler tests;
//! - [`FsStore`]: a directory per bucket on the local filesystem;
//! - `mediaflow_store_s3::S3Store` (its own crate, the only one that links the
//!   AWS SDK).
//!
//! All of them pass the same conformance suite (`conformance` feature), so
//! the pipeline behaves the same against each.

mod fs;
mod keys;
mod memory;
mod queue;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use fs::FsStore;
pub use keys::{
    escape_key, form_decode_key, form_encode_key, object_url, path_key_problem, MAX_KEY_BYTES,
};
pub use memory::MemoryStore;
pub use queue::{MemoryQueue, MessageQueue};

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Why a store operation failed, in categories the pipeline can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket or object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The credentials may not do this (or the bucket belongs to someone else).
    #[error("access denied: {0}")]
    Denied(String),
    /// The object is larger than the caller allows; nothing (or only the
    /// first `limit` bytes) was read.
    #[error("object is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// Worth retrying: throttling, a timeout, a dropped connection, a 5xx.
    #[error("transient: {0}")]
    Transient(String),
    /// Anything else (an invalid key, an unexpected response).
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// What went wrong, in mediaflow's one vocabulary: `TooLarge` is
    /// `limits`, and `Other` (an invalid key, an unexpected response) is
    /// `internal`, which is retried: an unknown failure is not a reason to
    /// drop work.
    pub fn kind(&self) -> mediaflow_error::ErrorKind {
        use mediaflow_error::ErrorKind;
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Denied(_) => ErrorKind::Denied,
            StoreError::TooLarge { .. } => ErrorKind::Limits,
            StoreError::Transient(_) => ErrorKind::Transient,
            StoreError::Other(_) => ErrorKind::Internal,
        }
    }

    /// True when retrying the same call later cannot succeed (see
    /// [`mediaflow_error::ErrorKind::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.kind().is_permanent()
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a store knows about one object, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The entity tag without quotes (for single-part S3 uploads, the MD5 in hex).
    pub etag: Option<String>,
    /// The version id, on versioned buckets.
    pub version_id: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// User metadata (`x-amz-meta-*` on S3), keys lower-case.
    pub metadata: BTreeMap<String, String>,
    /// When the object was written (`Last-Modified`), when known.
    pub last_modified: Option<std::time::SystemTime>,
}

/// An object read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub info: ObjectInfo,
    pub body: Bytes,
}

/// HTTP headers and metadata stored with an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// User metadata. Keys are lower-case `[a-z0-9-]`; values must be ASCII
    /// (S3 sends them as HTTP headers), so percent-encode anything else.
    pub metadata: BTreeMap<String, String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// When the object was written, when the store says (S3 does, to the
    /// second).
    pub last_modified: Option<std::time::SystemTime>,
}

/// One page of a listing, in key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    /// Pass to the next `list` call to continue; `None` on the last page.
    pub next: Option<String>,
}

/// The storage operations mediaflow needs. Keys are plain (decoded) UTF-8.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Reads a whole object into memory, refusing (with
    /// [`StoreError::TooLarge`]) one larger than `max_bytes` before reading
    /// it when the size is known up front, and as soon as it is exceeded otherwise.
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object>;

    /// The object's size, ETag, headers and metadata, or `None` if it does not exist.
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>>;

    /// Writes (or replaces) an object whole; readers see the old or the new
    /// object, never a part. Returns the new object's ETag when known.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<Option<String>>;

    /// Streams an object into the file at `path` (created or replaced),
    /// with [`get`](ObjectStore::get)'s size rule, and returns what
    /// `get` would. On an error the file's content is unspecified; the
    /// caller removes it. The default reads the object into memory first
    /// (right for stores that hold it there anyway); the S3 store streams.
    async fn get_to_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        max_bytes: u64,
    ) -> Result<ObjectInfo> {
        let object = self.get(bucket, key, max_bytes).await?;
        tokio::fs::write(path, &object.body)
            .await
            .map_err(|e| local_file_error("writing", path, e))?;
        Ok(object.info)
    }

    /// Writes an object from the file at `path`, like [`put`](ObjectStore::put).
    /// The default reads the file into memory; the S3 store streams it.
    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        let body = tokio::fs::read(path)
            .await
            .map_err(|e| local_file_error("reading", path, e))?;
        self.put(bucket, key, Bytes::from(body), options).await
    }

    /// The first `len` bytes of an object (all of it when it is shorter),
    /// to tell what it is without reading it whole.
    async fn get_head(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes>;

    /// Removes an object. Removing one that does not exist succeeds, as on
    /// S3, so a repeated delete is a no-op.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;

    /// Lists keys starting with `prefix` in key order, one page at a time
    /// (at most `limit` entries, capped at 1000): pass the returned
    /// `next` back as `continuation` until it is `None`.
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ListPage>;

    /// Lists keys starting with `prefix` that sort after `start_after`
    /// (S3's `StartAfter`; need not be a key that exists), like
    /// [`list`](ObjectStore::list): continue with the returned `next`
    /// through `list`. How an interrupted walk over a bucket resumes
    /// from the last key it finished.
    async fn list_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<ListPage>;
}

/// A local file could not be read or written: out of space or a broken
/// work directory, which a retry on another instance may not hit.
pub fn local_file_error(doing: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Transient(format!("{doing} the local file {}: {e}", path.display()))
}

/// Lower-case hex MD5 of `data`: the ETag S3 gives a single-part upload.
pub fn md5_etag(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

/// [`md5_etag`] of a file's bytes, read in chunks: the ETag a single-part
/// upload of the file would get.
pub fn md5_etag_of_file(path: &Path) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    let mut hasher = Md5::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// An entity tag without the quotes HTTP puts around it.
pub fn unquote_etag(etag: Option<String>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_string())
}

/// S3's bucket naming rules (3-63 characters of a-z, 0-9, '.' and '-',
/// starting and ending with a letter or digit).
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-'])
}

/// The page size cap every store applies, as S3 does.
pub const MAX_LIST_PAGE: usize = 1000;

/// Checks a user-metadata map the way S3 would accept it. Shared by the
/// stores so that a test against memory fails where S3 would.
pub fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in metadata {
        let key_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !key_ok {
            return Err(StoreError::Other(format!(
                "metadata key {k:?} must be lower-case [a-z0-9-]"
            )));
        }
        if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(StoreError::Other(format!(
                "metadata value for {k:?} must be printable ASCII (percent-encode it)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("uploads"));
        assert!(valid_bucket_name("my.media-1"));
        assert!(!valid_bucket_name("Up"));
        assert!(!valid_bucket_name("-abc"));
        assert!(!valid_bucket_name("a/b"));
        assert!(!valid_bucket_name("ab"));
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(
            unquote_etag(Some("\"abc-2\"".into())).as_deref(),
            Some("abc-2")
        );
        assert_eq!(unquote_etag(None), None);
    }
}
