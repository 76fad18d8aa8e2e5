//! The engine's errors: mediaflow's one error vocabulary
//! ([`mediaflow_error`]). Every failure falls in one [`ErrorKind`], so
//! callers can tell a permanent failure caused by the input (never worth
//! retrying) from a bug.

pub use mediaflow_error::{ErrorKind, MediaError, Result};
