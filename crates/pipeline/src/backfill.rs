//! Backfill selection: which objects of a source listing need work.
//!
//! Every source object is one of:
//! - `current`: its manifest was made from this ETag with this plan;
//! - `missing`: it has no manifest;
//! - `stale`: its manifest was made from other bytes or another plan;
//! - `rejected`: it has no current manifest, and a failure record says
//!   these bytes failed permanently with this plan (the functions would
//!   skip it, so it is not work).
//!
//! [`Selector`] decides from listings, without a request per current
//! object. The source listing (S3's `ListObjectsV2`, or an S3 Inventory
//! report: [`inventory`]) is merged with three listings of the output
//! bucket, each read 1,000 keys at a time as the source keys advance:
//! - the manifests (`{prefix}manifest/{key}.json`): present or not;
//! - the outputs of the plan's first variant, when the key template is the
//!   default's shape (`{variant}/…{key}…{hash}….{ext}`,
//!   [`KeyTemplate::source_key_start`]): `{hash}` is the content hash of
//!   the source's ETag and the plan fingerprint, so an output under the
//!   hash of the listed ETag, written no later than the manifest beside
//!   it, means that manifest is current;
//! - the failure records (`{prefix}failed/{key}.json`), which are rare.
//!
//! Only where listings cannot decide does it look closer, with a `HEAD`:
//! a failure record (its metadata names the ETag and plan it was made
//! for), a manifest older than the output under its hash (a write that
//! stopped before its manifest), and every manifest when the template has
//! no `{hash}`.
//!
//! Each output listing's key for a source is a fixed text, the source key
//! and a suffix, so it sorts near the source key but not always in the
//! same order (`a.json` sorts after `a-b.json`). A cursor therefore reads
//! until it is past the exact key it needs and keeps the keys it has read
//! ahead; keys before `{start}{source key}` can never be needed again
//! (every later source key's entries sort after it) and are dropped as
//! soon as they are read. Each output listing is limited to the source
//! prefix, and a page wholly below the next source key (outputs of
//! sources not listed) makes the next request start there: memory stays
//! at a page or two, and requests at the pages that hold listed sources'
//! entries.
//!
//! Manifests and outputs written by the functions carry the image plan's
//! fingerprint (on-upload) or the video plan's (transcode, and `mediaflow
//! dev`, which handles both): either counts as current.

pub mod inventory;

use crate::run::{META_PLAN, META_SOURCE_ETAG};
use mediaflow_engine::{content_hash, failure_key, manifest_key, OutputFormat, Plan};
use mediaflow_store::{escape_key, ListEntry, ObjectInfo, ObjectStore, StoreError, MAX_LIST_PAGE};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What a source object needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Current,
    Missing,
    Stale,
    Rejected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Current => "current",
            State::Missing => "missing",
            State::Stale => "stale",
            State::Rejected => "rejected",
        }
    }
}

/// One source object and what it needs, or why it could not be examined.
#[derive(Debug)]
pub struct Examined {
    pub entry: ListEntry,
    pub state: Result<State, StoreError>,
}

/// Requests made to examine the sources, by kind.
#[derive(Debug, Default)]
pub struct Requests {
    pub list: AtomicU64,
    pub head: AtomicU64,
    pub get: AtomicU64,
}

impl Requests {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn list(&self) -> u64 {
        self.list.load(Ordering::Relaxed)
    }

    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Relaxed)
    }

    pub fn get(&self) -> u64 {
        self.get.load(Ordering::Relaxed)
    }
}

/// Where the sources are and where their outputs go.
#[derive(Debug, Clone)]
pub struct Selection {
    pub source_bucket: String,
    /// Listing prefix of the sources (may be empty).
    pub source_prefix: String,
    pub output_bucket: String,
    /// The functions' output prefix, verbatim (may be empty).
    pub output_prefix: String,
    /// Fingerprints a current manifest may carry: the image plan's and,
    /// when videos are handled, the video plan's.
    pub fingerprints: Vec<String>,
}

impl Selection {
    /// Whether `key` of the source bucket is where outputs are written
    /// (skipped, as the functions skip it).
    pub fn is_output_key(&self, key: &str) -> bool {
        self.source_bucket == self.output_bucket
            && !self.output_prefix.is_empty()
            && key.starts_with(&self.output_prefix)
    }
}

/// Source object entries in key order, a page at a time.
#[async_trait::async_trait]
pub trait SourceListing: Send {
    /// The next page, or `None` after the last.
    async fn next_page(&mut self) -> Result<Option<Vec<ListEntry>>, StoreError>;
}

/// A bucket's listing under a prefix, from after a key (resuming).
pub struct BucketListing {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    after: Option<String>,
    next: Option<String>,
    done: bool,
    requests: Arc<Requests>,
}

impl BucketListing {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        requests: Arc<Requests>,
    ) -> BucketListing {
        BucketListing {
            store,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            after: after.map(str::to_string),
            next: None,
            done: false,
            requests,
        }
    }
}

#[async_trait::async_trait]
impl SourceListing for BucketListing {
    async fn next_page(&mut self) -> Result<Option<Vec<ListEntry>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        Requests::add(&self.requests.list);
        let page = match (&self.next, self.after.take()) {
            (Some(next), _) => {
                self.store
                    .list(&self.bucket, &self.prefix, Some(next), MAX_LIST_PAGE)
                    .await?
            }
            (None, Some(after)) => {
                self.store
                    .list_after(&self.bucket, &self.prefix, &after, MAX_LIST_PAGE)
                    .await?
            }
            (None, None) => {
                self.store
                    .list(&self.bucket, &self.prefix, None, MAX_LIST_PAGE)
                    .await?
            }
        };
        self.next = page.next;
        self.done = self.next.is_none();
        Ok(Some(page.entries))
    }
}

/// One listing of the output bucket, read as far as the source keys need.
struct Cursor {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    /// The listing prefix: `start` and the source prefix.
    prefix: String,
    /// The text before the source key in every key of this listing.
    start: String,
    next: Option<String>,
    /// List after this key before the next page (resuming, or jumping
    /// over keys no source needs).
    restart_after: Option<String>,
    page: usize,
    done: bool,
    /// The last key read.
    last: Option<String>,
    /// Keys read and not yet dropped, with when they were written.
    seen: BTreeMap<String, Option<SystemTime>>,
    requests: Arc<Requests>,
}

impl Cursor {
    fn new(
        store: &Arc<dyn ObjectStore>,
        bucket: &str,
        start: String,
        source_prefix: &str,
        after: Option<&str>,
        requests: &Arc<Requests>,
    ) -> Cursor {
        // Resuming after source key K: every later key's entry sorts
        // after `{start}K`.
        let restart_after = after.map(|k| format!("{start}{k}"));
        Cursor {
            store: Arc::clone(store),
            bucket: bucket.to_string(),
            prefix: format!("{start}{source_prefix}"),
            start,
            next: None,
            last: restart_after.clone(),
            restart_after,
            page: MAX_LIST_PAGE,
            done: false,
            seen: BTreeMap::new(),
            requests: Arc::clone(requests),
        }
    }

    /// `{start}{source_key}`: no key below it is needed from `source_key` on.
    fn bound(&self, source_key: &str) -> String {
        format!("{}{source_key}", self.start)
    }

    /// Reads until the listing is past `target` (or ends), keeping only
    /// keys from `bound` on. A page wholly below `bound` (outputs of
    /// sources not listed) makes the next request start at `bound`
    /// instead of reading through the gap.
    async fn reach(&mut self, target: &str, bound: &str) -> Result<(), StoreError> {
        while !self.done && self.last.as_deref().is_none_or(|l| l < target) {
            Requests::add(&self.requests.list);
            let page = match (&self.next, &self.restart_after) {
                (Some(next), _) => {
                    self.store
                        .list(&self.bucket, &self.prefix, Some(next), self.page)
                        .await?
                }
                (None, Some(after)) => {
                    self.store
                        .list_after(&self.bucket, &self.prefix, after, self.page)
                        .await?
                }
                (None, None) => {
                    self.store
                        .list(&self.bucket, &self.prefix, None, self.page)
                        .await?
                }
            };
            self.restart_after = None;
            self.next = page.next;
            self.done = self.next.is_none();
            let Some(last) = page.entries.last().map(|e| e.key.clone()) else {
                continue;
            };
            let below = last.as_str() < bound;
            self.last = Some(last);
            self.seen.extend(
                page.entries
                    .into_iter()
                    .filter(|e| e.key.as_str() >= bound)
                    .map(|e| (e.key, e.last_modified)),
            );
            if below && !self.done {
                // `bound` itself is no key any source from here on needs
                // (each has a suffix after its source key).
                self.next = None;
                self.restart_after = Some(bound.to_string());
                self.last = Some(bound.to_string());
            }
        }
        Ok(())
    }

    /// When `key` was written, if it was listed (`Some(None)`: listed,
    /// time unknown).
    fn get(&self, key: &str) -> Option<Option<SystemTime>> {
        self.seen.get(key).copied()
    }

    /// Drops the keys no source key from `source_key` on can need.
    fn drop_before(&mut self, source_key: &str) {
        let keep = self.seen.split_off(self.bound(source_key).as_str());
        self.seen = keep;
    }
}

/// Decides what each source object needs (see the module docs).
pub struct Selector {
    selection: Selection,
    store: Arc<dyn ObjectStore>,
    plan: Plan,
    manifests: Cursor,
    failures: Cursor,
    /// With a `{hash}` template of the default's shape: the first
    /// variant's outputs.
    outputs: Option<(Cursor, String)>,
    /// The last source key examined (or resumed after): listings must
    /// come in key order.
    previous: Option<String>,
    requests: Arc<Requests>,
}

impl Selector {
    /// A selector for the sources after `after` (a resumed run), or all.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        plan: Plan,
        selection: Selection,
        after: Option<&str>,
        requests: Arc<Requests>,
    ) -> Selector {
        let out = &selection.output_bucket;
        let prefix = &selection.output_prefix;
        // `{prefix}manifest/{key}.json` and `{prefix}failed/{key}.json`:
        // the text before the key is the key made for an empty source key,
        // less the suffix.
        let start_of = |empty: String| {
            empty
                .strip_suffix(".json")
                .expect("manifest and failure keys end with .json")
                .to_string()
        };
        let source_prefix = selection.source_prefix.as_str();
        let cursor =
            |start: String| Cursor::new(&store, out, start, source_prefix, after, &requests);
        let manifests = cursor(start_of(manifest_key(prefix, "")));
        let failures = cursor(start_of(failure_key(prefix, "")));
        let outputs = plan.variants().first().and_then(|v| {
            let start = plan.keys().source_key_start(prefix, &v.name)?;
            Some((cursor(start), v.name.clone()))
        });
        Selector {
            selection,
            store,
            plan,
            manifests,
            failures,
            outputs,
            previous: after.map(str::to_string),
            requests,
        }
    }

    /// Reads the output listings `n` keys at a time (S3's most, 1,000, by
    /// default): small pages exercise the merge in tests.
    pub fn page_size(mut self, n: usize) -> Selector {
        self.manifests.page = n;
        self.failures.page = n;
        if let Some((cursor, _)) = &mut self.outputs {
            cursor.page = n;
        }
        self
    }

    /// Whether current manifests are told from the listings alone (the
    /// key template holds `{hash}` in the default's shape); otherwise each
    /// manifest is read with a HEAD request.
    pub fn decides_from_listings(&self) -> bool {
        self.outputs.is_some()
    }

    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// What each entry of one source page (in key order) needs. Folder
    /// markers and keys under the output prefix are left out. `Err` when
    /// a listing fails or the source listing is out of key order (every
    /// decision relies on it): the run cannot go on.
    pub async fn examine(&mut self, page: Vec<ListEntry>) -> Result<Vec<Examined>, StoreError> {
        let mut out = Vec::with_capacity(page.len());
        for entry in page {
            if let Some(previous) = &self.previous {
                if entry.key.as_str() <= previous.as_str() {
                    return Err(StoreError::Other(format!(
                        "the source listing is not in key order: {} after {}",
                        escape_key(&entry.key),
                        escape_key(previous)
                    )));
                }
            }
            self.previous = Some(entry.key.clone());
            if (entry.key.ends_with('/') && entry.size == 0)
                || self.selection.is_output_key(&entry.key)
            {
                continue;
            }
            let state = self.state(&entry).await?;
            self.manifests.drop_before(&entry.key);
            self.failures.drop_before(&entry.key);
            if let Some((cursor, _)) = &mut self.outputs {
                cursor.drop_before(&entry.key);
            }
            out.push(Examined { entry, state });
        }
        Ok(out)
    }

    /// One entry's state. `Err` (the outer one) when a listing fails: the
    /// run cannot go on. The inner `Err` is this object's own failure.
    async fn state(&mut self, entry: &ListEntry) -> Result<Result<State, StoreError>, StoreError> {
        let prefix = self.selection.output_prefix.clone();
        let manifest = manifest_key(&prefix, &entry.key);
        let bound = self.manifests.bound(&entry.key);
        self.manifests.reach(&manifest, &bound).await?;
        let written = self.manifests.get(&manifest);
        if let Some(written) = written {
            match self.current(entry, &manifest, written).await? {
                Ok(true) => return Ok(Ok(State::Current)),
                Ok(false) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        let failure = failure_key(&prefix, &entry.key);
        let bound = self.failures.bound(&entry.key);
        self.failures.reach(&failure, &bound).await?;
        if self.failures.get(&failure).is_some() {
            match self.head_matches(&failure, entry).await {
                Ok(true) => return Ok(Ok(State::Rejected)),
                Ok(false) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(if written.is_some() {
            State::Stale
        } else {
            State::Missing
        }))
    }

    /// Whether the manifest that exists for `entry` (written at
    /// `manifest_written`) is current. From the first variant's output
    /// listing: no output under the hash of this ETag and plan means
    /// stale; one written no later than the manifest means current (the
    /// manifest is written after the outputs it lists). An output newer
    /// than the manifest (a write that stopped before its manifest), a
    /// time unknown, or a template without `{hash}`: the manifest's HEAD
    /// decides.
    async fn current(
        &mut self,
        entry: &ListEntry,
        manifest: &str,
        manifest_written: Option<SystemTime>,
    ) -> Result<Result<bool, StoreError>, StoreError> {
        let Some(etag) = entry.etag.as_deref() else {
            return Ok(Ok(false));
        };
        let Some((cursor, variant)) = &mut self.outputs else {
            return Ok(self.head_matches(manifest, entry).await);
        };
        let prefix = &self.selection.output_prefix;
        let keys: Vec<String> = self
            .selection
            .fingerprints
            .iter()
            .flat_map(|fp| {
                let hash = content_hash(etag, fp);
                OutputFormat::ALL.map(|f| {
                    self.plan
                        .keys()
                        .render(prefix, variant, &entry.key, &hash, f.extension())
                })
            })
            .collect();
        let furthest = keys.iter().max().expect("at least one format");
        let bound = cursor.bound(&entry.key);
        cursor.reach(furthest, &bound).await?;
        let newest_output = keys.iter().filter_map(|k| cursor.get(k)).max();
        match (newest_output, manifest_written) {
            (None, _) => Ok(Ok(false)),
            (Some(Some(output)), Some(manifest)) if output <= manifest => Ok(Ok(true)),
            _ => Ok(self.head_matches(manifest, entry).await),
        }
    }

    /// Whether the output object `key` (a manifest or a failure record)
    /// was made from `entry`'s ETag with one of the plans.
    async fn head_matches(&self, key: &str, entry: &ListEntry) -> Result<bool, StoreError> {
        Requests::add(&self.requests.head);
        let info = self.store.head(&self.selection.output_bucket, key).await?;
        Ok(info.is_some_and(|info| self.made_from(&info, entry.etag.as_deref())))
    }

    fn made_from(&self, info: &ObjectInfo, etag: Option<&str>) -> bool {
        let meta = |k: &str| info.metadata.get(k).map(String::as_str);
        etag.is_some()
            && meta(META_SOURCE_ETAG) == etag
            && meta(META_PLAN).is_some_and(|p| self.selection.fingerprints.iter().any(|f| f == p))
    }
}
