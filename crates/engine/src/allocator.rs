//! One process-wide allocator setting for the binaries that run the engine
//! one image at a time: the Lambda functions and the benchmark's mediaflow
//! runner. `mediaflow process` keeps glibc's defaults, since it runs many
//! images at once on every core.
//!
//! glibc gives each new thread its own malloc arena, and an arena other
//! than the main one grows in heaps of at most 64 MiB that are unmapped
//! when they empty. libjpeg-turbo's coefficient buffer for a 16 MP
//! progressive JPEG is 47.7 MB, and it is allocated again for every image on
//! whichever thread decodes it (a Lambda's blocking pool, the bench's
//! worker). So every image mapped that memory afresh and page-faulted
//! through it while zeroing it. With one arena, the main heap keeps the
//! pages between images. The benchmark's runner, 33 images of
//! `thumb-progressive-256`, showed 261,527 page faults before and 24,624
//! after, and a median of 42.2 ms before and 25.0 ms after (benches/RESULTS.md).
//! The cost is one arena lock, which matters only for many concurrent
//! images, and that is the CLI's case, not the function's.

/// Makes every thread allocate from glibc's main arena. Call it first thing
/// in `main`, before any other thread starts. Returns whether the setting
/// took: false off glibc (musl, macOS), where nothing is changed.
pub fn use_one_malloc_arena() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocator parameters;
        // M_ARENA_MAX takes effect for threads that allocate afterwards.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_setting() {
        assert!(super::use_one_malloc_arena());
    }
}
