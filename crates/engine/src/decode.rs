//! Decoding of every supported format into an 8-bit RGB(A) bitmap.
//!
//! JPEG goes through libjpeg-turbo with DCT scaling (see `jpeg.rs`); PNG, GIF
//! (first frame), TIFF and WebP through the `image` crate with its own
//! allocation limits as a second fence; AVIF through libaom on one thread (`avif.rs`). EXIF
//! orientation is read by the one reader in `exif.rs` for every format.

use crate::bitmap::Bitmap;
use crate::color::{self, ColorFacts};
use crate::error::{MediaError, Result};
use crate::exif;
use crate::jpeg::{self, JpegHeader, JpegPixels};
use crate::plan::Limits;
use crate::sniff::SourceFormat;
use image::{ColorType, DynamicImage, ImageDecoder};
use std::io::Cursor;

/// A decoded source, still in stored orientation, already in sRGB.
pub struct Decoded {
    pub bitmap: Bitmap,
    /// The source's orientation (EXIF, `irot`/`imir`, JPEG XL header).
    pub orientation: u8,
    /// The decoder already applied `orientation` to `bitmap`.
    pub upright: bool,
    pub color_model: &'static str,
    pub color: ColorFacts,
}

/// What a decoder that orients its own output (HEIC, JPEG XL) returns:
/// upright sRGB pixels, the stored colour model and what colour work was
/// done.
pub struct UprightPixels {
    pub bitmap: Bitmap,
    pub color_model: &'static str,
    pub color: ColorFacts,
}

impl UprightPixels {
    /// As a [`Decoded`] of a source whose orientation was `orientation`.
    fn decoded(self, orientation: u8) -> Decoded {
        Decoded {
            bitmap: self.bitmap,
            orientation,
            upright: true,
            color_model: self.color_model,
            color: self.color,
        }
    }
}

impl Decoded {
    /// The orientation still to apply to `bitmap` (1 when the decoder did).
    pub fn pending_orientation(&self) -> u8 {
        if self.upright {
            1
        } else {
            self.orientation
        }
    }
}

/// Orientation of a JPEG from its EXIF, without decoding pixels.
pub fn jpeg_orientation(meta: &jpeg::JpegMeta) -> u8 {
    meta.exif.as_deref().map_or(1, exif::orientation)
}

/// Decodes a JPEG at the DCT scale `scale`, then converts it to sRGB.
pub fn decode_jpeg(
    bytes: &[u8],
    header: &JpegHeader,
    meta: &jpeg::JpegMeta,
    scale: (u32, u32),
) -> Result<Decoded> {
    decode_jpeg_scans(bytes, header, meta, scale, true)
}

/// [`decode_jpeg`]; `select` false decodes every scan of a progressive file
/// (see [`jpeg::decode`]).
pub(crate) fn decode_jpeg_scans(
    bytes: &[u8],
    header: &JpegHeader,
    meta: &jpeg::JpegMeta,
    scale: (u32, u32),
    select: bool,
) -> Result<Decoded> {
    let factor = turbojpeg::ScalingFactor::new(scale.0 as usize, scale.1 as usize);
    let orientation = jpeg_orientation(meta);
    match jpeg::decode(bytes, header, factor, select)? {
        JpegPixels::Rgb(mut bitmap) => {
            let color_model = if header.colorspace == turbojpeg::Colorspace::Gray {
                "gray"
            } else {
                "rgb"
            };
            let color = match &meta.icc {
                Some(icc) => color::rgb_to_srgb(&mut bitmap, icc)?,
                None => ColorFacts::default(),
            };
            Ok(Decoded {
                bitmap,
                orientation,
                upright: false,
                color_model,
                color,
            })
        }
        JpegPixels::Cmyk {
            width,
            height,
            data,
        } => {
            let (bitmap, color) =
                color::cmyk_to_srgb(width, height, data, meta.adobe, meta.icc.as_deref())?;
            Ok(Decoded {
                bitmap,
                orientation,
                upright: false,
                color_model: "cmyk",
                color,
            })
        }
    }
}

fn image_error(format: SourceFormat, e: image::ImageError) -> MediaError {
    use image::ImageError as E;
    match e {
        E::Limits(l) => MediaError::limits(format!("{format}: {l}")),
        E::Unsupported(u) => MediaError::unsupported(format!("{format}: {u}")),
        E::Decoding(d) => MediaError::corrupt(format!("{format} decode failed: {d}")),
        E::IoError(io) => MediaError::corrupt(format!("{format} is truncated or unreadable: {io}")),
        E::Parameter(p) => MediaError::corrupt(format!("{format}: {p}")),
        E::Encoding(x) => MediaError::internal(format!("{format}: {x}")),
    }
}

/// What the png crate may allocate for metadata chunks: the inflated ICC
/// profile (an oversized one is dropped by the png crate, see
/// [`color::MAX_ICC_BYTES`]) and text chunks. Real files need well under 1 MB.
pub const PNG_METADATA_BYTES: u64 = 16 << 20;

/// An `image` decoder for PNG, GIF, TIFF or WebP, headers read, pixels not
/// yet: with the engine's allocation limits.
pub fn image_decoder<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<Box<dyn ImageDecoder + 'a>> {
    let fmt = match format {
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Gif => image::ImageFormat::Gif,
        SourceFormat::Tiff => image::ImageFormat::Tiff,
        SourceFormat::Webp => image::ImageFormat::WebP,
        _ => {
            return Err(MediaError::internal(format!(
                "{format} is not decoded by image"
            )))
        }
    };
    let err = |e| image_error(format, e);
    let mut l = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    // Room for the largest allowed image at 16 bits x 4 channels, plus the
    // decoder's own buffers.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    Ok(if format == SourceFormat::Png {
        // The png crate's own budget covers only what it allocates besides
        // the image: metadata chunks (iCCP inflated, text) and one row. Give
        // it what a real file needs, not the image's allowance: a 64x64 PNG
        // whose iCCP inflates to 1 GiB must not cost 1 GiB.
        let (w, _) = crate::limits::header_dims(bytes, format)?;
        let mut png_limits = l.clone();
        png_limits.max_alloc = Some(PNG_METADATA_BYTES + u64::from(w) * 8 + 64);
        let mut d = image::codecs::png::PngDecoder::with_limits(Cursor::new(bytes), png_limits)
            .map_err(|e| match e {
                image::ImageError::Limits(_) => MediaError::limits(format!(
                    "png metadata chunks (ICC profile, text) exceed {PNG_METADATA_BYTES} bytes"
                )),
                e => err(e),
            })?;
        // The image-level limits (output buffer) are checked separately.
        d.set_limits(l).map_err(err)?;
        Box::new(d)
    } else {
        let mut reader = image::ImageReader::with_format(Cursor::new(bytes), fmt);
        reader.limits(l);
        Box::new(reader.into_decoder().map_err(err)?)
    })
}

/// Decodes PNG, GIF, TIFF or WebP with the `image` crate.
pub fn decode_with_image(bytes: &[u8], format: SourceFormat, limits: &Limits) -> Result<Decoded> {
    let err = |e| image_error(format, e);
    let mut decoder = image_decoder(bytes, format, limits)?;
    let (w, h) = decoder.dimensions();
    crate::limits::check_pixels(w, h, limits)?;
    let icc = decoder.icc_profile().ok().flatten();
    let orientation = if format == SourceFormat::Tiff {
        // The file is itself TIFF-structured: its IFD0 holds the orientation.
        exif::orientation(bytes)
    } else {
        decoder
            .exif_metadata()
            .ok()
            .flatten()
            .map_or(1, |e| exif::orientation(&e))
    };
    let color_type = decoder.color_type();
    let color_model = match color_type {
        ColorType::L8 | ColorType::L16 | ColorType::La8 | ColorType::La16 => "gray",
        _ => "rgb",
    };
    let image = DynamicImage::from_decoder(decoder).map_err(err)?;
    let mut bitmap = if color_type.has_alpha() {
        let rgba = image.into_rgba8();
        let (w, h) = rgba.dimensions();
        Bitmap::new(w, h, 4, rgba.into_raw())
    } else {
        let rgb = image.into_rgb8();
        let (w, h) = rgb.dimensions();
        Bitmap::new(w, h, 3, rgb.into_raw())
    };
    let color = match icc {
        Some(icc) => color::rgb_to_srgb(&mut bitmap, &icc)?,
        None => ColorFacts::default(),
    };
    Ok(Decoded {
        bitmap,
        orientation,
        upright: false,
        color_model,
        color,
    })
}

/// Decodes AVIF (still image, 8/10/12-bit, with or without alpha) whose
/// header (`ispe`) says `ispe`; see `avif.rs` for the checks. Orientation
/// comes from `irot`/`imir` when the item has them (EXIF's otherwise), and
/// colour from the `colr` ICC profile or wide-gamut `nclx` primaries.
pub fn decode_avif(bytes: &[u8], ispe: (u32, u32), limits: &Limits) -> Result<Decoded> {
    let facts = avif_item_facts(bytes);
    let px = crate::avif::decode(bytes, ispe, limits)?;
    let mut bitmap = px.bitmap;
    let orientation = if facts.transforms.is_empty() {
        px.exif.as_deref().map_or(1, exif::orientation)
    } else {
        facts.orientation()
    };
    let color = facts.to_srgb(&mut bitmap)?;
    Ok(Decoded {
        bitmap,
        orientation,
        upright: false,
        color_model: px.color_model,
        color,
    })
}

/// An AVIF's transforms and colour boxes. `avif-parse` has accepted the
/// container; the HEIF parser is stricter (`infe` before version 2, a
/// handler other than `pict`, more than [`crate::heic::MAX_ITEMS`] items):
/// where it refuses, the file is read as before 0.2.0, with EXIF
/// orientation and no colour box, rather than failing a valid image.
pub fn avif_item_facts(bytes: &[u8]) -> crate::heic::ItemFacts {
    crate::heic::item_facts(bytes).unwrap_or_default()
}

/// Decodes a HEIC (primary image, upright, sRGB); see `heic.rs`.
pub fn decode_heic(bytes: &[u8], limits: &Limits) -> Result<Decoded> {
    let header = crate::heic::header(bytes)?;
    Ok(crate::heic::decode(bytes, &header, limits)?.decoded(header.orientation))
}

/// Decodes a JPEG XL (first keyframe, upright, sRGB); see `jxl.rs`.
pub fn decode_jxl(bytes: &[u8], limits: &Limits) -> Result<Decoded> {
    let header = crate::jxl::header(bytes)?;
    Ok(crate::jxl::decode(bytes, &header, limits)?.decoded(header.orientation))
}
