//! JPEG XL through `jxl-oxide` (pure Rust), on one thread, with its
//! allocation tracker as the memory fence.
//!
//! The header stage reads the codestream's size header (stored size and
//! orientation) without touching a frame. Decoding renders the first
//! keyframe: XYB-encoded images (lossy VarDCT, and JPEGs recompressed into
//! JPEG XL keep their YCbCr but carry an enum colour encoding) are rendered
//! straight to sRGB by the decoder; images whose pixels are in an embedded
//! ICC profile are rendered as stored and converted by the engine's colour
//! module like every other format. `jxl-oxide` applies the orientation while
//! writing pixels out, so the bitmap comes back upright.

use crate::bitmap::Bitmap;
use crate::color::{self, ColorFacts};
use crate::decode::UprightPixels;
use crate::error::{MediaError, Result};
use crate::plan::Limits;
use jxl_oxide::{
    AllocTracker, EnumColourEncoding, JxlImage, JxlThreadPool, PixelFormat, RenderingIntent,
};

/// What the size header says, before any frame is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JxlHeader {
    /// Stored size (before orientation).
    pub width: u32,
    pub height: u32,
    /// 1..=8, as EXIF numbers them.
    pub orientation: u8,
    pub has_alpha: bool,
}

fn corrupt(what: impl std::fmt::Display) -> MediaError {
    MediaError::corrupt(format!("jxl: {what}"))
}

/// Reads the image header only, with the decoder's own parser: no frame
/// header or table of contents is looked at (a frame claiming absurd sizes
/// is the pixel limit's business, after this).
pub fn header(bytes: &[u8]) -> Result<JxlHeader> {
    let codestream = codestream_start(bytes)?;
    let mut bitstream = jxl_bitstream::Bitstream::new(&codestream);
    let h = <jxl_oxide::ImageHeader as jxl_oxide_common::Bundle>::parse(&mut bitstream, ())
        .map_err(|e| {
            if e.unexpected_eof() {
                corrupt("the file ends inside its image header")
            } else {
                corrupt(format!("bad image header: {e}"))
            }
        })?;
    Ok(JxlHeader {
        width: h.size.width,
        height: h.size.height,
        orientation: u8::try_from(h.metadata.orientation)
            .ok()
            .filter(|o| (1..=8).contains(o))
            .unwrap_or(1),
        has_alpha: h.metadata.ec_info.iter().any(|ec| ec.is_alpha()),
    })
}

/// The first bytes of the codestream: the file itself when it is a bare
/// codestream, else the contents of the container's `jxlc` box or of its
/// `jxlp` boxes in order (each without its 4-byte index), up to 64 KiB.
fn codestream_start(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(&[0xFF, 0x0A]) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    const ENOUGH: usize = 64 << 10;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() && out.len() < ENOUGH {
        let size32 = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let kind = &bytes[at + 4..at + 8];
        let (header, size) = match size32 {
            0 => (8, bytes.len() - at),
            1 => {
                let large = bytes
                    .get(at + 8..at + 16)
                    .ok_or_else(|| corrupt("the container is truncated"))?;
                let large = u64::from_be_bytes(large.try_into().expect("8 bytes"));
                (16, usize::try_from(large).unwrap_or(usize::MAX))
            }
            n => (8, n as usize),
        };
        if size < header {
            return Err(corrupt("a container box has an impossible size"));
        }
        let end = at.saturating_add(size).min(bytes.len());
        let body = &bytes[(at + header).min(end)..end];
        match kind {
            b"jxlc" => out.extend_from_slice(body),
            b"jxlp" => out.extend_from_slice(body.get(4..).unwrap_or(&[])),
            _ => {}
        }
        at = at.saturating_add(size);
    }
    if out.is_empty() {
        return Err(corrupt("the container holds no codestream"));
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Bytes `jxl-oxide` may allocate for an image of `pixels`: its f32
/// planes for up to four channels, the modular or VarDCT working buffers
/// and the render, with room for group borders.
pub fn decoder_budget(pixels: u64) -> u64 {
    pixels.saturating_mul(DECODER_BYTES_PER_PIXEL) + (32 << 20)
}

/// Per pixel: measured peak of the tracker on lossy and lossless 12 MP
/// RGB files was below 40 bytes.
pub const DECODER_BYTES_PER_PIXEL: u64 = 48;

/// Decodes the first keyframe of a JPEG XL whose header is `header`.
pub fn decode(bytes: &[u8], header: &JxlHeader, limits: &Limits) -> Result<UprightPixels> {
    crate::limits::check_pixels(header.width, header.height, limits)?;
    let pixels = u64::from(header.width) * u64::from(header.height);
    let budget = usize::try_from(decoder_budget(pixels)).unwrap_or(usize::MAX);
    let mut image = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(AllocTracker::with_limit(budget))
        .read(std::io::Cursor::new(bytes))
        .map_err(|e| decode_error(&e))?;
    let stored = image.image_header();
    if (stored.size.width, stored.size.height) != (header.width, header.height) {
        return Err(corrupt("the image header changed between reads"));
    }
    let xyb = stored.metadata.xyb_encoded;
    let icc = image.original_icc().map(<[u8]>::to_vec);
    // Pixels the decoder can put in sRGB itself: XYB, or an enum colour
    // encoding. An embedded ICC profile on non-XYB pixels is applied below.
    let managed_here = icc.is_some() && !xyb;
    if !managed_here {
        image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
    }
    let format = image.pixel_format();
    let (channels, color_model) = match format {
        PixelFormat::Rgb => (3, "rgb"),
        PixelFormat::Rgba => (4, "rgb"),
        PixelFormat::Gray => (1, "gray"),
        PixelFormat::Graya => (2, "gray"),
        PixelFormat::Cmyk | PixelFormat::Cmyka => {
            return Err(MediaError::unsupported(
                "jxl: CMYK JPEG XL is not supported",
            ))
        }
    };
    if image.num_loaded_keyframes() == 0 {
        return Err(corrupt("the file ends before its first frame"));
    }
    let render = image.render_frame(0).map_err(|e| decode_error(&e))?;
    let mut stream = render.stream();
    let (w, h) = (stream.width(), stream.height());
    if u64::from(w) * u64::from(h) != pixels || stream.channels() as usize != channels {
        return Err(corrupt(format!(
            "rendered {w}x{h} with {} channels, header says {}x{}",
            stream.channels(),
            header.width,
            header.height
        )));
    }
    let mut samples = vec![0u8; w as usize * h as usize * channels];
    let written = stream.write_to_buffer(&mut samples);
    if written != samples.len() {
        return Err(corrupt("the frame does not cover the image"));
    }
    drop(render);
    drop(image);
    let mut bitmap = to_rgb(w, h, channels, samples);
    let color = match icc {
        Some(icc) if managed_here => color::rgb_to_srgb(&mut bitmap, &icc)?,
        _ => ColorFacts::default(),
    };
    Ok(UprightPixels {
        bitmap,
        color_model,
        color,
    })
}

/// Gray and gray+alpha samples widened to RGB(A); RGB(A) kept.
fn to_rgb(w: u32, h: u32, channels: usize, samples: Vec<u8>) -> Bitmap {
    match channels {
        1 => Bitmap::new(w, h, 3, samples.iter().flat_map(|&v| [v, v, v]).collect()),
        2 => Bitmap::new(
            w,
            h,
            4,
            samples
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        ),
        _ => Bitmap::new(w, h, channels as u8, samples),
    }
}

/// A decoder error: running out of the allocation budget is a limit,
/// anything else is the file's fault.
fn decode_error(e: &dyn std::fmt::Display) -> MediaError {
    // jxl-grid's OutOfMemory ("failed to allocate N byte(s)") arrives boxed
    // and wrapped by the render or frame error; its text is what is stable.
    let text = e.to_string();
    if text.contains("failed to allocate") {
        return MediaError::limits(format!(
            "jxl: the decoder needs more memory than its budget ({text})"
        ));
    }
    corrupt(format!("decode failed: {text}"))
}
