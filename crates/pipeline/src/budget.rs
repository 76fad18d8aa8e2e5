//! Memory admission: work starts only when its estimated peak memory fits
//! in what is left of a budget, so concurrent sources cannot together take
//! more than the function (or machine) has.
//!
//! The estimate comes from the header before any pixel is decoded
//! ([`mediaflow_engine::estimate_memory`] for images,
//! [`mediaflow_video::estimate_memory`] for videos). A source whose estimate
//! is over the whole budget can never run and is refused (`limits`); the
//! rest wait, in arrival order, for memory to be given back. The budget is
//! counted in MiB (a semaphore's permits).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const MIB: u64 = 1 << 20;

/// What a Lambda function keeps outside the budget: the runtime, the
/// tokio and SDK state, connection buffers and encoded outputs waiting to
/// be written.
pub const FUNCTION_OVERHEAD_MIB: u64 = 128;

/// The smallest budget, whatever the memory: one small image.
const MIN_BUDGET_MIB: u64 = 64;

/// A shared memory budget (cheap to clone).
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_mib: u32,
}

/// Memory held for one source until it is dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    mib: u32,
}

impl Admission {
    /// The MiB this admission holds.
    pub fn mib(&self) -> u32 {
        self.mib
    }
}

impl MemoryBudget {
    /// A budget of `bytes` (rounded down to MiB, at least 64 MiB).
    pub fn new(bytes: u64) -> MemoryBudget {
        let mib = (bytes / MIB)
            .max(MIN_BUDGET_MIB)
            .min(u64::from(u32::MAX >> 3));
        let total_mib = u32::try_from(mib).expect("bounded above");
        MemoryBudget {
            permits: Arc::new(Semaphore::new(total_mib as usize)),
            total_mib,
        }
    }

    /// The budget of a function with `memory_mb` MB of memory
    /// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`): all of it but
    /// [`FUNCTION_OVERHEAD_MIB`].
    pub fn for_function(memory_mb: u64) -> MemoryBudget {
        MemoryBudget::new(memory_mb.saturating_sub(FUNCTION_OVERHEAD_MIB) * MIB)
    }

    /// The whole budget, in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.total_mib) * MIB
    }

    /// What is not held right now, in bytes.
    pub fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * MIB
    }

    /// `need` bytes in MiB (rounded up), or why it can never be admitted.
    fn mib_for(&self, need: u64) -> Result<u32, String> {
        let mib = need.div_ceil(MIB).max(1);
        if mib > u64::from(self.total_mib) {
            return Err(format!(
                "needs about {mib} MiB to process, more than the memory budget of {} MiB (give the function more memory, or lower the pixel limit)",
                self.total_mib
            ));
        }
        Ok(u32::try_from(mib).expect("at most total_mib"))
    }

    /// Waits until `need` bytes fit, then holds them until the returned
    /// [`Admission`] is dropped. `Err` (with the reason) when `need` is more
    /// than the whole budget: such work can never run.
    pub async fn admit(&self, need: u64) -> Result<Admission, String> {
        let mib = self.mib_for(need)?;
        let permit = Arc::clone(&self.permits)
            .acquire_many_owned(mib)
            .await
            .expect("the budget is never closed");
        Ok(Admission {
            _permit: permit,
            mib,
        })
    }

    /// [`MemoryBudget::admit`] for a thread that may block (a rayon worker).
    pub fn admit_blocking(&self, need: u64) -> Result<Admission, String> {
        futures::executor::block_on(self.admit(need))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn work_waits_for_memory_and_never_fits_is_refused() {
        let budget = MemoryBudget::new(1000 * MIB);
        let first = budget.admit(600 * MIB).await.unwrap();
        assert_eq!(first.mib(), 600);
        assert_eq!(budget.available_bytes(), 400 * MIB);
        // A second 600 MiB source waits until the first gives its memory back.
        let waiting = tokio::time::timeout(Duration::from_millis(100), budget.admit(600 * MIB));
        assert!(waiting.await.is_err(), "admitted over the budget");
        let small = budget.admit(300 * MIB + 1).await.unwrap();
        assert_eq!(small.mib(), 301);
        drop(first);
        drop(small);
        let second = tokio::time::timeout(Duration::from_secs(5), budget.admit(600 * MIB))
            .await
            .expect("admitted once memory was given back")
            .unwrap();
        drop(second);
        let e = budget.admit(1001 * MIB).await.unwrap_err();
        assert!(e.contains("needs about 1001 MiB"), "{e}");
        assert!(e.contains("budget of 1000 MiB"), "{e}");
        assert_eq!(budget.available_bytes(), 1000 * MIB);
    }

    #[test]
    fn a_function_keeps_its_overhead_outside_the_budget() {
        assert_eq!(
            MemoryBudget::for_function(2048).bytes(),
            (2048 - FUNCTION_OVERHEAD_MIB) * MIB
        );
        assert_eq!(
            MemoryBudget::for_function(128).bytes(),
            MIN_BUDGET_MIB * MIB
        );
        let blocking = MemoryBudget::new(100 * MIB);
        assert_eq!(blocking.admit_blocking(10 * MIB).unwrap().mib(), 10);
    }
}
