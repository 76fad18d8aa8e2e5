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
                Some(next) => token = Some(next),
                None => break,
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
        let text = match tokio::fs::read_to_string(&self.dead_letter).await {
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
        let key = req.query.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "key")
                .map(|(_, v)| v.into_owned())
        });
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return json_error(StatusCode::BAD_REQUEST, "give the key: ?key=NAME".into());
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

    async fn media(&self, encoded: &str) -> SiteResponse {
        let key = match percent_encoding::percent_decode_str(encoded).decode_utf8() {
            Ok(k) if !k.is_empty() => k.into_owned(),
            _ => return not_found(),
        };
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        match store.get(MEDIA, &key, u64::MAX).await {
            Ok(object) => {
                let content_type = object
                    .info
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_string());
                let mut resp = respond(StatusCode::OK, &content_type, object.body);
                let h = resp.headers_mut();
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
            Err(StoreError::NotFound(_)) => not_found(),
            Err(e) => json_error(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
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
    fn max_body(&self) -> u64 {
        self.max_upload
    }

    async fn handle(&self, req: SiteRequest) -> SiteResponse {
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
            (&Method::GET, p) if p.starts_with("/_media/") => {
                self.media(&p["/_media/".len()..]).await
            }
            _ => not_found(),
        }
    }
}
