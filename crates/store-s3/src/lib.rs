//! The S3 [`ObjectStore`], on `aws-sdk-s3`, and the SQS [`MessageQueue`]
//! ([`SqsQueue`], on `aws-sdk-sqs`). This is the only crate of mediaflow
//! that links the AWS SDK.
//!
//! Build one [`S3Store`] at cold start and share it: the SDK client keeps a
//! connection pool and caches credentials.
//!
//! - [`S3Store::from_env`] reads the standard AWS configuration (region,
//!   credentials, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`), with
//!   path-style addressing when the caller asks for it (the functions do
//!   when an endpoint override is set, as S3-compatible servers rarely do
//!   virtual hosts, unless `MEDIAFLOW_S3_PATH_STYLE` says otherwise; see
//!   `mediaflow-function`'s settings). mediaflow's own variables are read
//!   by the caller, never here.
//! - [`S3Store::with_static_credentials`] targets a given endpoint with fixed
//!   keys, for local servers and tests.
//!
//! GETs check `Content-Length` against the caller's limit before reading the
//! body, then stream it into a buffer that may never grow past the limit.
//! Errors map to [`StoreError`]: 404/NoSuchKey/NoSuchBucket → `NotFound`,
//! 403/AccessDenied → `Denied`, throttling/timeouts/5xx/connection failures →
//! `Transient`, the rest → `Other`. [`SqsQueue`]'s errors map the same way
//! (a missing queue is `NotFound`).
//!
//! [`MessageQueue`]: mediaflow_store::MessageQueue

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use mediaflow_store::{
    check_metadata, form_decode_key, local_file_error, unquote_etag, ListEntry, ListPage, Object,
    ObjectInfo, ObjectStore, PutOptions, Result, StoreError, MAX_LIST_PAGE,
};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

mod http;
pub use http::https_client;
mod sqs;
pub use sqs::{SqsQueue, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};

/// S3's `Last-Modified` as a `SystemTime` (`None` if out of range).
fn system_time(t: aws_sdk_s3::primitives::DateTime) -> Option<std::time::SystemTime> {
    std::time::SystemTime::try_from(t).ok()
}

/// An [`ObjectStore`] backed by Amazon S3 or an S3-compatible server.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
}

impl S3Store {
    /// Builds the client from the standard AWS environment (see the crate
    /// docs), with path-style addressing if `force_path_style`. Missing
    /// credentials show up on the first request, as with any SDK client.
    pub async fn from_env(force_path_style: bool) -> S3Store {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http::https_client())
            .load()
            .await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(force_path_style)
            .build();
        tracing::debug!(path_style = force_path_style, "S3 client built");
        S3Store {
            client: Client::from_conf(config),
        }
    }

    /// A client for `endpoint` (e.g. `http://127.0.0.1:9000`) with fixed
    /// credentials and path-style addressing.
    pub fn with_static_credentials(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> S3Store {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http::https_client())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "mediaflow-static",
            ))
            .force_path_style(true)
            .build();
        S3Store {
            client: Client::from_conf(config),
        }
    }

    /// One ListObjectsV2 page with `encoding-type=url`, so that keys XML
    /// cannot carry (control characters) arrive intact; keys are decoded
    /// here, and a key that does not decode fails the page.
    async fn list_v2(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .set_continuation_token(continuation.map(str::to_string))
            .set_start_after(start_after.map(str::to_string))
            .max_keys(limit as i32)
            .send()
            .await
            .map_err(|e| map_err("LIST", bucket, prefix, e))?;
        let mut entries = Vec::new();
        for o in out.contents.unwrap_or_default() {
            let Some(raw) = o.key else { continue };
            let key = form_decode_key(&raw)
                .map_err(|e| StoreError::Other(format!("listing s3://{bucket}/{prefix}: {e}")))?;
            entries.push(ListEntry {
                size: o.size.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                etag: unquote_etag(o.e_tag),
                last_modified: o.last_modified.and_then(system_time),
                key,
            });
        }
        let next = if out.is_truncated == Some(true) {
            out.next_continuation_token
        } else {
            None
        };
        Ok(ListPage { entries, next })
    }

    /// The underlying SDK client, for operations outside [`ObjectStore`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Uploads `parts` as one multipart upload (S3 wants every part but the
    /// last to be at least 5 MiB; local servers may accept smaller ones).
    /// Aborts the upload if a step fails. Returns the ETag (`…-N`).
    pub async fn put_multipart(
        &self,
        bucket: &str,
        key: &str,
        parts: Vec<Bytes>,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        check_metadata(&options.metadata)?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_content_type(options.content_type.clone())
            .set_cache_control(options.cache_control.clone())
            .set_metadata(user_metadata(&options.metadata))
            .send()
            .await
            .map_err(|e| map_err("CreateMultipartUpload", bucket, key, e))?;
        let upload_id = created.upload_id.unwrap_or_default();
        let mut completed = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            let number = i as i32 + 1;
            let sent = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .content_length(part.len() as i64)
                .body(ByteStream::from(part))
                .send()
                .await;
            match sent {
                Ok(out) => completed.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .build(),
                ),
                Err(e) => {
                    let err = map_err("UploadPart", bucket, key, e);
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .send()
                        .await;
                    return Err(err);
                }
            }
        }
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| map_err("CompleteMultipartUpload", bucket, key, e))?;
        Ok(unquote_etag(out.e_tag))
    }
}

fn metadata_map(m: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// What a service's error codes mean to mediaflow; any other code is
/// classified by the HTTP status alone.
struct ErrorCodes {
    not_found: &'static [&'static str],
    denied: &'static [&'static str],
    transient: &'static [&'static str],
}

impl ErrorCodes {
    /// The [`StoreError`] for a service error with `code` and HTTP
    /// `status` (0 when unknown): `what` failed, `detail` says how.
    fn store_error(&self, code: &str, status: u16, what: String, detail: &str) -> StoreError {
        if self.not_found.contains(&code) || status == 404 {
            StoreError::NotFound(what)
        } else if self.denied.contains(&code) || status == 403 {
            StoreError::Denied(format!("{what}: {detail}"))
        } else if self.transient.contains(&code) || status == 429 || status >= 500 {
            StoreError::Transient(format!("{what}: {detail}"))
        } else {
            StoreError::Other(format!("{what}: {detail}"))
        }
    }

    /// Maps an SDK error to a [`StoreError`]: timeouts and failures to
    /// send or to read the response are transient; service errors go by
    /// their code and status.
    fn map<E>(&self, what: String, err: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => StoreError::Transient(format!("{what}: {detail}")),
            SdkError::ServiceError(_) => {
                let code = err.code().unwrap_or_default();
                let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
                self.store_error(code, status, what, &detail)
            }
            _ => StoreError::Other(format!("{what}: {detail}")),
        }
    }
}

/// S3's error codes.
const S3_CODES: ErrorCodes = ErrorCodes {
    not_found: &["NoSuchKey", "NoSuchBucket", "NotFound"],
    denied: &[
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    ],
    transient: &[
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
    ],
};

/// Maps an S3 SDK error to a [`StoreError`], naming the operation and object.
fn map_err<E>(op: &str, bucket: &str, key: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let what = format!("{op} {}", mediaflow_store::object_url(bucket, key));
    S3_CODES.map(what, err)
}

fn user_metadata(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

impl S3Store {
    /// Starts a GET: the object's info, its declared length (already
    /// checked against `max_bytes`) and the unread body.
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<(ObjectInfo, Option<u64>, ByteStream)> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err("GET", bucket, key, e))?;
        let declared = out.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(size) = declared {
            if size > max_bytes {
                // Dropping `out` closes the body without reading it.
                return Err(StoreError::TooLarge {
                    size,
                    limit: max_bytes,
                });
            }
        }
        let info = ObjectInfo {
            key: key.to_string(),
            last_modified: out.last_modified.and_then(system_time),
            size: declared.unwrap_or(0),
            etag: unquote_etag(out.e_tag),
            version_id: out.version_id,
            content_type: out.content_type,
            cache_control: out.cache_control,
            metadata: metadata_map(out.metadata),
        };
        Ok((info, declared, out.body))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object> {
        let (info, declared, mut body) = self.open(bucket, key, max_bytes).await?;
        let capacity = declared.unwrap_or(0).min(max_bytes) as usize;
        let mut buf = BytesMut::with_capacity(capacity);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                StoreError::Transient(format!(
                    "GET {}: reading the body: {e}",
                    mediaflow_store::object_url(bucket, key)
                ))
            })?;
            let total = buf.len() as u64 + chunk.len() as u64;
            if total > max_bytes {
                return Err(StoreError::TooLarge {
                    size: declared.unwrap_or(total),
                    limit: max_bytes,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        if let Some(size) = declared {
            if buf.len() as u64 != size {
                return Err(StoreError::Transient(format!(
                    "GET {}: body ended after {} of {size} bytes",
                    mediaflow_store::object_url(bucket, key),
                    buf.len()
                )));
            }
        }
        let body: Bytes = buf.freeze();
        Ok(Object {
            info: ObjectInfo {
                size: body.len() as u64,
                ..info
            },
            body,
        })
    }

    async fn get_to_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        max_bytes: u64,
    ) -> Result<ObjectInfo> {
        use tokio::io::AsyncWriteExt as _;
        let (info, declared, mut body) = self.open(bucket, key, max_bytes).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| local_file_error("creating", path, e))?;
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                StoreError::Transient(format!(
                    "GET {}: reading the body: {e}",
                    mediaflow_store::object_url(bucket, key)
                ))
            })?;
            total += chunk.len() as u64;
            if total > max_bytes {
                return Err(StoreError::TooLarge {
                    size: declared.unwrap_or(total),
                    limit: max_bytes,
                });
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| local_file_error("writing", path, e))?;
        }
        file.flush()
            .await
            .map_err(|e| local_file_error("writing", path, e))?;
        if let Some(size) = declared {
            if total != size {
                return Err(StoreError::Transient(format!(
                    "GET {}: body ended after {total} of {size} bytes",
                    mediaflow_store::object_url(bucket, key)
                )));
            }
        }
        Ok(ObjectInfo {
            size: total,
            ..info
        })
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        check_metadata(&options.metadata)?;
        let body = ByteStream::from_path(path).await.map_err(|e| {
            StoreError::Transient(format!("reading the local file {}: {e}", path.display()))
        })?;
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .set_content_type(options.content_type.clone())
            .set_cache_control(options.cache_control.clone())
            .set_metadata(user_metadata(&options.metadata))
            .send()
            .await
            .map_err(|e| map_err("PUT", bucket, key, e))?;
        Ok(unquote_etag(out.e_tag))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                last_modified: out.last_modified.and_then(system_time),
                size: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                etag: unquote_etag(out.e_tag),
                version_id: out.version_id,
                content_type: out.content_type,
                cache_control: out.cache_control,
                metadata: metadata_map(out.metadata),
            })),
            Err(e) => match map_err("HEAD", bucket, key, e) {
                StoreError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<Option<String>> {
        check_metadata(&options.metadata)?;
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .set_content_type(options.content_type.clone())
            .set_cache_control(options.cache_control.clone())
            .set_metadata(user_metadata(&options.metadata))
            .send()
            .await
            .map_err(|e| map_err("PUT", bucket, key, e))?;
        Ok(unquote_etag(out.e_tag))
    }

    async fn get_head(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes> {
        let range = format!("bytes=0-{}", len.max(1) - 1);
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(range)
            .send()
            .await
        {
            Ok(out) => out,
            // An empty object has no byte 0: S3 answers 416.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(416) => {
                return Ok(Bytes::new())
            }
            Err(e) => return Err(map_err("GET", bucket, key, e)),
        };
        let body = out.body.collect().await.map_err(|e| {
            StoreError::Transient(format!(
                "GET {}: reading the body: {e}",
                mediaflow_store::object_url(bucket, key)
            ))
        })?;
        let mut body = body.into_bytes();
        body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(body)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        match self
            .client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match map_err("DELETE", bucket, key, e) {
                // S3 answers 204 for a missing key; a store that says 404 means the same.
                StoreError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        self.list_v2(bucket, prefix, continuation, None, limit)
            .await
    }

    async fn list_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<ListPage> {
        self.list_v2(bucket, prefix, None, Some(start_after), limit)
            .await
    }
}
