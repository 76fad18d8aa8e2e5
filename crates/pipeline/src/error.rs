//! Why one object failed: a kind from mediaflow's one vocabulary
//! ([`ErrorKind`]), a one-line reason, and whether to retry.

use mediaflow_engine::{ErrorKind, MediaError};
use mediaflow_store::StoreError;

/// Whether retrying the same object later may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The input or the configuration is wrong; retrying cannot help.
    Permanent,
    /// Throttling, a timeout, a network failure, running out of time.
    Retryable,
    /// Permanent, but the message goes to the dead-letter queue instead of
    /// being acknowledged and recorded: content that is neither an image
    /// nor a video, which an operator should see.
    DeadLetter,
}

impl From<ErrorKind> for Retry {
    fn from(kind: ErrorKind) -> Retry {
        if kind.is_permanent() {
            Retry::Permanent
        } else {
            Retry::Retryable
        }
    }
}

/// What went wrong, before it is pinned to an object: a kind and a reason.
/// Every failure the pipeline meets converts into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub kind: ErrorKind,
    pub reason: String,
}

impl Cause {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Cause {
        Cause {
            kind,
            reason: reason.into(),
        }
    }

    /// A store failure while doing `stage` (`reading the source`,
    /// `writing media/w640/a.webp`).
    pub fn during(stage: &str, e: StoreError) -> Cause {
        Cause::new(e.kind(), format!("{stage}: {e}"))
    }
}

impl From<MediaError> for Cause {
    fn from(e: MediaError) -> Cause {
        Cause::new(e.kind(), e.message())
    }
}

impl From<StoreError> for Cause {
    fn from(e: StoreError) -> Cause {
        Cause::new(e.kind(), e.to_string())
    }
}

/// Why an object failed, in one line: `s3://b/k: corrupt: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {category}: {reason}")]
pub struct ObjectError {
    /// `s3://bucket/key`.
    pub object: String,
    pub category: ErrorKind,
    pub reason: String,
    /// From the kind, unless the pipeline knows better (a permanent failure
    /// whose record could not be written is retried, so it is never lost).
    pub retry: Retry,
}

impl ObjectError {
    /// `object` failed because of `cause`; retried when its kind is not
    /// permanent.
    pub fn new(object: impl Into<String>, cause: impl Into<Cause>) -> ObjectError {
        let cause = cause.into();
        ObjectError {
            object: object.into(),
            category: cause.kind,
            reason: cause.reason,
            retry: cause.kind.into(),
        }
    }

    /// True when retrying the same object later cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self.retry, Retry::Permanent | Retry::DeadLetter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_decides_unless_told_otherwise() {
        let e = ObjectError::new("s3://b/k", MediaError::corrupt("bad\nheader"));
        assert_eq!(e.to_string(), "s3://b/k: corrupt: bad header");
        assert!(e.is_permanent());
        let e = ObjectError::new(
            "s3://b/k",
            Cause::during("reading the source", StoreError::Transient("503".into())),
        );
        assert_eq!(
            e.to_string(),
            "s3://b/k: transient: reading the source: transient: 503"
        );
        assert!(!e.is_permanent());
        let e = ObjectError::new("s3://b/k", StoreError::Other("odd".into()));
        assert_eq!(
            (e.category, e.retry),
            (ErrorKind::Internal, Retry::Retryable)
        );
    }
}
