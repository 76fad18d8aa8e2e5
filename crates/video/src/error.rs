//! Video errors: one kind (permanent or retryable) and a one-line reason.

/// What went wrong, as a category shared with the image engine's kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoErrorKind {
    /// Not a video this pipeline handles, or no video stream in it.
    Unsupported,
    /// Over a configured limit (bytes, duration, resolution).
    Limits,
    /// ffprobe or ffmpeg could not read it.
    Corrupt,
    /// Not enough time left before the deadline, or stopped at it.
    Timeout,
    /// ffmpeg missing, killed, or an I/O failure in the work directory.
    Internal,
    /// The video configuration is invalid.
    InvalidPlan,
    /// The poster frame could not be encoded by the image engine.
    Encode,
}

impl VideoErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoErrorKind::Unsupported => "unsupported",
            VideoErrorKind::Limits => "limits",
            VideoErrorKind::Corrupt => "corrupt",
            VideoErrorKind::Timeout => "timeout",
            VideoErrorKind::Internal => "internal",
            VideoErrorKind::InvalidPlan => "invalid_plan",
            VideoErrorKind::Encode => "encode",
        }
    }
}

/// A video could not be processed. `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct VideoError {
    kind: VideoErrorKind,
    message: String,
}

impl VideoError {
    pub fn new(kind: VideoErrorKind, message: impl Into<String>) -> VideoError {
        let message: String = message.into();
        // One line, whatever a tool printed.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        VideoError { kind, message }
    }

    pub fn kind(&self) -> VideoErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Retrying the same source cannot help: bad input or configuration.
    /// Timeouts and internal failures (a missing or killed ffmpeg, a full
    /// disk) are retryable: they go to the dead-letter queue after the
    /// queue's retries and can be redriven once fixed.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self.kind,
            VideoErrorKind::Timeout | VideoErrorKind::Internal
        )
    }
}

pub(crate) fn unsupported(m: impl Into<String>) -> VideoError {
    VideoError::new(VideoErrorKind::Unsupported, m)
}
pub(crate) fn limits(m: impl Into<String>) -> VideoError {
    VideoError::new(VideoErrorKind::Limits, m)
}
pub(crate) fn corrupt(m: impl Into<String>) -> VideoError {
    VideoError::new(VideoErrorKind::Corrupt, m)
}
pub(crate) fn timeout(m: impl Into<String>) -> VideoError {
    VideoError::new(VideoErrorKind::Timeout, m)
}
pub(crate) fn internal(m: impl Into<String>) -> VideoError {
    VideoError::new(VideoErrorKind::Internal, m)
}
pub(crate) fn invalid_plan(m: impl Into<String>) -> VideoError {
    VideoError::new(VideoErrorKind::InvalidPlan, m)
}

impl From<mediaflow_engine::EngineError> for VideoError {
    /// The poster frame's image-engine failures keep their category.
    fn from(e: mediaflow_engine::EngineError) -> Self {
        use mediaflow_engine::ErrorKind as K;
        let kind = match e.kind() {
            K::Unsupported => VideoErrorKind::Unsupported,
            K::Limits => VideoErrorKind::Limits,
            K::Corrupt => VideoErrorKind::Corrupt,
            K::Encode => VideoErrorKind::Encode,
            K::InvalidPlan => VideoErrorKind::InvalidPlan,
            K::Internal => VideoErrorKind::Internal,
            K::Timeout => VideoErrorKind::Timeout,
        };
        VideoError::new(kind, format!("poster frame: {}", e.message()))
    }
}

pub type Result<T, E = VideoError> = std::result::Result<T, E>;
