//! AVIF encode: libaom in its all-intra usage (the still-image mode libavif
//! uses), muxed into an AVIF file by `avif-serialize`.
//!
//! Why libaom and not rav1e: on the bench's 1024 px photo at the same
//! SSIMULACRA2 score, libaom at cpu-used 6 writes fewer bytes than rav1e at
//! its speed 7 in about a third of the time (benches/RESULTS.md, "AVIF
//! encoders at equal quality"), and the library is already linked for
//! decoding.
//!
//! Settings, one place each:
//! - colour: 8-bit YCbCr, BT.601 matrix, full range, 4:2:0 (chroma averaged
//!   over each 2x2 block), tagged sRGB (BT.709 primaries, sRGB transfer);
//! - alpha: a second, monochrome AV1 image at the same quantizer, full range,
//!   not premultiplied;
//! - rate: constant quality (`AOM_Q`); `quality` 1..=100 maps to the
//!   quantizer 62..=0 as libavif maps it, so quality settings carry over from
//!   libavif, Pillow and sharp;
//! - speed: `avif_speed` 1..=10 is libaom's cpu-used 0..=9;
//! - tuned for SSIM, post-processing filters of the reconstruction skipped
//!   (it is never used as a reference);
//! - one thread: libaom's bytes change with its thread count, so with more
//!   threads a replay or a backfill on a bigger host would rewrite the same
//!   variant with other bytes (other ETags, CDN caches invalidated). The
//!   bytes can still differ between CPU families: some of libaom's SIMD
//!   kernels (its neural-network partition helpers) do not match its C code
//!   bit for bit, as with every codec here. At Lambda's usual 1-2 vCPUs a
//!   second thread would gain little.

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use libaom_sys as aom;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::c_int;
use std::ptr;

/// The AV1 quantizer (0 best; 62 at quality 1) for a quality 1..=100, as
/// libavif maps it.
pub(crate) fn quantizer(quality: u8) -> u32 {
    (u32::from(100 - quality.clamp(1, 100)) * 63 + 50) / 100
}

/// libaom's cpu-used for an `avif_speed` of 1..=10.
pub(crate) fn cpu_used(speed: u8) -> c_int {
    c_int::from(speed.clamp(1, 10) - 1)
}

/// Encodes an RGB or RGBA bitmap as AVIF.
pub fn encode(bitmap: &Bitmap, quality: u8, speed: u8) -> Result<Vec<u8>> {
    let (w, h) = (bitmap.width, bitmap.height);
    // libaom's limits: each side 1..=65536 and at most 2^30 pixels.
    if w == 0 || h == 0 || w > 65536 || h > 65536 || u64::from(w) * u64::from(h) > 1 << 30 {
        return Err(MediaError::encode(format!(
            "AVIF: {w}x{h} is outside libaom's limits (sides 1..=65536, at most 2^30 pixels)"
        )));
    }
    let q = quantizer(quality);
    let settings = Settings {
        width: w,
        height: h,
        quantizer: q,
        cpu_used: cpu_used(speed),
    };
    let color = Encoder::new(&settings, Planes::Color)?.encode(|img| fill_color(bitmap, img))?;
    let alpha = if bitmap.channels == 4 {
        Some(Encoder::new(&settings, Planes::Alpha)?.encode(|img| fill_alpha(bitmap, img))?)
    } else {
        None
    };
    let mut mux = avif_serialize::Aviffy::new();
    mux.set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .set_color_primaries(avif_serialize::constants::ColorPrimaries::Bt709)
        .set_transfer_characteristics(avif_serialize::constants::TransferCharacteristics::Srgb)
        .set_full_color_range(true)
        .set_chroma_subsampling((true, true))
        .set_seq_profile(0);
    Ok(mux.to_vec(&color, alpha.as_deref(), w, h, 8))
}

struct Settings {
    width: u32,
    height: u32,
    quantizer: u32,
    cpu_used: c_int,
}

#[derive(Clone, Copy, PartialEq)]
enum Planes {
    Color,
    Alpha,
}

/// One libaom encoder context, destroyed on drop.
struct Encoder {
    ctx: aom::aom_codec_ctx_t,
    width: u32,
    height: u32,
}

/// One libaom image, freed on drop.
struct Image(*mut aom::aom_image_t);

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the pointer came from aom_img_alloc and is freed once.
        unsafe { aom::aom_img_free(self.0) }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised by aom_codec_enc_init_ver
        // (Encoder is only built after that succeeded) and is destroyed once.
        unsafe {
            aom::aom_codec_destroy(&mut self.ctx);
        }
    }
}

fn failure(
    what: &str,
    code: aom::aom_codec_err_t,
    ctx: Option<&aom::aom_codec_ctx_t>,
) -> MediaError {
    // SAFETY: libaom returns static, NUL-terminated strings; the detail
    // pointer is checked for null and read before the context is touched again.
    let (text, detail) = unsafe {
        let text = CStr::from_ptr(aom::aom_codec_err_to_string(code))
            .to_string_lossy()
            .into_owned();
        let detail = ctx
            .map(|c| aom::aom_codec_error_detail(c))
            .filter(|p| !p.is_null())
            .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned());
        (text, detail)
    };
    let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
    MediaError::encode(format!("AVIF: libaom {what}: {text}{detail}"))
}

impl Encoder {
    fn new(s: &Settings, planes: Planes) -> Result<Encoder> {
        // SAFETY: the configuration is filled by libaom before it is read;
        // the context is only wrapped (and so destroyed) once init succeeded.
        unsafe {
            let iface = aom::aom_codec_av1_cx();
            let mut cfg = MaybeUninit::<aom::aom_codec_enc_cfg>::zeroed();
            let r = aom::aom_codec_enc_config_default(
                iface,
                cfg.as_mut_ptr(),
                aom::AOM_USAGE_ALL_INTRA,
            );
            if r != aom::AOM_CODEC_OK {
                return Err(failure("configuration", r, None));
            }
            let mut cfg = cfg.assume_init();
            cfg.g_w = s.width;
            cfg.g_h = s.height;
            // One thread: libaom's multi-threaded output differs from its
            // single-threaded output, and a variant's bytes should not
            // depend on the host's core count (see the module doc).
            cfg.g_threads = 1;
            cfg.g_profile = 0;
            cfg.g_bit_depth = aom::AOM_BITS_8;
            cfg.g_input_bit_depth = 8;
            cfg.rc_end_usage = aom::AOM_Q;
            cfg.rc_min_quantizer = 0;
            cfg.rc_max_quantizer = 63;
            // One frame: libaom writes a reduced still-picture header.
            cfg.g_limit = 1;
            cfg.g_lag_in_frames = 0;
            cfg.kf_mode = aom::AOM_KF_DISABLED;
            cfg.kf_max_dist = 0;
            cfg.monochrome = u32::from(planes == Planes::Alpha);
            let mut ctx = MaybeUninit::<aom::aom_codec_ctx_t>::zeroed();
            let r = aom::aom_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                iface,
                &cfg,
                0,
                aom::AOM_ENCODER_ABI_VERSION as c_int,
            );
            if r != aom::AOM_CODEC_OK {
                // init failed: libaom has released the context, and kept
                // its error detail in it.
                return Err(failure("start", r, Some(&*ctx.as_ptr())));
            }
            let mut enc = Encoder {
                ctx: ctx.assume_init(),
                width: s.width,
                height: s.height,
            };
            let mut controls = vec![
                (aom::AOME_SET_CPUUSED, s.cpu_used),
                (aom::AOME_SET_CQ_LEVEL, s.quantizer as c_int),
                (aom::AOME_SET_TUNING, aom::AOM_TUNE_SSIM as c_int),
                (aom::AV1E_SET_SKIP_POSTPROC_FILTERING, 1),
                (aom::AV1E_SET_COLOR_RANGE, aom::AOM_CR_FULL_RANGE as c_int),
            ];
            if planes == Planes::Color {
                controls.extend([
                    (
                        aom::AV1E_SET_COLOR_PRIMARIES,
                        aom::AOM_CICP_CP_BT_709 as c_int,
                    ),
                    (
                        aom::AV1E_SET_TRANSFER_CHARACTERISTICS,
                        aom::AOM_CICP_TC_SRGB as c_int,
                    ),
                    (
                        aom::AV1E_SET_MATRIX_COEFFICIENTS,
                        aom::AOM_CICP_MC_BT_601 as c_int,
                    ),
                ]);
            }
            for (id, value) in controls {
                let r = aom::aom_codec_control(&mut enc.ctx, id as c_int, value);
                if r != aom::AOM_CODEC_OK {
                    return Err(failure("setting", r, Some(&enc.ctx)));
                }
            }
            Ok(enc)
        }
    }

    /// Encodes the one image `fill` writes into a 4:2:0 frame; returns the
    /// AV1 bitstream (OBUs).
    fn encode(mut self, fill: impl FnOnce(&mut Frame)) -> Result<Vec<u8>> {
        // SAFETY: aom_img_alloc returns null or an image of the asked
        // format and size, whose planes and strides the Frame view checks
        // against; its buffer (plain malloc) is zeroed before any slice is
        // made over it, padding included; the packets' buffers are read
        // before the next libaom call.
        unsafe {
            let (w, h) = (self.width, self.height);
            let img = Image(aom::aom_img_alloc(
                ptr::null_mut(),
                aom::AOM_IMG_FMT_I420,
                w,
                h,
                16,
            ));
            if img.0.is_null() {
                return Err(MediaError::encode(format!(
                    "AVIF: libaom could not allocate a {w}x{h} frame"
                )));
            }
            let im = &mut *img.0;
            ptr::write_bytes(im.img_data, 0, im.sz);
            im.range = aom::AOM_CR_FULL_RANGE;
            im.mc = aom::AOM_CICP_MC_BT_601;
            im.cp = aom::AOM_CICP_CP_BT_709;
            im.tc = aom::AOM_CICP_TC_SRGB;
            let (w, h) = (w as usize, h as usize);
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let plane = |i: usize, pw: usize, ph: usize| {
                let stride = usize::try_from(im.stride[i]).expect("positive stride");
                assert!(stride >= pw);
                std::slice::from_raw_parts_mut(im.planes[i], stride * (ph - 1) + pw)
            };
            let mut frame = Frame {
                width: w,
                height: h,
                y: plane(0, w, h),
                y_stride: im.stride[0] as usize,
                u: plane(1, cw, ch),
                v: plane(2, cw, ch),
                uv_stride: im.stride[1] as usize,
            };
            fill(&mut frame);
            let mut out = Vec::new();
            for input in [img.0 as *const aom::aom_image_t, ptr::null()] {
                let r = aom::aom_codec_encode(&mut self.ctx, input, 0, 1, 0);
                if r != aom::AOM_CODEC_OK {
                    return Err(failure("encode", r, Some(&self.ctx)));
                }
                let mut iter = ptr::null();
                loop {
                    let pkt = aom::aom_codec_get_cx_data(&mut self.ctx, &mut iter);
                    if pkt.is_null() {
                        break;
                    }
                    if (*pkt).kind == aom::AOM_CODEC_CX_FRAME_PKT {
                        let f = (*pkt).data.frame;
                        out.extend_from_slice(std::slice::from_raw_parts(f.buf.cast::<u8>(), f.sz));
                    }
                }
            }
            if out.is_empty() {
                return Err(MediaError::encode("AVIF: libaom wrote no frame"));
            }
            Ok(out)
        }
    }
}

/// A 4:2:0 frame to fill: full-size luma, half-size (rounded up) chroma.
pub(crate) struct Frame<'a> {
    width: usize,
    height: usize,
    y: &'a mut [u8],
    y_stride: usize,
    u: &'a mut [u8],
    v: &'a mut [u8],
    uv_stride: usize,
}

// BT.601 luma weights; Cb and Cr scale B-Y and R-Y into +-0.5.
const KR: f32 = 0.299;
const KB: f32 = 0.114;
const KG: f32 = 1.0 - KR - KB;

fn to_u8(v: f32) -> u8 {
    // The cast saturates; +0.5 rounds the non-negative values.
    (v + 0.5) as u8
}

/// Full-range BT.601 YCbCr 4:2:0 from RGB(A) (alpha ignored here): luma per
/// pixel, chroma from the mean RGB of each 2x2 block.
fn fill_color(bitmap: &Bitmap, f: &mut Frame) {
    let c = bitmap.channels as usize;
    let stride = bitmap.stride();
    let data = &bitmap.data;
    for row in 0..f.height {
        let src = &data[row * stride..row * stride + f.width * c];
        let dst = &mut f.y[row * f.y_stride..row * f.y_stride + f.width];
        for (d, px) in dst.iter_mut().zip(src.chunks_exact(c)) {
            let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
            *d = to_u8(KR * r + KG * g + KB * b);
        }
    }
    for cy in 0..f.height.div_ceil(2) {
        let rows = [2 * cy, (2 * cy + 1).min(f.height - 1)];
        for cx in 0..f.width.div_ceil(2) {
            let cols = [2 * cx, (2 * cx + 1).min(f.width - 1)];
            let (mut r, mut g, mut b) = (0.0f32, 0.0f32, 0.0f32);
            for &y in &rows {
                for &x in &cols {
                    let px = &data[y * stride + x * c..];
                    r += f32::from(px[0]);
                    g += f32::from(px[1]);
                    b += f32::from(px[2]);
                }
            }
            let (r, g, b) = (r / 4.0, g / 4.0, b / 4.0);
            let luma = KR * r + KG * g + KB * b;
            f.u[cy * f.uv_stride + cx] = to_u8((b - luma) * (0.5 / (1.0 - KB)) + 128.0);
            f.v[cy * f.uv_stride + cx] = to_u8((r - luma) * (0.5 / (1.0 - KR)) + 128.0);
        }
    }
}

/// The alpha channel as the luma of a monochrome frame (chroma neutral).
fn fill_alpha(bitmap: &Bitmap, f: &mut Frame) {
    let stride = bitmap.stride();
    for row in 0..f.height {
        let src = &bitmap.data[row * stride..row * stride + f.width * 4];
        let dst = &mut f.y[row * f.y_stride..row * f.y_stride + f.width];
        for (d, px) in dst.iter_mut().zip(src.chunks_exact(4)) {
            *d = px[3];
        }
    }
    f.u.fill(128);
    f.v.fill(128);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_and_speed_map_like_libavif() {
        assert_eq!(quantizer(100), 0);
        assert_eq!(quantizer(50), 32);
        assert_eq!(quantizer(60), 25);
        assert_eq!(quantizer(1), 62);
        assert_eq!(cpu_used(1), 0);
        assert_eq!(cpu_used(7), 6);
        assert_eq!(cpu_used(10), 9);
    }

    #[test]
    fn grey_and_primaries_convert_like_bt601_full_range() {
        let b = Bitmap::new(
            2,
            2,
            3,
            [128, 128, 128, 255, 0, 0, 0, 0, 255, 255, 255, 255].to_vec(),
        );
        let (mut y, mut u, mut v) = (vec![0; 4], vec![0; 1], vec![0; 1]);
        let mut f = Frame {
            width: 2,
            height: 2,
            y: &mut y,
            y_stride: 2,
            u: &mut u,
            v: &mut v,
            uv_stride: 1,
        };
        fill_color(&b, &mut f);
        // Y = 0.299 R + 0.587 G + 0.114 B.
        assert_eq!(y, [128, 76, 29, 255]);
        // The block's mean is (159.75, 95.75, 159.75).
        let luma = 0.299 * 159.75 + 0.587 * 95.75 + 0.114 * 159.75;
        assert_eq!(u[0], ((159.75 - luma) * (0.5 / 0.886) + 128.5) as u8);
        assert_eq!(v[0], ((159.75 - luma) * (0.5 / 0.701) + 128.5) as u8);
    }

    #[test]
    fn odd_sizes_and_alpha_round_trip_through_the_decoder() {
        for (w, h, ch) in [(1, 1, 3), (3, 5, 4), (67, 33, 3), (64, 64, 4)] {
            let b = Bitmap::gradient(w, h, ch);
            let file = encode(&b, 90, 10).unwrap();
            let back = crate::decode_upright(&file, &crate::Limits::default()).unwrap();
            assert_eq!((back.width, back.height), (w, h), "{w}x{h}");
            assert_eq!(back.channels, ch, "{w}x{h}");
            for c in 0..usize::from(ch) {
                let diffs: Vec<u64> = b
                    .data
                    .iter()
                    .zip(&back.data)
                    .skip(c)
                    .step_by(usize::from(ch))
                    .map(|(a, b)| u64::from(a.abs_diff(*b)))
                    .collect();
                let mean = diffs.iter().sum::<u64>() as f64 / diffs.len() as f64;
                // Colour is 4:2:0: a 3 px wide image whose red steps by 85
                // per pixel loses most of its chroma, so colour is checked
                // on the larger images; alpha is full resolution everywhere.
                let bound = if c == 3 {
                    1.5
                } else if w >= 64 {
                    3.0
                } else {
                    255.0
                };
                assert!(mean < bound, "{w}x{h}x{ch} channel {c}: mean error {mean}");
            }
        }
    }

    #[test]
    fn the_same_bitmap_encodes_to_the_same_bytes() {
        let b = Bitmap::gradient(640, 360, 4);
        assert_eq!(encode(&b, 60, 7).unwrap(), encode(&b, 60, 7).unwrap());
    }

    #[test]
    fn a_higher_quality_writes_more_bytes() {
        let b = Bitmap::gradient(256, 256, 3);
        let low = encode(&b, 30, 10).unwrap();
        let high = encode(&b, 95, 10).unwrap();
        assert!(high.len() > low.len(), "{} <= {}", high.len(), low.len());
    }
}
