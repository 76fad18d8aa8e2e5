//! An S3-compatible server on loopback, for tests and `mediaflow dev`.
//!
//! [`LocalS3`] serves the `s3s` protocol layer over an `s3s-fs` store (one
//! directory per bucket under a root), with SigV4 authentication using
//! [`ACCESS_KEY`] / [`SECRET_KEY`] and path-style addressing
//! (`http://127.0.0.1:PORT/bucket/key`). Any S3 implementation can be served
//! with [`LocalS3::serve`], so a caller can wrap `s3s-fs` to observe uploads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mediaflow_s3_local::Error> {
//! let dir = std::path::Path::new("/tmp/s3");
//! let server = mediaflow_s3_local::LocalS3::start(dir, "127.0.0.1:0".parse().unwrap(), &["uploads"]).await?;
//! println!("endpoint: {}", server.endpoint());
//! server.stop().await;
//! # Ok(()) }
//! ```

mod faults;
mod service;

pub use faults::{Action, Decision, FaultCounts, FaultInjector, FaultService, Faults, FaultsError};
pub use service::{LocalService, Upload, UploadObserver};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use mediaflow_store::valid_bucket_name;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The access key the local server accepts (documented for `mediaflow dev`).
pub const ACCESS_KEY: &str = "mediaflow";
/// The secret key the local server accepts.
pub const SECRET_KEY: &str = "mediaflow-local-secret";
/// The region clients should sign for (any region is accepted).
pub const REGION: &str = "us-east-1";

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
}

/// A running server. Dropping it without [`LocalS3::stop`] aborts the server task.
#[derive(Debug)]
pub struct LocalS3 {
    addr: SocketAddr,
    root: PathBuf,
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
    /// creating `buckets` in it. Existing data is kept.
    pub async fn start(root: &Path, addr: SocketAddr, buckets: &[&str]) -> Result<LocalS3, Error> {
        Self::start_observed(root, addr, buckets, None).await
    }

    /// Like [`LocalS3::start`], and tells `observer` about every completed
    /// upload (PutObject, CompleteMultipartUpload, CopyObject) after its
    /// response is built.
    pub async fn start_observed(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        observer: Option<std::sync::Arc<dyn UploadObserver>>,
    ) -> Result<LocalS3, Error> {
        Self::start_with_faults(root, addr, buckets, observer, None).await
    }

    /// Like [`LocalS3::start_observed`], with `faults` deciding which
    /// requests are refused, dropped or delayed (see [`Faults`]).
    pub async fn start_with_faults(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        observer: Option<std::sync::Arc<dyn UploadObserver>>,
        faults: Option<std::sync::Arc<FaultInjector>>,
    ) -> Result<LocalS3, Error> {
        create_buckets(root, buckets)?;
        let service = LocalService::new(root, observer)?;
        Self::serve_with_faults(service, root, addr, faults).await
    }

    /// Serves any S3 implementation (e.g. `s3s-fs` wrapped to observe
    /// uploads) with the local credentials, path-style.
    pub async fn serve(s3: impl s3s::S3, root: &Path, addr: SocketAddr) -> Result<LocalS3, Error> {
        Self::serve_with_faults(s3, root, addr, None).await
    }

    /// [`LocalS3::serve`] with fault injection (none when `faults` is `None`).
    pub async fn serve_with_faults(
        s3: impl s3s::S3,
        root: &Path,
        addr: SocketAddr,
        faults: Option<std::sync::Arc<FaultInjector>>,
    ) -> Result<LocalS3, Error> {
        let service = {
            let mut b = S3ServiceBuilder::new(s3);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let (tx, mut rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
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
