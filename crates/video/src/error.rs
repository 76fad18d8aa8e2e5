//! Video errors, in mediaflow's one vocabulary ([`mediaflow_error`]): a
//! kind (permanent or retryable) and a one-line reason. Timeouts and
//! internal failures (a missing or killed ffmpeg, a full disk) are
//! retryable: they go to the dead-letter queue after the queue's retries and
//! can be redriven once fixed.

pub use mediaflow_error::{ErrorKind, MediaError, Result};

pub(crate) fn unsupported(m: impl Into<String>) -> MediaError {
    MediaError::unsupported(m)
}
pub(crate) fn limits(m: impl Into<String>) -> MediaError {
    MediaError::limits(m)
}
pub(crate) fn corrupt(m: impl Into<String>) -> MediaError {
    MediaError::corrupt(m)
}
pub(crate) fn timeout(m: impl Into<String>) -> MediaError {
    MediaError::timeout(m)
}
pub(crate) fn internal(m: impl Into<String>) -> MediaError {
    MediaError::internal(m)
}
pub(crate) fn invalid_plan(m: impl Into<String>) -> MediaError {
    MediaError::invalid_plan(m)
}
