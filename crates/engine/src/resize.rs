//! Resizing with `fast_image_resize`: runtime SIMD dispatch (AVX2/SSE4.1 on
//! x86_64, NEON on aarch64), 3-channel kernels for opaque images, alpha
//! premultiplied only when present. One `Resizer` is kept per thread.

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use crate::geometry::Region;
use crate::plan::Filter;
use fast_image_resize as fr;
use std::cell::{Cell, RefCell};

/// A CPU extension `fast_image_resize` can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuExtension {
    None,
    Sse4_1,
    Avx2,
    Neon,
}

impl CpuExtension {
    pub fn name(self) -> &'static str {
        match self {
            CpuExtension::None => "none",
            CpuExtension::Sse4_1 => "sse4.1",
            CpuExtension::Avx2 => "avx2",
            CpuExtension::Neon => "neon",
        }
    }

    fn to_fr(self) -> Option<fr::CpuExtensions> {
        match self {
            CpuExtension::None => Some(fr::CpuExtensions::None),
            #[cfg(target_arch = "x86_64")]
            CpuExtension::Sse4_1 => Some(fr::CpuExtensions::Sse4_1),
            #[cfg(target_arch = "x86_64")]
            CpuExtension::Avx2 => Some(fr::CpuExtensions::Avx2),
            #[cfg(target_arch = "aarch64")]
            CpuExtension::Neon => Some(fr::CpuExtensions::Neon),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn from_fr(e: fr::CpuExtensions) -> CpuExtension {
        match e {
            #[cfg(target_arch = "x86_64")]
            fr::CpuExtensions::Sse4_1 => CpuExtension::Sse4_1,
            #[cfg(target_arch = "x86_64")]
            fr::CpuExtensions::Avx2 => CpuExtension::Avx2,
            #[cfg(target_arch = "aarch64")]
            fr::CpuExtensions::Neon => CpuExtension::Neon,
            _ => CpuExtension::None,
        }
    }
}

/// Extensions this CPU supports, best first, always ending with `None`.
pub fn available_cpu_extensions() -> Vec<CpuExtension> {
    [
        CpuExtension::Avx2,
        CpuExtension::Sse4_1,
        CpuExtension::Neon,
        CpuExtension::None,
    ]
    .into_iter()
    .filter(|e| e.to_fr().is_some_and(|f| f.is_supported()))
    .collect()
}

thread_local! {
    static RESIZER: RefCell<fr::Resizer> = RefCell::new(fr::Resizer::new());
    static FORCED: Cell<Option<CpuExtension>> = const { Cell::new(None) };
}

/// Forces a CPU extension for resizes on the calling thread (`None` restores
/// automatic dispatch). Unsupported extensions are refused with `false`.
/// Used by tests and benchmarks to exercise every SIMD path.
pub fn force_cpu_extension(ext: Option<CpuExtension>) -> bool {
    if let Some(e) = ext {
        if !e.to_fr().is_some_and(|f| f.is_supported()) {
            return false;
        }
    }
    FORCED.with(|f| f.set(ext));
    true
}

/// Name of the extension resizes on this thread use (`avx2`, `neon`, ...).
pub fn cpu_extension_name() -> &'static str {
    match FORCED.with(Cell::get) {
        Some(e) => e.name(),
        None => CpuExtension::from_fr(fr::CpuExtensions::default()).name(),
    }
}

fn algorithm(filter: Filter) -> fr::ResizeAlg {
    use fr::FilterType as F;
    match filter {
        Filter::Nearest => fr::ResizeAlg::Nearest,
        Filter::Box => fr::ResizeAlg::Convolution(F::Box),
        Filter::Bilinear => fr::ResizeAlg::Convolution(F::Bilinear),
        Filter::Hamming => fr::ResizeAlg::Convolution(F::Hamming),
        Filter::CatmullRom => fr::ResizeAlg::Convolution(F::CatmullRom),
        Filter::Mitchell => fr::ResizeAlg::Convolution(F::Mitchell),
        Filter::Lanczos3 => fr::ResizeAlg::Convolution(F::Lanczos3),
    }
}

/// `src` reduced (box filter) so its longer side is at most `side`, the
/// aspect ratio kept, never enlarged: the small image the placeholder and
/// the smart crop read.
pub fn thumbnail(src: &Bitmap, side: u32) -> Result<Bitmap> {
    let s = (f64::from(side) / f64::from(src.width.max(src.height))).min(1.0);
    let w = ((f64::from(src.width) * s).round() as u32).max(1);
    let h = ((f64::from(src.height) * s).round() as u32).max(1);
    let full = Region {
        left: 0.0,
        top: 0.0,
        width: f64::from(src.width),
        height: f64::from(src.height),
    };
    resize(src, full, w, h, Filter::Box)
}

/// Resizes `region` of `src` to `w x h` with `filter`.
pub fn resize(src: &Bitmap, region: Region, w: u32, h: u32, filter: Filter) -> Result<Bitmap> {
    let full = region.left == 0.0
        && region.top == 0.0
        && region.width == f64::from(src.width)
        && region.height == f64::from(src.height);
    if full && w == src.width && h == src.height {
        return Ok(src.clone());
    }
    let options = fr::ResizeOptions::new()
        .resize_alg(algorithm(filter))
        .crop(region.left, region.top, region.width, region.height)
        .use_alpha(src.channels == 4);
    let mut out = vec![0u8; w as usize * h as usize * usize::from(src.channels)];
    if src.channels == 4 {
        resize_typed::<fr::pixels::U8x4>(src, &mut out, w, h, &options)?;
    } else {
        resize_typed::<fr::pixels::U8x3>(src, &mut out, w, h, &options)?;
    }
    Ok(Bitmap::new(w, h, src.channels, out))
}

/// One pixel layout through `Resizer::resize_typed`. `Resizer::resize`
/// dispatches the same way at run time, but instantiates the kernels of all
/// thirteen of the library's pixel types in this crate; the engine has only
/// RGB and RGBA, and the other eleven were most of its machine code (and of
/// its compile time).
fn resize_typed<P: fr::PixelTrait>(
    src: &Bitmap,
    out: &mut [u8],
    w: u32,
    h: u32,
    options: &fr::ResizeOptions,
) -> Result<()> {
    let src_img = fr::images::TypedImageRef::<P>::from_buffer(src.width, src.height, &src.data)
        .map_err(|e| MediaError::internal(format!("resize source: {e}")))?;
    let mut dst = fr::images::TypedImage::<P>::from_buffer(w, h, out)
        .map_err(|e| MediaError::internal(format!("resize target: {e}")))?;
    RESIZER.with(|r| {
        let mut resizer = r.borrow_mut();
        let wanted = match FORCED.with(Cell::get) {
            Some(e) => e.to_fr().unwrap_or_default(),
            None => fr::CpuExtensions::default(),
        };
        if resizer.cpu_extensions() != wanted {
            // SAFETY: `wanted` is either the library's own detection or an
            // extension checked with `is_supported` in `force_cpu_extension`.
            unsafe { resizer.set_cpu_extensions(wanted) };
        }
        resizer
            .resize_typed(&src_img, &mut dst, options)
            .map_err(|e| MediaError::internal(format!("resize: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_available_extension_gives_the_same_image() {
        let exts = available_cpu_extensions();
        assert!(exts.contains(&CpuExtension::None));
        // NEON is part of every AArch64 CPU (and of qemu-aarch64): on arm64
        // the comparison must include it, or it would only check scalar.
        #[cfg(target_arch = "aarch64")]
        assert_eq!(exts, [CpuExtension::Neon, CpuExtension::None]);
        for ch in [3u8, 4] {
            let src = Bitmap::gradient(97, 61, ch);
            let full = Region {
                left: 0.0,
                top: 0.0,
                width: 97.0,
                height: 61.0,
            };
            let mut results = Vec::new();
            for &e in &exts {
                assert!(force_cpu_extension(Some(e)));
                assert_eq!(cpu_extension_name(), e.name());
                for filter in Filter::ALL {
                    results.push((e, filter, resize(&src, full, 31, 17, filter).unwrap()));
                }
            }
            force_cpu_extension(None);
            for (e, filter, img) in &results {
                let (_, _, base) = results
                    .iter()
                    .find(|(b, f, _)| *b == CpuExtension::None && f == filter)
                    .unwrap();
                let max = img
                    .data
                    .iter()
                    .zip(&base.data)
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                assert!(
                    max <= 2,
                    "{} {:?} ch{ch}: differs from scalar by {max}",
                    e.name(),
                    filter
                );
            }
        }
    }

    #[test]
    fn transparent_pixels_do_not_bleed_colour() {
        // Left half opaque red, right half transparent green: with premultiplied
        // alpha no green may leak into the opaque side.
        let mut data = Vec::new();
        for _y in 0..8 {
            for x in 0..16 {
                data.extend_from_slice(if x < 8 {
                    &[255, 0, 0, 255]
                } else {
                    &[0, 255, 0, 0]
                });
            }
        }
        let src = Bitmap::new(16, 8, 4, data);
        let full = Region {
            left: 0.0,
            top: 0.0,
            width: 16.0,
            height: 8.0,
        };
        let out = resize(&src, full, 8, 4, Filter::Lanczos3).unwrap();
        for y in 0..4 {
            let p = out.pixel(3, y);
            assert!(p[1] < 8 && p[0] > 240, "green leaked: {p:?}");
        }
    }

    #[test]
    fn unsupported_extension_is_refused() {
        #[cfg(target_arch = "x86_64")]
        assert!(!force_cpu_extension(Some(CpuExtension::Neon)));
        #[cfg(target_arch = "aarch64")]
        assert!(!force_cpu_extension(Some(CpuExtension::Avx2)));
    }
}
