//! One narrow message-queue interface: what the pipeline needs to hand an
//! object to another worker (on-upload forwards video uploads to the
//! transcode queue), and what a backfill needs to enqueue work.
//!
//! Implementations: [`MemoryQueue`] here, for tests, and
//! `mediaflow_store_s3::SqsQueue` (SQS, in the crate that links the AWS SDK).

use crate::{Result, StoreError};
use async_trait::async_trait;
use std::fmt;
use std::sync::Mutex;

/// A queue that takes message bodies.
#[async_trait]
pub trait MessageQueue: Send + Sync + fmt::Debug {
    /// Sends one message whose body is `body` (a JSON document, as S3
    /// notifications are). Returns the message id the queue gave it.
    async fn send(&self, body: &str) -> Result<String>;

    /// Sends every body and returns one result per body, in order: its
    /// message id, or why it was not sent. `Err` only when nothing was
    /// sent because the first send failed as a whole (a missing queue,
    /// say). After a permanent failure the rest are not tried and fail
    /// with it. The default sends one at a time; SQS sends batches of ten.
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<Result<String>>> {
        let mut results: Vec<Result<String>> = Vec::with_capacity(bodies.len());
        for body in bodies {
            match self.send(body).await {
                Ok(id) => results.push(Ok(id)),
                Err(e) if results.is_empty() => return Err(e),
                Err(e) if e.is_permanent() => {
                    let reason = e.to_string();
                    results.push(Err(e));
                    while results.len() < bodies.len() {
                        results.push(Err(StoreError::Other(format!(
                            "not sent, as an earlier message failed: {reason}"
                        ))));
                    }
                    break;
                }
                Err(e) => results.push(Err(e)),
            }
        }
        Ok(results)
    }

    /// Where messages go, for log lines (an SQS queue URL, say).
    fn name(&self) -> &str;
}

/// Messages kept in memory, in the order sent. A queue made with
/// [`MemoryQueue::failing`] refuses every send as a transient error.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    name: String,
    messages: Mutex<Vec<String>>,
    failing: bool,
}

impl MemoryQueue {
    pub fn new(name: impl Into<String>) -> MemoryQueue {
        MemoryQueue {
            name: name.into(),
            ..MemoryQueue::default()
        }
    }

    /// A queue whose every send fails as a transient error.
    pub fn failing(name: impl Into<String>) -> MemoryQueue {
        MemoryQueue {
            failing: true,
            ..MemoryQueue::new(name)
        }
    }

    /// Every body sent so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().expect("lock").clone()
    }
}

#[async_trait]
impl MessageQueue for MemoryQueue {
    async fn send(&self, body: &str) -> Result<String> {
        if self.failing {
            return Err(StoreError::Transient(format!(
                "sending to {}: the queue is failing (test)",
                self.name
            )));
        }
        let mut messages = self.messages.lock().expect("lock");
        messages.push(body.to_string());
        Ok(format!("memory-{}", messages.len()))
    }

    fn name(&self) -> &str {
        &self.name
    }
}
