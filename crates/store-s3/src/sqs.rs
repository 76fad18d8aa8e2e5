//! [`SqsQueue`]: the [`MessageQueue`] on Amazon SQS (or an SQS-compatible
//! server), on `aws-sdk-sqs`.
//!
//! Build one at cold start and share it, as with [`crate::S3Store`].
//! [`SqsQueue::from_env`] reads the standard AWS configuration (region,
//! credentials, `AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`); the
//! queue is named by its URL, which the caller reads from its own setting.
//!
//! Errors map to [`StoreError`] as the S3 store's do: a missing queue →
//! `NotFound`, AccessDenied and refused credentials or KMS keys →
//! `Denied`, throttling/timeouts/5xx/connection failures → `Transient`,
//! the rest → `Other`.

use crate::ErrorCodes;
use async_trait::async_trait;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use mediaflow_store::{md5_etag, MessageQueue, Result, StoreError};

/// SendMessageBatch takes at most this many entries.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// The most message bytes [`SqsQueue`]'s `send_batch` puts in one
/// SendMessageBatch request: SQS's classic 256 KiB limit on a message,
/// and on a whole batch, which every SQS-compatible server honours.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// SQS's error codes: the awsQueryCompatible codes the SDK reports (from
/// the `x-amzn-query-error` header), and the JSON protocol's short names
/// for servers that do not send that header.
const SQS_CODES: ErrorCodes = ErrorCodes {
    not_found: &[
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    ],
    denied: &[
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
        "InvalidSecurity",
        "KMS.AccessDeniedException",
        "KmsAccessDenied",
    ],
    transient: &[
        "RequestThrottled",
        "ThrottlingException",
        "Throttling",
        "KMS.ThrottlingException",
        "KmsThrottled",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    ],
};

/// A [`MessageQueue`] that sends to one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// Sends to `queue_url` with `client` (built with [`crate::https_client`]).
    pub fn new(client: Client, queue_url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Builds the client from the standard AWS environment (see the module
    /// docs). Missing credentials show up on the first send.
    pub async fn from_env(queue_url: impl Into<String>) -> SqsQueue {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .http_client(crate::http::https_client())
            .load()
            .await;
        let queue = SqsQueue::new(Client::new(&shared), queue_url);
        tracing::debug!(queue = %queue.queue_url, "SQS client built");
        queue
    }

    /// A client for `endpoint` (e.g. `http://127.0.0.1:5000`) with fixed
    /// credentials, for local servers and tests.
    pub fn with_static_credentials(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
        queue_url: impl Into<String>,
    ) -> SqsQueue {
        let config = aws_sdk_sqs::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(crate::http::https_client())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "mediaflow-static",
            ))
            .build();
        SqsQueue::new(Client::from_conf(config), queue_url)
    }

    /// The underlying SDK client, for operations outside [`MessageQueue`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// One SendMessageBatch request for `chunk`, whose first body is
    /// `bodies[first]` (entry ids are the bodies' indices).
    async fn send_one_batch(
        &self,
        first: usize,
        chunk: &[String],
    ) -> Result<Vec<Result<String, StoreError>>> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id((first + i).to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| StoreError::Other(format!("a SendMessageBatch entry: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.map_err("SendMessageBatch", e))?;
        let mut outcomes: Vec<Option<Result<String, StoreError>>> =
            chunk.iter().map(|_| None).collect();
        let slot = |id: &str| {
            id.parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(first))
                .filter(|&i| i < chunk.len())
        };
        for ok in out.successful {
            if let Some(i) = slot(&ok.id) {
                outcomes[i] = Some(self.check_md5(
                    &chunk[i],
                    Some(ok.md5_of_message_body.as_str()),
                    ok.message_id,
                ));
            }
        }
        for failed in out.failed {
            if let Some(i) = slot(&failed.id) {
                let what = format!("SendMessageBatch {} entry {}", self.queue_url, failed.id);
                let detail = format!(
                    "{}: {}",
                    failed.code,
                    failed.message.as_deref().unwrap_or("no message")
                );
                // SQS marks what the caller got wrong; anything else is
                // on its side, and worth another try.
                let status = if failed.sender_fault { 400 } else { 500 };
                outcomes[i] = Some(Err(SQS_CODES.store_error(
                    &failed.code,
                    status,
                    what,
                    &detail,
                )));
            }
        }
        Ok(outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| {
                outcome.unwrap_or_else(|| {
                    Err(StoreError::Other(format!(
                        "SendMessageBatch {}: no result for entry {}",
                        self.queue_url,
                        first + i
                    )))
                })
            })
            .collect())
    }

    /// The message id SQS gave `body`, once the MD5 it computed matches
    /// (as the other AWS SDKs check; absent or empty: not checked): a mismatch means the queue holds
    /// other bytes than were sent.
    fn check_md5(&self, body: &str, md5: Option<&str>, id: String) -> Result<String> {
        match md5 {
            Some(md5)
                if !md5.is_empty() && !md5.eq_ignore_ascii_case(&md5_etag(body.as_bytes())) =>
            {
                Err(StoreError::Transient(format!(
                    "sending to {}: the queue's MD5 of message {id} ({md5}) is not the body's",
                    self.queue_url
                )))
            }
            _ => Ok(id),
        }
    }

    fn map_err<E>(&self, op: &str, err: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        SQS_CODES.map(format!("{op} {}", self.queue_url), err)
    }
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| self.map_err("SendMessage", e))?;
        let id = out.message_id.unwrap_or_default();
        self.check_md5(body, out.md5_of_message_body.as_deref(), id)
    }

    /// Sends every body, in SendMessageBatch requests of at most
    /// [`MAX_BATCH_ENTRIES`] messages (and [`MAX_BATCH_BYTES`]), one after
    /// another. Returns one result per body, in order: its message id, or
    /// why it was not sent (SQS accepts or refuses each entry of a batch
    /// on its own).
    ///
    /// `Err` only when the first request fails as a whole (a missing
    /// queue, denied, throttled past the SDK's retries): nothing was sent.
    /// A later request that fails as a whole fails each of its entries
    /// with that error; if that error is permanent, the entries after it
    /// are not sent and fail with it too.
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<Result<String, StoreError>>> {
        let mut results: Vec<Result<String, StoreError>> = Vec::with_capacity(bodies.len());
        for range in batches(bodies) {
            let first = range.start;
            let chunk = &bodies[range];
            match self.send_one_batch(first, chunk).await {
                Ok(outcomes) => results.extend(outcomes),
                Err(e) if results.is_empty() => return Err(e),
                Err(e) => {
                    let permanent = e.is_permanent();
                    results.extend(chunk.iter().map(|_| Err(copy_error(&e, ""))));
                    if permanent {
                        let skipped = bodies.len() - results.len();
                        results.extend((0..skipped).map(|_| {
                            Err(copy_error(&e, "not sent, as an earlier batch failed: "))
                        }));
                        break;
                    }
                }
            }
        }
        Ok(results)
    }

    fn name(&self) -> &str {
        &self.queue_url
    }
}

/// The index ranges of `bodies` that go in one SendMessageBatch request:
/// at most [`MAX_BATCH_ENTRIES`] bodies and [`MAX_BATCH_BYTES`] bytes
/// (a body over that goes alone, for SQS to refuse).
fn batches(bodies: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        let full = i - start == MAX_BATCH_ENTRIES || bytes + body.len() > MAX_BATCH_BYTES;
        if i > start && full {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        ranges.push(start..bodies.len());
    }
    ranges
}

/// The same error again, its message after `prefix` (`StoreError` is not
/// `Clone`), for each entry a failed request carried or left unsent.
fn copy_error(e: &StoreError, prefix: &str) -> StoreError {
    match e {
        StoreError::NotFound(m) => StoreError::NotFound(format!("{prefix}{m}")),
        StoreError::Denied(m) => StoreError::Denied(format!("{prefix}{m}")),
        StoreError::TooLarge { size, limit } => StoreError::TooLarge {
            size: *size,
            limit: *limit,
        },
        StoreError::Transient(m) => StoreError::Transient(format!("{prefix}{m}")),
        StoreError::Other(m) => StoreError::Other(format!("{prefix}{m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(bodies: &[usize]) -> Vec<std::ops::Range<usize>> {
        let bodies: Vec<String> = bodies.iter().map(|&n| "x".repeat(n)).collect();
        batches(&bodies)
    }

    #[test]
    fn batches_hold_ten_bodies_and_256_kib_at_most() {
        assert_eq!(sizes(&[]), vec![]);
        assert_eq!(sizes(&[10; 23]), vec![0..10, 10..20, 20..23]);
        assert_eq!(sizes(&[10; 20]), vec![0..10, 10..20]);
        let k = 1024;
        assert_eq!(
            sizes(&[100 * k, 100 * k, 100 * k, 10]),
            vec![0..2, 2..4],
            "three 100 KiB bodies are over 256 KiB"
        );
        assert_eq!(
            sizes(&[10, 300 * k, 10]),
            vec![0..1, 1..2, 2..3],
            "a body over the limit goes alone"
        );
        assert_eq!(sizes(&[128 * k, 128 * k, 1]), vec![0..2, 2..3]);
    }

    #[test]
    fn sqs_error_codes_map_like_the_s3_stores() {
        let kind = |code: &str, status: u16| {
            SQS_CODES
                .store_error(code, status, "SendMessage q".into(), "detail")
                .kind()
                .as_str()
        };
        assert_eq!(
            kind("AWS.SimpleQueueService.NonExistentQueue", 400),
            "not_found"
        );
        assert_eq!(kind("QueueDoesNotExist", 400), "not_found");
        assert_eq!(kind("AccessDenied", 403), "denied");
        assert_eq!(kind("KMS.AccessDeniedException", 400), "denied");
        assert_eq!(kind("InvalidClientTokenId", 403), "denied");
        assert_eq!(kind("RequestThrottled", 400), "transient");
        assert_eq!(kind("KMS.ThrottlingException", 400), "transient");
        assert_eq!(kind("InternalError", 500), "transient");
        assert_eq!(kind("Whatever", 503), "transient");
        assert_eq!(kind("InvalidMessageContents", 400), "internal");
        assert!(SQS_CODES
            .store_error("QueueDoesNotExist", 400, "x".into(), "d")
            .is_permanent());
        assert!(!SQS_CODES
            .store_error("RequestThrottled", 400, "x".into(), "d")
            .is_permanent());
    }

    #[test]
    fn copies_are_the_same_error() {
        for e in [
            StoreError::NotFound("a".into()),
            StoreError::Denied("b".into()),
            StoreError::TooLarge { size: 2, limit: 1 },
            StoreError::Transient("c".into()),
            StoreError::Other("d".into()),
        ] {
            let c = copy_error(&e, "");
            assert_eq!((c.kind(), c.to_string()), (e.kind(), e.to_string()));
            assert_eq!(copy_error(&e, "p: ").kind(), e.kind());
        }
    }
}
