//! Stopping a running [`crate::process_with`] from another thread.

use crate::error::{MediaError, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A stop request shared between a caller and the engine work it started.
///
/// The engine checks it between stages (after decoding, before each
/// variant's resize and each encode, before the placeholder), so work a
/// caller has given up on (its deadline passed) ends at the next stage
/// instead of running on into the next invocation. A single decode or
/// encode is not interrupted; the limits bound how long one can take.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the work to stop at its next check.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A retryable `timeout` error once stopped, naming the stage reached.
    pub(crate) fn check(&self, before: &str) -> Result<()> {
        if self.is_stopped() {
            return Err(MediaError::timeout(format!(
                "stopped before {before}: the caller's deadline passed (will be retried)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{process_with, ErrorKind, Plan};

    #[test]
    fn a_stopped_run_ends_with_a_retryable_timeout() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-media/rocket.jpg");
        let bytes = std::fs::read(path).unwrap();
        let stop = Stop::new();
        assert!(process_with(&bytes, &Plan::builtin(), &stop).is_ok());
        let clone = stop.clone();
        clone.stop();
        assert!(stop.is_stopped(), "clones share the flag");
        let e = process_with(&bytes, &Plan::builtin(), &stop).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(!e.is_permanent());
        assert!(e.message().contains("stopped before decoding"), "{e}");
    }
}
