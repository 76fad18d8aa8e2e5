//! Peak-memory estimate of processing one source, from its header alone.
//!
//! Callers admit work through a memory budget with it (the pipeline sizes
//! the budget from the function's memory). The model follows what
//! [`crate::process`] holds at its peaks:
//!
//! 1. the input bytes, for the whole run;
//! 2. the decode: the decoder's native buffer (bit depth and channels from
//!    the header), its working memory (libjpeg-turbo's coefficient buffer for
//!    progressive or multi-scan JPEGs, libaom's frame planes, a whole-image
//!    strip for TIFF, the ARGB buffer of lossless WebP) and the 8-bit
//!    RGB(A) bitmap the engine works on (JPEG at the DCT scale the plan
//!    lets the engine pick);
//! 3. after the decode, one working copy: opaque alpha dropped, or the
//!    EXIF rotation;
//! 4. the variants: the decoded bitmap, every full-frame variant kept as an
//!    intermediate, and for the largest variant the resizer's buffers
//!    (premultiplied source for RGBA, the one-axis intermediate) and the
//!    encoders' working memory per output pixel.
//!
//! Calibration: see [`estimate_memory`].

use crate::decode;
use crate::engine::Probe;
use crate::error::Result;
use crate::geometry;
use crate::jpeg;
use crate::orient;
use crate::plan::{FormatChoice, OutputFormat, Plan};
use crate::sniff::SourceFormat;
use image::{ColorType, ImageDecoder};

/// Resident memory of the engine before any image (code, allocator arenas,
/// thread-local resizers, libjpeg/libwebp state).
const BASELINE: u64 = 24 << 20;
/// libaom's working memory besides the output planes, per pixel (frame
/// buffers with borders, mode info, loop-filter and CDEF buffers): measured
/// at about 12 on 25 MP 4:2:0 and 4:4:4 and 64 MP 4:2:0 files, one thread.
const AOM_BYTES_PER_PIXEL: u64 = 14;
/// Encoders' working memory per output pixel (input conversion, YUV planes,
/// analysis buffers), largest first. AVIF (libaom all-intra, one thread):
/// measured at 36 bytes per pixel at cpu-used 0, 29 at cpu-used 6 and 19 at
/// cpu-used 9 on a 1.6 MP photo (fixed buffers included), 15 at cpu-used 6
/// on 9 MP; the alpha plane is encoded after the colour encoder is freed.
const AVIF_ENCODE_BYTES_PER_PIXEL: u64 = 40;
const WEBP_ENCODE_BYTES_PER_PIXEL: u64 = 12;
const PNG_ENCODE_BYTES_PER_PIXEL: u64 = 8;
const JPEG_ENCODE_BYTES_PER_PIXEL: u64 = 6;

/// Upper bound of the peak bytes [`crate::process`] takes for `bytes` under
/// `plan`, from the header alone (no pixel is decoded). Fails like
/// [`crate::probe`] (bytes, format, header, pixel limits) and, for JPEG, like
/// the scan checks that run before decoding, so an `Err` here is the error
/// `process` would return.
///
/// Measured peak RSS (release `process_file` example, built-in plan, 2-core
/// x86-64) against this estimate:
///
#[doc = include_str!("memory_calibration.md")]
pub fn estimate_memory(bytes: &[u8], plan: &Plan) -> Result<u64> {
    crate::engine::guard_input("the header reader", || estimate(bytes, plan))
}

/// The steps of [`estimate_memory`]: the decode's peak, the working copy
/// after it, the variants' peak; the largest of them over the baseline and
/// the input, plus a margin.
fn estimate(bytes: &[u8], plan: &Plan) -> Result<u64> {
    let header = crate::engine::probe(bytes, plan.limits())?;
    let input = bytes.len() as u64;
    let decode = match header.format {
        SourceFormat::Jpeg => jpeg_decode(bytes, &header, plan)?,
        SourceFormat::Avif => avif_decode(bytes, &header)?,
        SourceFormat::Jxl => jxl_decode(bytes, &header)?,
        SourceFormat::Heic => heic_decode(bytes, &header, plan)?,
        other => image_crate_decode(bytes, other, &header, plan)?,
    };
    let after = decode.working_copy();
    let variants = variants_peak(plan, &header, &decode);
    let animation = animation_peak(bytes, plan, &header, &decode);
    let peak = BASELINE + input + decode.peak.max(after).max(variants).max(animation);
    // The model matches the measured peaks within a few percent for the
    // large decoders; keep a margin for allocator slack and content.
    Ok(peak + peak / SAFETY_DIVISOR)
}

/// What the decode step holds at its peak, and what it leaves.
struct DecodeEstimate {
    /// Bytes held during the decode (buffers, working memory, the bitmap).
    peak: u64,
    /// Size of the decoded bitmap (JPEG: at its DCT scale).
    width: u32,
    height: u32,
    /// Channels of the decoded bitmap (3 or 4).
    channels: u64,
    /// EXIF orientation, 1..=8.
    orientation: u8,
    /// The decoder applies the orientation itself (no rotated copy after).
    upright: bool,
}

impl DecodeEstimate {
    fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    fn bitmap_bytes(&self) -> u64 {
        self.pixels() * self.channels
    }

    /// One working copy after the decode: opaque alpha dropped to RGB, or
    /// the EXIF rotation (which copies the bitmap).
    fn working_copy(&self) -> u64 {
        let decoded = self.bitmap_bytes();
        if (2..=8).contains(&self.orientation) && !self.upright {
            2 * decoded
        } else if self.channels == 4 {
            decoded + self.pixels() * 3
        } else {
            decoded
        }
    }
}

/// libjpeg-turbo at the DCT scale the plan allows: the coefficient buffer
/// of progressive or multi-scan files, the output (CMYK converted), and a
/// scaled progressive decode's copy of the file.
fn jpeg_decode(bytes: &[u8], header: &Probe, plan: &Plan) -> Result<DecodeEstimate> {
    let (w, h) = (header.width, header.height);
    let meta = jpeg::read_meta(bytes);
    let jh = jpeg::read_header(bytes)?;
    let scans = jpeg::check_cost(bytes, &jh, plan.limits().max_pixels)?;
    let orientation = decode::jpeg_orientation(&meta);
    let (ow, oh) = orient::displayed_dims(w, h, orientation);
    let (num, den) = if scans.sof == Some(0xC3) {
        (1, 1) // lossless: never DCT-scaled
    } else {
        geometry::plan_jpeg_scale(plan, ow, oh)
    };
    let sw = (w * num).div_ceil(den);
    let sh = (h * num).div_ceil(den);
    let dpx = u64::from(sw) * u64::from(sh);
    let coefficients = if scans.progressive() || scans.scans > 1 {
        scans.total_blocks * 64 * 2
    } else {
        0
    };
    let cmyk = matches!(
        jh.colorspace,
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK
    );
    let out = dpx * if cmyk { 4 + 3 } else { 3 };
    // A scaled decode of a progressive file reads a copy without the scans
    // it does not need (`progressive`): at most the file plus the zero
    // scans, at most 32 bands per component of at most 3 bytes per 32,767
    // blocks, plus headers and tables.
    let selection = if scans.progressive() && num < den {
        bytes.len() as u64 + 96 * scans.total_blocks.div_ceil(32_767) + (64 << 10)
    } else {
        0
    };
    Ok(DecodeEstimate {
        peak: coefficients + out + selection,
        width: sw,
        height: sh,
        channels: 3,
        orientation,
        upright: false,
    })
}

/// libaom: the input, its planes at the sequence header's maximum frame
/// size, its working memory, the bitmap and the alpha plane.
fn avif_decode(bytes: &[u8], header: &Probe) -> Result<DecodeEstimate> {
    let avif = crate::avif::parse(bytes)?;
    let m = avif
        .primary_item_metadata()
        .map_err(|e| crate::MediaError::corrupt(format!("avif: {e}")))?;
    let (fw, fh) = crate::avif::av1_max_frame(&avif.primary_item)?;
    let fpx = u64::from(fw) * u64::from(fh);
    let sample = if m.bit_depth > 8 { 2 } else { 1 };
    let chroma = match (m.monochrome, m.chroma_subsampling) {
        (true, _) => 0,
        (false, (true, true)) => fpx / 2,
        (false, (true, false)) => fpx,
        (false, _) => 2 * fpx,
    };
    let planes = (fpx + chroma) * sample;
    let alpha = avif.alpha_item.is_some();
    let ch = if alpha { 4 } else { 3 };
    let facts = crate::decode::avif_item_facts(bytes);
    let orientation = if facts.transforms.is_empty() {
        crate::avif::exif_item(bytes).map_or(1, |e| crate::exif::orientation(&e))
    } else {
        facts.orientation()
    };
    let input = bytes.len() as u64;
    Ok(DecodeEstimate {
        peak: input + planes + fpx * AOM_BYTES_PER_PIXEL + fpx * ch + u64::from(alpha) * fpx,
        width: header.width,
        height: header.height,
        channels: ch,
        orientation,
        upright: false,
    })
}

/// jxl-oxide: its allocation budget (f32 planes and working buffers, see
/// [`crate::jxl::decoder_budget`]), the 8-bit samples it writes, and the
/// bitmap (gray widened to RGB). It writes pixels upright.
fn jxl_decode(bytes: &[u8], header: &Probe) -> Result<DecodeEstimate> {
    let h = crate::jxl::header(bytes)?;
    let px = u64::from(header.width) * u64::from(header.height);
    let ch = if h.has_alpha { 4 } else { 3 };
    Ok(DecodeEstimate {
        peak: crate::jxl::decoder_budget(px) + 2 * px * ch,
        width: header.width,
        height: header.height,
        channels: ch,
        orientation: h.orientation,
        upright: true,
    })
}

/// heifer: the decoded frame of every tile or picture (16-bit planes), its
/// RGBA output at 8 bits, each transform's copy, and the bitmap (RGB
/// without alpha). It applies the transforms itself.
fn heic_decode(bytes: &[u8], header: &Probe, plan: &Plan) -> Result<DecodeEstimate> {
    let h = crate::heic::header(bytes)?;
    let px = u64::from(header.width) * u64::from(header.height);
    // Every coded picture the decoder will decode (grid tiles with their
    // padding, alpha), checked as `process` checks them.
    #[cfg(feature = "heic")]
    let coded = crate::heic::decode_plan(bytes, plan.limits())?.max(px);
    #[cfg(not(feature = "heic"))]
    let coded = {
        let _ = plan;
        px
    };
    let ch = if h.has_alpha { 4 } else { 3 };
    Ok(DecodeEstimate {
        peak: coded * HEIC_BYTES_PER_PIXEL + px * ch,
        width: header.width,
        height: header.height,
        channels: ch,
        orientation: h.orientation,
        upright: true,
    })
}

/// heifer per pixel: the HEVC frame (4:2:0 at 16 bits, 3 bytes), the RGBA
/// image and one transform's copy of it (8 bytes), prediction state.
const HEIC_BYTES_PER_PIXEL: u64 = 14;
/// libwebp's animation encoder per output pixel: the previous and current
/// canvases (ARGB), the candidate encodings of a frame, the sub-frame.
const WEBP_ANIM_BYTES_PER_PIXEL: u64 = 40;

/// An animated source with `animated` variants, within the limits: the
/// decoder's canvas and the composited frame (RGBA), the oriented copy,
/// and per animated variant its resized frame and libwebp's state. The
/// decoded first frame (the stills') is still held.
fn animation_peak(bytes: &[u8], plan: &Plan, header: &Probe, decode: &DecodeEstimate) -> u64 {
    if !plan.variants().iter().any(|v| v.animated) {
        return 0;
    }
    let info = crate::anim::info(bytes, header.format);
    let lim = plan.limits();
    let canvas = u64::from(header.width) * u64::from(header.height);
    if !info.is_animated()
        || !info.frames_fit
        || info.frames > lim.max_frames
        || canvas * u64::from(info.frames) > lim.max_animation_pixels
    {
        return 0;
    }
    let (ow, oh) = orient::displayed_dims(header.width, header.height, decode.orientation);
    let encoders: u64 = plan
        .variants()
        .iter()
        .filter(|v| v.animated)
        .map(|v| {
            let g = geometry::plan_variant(v, ow, oh);
            u64::from(g.canvas_w) * u64::from(g.canvas_h) * (4 + WEBP_ANIM_BYTES_PER_PIXEL)
        })
        .sum();
    decode.bitmap_bytes() + 3 * canvas * 4 + encoders
}

/// The `image` crate's decoders (PNG, GIF, WebP, TIFF): the native buffer,
/// the conversion to 8-bit RGB(A), the decoder's own working memory.
fn image_crate_decode(
    bytes: &[u8],
    format: SourceFormat,
    header: &Probe,
    plan: &Plan,
) -> Result<DecodeEstimate> {
    let px = u64::from(header.width) * u64::from(header.height);
    let mut d = decode::image_decoder(bytes, format, plan.limits())?;
    let ct = d.color_type();
    let native = d.total_bytes();
    let ch: u64 = if ct.has_alpha() { 4 } else { 3 };
    let orientation = if format == SourceFormat::Tiff {
        crate::exif::orientation(bytes)
    } else {
        d.exif_metadata()
            .ok()
            .flatten()
            .map_or(1, |e| crate::exif::orientation(&e))
    };
    // Converting to 8-bit RGB(A) copies unless it already is.
    let convert = if matches!(ct, ColorType::Rgb8 | ColorType::Rgba8) {
        0
    } else {
        px * ch
    };
    let working = match format {
        // A whole-image strip or tile is decoded before it is copied.
        SourceFormat::Tiff => native,
        // Lossless WebP decodes to ARGB words, then to RGBA bytes.
        SourceFormat::Webp => px * 4,
        // The frame is composed into a canvas.
        SourceFormat::Gif => px * 4,
        // Metadata chunks (inflated ICC, text) within the png
        // crate's allowance.
        _ => decode::PNG_METADATA_BYTES,
    };
    Ok(DecodeEstimate {
        peak: native + convert + working,
        width: header.width,
        height: header.height,
        channels: ch,
        orientation,
        upright: false,
    })
}

/// The variants: the decoded bitmap stays; full-frame variants are kept as
/// intermediates; the largest variant adds the resizer's buffers and its
/// encoders' working memory.
fn variants_peak(plan: &Plan, header: &Probe, decode: &DecodeEstimate) -> u64 {
    let decoded = decode.bitmap_bytes();
    let ch = decode.channels;
    let (ow, oh) = orient::displayed_dims(header.width, header.height, decode.orientation);
    let mut kept = 0u64;
    let mut largest = 0u64;
    for v in plan.variants() {
        let g = geometry::plan_variant(v, ow, oh);
        let out_px = u64::from(g.canvas_w) * u64::from(g.canvas_h);
        let resized = u64::from(g.resize_w) * u64::from(g.resize_h) * ch;
        if g.is_full_frame(ow, oh) {
            kept += resized;
        }
        // Resizer: premultiplied copy of the source for RGBA, the
        // intermediate of the first pass (output width x source height).
        let premultiplied = if ch == 4 { decoded } else { 0 };
        let pass = u64::from(g.resize_w) * u64::from(decode.height.max(decode.width)) * ch;
        let encode = v
            .formats
            .iter()
            .map(|f| encode_bytes_per_pixel(*f, header.format))
            .max()
            .unwrap_or(0)
            * out_px;
        largest = largest.max(premultiplied + pass + resized + encode);
    }
    decoded + kept + largest
}

/// `estimate += estimate / SAFETY_DIVISOR` (about 8 %).
const SAFETY_DIVISOR: u64 = 12;

fn encode_bytes_per_pixel(choice: FormatChoice, source: SourceFormat) -> u64 {
    match crate::engine::resolve(choice, source) {
        OutputFormat::Avif => AVIF_ENCODE_BYTES_PER_PIXEL,
        OutputFormat::Webp => WEBP_ENCODE_BYTES_PER_PIXEL,
        OutputFormat::Png => PNG_ENCODE_BYTES_PER_PIXEL,
        OutputFormat::Jpeg => JPEG_ENCODE_BYTES_PER_PIXEL,
    }
}
