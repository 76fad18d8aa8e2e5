//! The gallery of `mediaflow dev`: a web page served by the dev server on
//! its own port (a [`Site`] beside the S3 protocol), that shows what the
//! pipeline made and takes uploads by drag and drop.
//!
//! | Path | What |
//! |---|---|
//! | `/_gallery/` | the page (HTML, CSS and JavaScript in this binary; no network beyond this server) |
//! | `/_gallery/api/state` | the processed sources (their manifests, newest first) and the dead letters |
//! | `/_gallery/api/upload?key=K` | `POST`: the body becomes `s3://uploads/K` through the S3 API |
//! | `/_media/KEY` | the output bucket's objects, read-only: the public base URL of dev's manifests |
//!
//! An upload is a signed `PutObject` to this same server, so it takes the
//! path every S3 upload takes (key checks, the observer, the pipeline).
//! The server hands this module only requests from its own origin (or
//! none) addressed to its own host ([`mediaflow_s3_local::Site`]).

use crate::dev::{DEAD_LETTER_FILE, MEDIA, UPLOADS};
use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG};
use hyper::{Method, StatusCode};
use mediaflow_engine::manifest::MANIFEST_VERSION;
use mediaflow_s3_local::{Site, SiteRequest, SiteResponse};
use mediaflow_store::{ObjectStore, PutOptions, StoreError};
use mediaflow_store_s3::S3Store;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

/// Where the page is.
pub const GALLERY_PATH: &str = "/_gallery/";
/// Where the output bucket is served: dev's public base URL is the
/// server's address and this.
pub const MEDIA_PATH: &str = "/_media";
/// Manifests under this prefix of the output bucket.
const MANIFESTS: &str = "manifest/";
/// The newest this many sources are shown.
const MAX_SOURCES: usize = 500;
/// The newest this many dead letters are shown.
const MAX_FAILURES: usize = 200;
/// A manifest larger than this is not shown (they are a few KB).
const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Uploads through the page are held in memory: larger files go through
/// the S3 API (`aws s3 cp`).
const MAX_PAGE_UPLOAD: u64 = 1 << 30;
/// `/_media` reads an object whole (then serves the range asked for): at
/// most this large, at most [`MEDIA_AT_ONCE`] at a time.
const MAX_MEDIA_BYTES: u64 = 512 << 20;
const MEDIA_AT_ONCE: usize = 4;
/// The listing behind the page stops after this many manifests (pages of
/// 1,000), so a huge bucket costs a bounded time per poll.
const MAX_LISTED: usize = 10_000;
/// Only the end of the dead-letter file is read.
const DEAD_LETTER_TAIL: u64 = 1 << 20;

const INDEX_HTML: &str = include_str!("gallery/index.html");
const APP_JS: &str = include_str!("gallery/app.js");
const STYLE_CSS: &str = include_str!("gallery/style.css");

/// The page's policy: its own scripts, styles, images and media only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The outputs are images, videos and JSON made by the pipeline; were one
/// ever opened as a page, it could run nothing.
const MEDIA_CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox";

/// The gallery of one dev server.
pub struct Gallery {
    /// Signed requests to the server itself (set once it listens).
    store: std::sync::OnceLock<S3Store>,
    dead_letter: PathBuf,
    max_upload: u64,
    /// Parsed manifests by key, with the ETag they were read at.
    manifests: tokio::sync::Mutex<HashMap<String, (Option<String>, Value)>>,
    /// What became of the latest upload events, oldest first, numbered.
    recent: std::sync::Mutex<(u64, std::collections::VecDeque<Value>)>,
    /// Bounds the `/_media` reads in flight.
    media_slots: tokio::sync::Semaphore,
}

/// The last this many upload events are kept for the page.
const MAX_RECENT: usize = 200;

impl Gallery {
    /// The gallery of the dev server whose data directory is `data`;
    /// uploads through the page are refused over `max_input_bytes` (the
    /// largest source the plans accept). It answers once [`Gallery::connect`]
    /// has given it the server's client.
    pub fn new(data: &std::path::Path, max_input_bytes: u64) -> Gallery {
        Gallery {
            store: std::sync::OnceLock::new(),
            dead_letter: data.join(DEAD_LETTER_FILE),
            max_upload: max_input_bytes.min(MAX_PAGE_UPLOAD),
            manifests: tokio::sync::Mutex::new(HashMap::new()),
            recent: std::sync::Mutex::new((0, std::collections::VecDeque::new())),
            media_slots: tokio::sync::Semaphore::new(MEDIA_AT_ONCE),
        }
    }

    /// Records what became of an upload event of `key`: `outcome` is
    /// `processed`, `skipped`, `failed`, `removed`, `forwarded` or `sent`
    /// (to a function), `message` the line dev printed.
    pub fn record(&self, key: &str, outcome: &str, message: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.0 += 1;
        let entry = json!({
            "seq": recent.0,
            "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            "key": key,
            "outcome": outcome,
            "message": message,
        });
        recent.1.push_back(entry);
        if recent.1.len() > MAX_RECENT {
            recent.1.pop_front();
        }
    }

    /// Gives the gallery the client that signs requests to its server.
    pub fn connect(&self, store: S3Store) {
        let _ = self.store.set(store);
    }

    fn store(&self) -> Result<&S3Store, StoreError> {
        self.store
            .get()
            .ok_or_else(|| StoreError::Transient("the server is starting".into()))
    }

    /// The processed sources, newest manifest first, and the dead letters.
    async fn state(&self) -> Result<Value, StoreError> {
        let store = self.store()?;
        let mut entries = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = store.list(MEDIA, MANIFESTS, token.as_deref(), 1000).await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) if entries.len() < MAX_LISTED => token = Some(next),
                _ => break,
            }
        }
        entries.sort_by(|a, b| {
            b.last_modified
                .cmp(&a.last_modified)
                .then(a.key.cmp(&b.key))
        });
        entries.truncate(MAX_SOURCES);
        let mut cache = self.manifests.lock().await;
        let mut sources = Vec::with_capacity(entries.len());
        for e in &entries {
            let fresh = cache.get(&e.key).is_some_and(|(etag, _)| *etag == e.etag);
            if !fresh {
                let manifest = match store.get(MEDIA, &e.key, MAX_MANIFEST_BYTES).await {
                    Ok(o) => serde_json::from_slice(&o.body)
                        .unwrap_or_else(|err| json!({"error": format!("not a manifest: {err}")})),
                    // Replaced or removed since the listing: the next poll shows it.
                    Err(StoreError::NotFound(_)) => continue,
                    Err(err) => return Err(err),
                };
                cache.insert(e.key.clone(), (e.etag.clone(), manifest));
            }
            let Some(key) = e
                .key
                .strip_prefix(MANIFESTS)
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            sources.push(json!({
                "key": key,
                "modified_ms": e.last_modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as u64),
                "manifest": cache[&e.key].1.clone(),
            }));
        }
        cache.retain(|k, _| entries.iter().any(|e| e.key == *k));
        Ok(json!({
            "manifest_version": MANIFEST_VERSION,
            "uploads_bucket": UPLOADS,
            "media_bucket": MEDIA,
            "max_upload_bytes": self.max_upload,
            "sources": sources,
            "failures": self.failures().await,
            "recent": self.recent.lock().unwrap_or_else(|e| e.into_inner()).1.clone(),
        }))
    }

    /// The dead letters, newest first (a line that is not JSON is shown as
    /// it is).
    async fn failures(&self) -> Vec<Value> {
        let text = match read_tail(&self.dead_letter, DEAD_LETTER_TAIL).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                return vec![json!({
                    "key": self.dead_letter.display().to_string(),
                    "error": format!("cannot read the dead-letter file: {e}"),
                })]
            }
        };
        text.lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(MAX_FAILURES)
            .map(|line| match serde_json::from_str::<Value>(line) {
                Ok(v) => json!({
                    "time": v["time"],
                    "bucket": v["bucket"],
                    "key": v["key"],
                    "error": v["error"],
                    "retryable": v["retryable"],
                }),
                Err(_) => json!({"key": null, "error": line}),
            })
            .collect()
    }

    async fn upload(&self, req: &SiteRequest) -> SiteResponse {
        let key = match query_key(req.query.as_deref()) {
            Ok(k) => k,
            Err(why) => return json_error(StatusCode::BAD_REQUEST, why),
        };
        let content_type = req
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty() && *t != "application/octet-stream")
            .map(str::to_string);
        let options = PutOptions {
            content_type,
            ..PutOptions::default()
        };
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        match store.put(UPLOADS, &key, req.body.clone(), &options).await {
            Ok(etag) => {
                tracing::info!(key = %mediaflow_store::escape_key(&key), bytes = req.body.len(), "gallery: uploaded");
                respond(
                    StatusCode::CREATED,
                    "application/json",
                    json!({"bucket": UPLOADS, "key": key, "etag": etag}).to_string(),
                )
            }
            Err(e) => json_error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }

    async fn media(&self, req: &SiteRequest, encoded: &str) -> SiteResponse {
        let key = match percent_encoding::percent_decode_str(encoded).decode_utf8() {
            Ok(k) if !k.is_empty() => k.into_owned(),
            _ => return not_found(),
        };
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let Ok(_slot) = self.media_slots.acquire().await else {
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
        };
        match store.get(MEDIA, &key, MAX_MEDIA_BYTES).await {
            Ok(object) => {
                let content_type = object
                    .info
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_string());
                let range = req
                    .headers
                    .get(hyper::header::RANGE)
                    .and_then(|v| v.to_str().ok());
                let total = object.body.len() as u64;
                let (status, body, content_range) = match range.map(|r| byte_range(r, total)) {
                    None => (StatusCode::OK, object.body, None),
                    Some(Some((start, end))) => (
                        StatusCode::PARTIAL_CONTENT,
                        object.body.slice(start as usize..=end as usize),
                        Some(format!("bytes {start}-{end}/{total}")),
                    ),
                    Some(None) => {
                        let mut resp = respond(StatusCode::RANGE_NOT_SATISFIABLE, "text/plain", "");
                        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                            resp.headers_mut().insert(hyper::header::CONTENT_RANGE, v);
                        }
                        return resp;
                    }
                };
                let body = if req.method == Method::HEAD { Bytes::new() } else { body };
                let mut resp = respond(status, &content_type, body);
                let h = resp.headers_mut();
                h.insert(hyper::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    h.insert(hyper::header::CONTENT_RANGE, v);
                }
                if let Some(v) = object
                    .info
                    .cache_control
                    .and_then(|c| HeaderValue::from_str(&c).ok())
                {
                    h.insert(CACHE_CONTROL, v);
                }
                if let Some(v) = object
                    .info
                    .etag
                    .and_then(|e| HeaderValue::from_str(&format!("\"{e}\"")).ok())
                {
                    h.insert(ETAG, v);
                }
                h.insert(
                    "content-security-policy",
                    HeaderValue::from_static(MEDIA_CSP),
                );
                resp
            }
            // A key the server refuses (dot segments, control characters)
            // names no object either; the details stay in the log.
            Err(StoreError::NotFound(_) | StoreError::Other(_)) => not_found(),
            Err(StoreError::TooLarge { size, .. }) => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{size} bytes: the gallery serves outputs up to {MAX_MEDIA_BYTES} bytes; use the S3 API"),
            ),
            Err(e) => {
                tracing::warn!(key = %mediaflow_store::escape_key(&key), "gallery: reading an output failed: {e}");
                json_error(StatusCode::BAD_GATEWAY, "reading the output failed (see the server's log)".into())
            }
        }
    }
}

/// The `key` query parameter, form-decoded; `Err` says why there is none.
fn query_key(query: Option<&str>) -> Result<String, String> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.strip_prefix("key="))
        .collect::<Vec<_>>();
    match raw.as_slice() {
        [one] => {
            let plus_decoded = one.replace('+', " ");
            match percent_encoding::percent_decode_str(&plus_decoded).decode_utf8() {
                Ok(k) if !k.is_empty() => Ok(k.into_owned()),
                Ok(_) => Err("give the key: ?key=NAME".into()),
                Err(_) => Err("the key is not UTF-8 once decoded".into()),
            }
        }
        [] => Err("give the key: ?key=NAME".into()),
        _ => Err("give the key once".into()),
    }
}

/// The inclusive byte range of a `Range: bytes=…` header of one range
/// over `total` bytes; `None` when it cannot be satisfied (or is not one
/// range of bytes).
fn byte_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || total == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (total.saturating_sub(n), total - 1)
        }
        (s, "") => (s.parse().ok()?, total - 1),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(total - 1)),
    };
    (start <= end && start < total).then_some((start, end))
}

/// The last `max` bytes of the file at `path`, from the first line that
/// starts within them.
async fn read_tail(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let start = len.saturating_sub(max);
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(match (start > 0, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_string(),
        _ => text,
    })
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> SiteResponse {
    let mut resp = hyper::Response::new(body.into());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

fn page(content_type: &str, body: &'static str) -> SiteResponse {
    let mut resp = respond(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    );
    let h = resp.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn json_error(status: StatusCode, message: String) -> SiteResponse {
    respond(
        status,
        "application/json",
        json!({ "error": message }).to_string(),
    )
}

fn not_found() -> SiteResponse {
    json_error(StatusCode::NOT_FOUND, "no such object".into())
}

#[async_trait::async_trait]
impl Site for Gallery {
    fn max_body(&self, method: &Method, path: &str) -> u64 {
        if method == Method::POST && path == "/_gallery/api/upload" {
            self.max_upload
        } else {
            0
        }
    }

    async fn handle(&self, req: SiteRequest) -> SiteResponse {
        // A page of another site (not another port of this machine: that
        // is the same site) may embed nothing of this and trigger no work
        // (browsers say so in Sec-Fetch-Site).
        if req
            .headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
        {
            return json_error(
                StatusCode::FORBIDDEN,
                "the gallery answers pages of this machine only".into(),
            );
        }
        let path = req.path.as_str();
        match (&req.method, path) {
            (&Method::GET, "/_gallery") => {
                let mut resp = respond(StatusCode::MOVED_PERMANENTLY, "text/plain", "");
                resp.headers_mut()
                    .insert("location", HeaderValue::from_static(GALLERY_PATH));
                resp
            }
            (&Method::GET, "/_gallery/") => page("text/html; charset=utf-8", INDEX_HTML),
            (&Method::GET, "/_gallery/app.js") => page("text/javascript; charset=utf-8", APP_JS),
            (&Method::GET, "/_gallery/style.css") => page("text/css; charset=utf-8", STYLE_CSS),
            (&Method::GET, "/_gallery/api/state") => match self.state().await {
                Ok(state) => {
                    let mut resp = respond(StatusCode::OK, "application/json", state.to_string());
                    resp.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    resp
                }
                Err(e) => json_error(StatusCode::BAD_GATEWAY, e.to_string()),
            },
            (&Method::POST, "/_gallery/api/upload") => self.upload(&req).await,
            (&Method::GET | &Method::HEAD, p) if p.starts_with("/_media/") => {
                self.media(&req, &p["/_media/".len()..]).await
            }
            _ => not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_keys_are_read_strictly() {
        assert_eq!(byte_range("bytes=0-1", 10), Some((0, 1)));
        assert_eq!(byte_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(byte_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(byte_range("bytes=8-100", 10), Some((8, 9)));
        assert_eq!(byte_range("bytes=10-", 10), None);
        assert_eq!(byte_range("bytes=3-2", 10), None);
        assert_eq!(byte_range("bytes=0-1,4-5", 10), None);
        assert_eq!(byte_range("items=0-1", 10), None);
        assert_eq!(query_key(Some("key=a%20b%2Bc+d")).unwrap(), "a b+c d");
        assert!(
            query_key(Some("key=%C0%AE%C0%AE%2Fx")).is_err(),
            "not UTF-8"
        );
        assert!(query_key(Some("key=a&key=b")).is_err(), "twice");
        assert!(query_key(Some("key=")).is_err());
        assert!(query_key(None).is_err());
    }
}
