//! The pipeline of one source: limits, sniff, decode once, orient, then every
//! variant (largest first, smaller ones derived from larger intermediates
//! when they keep the quality margin), encode, placeholder.

use crate::bitmap::Bitmap;
use crate::decode::{self, Decoded};
use crate::encode::{self, EncodeParams};
use crate::error::{EngineError, ErrorKind, Result};
use crate::geometry::{self, Region, VariantGeometry, DECODE_MARGIN};
use crate::output::{EncodedVariant, Output, SourceFacts, Timings};
use crate::plan::{Color, Filter, Fit, FormatChoice, Limits, OutputFormat, Plan};
use crate::sniff::{sniff, SourceFormat};
use crate::stop::Stop;
use crate::{jpeg, limits, orient, placeholder, resize};
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// What can be learnt from the header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    /// Stored dimensions (before EXIF orientation).
    pub width: u32,
    pub height: u32,
}

/// Sniffs the format and checks byte and pixel limits without decoding.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    guard(|| {
        limits::check_bytes(bytes.len(), limits)?;
        let format = sniff(bytes)?;
        let (width, height) = limits::header_dims(bytes, format)?;
        limits::check_pixels(width, height, limits)?;
        Ok(Probe {
            format,
            width,
            height,
        })
    })
}

/// Turns one source into all of the plan's variants.
///
/// Never panics: a panic inside a codec is caught and reported as an
/// [`crate::ErrorKind::Internal`] error.
pub fn process(bytes: &[u8], plan: &Plan) -> Result<Output> {
    process_with(bytes, plan, &Stop::new())
}

/// [`process`], ending with a retryable `timeout` error at the next stage
/// once `stop` is set (see [`Stop`]).
pub fn process_with(bytes: &[u8], plan: &Plan, stop: &Stop) -> Result<Output> {
    guard(|| run(bytes, plan, stop))
}

/// A decoded, upright, sRGB image (8 bits per channel, RGB or RGBA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// 3 or 4.
    pub channels: u8,
    pub data: Vec<u8>,
}

/// Decodes a source at full resolution, applies orientation and converts to
/// sRGB — the reference the engine's outputs are compared against in tests
/// and quality scores. Same limits and errors as [`process`].
pub fn decode_upright(bytes: &[u8], limits: &Limits) -> Result<RgbImage> {
    guard(|| {
        let header = probe(bytes, limits)?;
        let decoded = decode_full(bytes, header.format, limits, |_, _| (1, 1))?;
        let b = orient::apply(decoded.bitmap, decoded.orientation);
        Ok(RgbImage {
            width: b.width,
            height: b.height,
            channels: b.channels,
            data: b.data,
        })
    })
}

/// Decodes any supported format; `jpeg_scale` picks the DCT scale from the
/// displayed full-resolution size.
///
/// A decoder that panics on an input will do so on every retry: that is
/// reported as a permanent `Corrupt` error naming the decoder's complaint.
fn decode_full(
    bytes: &[u8],
    format: SourceFormat,
    lim: &Limits,
    jpeg_scale: impl FnOnce(u32, u32) -> (u32, u32),
) -> Result<Decoded> {
    guard_input(&format!("{format} decoder"), || {
        decode_any(bytes, format, lim, jpeg_scale)
    })
}

/// [`guard`] for code that reads the input (decoders, container parsers):
/// a panic there recurs on every retry, so it is the input's fault, a
/// permanent `corrupt` naming `reader` and its complaint.
pub(crate) fn guard_input<T>(reader: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    guard(f).map_err(|e| match e.kind() {
        ErrorKind::Internal if e.message().starts_with(PANIC_PREFIX) => {
            EngineError::corrupt(format!(
                "{reader} rejected the input ({})",
                &e.message()[PANIC_PREFIX.len()..]
            ))
        }
        _ => e,
    })
}

fn decode_any(
    bytes: &[u8],
    format: SourceFormat,
    lim: &Limits,
    jpeg_scale: impl FnOnce(u32, u32) -> (u32, u32),
) -> Result<Decoded> {
    match format {
        SourceFormat::Jpeg => {
            let meta = jpeg::read_meta(bytes);
            let jh = jpeg::read_header(bytes)?;
            jpeg::check_cost(bytes, &jh, lim.max_pixels)?;
            let o = decode::jpeg_orientation(&meta);
            let (dw, dh) = orient::displayed_dims(jh.width, jh.height, o);
            decode::decode_jpeg(bytes, &jh, &meta, jpeg_scale(dw, dh))
        }
        SourceFormat::Avif => {
            let ispe = limits::header_dims(bytes, format)?;
            decode::decode_avif(bytes, ispe, lim)
        }
        other => decode::decode_with_image(bytes, other, lim),
    }
}

const PANIC_PREFIX: &str = "codec panicked: ";

pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(EngineError::internal(format!("{PANIC_PREFIX}{msg}")))
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The format a variant's choice resolves to for this source.
pub(crate) fn resolve(choice: FormatChoice, source: SourceFormat) -> OutputFormat {
    match choice {
        FormatChoice::Fixed(f) => f,
        FormatChoice::Source => match source {
            SourceFormat::Jpeg | SourceFormat::Tiff => OutputFormat::Jpeg,
            SourceFormat::Png | SourceFormat::Gif => OutputFormat::Png,
            SourceFormat::Webp => OutputFormat::Webp,
            SourceFormat::Avif => OutputFormat::Avif,
        },
    }
}

/// A full-frame image at (possibly non-uniform) scale of the displayed source.
struct Frame {
    bitmap: Bitmap,
    sx: f64,
    sy: f64,
    filter: Option<Filter>,
}

fn run(bytes: &[u8], plan: &Plan, stop: &Stop) -> Result<Output> {
    let start = Instant::now();
    let mut t = Timings::default();
    let lim = plan.limits();
    let header = probe(bytes, lim)?;
    stop.check("decoding")?;
    let (sw, sh) = (header.width, header.height);
    t.sniff_ms = ms(start);

    // Decode once, at the smallest JPEG scale every variant allows.
    let t_dec = Instant::now();
    let decoded = decode_full(bytes, header.format, lim, |dw, dh| {
        let needed = plan
            .variants()
            .iter()
            .map(|v| geometry::plan_variant(v, dw, dh).needed_scale())
            .fold(0.0_f64, f64::max);
        geometry::jpeg_scale(needed)
    })?;
    t.decode_ms = ms(t_dec);
    stop.check("orienting")?;
    let Decoded {
        mut bitmap,
        orientation,
        color_model,
        color,
    } = decoded;
    if bitmap.width == 0 || bitmap.height == 0 {
        return Err(EngineError::corrupt("decoded image is empty"));
    }
    if bitmap.channels == 4 && bitmap.is_opaque() {
        // Opaque alpha costs a 4-channel resize and a larger encode for nothing.
        bitmap = bitmap.without_alpha();
    }
    let (decoded_w, decoded_h) = (bitmap.width, bitmap.height);

    let t_or = Instant::now();
    let bitmap = orient::apply(bitmap, orientation);
    t.orient_ms = ms(t_or);
    // Displayed full-resolution size: what the variant boxes refer to.
    let (dw, dh) = orient::displayed_dims(sw, sh, orientation);
    let base = Frame {
        sx: f64::from(bitmap.width) / f64::from(dw),
        sy: f64::from(bitmap.height) / f64::from(dh),
        bitmap,
        filter: None,
    };

    // Largest outputs first, so smaller ones can start from them.
    let geoms: Vec<VariantGeometry> = plan
        .variants()
        .iter()
        .map(|v| geometry::plan_variant(v, dw, dh))
        .collect();
    let mut order: Vec<usize> = (0..geoms.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse(u64::from(geoms[i].resize_w) * u64::from(geoms[i].resize_h))
    });

    let mut frames: Vec<Frame> = Vec::new();
    let mut results: Vec<Vec<EncodedVariant>> = vec![Vec::new(); geoms.len()];
    for &i in &order {
        let v = &plan.variants()[i];
        let g = &geoms[i];
        let need_x = f64::from(g.resize_w) * DECODE_MARGIN / g.region.width;
        let need_y = f64::from(g.resize_h) * DECODE_MARGIN / g.region.height;
        // The smallest intermediate that still holds the margin, else the decode.
        let src = frames
            .iter()
            .filter(|f| f.filter == Some(v.filter) && f.sx >= need_x && f.sy >= need_y)
            .min_by_key(|f| u64::from(f.bitmap.width) * u64::from(f.bitmap.height))
            .unwrap_or(&base);
        let (bw, bh) = (f64::from(src.bitmap.width), f64::from(src.bitmap.height));
        let region = Region {
            left: (g.region.left * src.sx).min(bw),
            top: (g.region.top * src.sy).min(bh),
            width: (g.region.width * src.sx).min(bw).max(f64::MIN_POSITIVE),
            height: (g.region.height * src.sy).min(bh).max(f64::MIN_POSITIVE),
        };
        stop.check(&format!("resizing {}", v.name))?;
        let t_rs = Instant::now();
        let resized = resize::resize(&src.bitmap, region, g.resize_w, g.resize_h, v.filter)?;
        t.resize_ms += ms(t_rs);

        let t_enc = Instant::now();
        let mut done: Vec<OutputFormat> = Vec::new();
        for &choice in &v.formats {
            let format = resolve(choice, header.format);
            if done.contains(&format) {
                continue; // "source" resolved to a format also listed explicitly
            }
            done.push(format);
            stop.check(&format!("encoding {} as {format}", v.name))?;
            let img = compose(&resized, g, v.fit, v.background, format);
            let quality = v.quality.unwrap_or(format.default_quality());
            let data = encode::encode(
                &img,
                format,
                EncodeParams {
                    quality,
                    lossless: v.lossless,
                },
                plan.encode_options(),
            )?;
            results[i].push(EncodedVariant {
                name: v.name.clone(),
                format,
                width: img.width,
                height: img.height,
                data,
            });
        }
        t.encode_ms += ms(t_enc);
        if g.is_full_frame(dw, dh) {
            frames.push(Frame {
                sx: f64::from(resized.width) / f64::from(dw),
                sy: f64::from(resized.height) / f64::from(dh),
                bitmap: resized,
                filter: Some(v.filter),
            });
        }
    }

    stop.check("the placeholder")?;
    let t_ph = Instant::now();
    let placeholder = if plan.placeholder() {
        // The smallest full-frame image is the cheapest good source.
        let src = frames
            .iter()
            .filter(|f| (f.sx - f.sy).abs() < 0.02 * f.sx.max(f.sy))
            .min_by_key(|f| u64::from(f.bitmap.width) * u64::from(f.bitmap.height))
            .unwrap_or(&base);
        Some(placeholder::compute(&src.bitmap)?)
    } else {
        None
    };
    t.placeholder_ms = ms(t_ph);
    t.total_ms = ms(start);

    Ok(Output {
        source: SourceFacts {
            format: header.format,
            width: dw,
            height: dh,
            stored_width: sw,
            stored_height: sh,
            bytes: bytes.len() as u64,
            orientation,
            has_alpha: base.bitmap.has_alpha(),
            color_model,
            icc_profile: color.profile,
            converted_to_srgb: color.converted,
            decoded_width: decoded_w,
            decoded_height: decoded_h,
        },
        variants: results.into_iter().flatten().collect(),
        placeholder,
        timings: t,
        plan_fingerprint: plan.fingerprint(),
    })
}

/// Builds the final image for one format: `contain` padding, then flattening
/// of alpha for formats without it. Borrows `resized` when nothing changes,
/// so the common case copies no pixels.
fn compose<'a>(
    resized: &'a Bitmap,
    g: &VariantGeometry,
    fit: Fit,
    background: Option<Color>,
    format: OutputFormat,
) -> Cow<'a, Bitmap> {
    let alpha_ok = format.supports_alpha();
    let flatten_bg = background.map_or(Color::WHITE, |c| Color { a: 255, ..c });
    let padded = fit == Fit::Contain && (g.canvas_w != g.resize_w || g.canvas_h != g.resize_h);
    let img = if padded {
        let bg = match background {
            Some(c) => c,
            None if alpha_ok => Color::TRANSPARENT,
            None => Color::WHITE,
        };
        let channels = if resized.has_alpha() || (alpha_ok && bg.a < 255) {
            4
        } else {
            3
        };
        let bg = if channels == 3 { flatten_bg } else { bg };
        let mut canvas = Bitmap::filled(g.canvas_w, g.canvas_h, channels, bg);
        if channels == resized.channels {
            canvas.paste(resized, g.offset_x, g.offset_y);
        } else {
            canvas.paste(&resized.with_alpha(), g.offset_x, g.offset_y);
        }
        Cow::Owned(canvas)
    } else {
        Cow::Borrowed(resized)
    };
    if !alpha_ok && img.has_alpha() {
        Cow::Owned(img.flattened(flatten_bg))
    } else {
        img
    }
}
