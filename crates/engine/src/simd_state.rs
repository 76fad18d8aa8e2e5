//! The x86 AVX upper-register state after a C codec returns.
//!
//! Code that writes the upper halves of the AVX registers must clear them
//! (`vzeroupper`) before it returns. If it does not, every later SSE
//! instruction on that thread, which is most of Rust's floating-point code
//! on baseline x86-64, pays a transition penalty or a false dependency until
//! something clears them. Compilers add the instruction when they optimise.
//! libaom-sys builds libaom with CMake's Debug type (no optimisation) in
//! every profile not derived from `release`, so in every test build, and
//! its AV1 decoder then returns with the upper state dirty. Measured on the 2-vCPU
//! Xeon guest (2026-12-03): one SSIMULACRA2 score after an AVIF decode took
//! 63 s instead of 2.1 s on the same thread. Release builds were not
//! affected; the engine clears the state after libaom's decoder either way.

/// Clears the upper halves of the AVX registers, on x86-64 CPUs with AVX;
/// nothing elsewhere.
#[inline]
pub(crate) fn clear_upper() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, the one feature `vzeroupper` needs.
        unsafe { vzeroupper() }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn vzeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::arch::x86_64::{__cpuid_count, _xgetbv};

    /// Whether this thread's AVX upper state is in use (XINUSE bit 2), when
    /// the CPU can tell (XGETBV with ECX = 1).
    fn avx_upper_in_use() -> Option<bool> {
        if !std::arch::is_x86_feature_detected!("xsave") || __cpuid_count(0xd, 1).eax & 4 == 0 {
            return None;
        }
        #[target_feature(enable = "xsave")]
        fn xinuse() -> u64 {
            // SAFETY: XGETBV with ECX = 1 is supported (checked above).
            unsafe { _xgetbv(1) }
        }
        // SAFETY: the CPU has XSAVE (checked above).
        Some(unsafe { xinuse() } & 4 != 0)
    }

    #[test]
    fn an_avif_decode_leaves_the_avx_upper_state_clear() {
        let Some(_) = avx_upper_in_use() else {
            eprintln!("skipped: this CPU cannot report XINUSE");
            return;
        };
        let bytes = mediaflow_testkit::sample("fixtures/avif.avif");
        let img = crate::decode_upright(&bytes, &crate::Limits::default()).unwrap();
        let dirty = avx_upper_in_use().unwrap();
        assert_eq!((img.width, img.height), (96, 64));
        assert!(
            !dirty,
            "the AVX upper state is dirty after an AVIF decode: later SSE code on this thread runs many times slower"
        );
    }
}
