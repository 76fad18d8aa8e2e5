//! An S3 Inventory report as a backfill's source listing: the report's
//! `manifest.json`, its gzipped CSV files (columns as `fileSchema` names
//! them, keys URL-encoded), the current versions of the objects under the
//! source prefix, sorted by key. What AWS recommends over listing at
//! hundreds of millions of objects: the report costs $0.0025 per million
//! objects listed and needs no `ListObjectsV2` of the source.
//!
//! Each file is streamed to a temporary file, checked against its MD5 and
//! read as a stream, its CSV bounded (a gzip bomb is refused); the rows
//! under the source prefix are held in memory (about 150-200 bytes per
//! object) and sorted, as report files are not in key order across files.

use super::{Requests, SourceListing};
use mediaflow_store::{form_decode_key, md5_etag_of_file, ListEntry, ObjectStore, StoreError};
use serde::Deserialize;
use std::io::Read;

/// The largest `manifest.json` read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The largest report file read (S3 writes files of a few hundred MB),
/// streamed to a temporary file.
const MAX_FILE_BYTES: u64 = 8 << 30;
/// CSV text read per compressed byte at most: inventory CSV compresses
/// about 5-15 times; a gzip bomb, a thousand.
const MAX_EXPANSION: u64 = 64;
/// ... but small files may always inflate to this.
const MIN_TEXT_CAP: u64 = 64 << 20;

/// Why a report cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("reading {what}: {source}")]
    Store {
        what: String,
        #[source]
        source: StoreError,
    },
    #[error("{what}: {reason}")]
    Format { what: String, reason: String },
}

impl InventoryError {
    fn format(what: &str, reason: impl Into<String>) -> InventoryError {
        InventoryError::Format {
            what: what.to_string(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    source_bucket: String,
    destination_bucket: String,
    file_format: String,
    file_schema: String,
    files: Vec<RawFile>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    key: String,
    size: Option<u64>,
    #[serde(rename = "MD5checksum")]
    md5: Option<String>,
}

/// A report's `manifest.json`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryManifest {
    pub source_bucket: String,
    /// Where the files are (the bucket of the `destinationBucket` ARN).
    pub destination_bucket: String,
    pub files: Vec<InventoryFile>,
    key: usize,
    size: Option<usize>,
    etag: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryFile {
    pub key: String,
    pub size: Option<u64>,
    pub md5: Option<String>,
}

impl InventoryManifest {
    /// Parses `manifest.json` (named `what` in errors). Only CSV reports
    /// are read; the schema must have `Key`, and should have `Size` and
    /// `ETag` (without an ETag every object counts as needing work).
    pub fn parse(what: &str, json: &[u8]) -> Result<InventoryManifest, InventoryError> {
        let raw: RawManifest = serde_json::from_slice(json).map_err(|e| {
            InventoryError::format(what, format!("not an S3 Inventory manifest: {e}"))
        })?;
        if !raw.file_format.eq_ignore_ascii_case("CSV") {
            return Err(InventoryError::format(
                what,
                format!(
                    "the report is {}; only CSV reports are read (choose CSV in the inventory configuration)",
                    raw.file_format
                ),
            ));
        }
        let columns: Vec<String> = raw
            .file_schema
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let col = |name: &str| columns.iter().position(|c| c == name);
        let key = col("key").ok_or_else(|| {
            InventoryError::format(what, format!("fileSchema {:?} has no Key", raw.file_schema))
        })?;
        let destination_bucket = raw
            .destination_bucket
            .rsplit(":::")
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(InventoryManifest {
            source_bucket: raw.source_bucket,
            destination_bucket,
            files: raw
                .files
                .into_iter()
                .map(|f| InventoryFile {
                    key: f.key,
                    size: f.size,
                    md5: f.md5,
                })
                .collect(),
            key,
            size: col("size"),
            etag: col("etag"),
            is_latest: col("islatest"),
            is_delete_marker: col("isdeletemarker"),
        })
    }

    /// The current objects of one CSV file (gzipped or not, read as a
    /// stream) whose keys start with `prefix`, in file order. At most
    /// `max_text` bytes of CSV are read: a file that inflates past it
    /// (a gzip bomb) is refused.
    pub fn rows(
        &self,
        what: &str,
        data: impl Read,
        prefix: &str,
        max_text: u64,
    ) -> Result<Vec<ListEntry>, InventoryError> {
        let mut data = std::io::BufReader::new(data);
        let gzipped = std::io::BufRead::fill_buf(&mut data)
            .map_err(|e| InventoryError::format(what, e.to_string()))?
            .starts_with(&[0x1f, 0x8b]);
        let text: Box<dyn Read> = if gzipped {
            Box::new(flate2::read::MultiGzDecoder::new(data))
        } else {
            Box::new(data)
        };
        // One byte over the cap tells a file at the cap from one over it.
        let mut text = text.take(max_text.saturating_add(1));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&mut text);
        let mut out = Vec::new();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| InventoryError::format(what, e.to_string()))?;
            let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
            let raw_key = field(Some(self.key));
            let key = form_decode_key(raw_key)
                .map_err(|e| InventoryError::format(what, format!("line {}: {e}", line + 1)))?;
            let not_latest = field(self.is_latest).eq_ignore_ascii_case("false");
            let deleted = field(self.is_delete_marker).eq_ignore_ascii_case("true");
            if not_latest || deleted || !key.starts_with(prefix) {
                continue;
            }
            let size = field(self.size).parse().unwrap_or(0);
            let etag =
                Some(field(self.etag).trim_matches('"').to_string()).filter(|e| !e.is_empty());
            out.push(ListEntry {
                key,
                size,
                etag,
                last_modified: None,
            });
        }
        drop(reader);
        if text.limit() == 0 {
            return Err(InventoryError::format(
                what,
                format!("inflates to more than {max_text} bytes of CSV; refused"),
            ));
        }
        Ok(out)
    }
}

/// Reads the report whose `manifest.json` is `s3://{bucket}/{key}`: every
/// file (checked against its MD5 when the manifest gives one), the
/// current objects of `source_bucket` under `source_prefix`, sorted by key
/// with duplicates removed.
pub async fn read(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    source_bucket: &str,
    source_prefix: &str,
    requests: &Requests,
) -> Result<Vec<ListEntry>, InventoryError> {
    let what = mediaflow_store::object_url(bucket, key);
    Requests::add(&requests.get);
    let json = store
        .get(bucket, key, MAX_MANIFEST_BYTES)
        .await
        .map_err(|source| InventoryError::Store {
            what: what.clone(),
            source,
        })?;
    let manifest = InventoryManifest::parse(&what, &json.body)?;
    if manifest.source_bucket != source_bucket {
        return Err(InventoryError::format(
            &what,
            format!(
                "the report is of bucket {:?}, not of the source bucket {source_bucket:?}",
                manifest.source_bucket
            ),
        ));
    }
    let work = tempfile::tempdir().map_err(|e| {
        InventoryError::format(&what, format!("cannot create a work directory: {e}"))
    })?;
    let mut rows = Vec::new();
    for file in &manifest.files {
        let file_what = mediaflow_store::object_url(&manifest.destination_bucket, &file.key);
        Requests::add(&requests.get);
        let limit = file.size.map_or(MAX_FILE_BYTES, |s| s.min(MAX_FILE_BYTES));
        let path = work.path().join("report");
        store
            .get_to_file(&manifest.destination_bucket, &file.key, &path, limit)
            .await
            .map_err(|source| InventoryError::Store {
                what: file_what.clone(),
                source,
            })?;
        // Hashing and parsing are CPU work: off the async threads.
        let (m, expected, prefix) = (
            manifest.clone(),
            file.md5.clone(),
            source_prefix.to_string(),
        );
        let parsed = tokio::task::spawn_blocking(move || {
            let local = |e: std::io::Error| InventoryError::format(&file_what, e.to_string());
            if let Some(expected) = &expected {
                let actual = md5_etag_of_file(&path).map_err(local)?;
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(InventoryError::format(
                        &file_what,
                        format!("MD5 {actual} is not the manifest's {expected}"),
                    ));
                }
            }
            let compressed = std::fs::metadata(&path).map_err(local)?.len();
            let max_text = compressed.saturating_mul(MAX_EXPANSION).max(MIN_TEXT_CAP);
            let reader = std::fs::File::open(&path).map_err(local)?;
            m.rows(&file_what, reader, &prefix, max_text)
        })
        .await
        .map_err(|e| InventoryError::format(&what, format!("reading the report failed: {e}")))??;
        rows.extend(parsed);
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows.dedup_by(|a, b| a.key == b.key);
    Ok(rows)
}

/// A report's rows as a source listing, from after a key (resuming).
pub struct InventoryListing {
    rows: std::vec::IntoIter<ListEntry>,
}

impl InventoryListing {
    pub fn new(rows: Vec<ListEntry>, after: Option<&str>) -> InventoryListing {
        let start = after.map_or(0, |a| rows.partition_point(|r| r.key.as_str() <= a));
        let mut rows = rows.into_iter();
        if start > 0 {
            rows.nth(start - 1);
        }
        InventoryListing { rows }
    }

    /// Rows left.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.len() == 0
    }
}

#[async_trait::async_trait]
impl SourceListing for InventoryListing {
    async fn next_page(&mut self) -> Result<Option<Vec<ListEntry>>, StoreError> {
        let page: Vec<ListEntry> = self
            .rows
            .by_ref()
            .take(mediaflow_store::MAX_LIST_PAGE)
            .collect();
        Ok((!page.is_empty()).then_some(page))
    }
}
