//! The engine's single error type.
//!
//! Every failure falls in one [`ErrorKind`], so callers can tell a permanent
//! failure caused by the input (never worth retrying) from a bug.

use std::fmt;

/// What went wrong, in categories a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The bytes are not a format the engine reads (or a feature of one it does not support).
    Unsupported,
    /// The input exceeds a configured limit (bytes, pixels, frames).
    Limits,
    /// The input claims a supported format but is damaged or inconsistent.
    Corrupt,
    /// An encoder failed to produce an output.
    Encode,
    /// The plan itself is invalid (caught before any decoding).
    InvalidPlan,
    /// A bug: a dependency panicked or an invariant broke. Report it.
    Internal,
    /// The caller asked the work to stop (its deadline passed); retryable.
    Timeout,
}

impl ErrorKind {
    /// Short stable name, used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Limits => "limits",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Encode => "encode",
            ErrorKind::InvalidPlan => "invalid_plan",
            ErrorKind::Internal => "internal",
            ErrorKind::Timeout => "timeout",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An engine failure: a category and a one-line human reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EngineError {
    kind: ErrorKind,
    message: String,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // Keep errors to one line: decoders sometimes embed newlines.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Self { kind, message }
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn limits(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Limits, message)
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }
    pub fn encode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Encode, message)
    }
    pub fn invalid_plan(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidPlan, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when retrying the same input with the same plan cannot succeed.
    /// Internal errors are bugs and are reported as not permanent, so they are
    /// retried (and surface in dead-letter queues) rather than silently dropped.
    /// A stopped run (`Timeout`) is retried too.
    pub fn is_permanent(&self) -> bool {
        !matches!(self.kind, ErrorKind::Internal | ErrorKind::Timeout)
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
