//! An S3-compatible server on loopback, for tests and `mediaflow dev`.
//!
//! [`LocalS3`] serves the `s3s` protocol layer over an `s3s-fs` store (one
//! directory per bucket under a root), with SigV4 authentication and
//! path-style addressing (`http://127.0.0.1:PORT/bucket/key`). Any S3
//! implementation can be served with [`LocalS3::serve`]; [`LocalService`]
//! is `s3s-fs` with S3's bucket and key rules, S3's listing encoding, and
//! an [`UploadObserver`] told of every upload and delete.
//!
//! There is no fixed secret: [`Credentials::random`] makes one per server
//! (tests), [`Credentials::load_or_create`] keeps one per data directory in
//! a file only its owner can read (`mediaflow dev`). A browser page on
//! another site could otherwise sign a form POST with a known secret and
//! upload through the user's browser; requests that carry an `Origin`
//! other than the server's own are refused as well (`AccessDenied`), before
//! their body is read. The AWS CLI and SDKs send no `Origin`.
//!
//! A [`Site`] can be served beside the protocol on the same port: paths
//! beginning `/_` (no bucket name can) go to it, after the same origin
//! check and a check that the `Host` is this server's own (`mediaflow
//! dev`'s gallery).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mediaflow_s3_local::Error> {
//! let dir = std::path::Path::new("/tmp/s3");
//! let server = mediaflow_s3_local::LocalS3::start(dir, "127.0.0.1:0".parse().unwrap(), &["uploads"]).await?;
//! println!("endpoint: {}, secret key: {}", server.endpoint(), server.credentials().secret_key);
//! server.stop().await;
//! # Ok(()) }
//! ```

mod faults;
mod service;

pub use faults::{Action, Decision, FaultCounts, FaultInjector, FaultService, Faults, FaultsError};
pub use service::{check_key, LocalService, Upload, UploadObserver, OBJECT_REMOVED_DELETE};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, HOST, ORIGIN};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use mediaflow_store::valid_bucket_name;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The access key the local server accepts (not a secret; the secret key is).
pub const ACCESS_KEY: &str = "mediaflow";
/// A request's headers must arrive within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The region clients should sign for (any region is accepted).
pub const REGION: &str = "us-east-1";

/// The key pair the server accepts. `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// [`ACCESS_KEY`] with a fresh secret: 40 hex digits (160 bits) from
    /// the operating system's random source.
    pub fn random() -> Result<Credentials, Error> {
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Credentials {
            access_key: ACCESS_KEY.to_string(),
            secret_key: hex::encode(bytes),
        })
    }

    /// [`ACCESS_KEY`] with the secret kept in `path` (one line), which is
    /// created with a [random](Credentials::random) secret, readable by its
    /// owner only (0600), if it does not exist. The same data directory
    /// keeps the same secret across runs.
    pub fn load_or_create(path: &Path) -> Result<Credentials, Error> {
        let secret_error = |source| Error::Secret {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let secret = text.trim();
                if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::Secret {
                        path: path.to_path_buf(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "not a secret this server wrote (expected one line of at least 32 printable characters); delete it to make a new one",
                        ),
                    });
                }
                restrict_to_owner(path).map_err(secret_error)?;
                Ok(Credentials {
                    access_key: ACCESS_KEY.to_string(),
                    secret_key: secret.to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let credentials = Credentials::random()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let written = options.open(path).and_then(|mut f| {
                    use std::io::Write as _;
                    writeln!(f, "{}", credentials.secret_key)?;
                    f.sync_all()
                });
                match written {
                    Ok(()) => Ok(credentials),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Credentials::load_or_create(path)
                    }
                    Err(e) => Err(secret_error(e)),
                }
            }
            Err(e) => Err(secret_error(e)),
        }
    }
}

/// Makes `path` readable and writable by its owner only (a secret file
/// copied in with wider permissions is narrowed).
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid bucket name {0:?}: use 3-63 characters of a-z, 0-9, '.' and '-'")]
    BucketName(String),
    #[error("cannot open the object store at {}: {message}", path.display())]
    Store { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot make a secret key: {0}")]
    Random(String),
    #[error("secret key file {}: {source}", path.display())]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running server. Dropping it without [`LocalS3::stop`] aborts the server task.
#[derive(Debug)]
pub struct LocalS3 {
    addr: SocketAddr,
    root: PathBuf,
    credentials: Credentials,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Creates `root` and one directory per bucket (what `s3s-fs` treats as a bucket).
pub fn create_buckets(root: &Path, buckets: &[&str]) -> Result<(), Error> {
    for b in buckets {
        if !valid_bucket_name(b) {
            return Err(Error::BucketName((*b).to_string()));
        }
        let path = root.join(b);
        std::fs::create_dir_all(&path).map_err(|source| Error::DataDir { path, source })?;
    }
    Ok(())
}

/// The `s3s-fs` store over `root` (whose subdirectories are the buckets).
pub fn file_store(root: &Path) -> Result<s3s_fs::FileSystem, Error> {
    std::fs::create_dir_all(root).map_err(|source| Error::DataDir {
        path: root.to_path_buf(),
        source,
    })?;
    s3s_fs::FileSystem::new(root).map_err(|e| Error::Store {
        path: root.to_path_buf(),
        message: format!("{e:?}"),
    })
}

impl LocalS3 {
    /// Serves the directory `root` on `addr` (port 0 picks a free port), after
    /// creating `buckets` in it, with a [random](Credentials::random) secret
    /// ([`LocalS3::credentials`]). Existing data is kept.
    pub async fn start(root: &Path, addr: SocketAddr, buckets: &[&str]) -> Result<LocalS3, Error> {
        Self::start_observed(root, addr, buckets, None, Credentials::random()?).await
    }

    /// Like [`LocalS3::start`] with `credentials`, and tells `observer`
    /// about every completed upload (PutObject, POST form uploads,
    /// CompleteMultipartUpload, CopyObject) and delete (DeleteObject, each
    /// key a DeleteObjects batch deleted) after its response is built.
    pub async fn start_observed(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        observer: Option<std::sync::Arc<dyn UploadObserver>>,
        credentials: Credentials,
    ) -> Result<LocalS3, Error> {
        Self::start_with_faults(root, addr, buckets, observer, credentials, None, None).await
    }

    /// Like [`LocalS3::start_observed`], with `faults` deciding which
    /// requests are refused, dropped or delayed (see [`Faults`]), and
    /// `site` served beside the protocol (see [`Site`]).
    pub async fn start_with_faults(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        observer: Option<std::sync::Arc<dyn UploadObserver>>,
        credentials: Credentials,
        faults: Option<std::sync::Arc<FaultInjector>>,
        site: Option<Arc<dyn Site>>,
    ) -> Result<LocalS3, Error> {
        create_buckets(root, buckets)?;
        let service = LocalService::new(root, observer)?;
        Self::serve_with_faults(service, root, addr, credentials, faults, site).await
    }

    /// Serves any S3 implementation (e.g. `s3s-fs` wrapped to observe
    /// uploads) with `credentials`, path-style, refusing cross-origin
    /// browser requests.
    pub async fn serve(
        s3: impl s3s::S3,
        root: &Path,
        addr: SocketAddr,
        credentials: Credentials,
    ) -> Result<LocalS3, Error> {
        Self::serve_with_faults(s3, root, addr, credentials, None, None).await
    }

    /// [`LocalS3::serve`] with fault injection (none when `faults` is
    /// `None`) and a [`Site`] beside the protocol.
    pub async fn serve_with_faults(
        s3: impl s3s::S3,
        root: &Path,
        addr: SocketAddr,
        credentials: Credentials,
        faults: Option<std::sync::Arc<FaultInjector>>,
        site: Option<Arc<dyn Site>>,
    ) -> Result<LocalS3, Error> {
        let s3 = {
            let mut b = S3ServiceBuilder::new(s3);
            b.set_auth(SimpleAuth::from_single(
                credentials.access_key.as_str(),
                credentials.secret_key.as_str(),
            ));
            b.build()
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let service = SameOrigin::new(s3, addr, site);
        let (tx, mut rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut http = ConnBuilder::new(TokioExecutor::new());
            // A client that never finishes its headers must not hold a
            // connection for ever (slowloris).
            http.http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(e) => {
                            tracing::warn!(error = %e, "local S3: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = &mut rx => break,
                };
                let service = FaultService::new(service.clone(), faults.clone());
                let conn = http.serve_connection(TokioIo::new(socket), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            // Let in-flight requests finish, but never wait forever.
            let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        });
        tracing::debug!(%addr, root = %root.display(), "local S3 listening");
        Ok(LocalS3 {
            addr,
            root: root.to_path_buf(),
            credentials,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The data directory: one subdirectory per bucket.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key pair requests must be signed with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Stops accepting connections and waits (at most 5 s) for requests in flight.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The S3 service behind a check of the `Origin` header: browsers send one
/// with every cross-origin POST (a form upload from any web page) and with
/// every CORS request; the AWS CLI and SDKs send none. A request whose
/// `Origin` is not this server's own (`http://127.0.0.1:PORT` or
/// `http://localhost:PORT`) gets S3's `AccessDenied` before its body is read.
#[derive(Clone)]
struct SameOrigin {
    inner: S3Service,
    own: std::sync::Arc<[HeaderValue; 2]>,
    /// `127.0.0.1:PORT` and `localhost:PORT`.
    own_hosts: std::sync::Arc<[String; 2]>,
    site: Option<Arc<dyn Site>>,
}

impl SameOrigin {
    fn new(inner: S3Service, addr: SocketAddr, site: Option<Arc<dyn Site>>) -> SameOrigin {
        let port = addr.port();
        let own_hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        let own = own_hosts
            .clone()
            .map(|h| HeaderValue::from_str(&format!("http://{h}")).expect("ASCII"));
        SameOrigin {
            inner,
            own: std::sync::Arc::new(own),
            own_hosts: std::sync::Arc::new(own_hosts),
            site,
        }
    }

    /// Whether the request names this server as its host (`Host`, or the
    /// authority of an HTTP/2 request).
    fn own_host(&self, req: &hyper::Request<Incoming>) -> bool {
        let own = |h: &str| self.own_hosts.iter().any(|o| h.eq_ignore_ascii_case(o));
        let mut hosts = req.headers().get_all(HOST).iter();
        let header = match (hosts.next(), hosts.next()) {
            (Some(h), None) => Some(h.to_str().ok().filter(|h| own(h)).is_some()),
            (None, None) => None,
            _ => return false,
        };
        // An absolute-form target (or HTTP/2's :authority) names the host too.
        let authority = req.uri().authority().map(|a| own(a.as_str()));
        match (header, authority) {
            (Some(h), Some(a)) => h && a,
            (Some(ok), None) | (None, Some(ok)) => ok,
            (None, None) => false,
        }
    }
}

/// A request to a [`Site`], its body read.
#[derive(Debug)]
pub struct SiteRequest {
    pub method: hyper::Method,
    /// The path as sent (percent-encoded), beginning `/_`.
    pub path: String,
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: bytes::Bytes,
}

/// A [`Site`]'s answer.
pub type SiteResponse = hyper::Response<bytes::Bytes>;

/// Pages and files served beside the S3 protocol, on the same port, for
/// paths beginning `/_`. Requests reach it only from this server's own
/// origin (or none: a plain link or `<img>`) and with this server as their
/// `Host`, so neither another web site nor a DNS name rebound to
/// 127.0.0.1 can use it through a browser.
#[async_trait::async_trait]
pub trait Site: Send + Sync + 'static {
    /// The largest body a request with `method` to `path` may carry (0
    /// where none is expected): a larger one is answered `413` (when its
    /// length is declared, before it is read; else when the limit is
    /// passed), so no route buffers what it does not use.
    fn max_body(&self, method: &hyper::Method, path: &str) -> u64;
    async fn handle(&self, request: SiteRequest) -> SiteResponse;
}

fn plain_response(status: hyper::StatusCode, text: String) -> s3s::HttpResponse {
    let mut resp = hyper::Response::new(s3s::Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A body must arrive within this (slow senders hold a connection and
/// memory).
const SITE_BODY_TIMEOUT: Duration = Duration::from_secs(120);

async fn serve_site(site: Arc<dyn Site>, req: hyper::Request<Incoming>) -> s3s::HttpResponse {
    let limit = site.max_body(req.method(), req.uri().path());
    let too_large = || {
        plain_response(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over this server's limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let mut body = s3s::Body::from(body);
    let read = tokio::time::timeout(
        SITE_BODY_TIMEOUT,
        body.store_all_limited(usize::try_from(limit).unwrap_or(usize::MAX)),
    )
    .await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            return plain_response(
                hyper::StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    SITE_BODY_TIMEOUT.as_secs()
                ),
            )
        }
    };
    let request = SiteRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    site.handle(request).await.map(s3s::Body::from)
}

/// S3's error document, for a response this module builds itself.
fn s3_error_response(status: hyper::StatusCode, code: &str, message: &str) -> s3s::HttpResponse {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        escape(message)
    );
    let mut resp = hyper::Response::new(s3s::Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<s3s::HttpResponse, s3s::HttpError>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for SameOrigin {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = ResponseFuture;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        // Every Origin value must be this server's (a second one is no
        // browser's doing).
        let foreign = req
            .headers()
            .get_all(ORIGIN)
            .iter()
            .find(|o| !self.own.contains(o))
            .cloned();
        if let Some(origin) = foreign {
            let shown = String::from_utf8_lossy(origin.as_bytes())
                .escape_debug()
                .to_string();
            tracing::warn!(origin = %shown, method = %req.method(), "local S3: cross-origin request refused");
            let resp = s3_error_response(
                hyper::StatusCode::FORBIDDEN,
                "AccessDenied",
                &format!(
                    "cross-origin request from {shown} refused: the local S3 server accepts browser requests only from its own origin ({})",
                    String::from_utf8_lossy(self.own[0].as_bytes())
                ),
            );
            return Box::pin(std::future::ready(Ok(resp)));
        }
        if let Some(site) = &self.site {
            if req.uri().path().starts_with("/_") {
                if !self.own_host(&req) {
                    let resp = plain_response(
                        hyper::StatusCode::MISDIRECTED_REQUEST,
                        format!("this server answers only as {}", self.own_hosts[0]),
                    );
                    return Box::pin(std::future::ready(Ok(resp)));
                }
                let site = Arc::clone(site);
                return Box::pin(async move { Ok(serve_site(site, req).await) });
            }
        }
        // Objects are served with the type they were stored with: one
        // uploaded as text/html must not run as this origin (which the
        // gallery trusts), so no response is sniffed or run as a page.
        let response = hyper::service::Service::call(&self.inner, req);
        Box::pin(async move {
            let mut resp = response.await?;
            let h = resp.headers_mut();
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                "content-security-policy",
                HeaderValue::from_static("sandbox"),
            );
            Ok(resp)
        })
    }
}
