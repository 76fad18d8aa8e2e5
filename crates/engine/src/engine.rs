//! The pipeline of one source: limits, sniff, decode once, orient, then every
//! variant (largest first, smaller ones derived from larger intermediates
//! when they keep the quality margin), encode, placeholder.

use crate::bitmap::Bitmap;
use crate::decode::{self, Decoded};
use crate::encode::{self, EncodeParams};
use crate::error::{ErrorKind, MediaError, Result};
use crate::geometry::{self, Region, VariantGeometry, DECODE_MARGIN};
use crate::output::{AnimationFacts, EncodedVariant, Output, SourceFacts, Timings};
use crate::plan::{
    Color, EncodeOptions, Filter, Fit, FormatChoice, Limits, OutputFormat, Plan, Variant,
};
use crate::sniff::{sniff, SourceFormat};
use crate::stop::Stop;
use crate::{anim, jpeg, limits, orient, placeholder, resize, smartcrop};
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
        let pending = decoded.pending_orientation();
        let b = orient::apply(decoded.bitmap, pending);
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
            MediaError::corrupt(format!(
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
        SourceFormat::Jxl => decode::decode_jxl(bytes, lim),
        SourceFormat::Heic => decode::decode_heic(bytes, lim),
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
        Err(MediaError::internal(format!("{PANIC_PREFIX}{msg}")))
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
            SourceFormat::Jpeg | SourceFormat::Tiff | SourceFormat::Heic | SourceFormat::Jxl => {
                OutputFormat::Jpeg
            }
            SourceFormat::Png | SourceFormat::Gif => OutputFormat::Png,
            SourceFormat::Webp => OutputFormat::Webp,
            SourceFormat::Avif => OutputFormat::Avif,
        },
    }
}

/// A full-frame image at (possibly non-uniform) scale of the displayed source.
struct Frame {
    bitmap: Bitmap,
    /// This bitmap's pixels per displayed full-resolution pixel, per axis.
    scale_x: f64,
    scale_y: f64,
    /// Where the displayed image's top-left corner lies in this bitmap's
    /// pixels: not 0 only for a DCT-scaled decode whose partial last pixel
    /// orientation moved to the left or top.
    origin_x: f64,
    origin_y: f64,
    /// The filter that made it (`None` for the decoded source itself).
    filter: Option<Filter>,
}

impl Frame {
    /// `bitmap` as the whole of a source displayed at `width x height`.
    fn of_displayed(bitmap: Bitmap, (width, height): (u32, u32), filter: Option<Filter>) -> Frame {
        Frame {
            scale_x: f64::from(bitmap.width) / f64::from(width),
            scale_y: f64::from(bitmap.height) / f64::from(height),
            origin_x: 0.0,
            origin_y: 0.0,
            bitmap,
            filter,
        }
    }

    /// The decoded source, `upright`, decoded at the JPEG DCT scale `scale`
    /// (1/1 for every other decoder) from a source displayed at `displayed`
    /// with `orientation`. libjpeg-turbo's scaled decode is
    /// ceil(size x scale) pixels, so when size x scale is not whole the image
    /// spans only part of the last column or row (3837 rows at 1/4: 959.25
    /// of 960). The frame keeps the exact scale and where the image begins,
    /// so a variant is resampled from exactly its region; taking the bitmap
    /// as the whole image would stretch every output by up to a pixel of the
    /// decode, which cost up to 10 SSIMULACRA2 points at JPEG q80.
    fn of_decode(
        upright: Bitmap,
        displayed: (u32, u32),
        scale: (u32, u32),
        orientation: u8,
    ) -> Frame {
        let s = f64::from(scale.0) / f64::from(scale.1);
        let (span_w, span_h) = (f64::from(displayed.0) * s, f64::from(displayed.1) * s);
        let fits = |size: u32, span: f64| size == span.ceil() as u32;
        if scale.0 == scale.1 || !fits(upright.width, span_w) || !fits(upright.height, span_h) {
            return Frame::of_displayed(upright, displayed, None);
        }
        let (reversed_x, reversed_y) = orient::reverses_axes(orientation);
        let origin = |reversed: bool, size: u32, span: f64| {
            if reversed {
                f64::from(size) - span
            } else {
                0.0
            }
        };
        Frame {
            scale_x: s,
            scale_y: s,
            origin_x: origin(reversed_x, upright.width, span_w),
            origin_y: origin(reversed_y, upright.height, span_h),
            bitmap: upright,
            filter: None,
        }
    }

    fn pixels(&self) -> u64 {
        u64::from(self.bitmap.width) * u64::from(self.bitmap.height)
    }
}

/// The steps of [`process`]: probe the header, decode once, prepare the
/// bitmap, orient it, make every variant, compute the placeholder.
fn run(bytes: &[u8], plan: &Plan, stop: &Stop) -> Result<Output> {
    let start = Instant::now();
    let mut timings = Timings::default();
    let header = probe(bytes, plan.limits())?;
    stop.check("decoding")?;
    timings.sniff_ms = ms(start);

    let decode_start = Instant::now();
    let (decoded, scale) = decode_for_plan(bytes, header.format, plan)?;
    timings.decode_ms = ms(decode_start);
    stop.check("orienting")?;
    let pending = decoded.pending_orientation();
    let Decoded {
        bitmap,
        orientation,
        color_model,
        color,
        ..
    } = decoded;
    let bitmap = working_bitmap(bitmap)?;
    let (decoded_width, decoded_height) = (bitmap.width, bitmap.height);

    let orient_start = Instant::now();
    let upright = orient::apply(bitmap, pending);
    timings.orient_ms = ms(orient_start);
    // Displayed full-resolution size: what the variant boxes refer to.
    let displayed = orient::displayed_dims(header.width, header.height, orientation);
    let source = Frame::of_decode(upright, displayed, scale, orientation);

    let (mut variants, intermediates, geometries) =
        make_variants(plan, &source, header.format, displayed, stop, &mut timings)?;
    let animation = animate(
        bytes,
        header.format,
        plan,
        &geometries,
        pending,
        stop,
        &mut variants,
        &mut timings,
    )?;

    stop.check("the placeholder")?;
    let placeholder_start = Instant::now();
    let placeholder = if plan.placeholder() {
        let frame = placeholder_source(&intermediates, &source);
        Some(placeholder::compute(&frame.bitmap)?)
    } else {
        None
    };
    timings.placeholder_ms = ms(placeholder_start);
    timings.total_ms = ms(start);

    Ok(Output {
        source: SourceFacts {
            format: header.format,
            width: displayed.0,
            height: displayed.1,
            stored_width: header.width,
            stored_height: header.height,
            bytes: bytes.len() as u64,
            orientation,
            has_alpha: source.bitmap.has_alpha(),
            color_model,
            icc_profile: color.profile,
            converted_to_srgb: color.converted,
            decoded_width,
            decoded_height,
            animation,
        },
        variants,
        placeholder,
        timings,
        plan_fingerprint: plan.fingerprint(),
    })
}

/// Decodes once, at the smallest JPEG scale every variant allows; returns
/// that scale (1/1 when the decoder has none).
fn decode_for_plan(
    bytes: &[u8],
    format: SourceFormat,
    plan: &Plan,
) -> Result<(Decoded, (u32, u32))> {
    let mut scale = (1, 1);
    let decoded = decode_full(bytes, format, plan.limits(), |width, height| {
        scale = geometry::plan_jpeg_scale(plan, width, height);
        scale
    })?;
    Ok((decoded, scale))
}

/// The decoded bitmap the variants start from: never empty, and without an
/// alpha channel that is opaque everywhere (it would cost a 4-channel
/// resize and a larger encode for nothing).
fn working_bitmap(bitmap: Bitmap) -> Result<Bitmap> {
    if bitmap.width == 0 || bitmap.height == 0 {
        return Err(MediaError::corrupt("decoded image is empty"));
    }
    if bitmap.channels == 4 && bitmap.is_opaque() {
        return Ok(bitmap.without_alpha());
    }
    Ok(bitmap)
}

/// Makes every variant of `plan` from `source` (displayed at `displayed`),
/// largest first, so smaller ones can start from the larger ones kept as
/// intermediates. Returns the outputs in plan order, and the intermediates.
fn make_variants(
    plan: &Plan,
    source: &Frame,
    source_format: SourceFormat,
    displayed: (u32, u32),
    stop: &Stop,
    timings: &mut Timings,
) -> Result<(Vec<EncodedVariant>, Vec<Frame>, Vec<VariantGeometry>)> {
    let mut geometries: Vec<VariantGeometry> = plan
        .variants()
        .iter()
        .map(|v| geometry::plan_variant(v, displayed.0, displayed.1))
        .collect();
    let crop_start = Instant::now();
    place_smart_crops(plan, &source.bitmap, displayed, &mut geometries)?;
    timings.resize_ms += ms(crop_start);
    let mut intermediates: Vec<Frame> = Vec::new();
    let mut outputs: Vec<Vec<EncodedVariant>> = vec![Vec::new(); geometries.len()];
    for i in largest_first(&geometries) {
        let variant = &plan.variants()[i];
        let geometry = &geometries[i];
        let from = resize_source(&intermediates, source, variant.filter, geometry);
        let region = region_in(from, geometry);
        stop.check(&format!("resizing {}", variant.name))?;
        let resize_start = Instant::now();
        let resized = resize::resize(
            &from.bitmap,
            region,
            geometry.resize_w,
            geometry.resize_h,
            variant.filter,
        )?;
        timings.resize_ms += ms(resize_start);

        let encode_start = Instant::now();
        let encode = EncodeStep {
            resized: &resized,
            variant,
            geometry,
            source_format,
            options: plan.encode_options(),
        };
        outputs[i] = encode.every_format(stop)?;
        timings.encode_ms += ms(encode_start);
        if geometry.is_full_frame(displayed.0, displayed.1) {
            intermediates.push(Frame::of_displayed(
                resized,
                displayed,
                Some(variant.filter),
            ));
        }
    }
    Ok((
        outputs.into_iter().flatten().collect(),
        intermediates,
        geometries,
    ))
}

/// Moves the crop of every `cover` variant whose gravity is `attention` or
/// `entropy` to the window its strategy scores best, on `upright` (the
/// whole source at any scale). Each strategy analyses the image once.
fn place_smart_crops(
    plan: &Plan,
    upright: &Bitmap,
    displayed: (u32, u32),
    geometries: &mut [VariantGeometry],
) -> Result<()> {
    let mut analyses: Vec<smartcrop::Analysis> = Vec::new();
    for (variant, g) in plan.variants().iter().zip(geometries.iter_mut()) {
        if variant.fit != Fit::Cover
            || !variant.gravity.is_smart()
            || g.is_full_frame(displayed.0, displayed.1)
        {
            continue;
        }
        let index = match analyses
            .iter()
            .position(|a| a.strategy() == variant.gravity)
        {
            Some(i) => i,
            None => {
                analyses.push(smartcrop::Analysis::new(upright, variant.gravity)?);
                analyses.len() - 1
            }
        };
        g.region = analyses[index].place(g.region, displayed);
    }
    Ok(())
}

/// The `animated` variants of an animated GIF or WebP: every frame (one
/// composited canvas at a time) resized like the variant's still and fed
/// to an animated WebP encoder, whose file replaces the variant's still
/// WebP. Within the limits only (frames and total pixels, from the
/// header); over them the stills stay and the facts say why.
#[allow(clippy::too_many_arguments)]
fn animate(
    bytes: &[u8],
    format: SourceFormat,
    plan: &Plan,
    geometries: &[VariantGeometry],
    orientation: u8,
    stop: &Stop,
    variants: &mut [EncodedVariant],
    timings: &mut Timings,
) -> Result<Option<AnimationFacts>> {
    let info = anim::info(bytes, format);
    if !info.is_animated() {
        return Ok(None);
    }
    let mut facts = AnimationFacts {
        frames: info.frames,
        duration_ms: info.duration_ms,
        loop_count: info.loop_count,
        kept_still: None,
    };
    let animated: Vec<usize> = (0..plan.variants().len())
        .filter(|&i| plan.variants()[i].animated)
        .collect();
    if animated.is_empty() {
        return Ok(Some(facts));
    }
    let lim = plan.limits();
    let (w, h) = limits::header_dims(bytes, format)?;
    let total = u64::from(w) * u64::from(h) * u64::from(info.frames);
    if !info.frames_fit {
        facts.kept_still = Some("a frame extends beyond the canvas".to_string());
        return Ok(Some(facts));
    }
    if info.frames > lim.max_frames {
        facts.kept_still = Some(format!(
            "{} frames, over limits.max_frames = {}",
            info.frames, lim.max_frames
        ));
        return Ok(Some(facts));
    }
    if total > lim.max_animation_pixels {
        facts.kept_still = Some(format!(
            "{} frames of {w}x{h} = {total} pixels, over limits.max_animation_pixels = {}",
            info.frames, lim.max_animation_pixels
        ));
        return Ok(Some(facts));
    }
    let mut encoders = Vec::with_capacity(animated.len());
    for &i in &animated {
        let v = &plan.variants()[i];
        let g = &geometries[i];
        let params = EncodeParams {
            quality: v.quality.unwrap_or(OutputFormat::Webp.default_quality()),
            lossless: v.lossless,
        };
        let config = encode::webp_config(params, plan.encode_options().webp_method)?;
        encoders.push(anim::WebpAnimation::new(
            g.canvas_w,
            g.canvas_h,
            config,
            info.loop_count,
        )?);
    }
    let mut frames = 0u32;
    let mut duration_ms = 0u64;
    for frame in guard_input(&format!("{format} animation decoder"), || {
        anim::frames(bytes, format, info.frames)
    })? {
        let frame = frame?;
        stop.check(&format!("animation frame {}", frames + 1))?;
        let start = Instant::now();
        let canvas = orient::apply(frame.bitmap, orientation);
        if (canvas.width, canvas.height) != orient::displayed_dims(w, h, orientation) {
            return Err(MediaError::corrupt(format!(
                "{format} animation frame is {}x{}, the canvas {w}x{h}",
                canvas.width, canvas.height
            )));
        }
        for (encoder, &i) in encoders.iter_mut().zip(&animated) {
            let v = &plan.variants()[i];
            let g = &geometries[i];
            // The canvas is the displayed source at full size: the
            // variant's region applies as it is.
            let resized = resize::resize(&canvas, g.region, g.resize_w, g.resize_h, v.filter)?;
            let image = compose(&resized, g, v.fit, v.background, OutputFormat::Webp);
            encoder.add(&image, frame.delay_ms)?;
        }
        timings.resize_ms += ms(start);
        frames += 1;
        duration_ms += u64::from(frame.delay_ms);
    }
    let start = Instant::now();
    for (encoder, &i) in encoders.into_iter().zip(&animated) {
        let name = &plan.variants()[i].name;
        let data = encoder.finish()?;
        if let Some(out) = variants
            .iter_mut()
            .find(|o| &o.name == name && o.format == OutputFormat::Webp)
        {
            out.data = data;
            out.frames = frames;
            out.duration_ms = duration_ms;
        }
    }
    timings.encode_ms += ms(start);
    Ok(Some(facts))
}

/// Variant indices, largest resize first.
fn largest_first(geometries: &[VariantGeometry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..geometries.len()).collect();
    order.sort_by_key(|&i| {
        let g = &geometries[i];
        std::cmp::Reverse(u64::from(g.resize_w) * u64::from(g.resize_h))
    });
    order
}

/// The frame a variant is resized from: the smallest intermediate made with
/// the variant's filter that still holds the decode margin for it, else the
/// decoded source.
fn resize_source<'a>(
    intermediates: &'a [Frame],
    source: &'a Frame,
    filter: Filter,
    geometry: &VariantGeometry,
) -> &'a Frame {
    let (needed_x, needed_y) = geometry.needed_scales(DECODE_MARGIN);
    intermediates
        .iter()
        .filter(|f| f.filter == Some(filter) && f.scale_x >= needed_x && f.scale_y >= needed_y)
        .min_by_key(|f| f.pixels())
        .unwrap_or(source)
}

/// The variant's region (in displayed full-resolution pixels) in `frame`'s
/// pixels, kept inside the frame and never empty.
fn region_in(frame: &Frame, geometry: &VariantGeometry) -> Region {
    let frame_width = f64::from(frame.bitmap.width);
    let frame_height = f64::from(frame.bitmap.height);
    let region = &geometry.region;
    let left = (frame.origin_x + region.left * frame.scale_x).min(frame_width);
    let top = (frame.origin_y + region.top * frame.scale_y).min(frame_height);
    Region {
        left,
        top,
        width: (region.width * frame.scale_x)
            .min(frame_width - left)
            .max(f64::MIN_POSITIVE),
        height: (region.height * frame.scale_y)
            .min(frame_height - top)
            .max(f64::MIN_POSITIVE),
    }
}

/// One resized variant, to be encoded in each of its formats.
struct EncodeStep<'a> {
    resized: &'a Bitmap,
    variant: &'a Variant,
    geometry: &'a VariantGeometry,
    source_format: SourceFormat,
    options: &'a EncodeOptions,
}

impl EncodeStep<'_> {
    /// Every format of the variant, in its order, each once (`source` may
    /// resolve to a format also listed explicitly).
    fn every_format(&self, stop: &Stop) -> Result<Vec<EncodedVariant>> {
        let mut outputs: Vec<EncodedVariant> = Vec::new();
        let mut done: Vec<OutputFormat> = Vec::new();
        for &choice in &self.variant.formats {
            let format = resolve(choice, self.source_format);
            if done.contains(&format) {
                continue;
            }
            done.push(format);
            stop.check(&format!("encoding {} as {format}", self.variant.name))?;
            outputs.push(self.one_format(format)?);
        }
        Ok(outputs)
    }

    fn one_format(&self, format: OutputFormat) -> Result<EncodedVariant> {
        let variant = self.variant;
        let image = compose(
            self.resized,
            self.geometry,
            variant.fit,
            variant.background,
            format,
        );
        let params = EncodeParams {
            quality: variant.quality.unwrap_or(format.default_quality()),
            lossless: variant.lossless,
        };
        let data = encode::encode(&image, format, params, self.options)?;
        Ok(EncodedVariant {
            name: variant.name.clone(),
            format,
            width: image.width,
            height: image.height,
            data,
            frames: 1,
            duration_ms: 0,
        })
    }
}

/// The placeholder's source: the smallest frame with (nearly) the same
/// scale on both axes, the cheapest good one.
fn placeholder_source<'a>(intermediates: &'a [Frame], source: &'a Frame) -> &'a Frame {
    intermediates
        .iter()
        .filter(|f| (f.scale_x - f.scale_y).abs() < 0.02 * f.scale_x.max(f.scale_y))
        .min_by_key(|f| f.pixels())
        .unwrap_or(source)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Variant;

    fn blank(width: u32, height: u32) -> Bitmap {
        Bitmap::new(width, height, 3, vec![0; (width * height * 3) as usize])
    }

    fn whole_region(frame: &Frame, displayed: (u32, u32)) -> Region {
        let variant = Variant::new("v", Some(100), None);
        region_in(
            frame,
            &geometry::plan_variant(&variant, displayed.0, displayed.1),
        )
    }

    #[test]
    fn a_scaled_decode_is_resampled_from_the_image_not_its_rounded_up_size() {
        // 2560x3837 stored, at 1/4: libjpeg-turbo decodes 640x960, of which
        // the image is 640x959.25, the partial row last in stored order.
        // (orientation, upright bitmap, displayed, region: left, top, width, height)
        let cases = [
            // Upright: the partial row is the last one.
            (1, (640, 960), (2560, 3837), (0.0, 0.0, 640.0, 959.25)),
            // Rotated 180 degrees: it is the first row.
            (3, (640, 960), (2560, 3837), (0.0, 0.75, 640.0, 959.25)),
            // Rotated 90 degrees clockwise: the first column.
            (6, (960, 640), (3837, 2560), (0.75, 0.0, 959.25, 640.0)),
            // Rotated 90 degrees anti-clockwise: the last column.
            (8, (960, 640), (3837, 2560), (0.0, 0.0, 959.25, 640.0)),
        ];
        for (orientation, (w, h), displayed, expected) in cases {
            let frame = Frame::of_decode(blank(w, h), displayed, (1, 4), orientation);
            let r = whole_region(&frame, displayed);
            assert_eq!(
                (r.left, r.top, r.width, r.height),
                expected,
                "orientation {orientation}"
            );
        }
    }

    #[test]
    fn a_decode_of_any_other_size_is_taken_as_the_whole_image() {
        // Full-scale decodes, and a bitmap that is not ceil(size x scale),
        // keep the old mapping: the bitmap is the image.
        for (bitmap, scale) in [(blank(2560, 3837), (1, 1)), (blank(700, 900), (1, 4))] {
            let (w, h) = (bitmap.width, bitmap.height);
            let frame = Frame::of_decode(bitmap, (2560, 3837), scale, 3);
            let r = whole_region(&frame, (2560, 3837));
            assert_eq!(
                (r.left, r.top, r.width, r.height),
                (0.0, 0.0, f64::from(w), f64::from(h))
            );
        }
    }
}
