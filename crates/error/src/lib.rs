//! The one error vocabulary of mediaflow.
//!
//! Every failure, from a decoder, ffmpeg, an object store or the local file
//! system, falls in one [`ErrorKind`]. The kind decides the stable name that
//! logs, metrics, failure records and JSON summaries show
//! ([`ErrorKind::as_str`]) and whether retrying the same work later can help
//! ([`ErrorKind::is_permanent`]). [`MediaError`] is a kind with a one-line
//! reason; it is the error of the engine, the video path and the pipeline's
//! media routine.

use std::fmt;

/// What went wrong, in categories a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The bytes are not a format mediaflow reads (or a feature of one it
    /// does not support), or no video stream is in a video.
    Unsupported,
    /// The input exceeds a configured limit (bytes, pixels, frames,
    /// duration, memory, key length).
    Limits,
    /// The input claims a supported format but is damaged or inconsistent.
    Corrupt,
    /// An encoder failed to produce an output.
    Encode,
    /// The plan (configuration) itself is invalid.
    InvalidPlan,
    /// A bug, a missing or killed tool, or an unexpected failure: a
    /// dependency panicked or an invariant broke. Retried, so it surfaces in
    /// dead-letter queues rather than being dropped.
    Internal,
    /// The work was stopped at its deadline, or too little time was left.
    Timeout,
    /// The object or bucket does not exist.
    NotFound,
    /// The credentials may not do this.
    Denied,
    /// Throttling, a dropped connection, a 5xx: worth retrying.
    Transient,
    /// A local file could not be read or written (`mediaflow process`).
    Io,
    /// Two sources would write the same outputs (`mediaflow process`).
    Collision,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Unsupported,
        ErrorKind::Limits,
        ErrorKind::Corrupt,
        ErrorKind::Encode,
        ErrorKind::InvalidPlan,
        ErrorKind::Internal,
        ErrorKind::Timeout,
        ErrorKind::NotFound,
        ErrorKind::Denied,
        ErrorKind::Transient,
        ErrorKind::Io,
        ErrorKind::Collision,
    ];

    /// Short stable name, used in logs, metrics, failure records and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Limits => "limits",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Encode => "encode",
            ErrorKind::InvalidPlan => "invalid_plan",
            ErrorKind::Internal => "internal",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Denied => "denied",
            ErrorKind::Transient => "transient",
            ErrorKind::Io => "io",
            ErrorKind::Collision => "collision",
        }
    }

    /// True when retrying the same work with the same plan cannot succeed:
    /// the input, the configuration or the permissions are wrong. Internal
    /// failures, timeouts, transient store errors and local I/O errors are
    /// not permanent.
    pub fn is_permanent(self) -> bool {
        !matches!(
            self,
            ErrorKind::Internal | ErrorKind::Timeout | ErrorKind::Transient | ErrorKind::Io
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with a kind's stable name: `kind == "corrupt"`.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A failure: a kind and a one-line human reason. `Display` is
/// `kind: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct MediaError {
    kind: ErrorKind,
    message: String,
}

impl MediaError {
    /// A `kind` failure; whitespace in `message` (decoders and tools embed
    /// newlines) is collapsed so the error stays one line.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
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
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    pub fn collision(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Collision, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same failure with `context` in front of its reason
    /// (`poster frame: …`).
    pub fn context(self, context: &str) -> Self {
        Self {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }

    /// See [`ErrorKind::is_permanent`].
    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }
}

pub type Result<T, E = MediaError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_snake_case() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn only_what_may_pass_is_retried() {
        let retried: Vec<&str> = ErrorKind::ALL
            .iter()
            .filter(|k| !k.is_permanent())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(retried, ["internal", "timeout", "transient", "io"]);
    }

    #[test]
    fn one_line_with_its_kind() {
        let e = MediaError::corrupt("bad\nhuffman   table").context("poster frame");
        assert_eq!(e.to_string(), "corrupt: poster frame: bad huffman table");
        assert_eq!(e.kind(), "corrupt");
        assert!(e.is_permanent());
        assert!(!MediaError::timeout("late").is_permanent());
    }
}
