//! Decoding of every supported format into an 8-bit RGB(A) bitmap.
//!
//! JPEG goes through libjpeg-turbo with DCT scaling (see `jpeg.rs`); PNG, GIF
//! (first frame), TIFF and WebP through the `image` crate with its own
//! allocation limits as a second fence; AVIF through libaom (`avif-decode`).

use crate::bitmap::Bitmap;
use crate::color::{self, ColorFacts};
use crate::error::{EngineError, Result};
use crate::jpeg::{self, JpegHeader, JpegPixels};
use crate::plan::Limits;
use crate::sniff::SourceFormat;
use image::{ColorType, DynamicImage, ImageDecoder};
use std::io::Cursor;

/// A decoded source, still in stored orientation, already in sRGB.
pub struct Decoded {
    pub bitmap: Bitmap,
    pub orientation: u8,
    pub color_model: &'static str,
    pub color: ColorFacts,
}

fn orientation_from_exif(tiff: &[u8]) -> u8 {
    exif::Reader::new()
        .read_raw(tiff.to_vec())
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        })
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8)
}

/// Orientation of a JPEG from its EXIF, without decoding pixels.
pub fn jpeg_orientation(meta: &jpeg::JpegMeta) -> u8 {
    meta.exif.as_deref().map_or(1, orientation_from_exif)
}

/// Decodes a JPEG at the DCT scale `scale`, then converts it to sRGB.
pub fn decode_jpeg(
    bytes: &[u8],
    header: &JpegHeader,
    meta: &jpeg::JpegMeta,
    scale: (u32, u32),
) -> Result<Decoded> {
    let factor = turbojpeg::ScalingFactor::new(scale.0 as usize, scale.1 as usize);
    let orientation = jpeg_orientation(meta);
    match jpeg::decode(bytes, header, factor)? {
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
                color_model: "cmyk",
                color,
            })
        }
    }
}

fn image_error(format: SourceFormat, e: image::ImageError) -> EngineError {
    use image::ImageError as E;
    match e {
        E::Limits(l) => EngineError::limits(format!("{format}: {l}")),
        E::Unsupported(u) => EngineError::unsupported(format!("{format}: {u}")),
        E::Decoding(d) => EngineError::corrupt(format!("{format} decode failed: {d}")),
        E::IoError(io) => {
            EngineError::corrupt(format!("{format} is truncated or unreadable: {io}"))
        }
        E::Parameter(p) => EngineError::corrupt(format!("{format}: {p}")),
        E::Encoding(x) => EngineError::internal(format!("{format}: {x}")),
    }
}

/// Decodes PNG, GIF, TIFF or WebP with the `image` crate.
pub fn decode_with_image(bytes: &[u8], format: SourceFormat, limits: &Limits) -> Result<Decoded> {
    let fmt = match format {
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Gif => image::ImageFormat::Gif,
        SourceFormat::Tiff => image::ImageFormat::Tiff,
        SourceFormat::Webp => image::ImageFormat::WebP,
        _ => {
            return Err(EngineError::internal(format!(
                "{format} is not decoded by image"
            )))
        }
    };
    let err = |e| image_error(format, e);
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), fmt);
    let mut l = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    // Room for the largest allowed image at 16 bits x 4 channels, plus the
    // decoder's own buffers.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(l);
    let mut decoder = reader.into_decoder().map_err(err)?;
    let (w, h) = decoder.dimensions();
    crate::limits::check_pixels(w, h, limits)?;
    let icc = decoder.icc_profile().ok().flatten();
    let orientation = decoder.orientation().map_or(1, |o| o.to_exif());
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
        color_model,
        color,
    })
}

/// Decodes AVIF (still image, 8/10/12-bit, with or without alpha).
pub fn decode_avif(bytes: &[u8]) -> Result<Decoded> {
    let decoder = avif_decode::Decoder::from_avif(bytes)
        .map_err(|e| EngineError::corrupt(format!("avif: {e}")))?;
    let image = decoder
        .to_image()
        .map_err(|e| EngineError::corrupt(format!("avif decode failed: {e}")))?;
    let hi = |v: u16| (v >> 8) as u8;
    let (bitmap, color_model) = match image {
        avif_decode::Image::Rgb8(img) => {
            let (w, h) = (img.width() as u32, img.height() as u32);
            let data = img.pixels().flat_map(|p| [p.r, p.g, p.b]).collect();
            (Bitmap::new(w, h, 3, data), "rgb")
        }
        avif_decode::Image::Rgb16(img) => {
            let (w, h) = (img.width() as u32, img.height() as u32);
            let data = img
                .pixels()
                .flat_map(|p| [hi(p.r), hi(p.g), hi(p.b)])
                .collect();
            (Bitmap::new(w, h, 3, data), "rgb")
        }
        avif_decode::Image::Rgba8(img) => {
            let (w, h) = (img.width() as u32, img.height() as u32);
            let data = img.pixels().flat_map(|p| [p.r, p.g, p.b, p.a]).collect();
            (Bitmap::new(w, h, 4, data), "rgb")
        }
        avif_decode::Image::Rgba16(img) => {
            let (w, h) = (img.width() as u32, img.height() as u32);
            let data = img
                .pixels()
                .flat_map(|p| [hi(p.r), hi(p.g), hi(p.b), hi(p.a)])
                .collect();
            (Bitmap::new(w, h, 4, data), "rgb")
        }
        avif_decode::Image::Gray8(img) => {
            let (w, h) = (img.width() as u32, img.height() as u32);
            let data = img.pixels().flat_map(|p| [p.value(); 3]).collect();
            (Bitmap::new(w, h, 3, data), "gray")
        }
        avif_decode::Image::Gray16(img) => {
            let (w, h) = (img.width() as u32, img.height() as u32);
            let data = img.pixels().flat_map(|p| [hi(p.value()); 3]).collect();
            (Bitmap::new(w, h, 3, data), "gray")
        }
    };
    let orientation = exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        })
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8);
    Ok(Decoded {
        bitmap,
        orientation,
        color_model,
        color: ColorFacts::default(),
    })
}
