//! Encoders: JPEG (libjpeg-turbo), PNG (png crate), WebP (libwebp), AVIF (libaom, `avif_encode`).
//! Outputs carry no metadata: no EXIF (so no GPS and no orientation tag), no
//! XMP and no ICC profile — pixels are sRGB, which is what untagged means.

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use crate::plan::{EncodeOptions, OutputFormat};

/// Encoder settings for one output.
#[derive(Debug, Clone, Copy)]
pub struct EncodeParams {
    pub quality: u8,
    pub lossless: bool,
}

/// Encodes `bitmap` (RGB or RGBA; JPEG takes RGB only — flatten first).
pub fn encode(
    bitmap: &Bitmap,
    format: OutputFormat,
    params: EncodeParams,
    opts: &EncodeOptions,
) -> Result<Vec<u8>> {
    match format {
        OutputFormat::Jpeg => jpeg(bitmap, params.quality, opts.jpeg_progressive),
        OutputFormat::Png => png(bitmap, opts.png_compression),
        OutputFormat::Webp => webp(bitmap, params, opts.webp_method),
        OutputFormat::Avif => crate::avif_encode::encode(bitmap, params.quality, opts.avif_speed),
    }
}

fn jpeg(bitmap: &Bitmap, quality: u8, progressive: bool) -> Result<Vec<u8>> {
    if bitmap.channels != 3 {
        return Err(MediaError::internal(
            "JPEG encoder needs a flattened RGB image",
        ));
    }
    let err = |e: turbojpeg::Error| MediaError::encode(format!("JPEG: {e}"));
    let mut c = turbojpeg::Compressor::new().map_err(err)?;
    c.set_quality(i32::from(quality)).map_err(err)?;
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(err)?;
    c.set_optimize(true).map_err(err)?;
    c.set_progressive(progressive).map_err(err)?;
    let image = turbojpeg::Image {
        pixels: bitmap.data.as_slice(),
        width: bitmap.width as usize,
        pitch: bitmap.stride(),
        height: bitmap.height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    c.compress_to_vec(image).map_err(err)
}

fn png(bitmap: &Bitmap, level: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let err = |e: png::EncodingError| MediaError::encode(format!("PNG: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, bitmap.width, bitmap.height);
        enc.set_color(if bitmap.channels == 4 {
            png::ColorType::Rgba
        } else {
            png::ColorType::Rgb
        });
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(match level {
            0 => png::Compression::NoCompression,
            1 => png::Compression::Fastest,
            2..=4 => png::Compression::Fast,
            5..=7 => png::Compression::Balanced,
            _ => png::Compression::High,
        });
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(&bitmap.data).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

fn webp(bitmap: &Bitmap, params: EncodeParams, method: u8) -> Result<Vec<u8>> {
    let encoder = if bitmap.channels == 4 {
        webp::Encoder::from_rgba(&bitmap.data, bitmap.width, bitmap.height)
    } else {
        webp::Encoder::from_rgb(&bitmap.data, bitmap.width, bitmap.height)
    };
    let config = webp_config(params, method)?;
    let mem = encoder
        .encode_advanced(&config)
        .map_err(|e| MediaError::encode(format!("WebP: {e:?}")))?;
    Ok(mem.to_vec())
}

/// libwebp's settings for a variant: stills and animations alike.
pub fn webp_config(params: EncodeParams, method: u8) -> Result<webp::WebPConfig> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| MediaError::encode("WebP: bad libwebp version"))?;
    config.lossless = i32::from(params.lossless);
    config.quality = if params.lossless {
        75.0
    } else {
        f32::from(params.quality)
    };
    config.method = i32::from(method);
    config.alpha_compression = i32::from(!params.lossless);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_encodes_with_its_magic() {
        let rgb = Bitmap::new(8, 6, 3, (0..8 * 6 * 3).map(|i| i as u8).collect());
        let rgba = rgb.with_alpha();
        let opts = EncodeOptions::default();
        let p = EncodeParams {
            quality: 80,
            lossless: false,
        };
        let j = encode(&rgb, OutputFormat::Jpeg, p, &opts).unwrap();
        assert!(j.starts_with(&[0xFF, 0xD8, 0xFF]));
        for b in [&rgb, &rgba] {
            let png = encode(b, OutputFormat::Png, p, &opts).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            let w = encode(b, OutputFormat::Webp, p, &opts).unwrap();
            assert_eq!(&w[8..12], b"WEBP");
            let a = encode(b, OutputFormat::Avif, p, &opts).unwrap();
            assert_eq!(&a[4..8], b"ftyp");
        }
        assert!(encode(&rgba, OutputFormat::Jpeg, p, &opts).is_err());
    }
}
