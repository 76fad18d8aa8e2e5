//! JPEG specifics: metadata markers and libjpeg-turbo decoding with DCT scaling.

use crate::bitmap::Bitmap;
use crate::error::{EngineError, Result};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

/// Progressive JPEGs with more scans than this are rejected: a few KB of
/// crafted scans can otherwise cost minutes of CPU (libjpeg-turbo's advice).
const MAX_SCANS: u32 = 500;

/// Metadata found in a JPEG's APPn markers before the first scan.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JpegMeta {
    /// TIFF-structured EXIF payload (after `Exif\0\0`).
    pub exif: Option<Vec<u8>>,
    /// ICC profile reassembled from its APP2 chunks.
    pub icc: Option<Vec<u8>>,
    /// Adobe APP14 present: CMYK/YCCK samples are stored inverted.
    pub adobe: bool,
}

/// Walks the markers from SOI up to the first SOS (or EOI).
pub fn read_meta(bytes: &[u8]) -> JpegMeta {
    let mut meta = JpegMeta::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            break;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if len < 2 || i + 2 + len > bytes.len() {
            break;
        }
        let payload = &bytes[i + 4..i + 2 + len];
        match marker {
            0xE1 if payload.starts_with(b"Exif\0\0") && meta.exif.is_none() => {
                meta.exif = Some(payload[6..].to_vec());
            }
            0xE2 if payload.starts_with(b"ICC_PROFILE\0") && payload.len() > 14 => {
                icc_chunks.push((payload[12], &payload[14..]));
            }
            0xEE if payload.starts_with(b"Adobe") => meta.adobe = true,
            _ => {}
        }
        i += 2 + len;
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|(seq, _)| *seq);
        meta.icc = Some(
            icc_chunks
                .iter()
                .flat_map(|(_, d)| d.iter().copied())
                .collect(),
        );
    }
    meta
}

/// Header facts needed before decoding.
#[derive(Debug, Clone, Copy)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    pub colorspace: Colorspace,
}

pub fn read_header(bytes: &[u8]) -> Result<JpegHeader> {
    let mut d = Decompressor::new().map_err(tj_err)?;
    let h = d
        .read_header(bytes)
        .map_err(|e| EngineError::corrupt(format!("invalid JPEG header: {}", tj_msg(&e))))?;
    Ok(JpegHeader {
        width: h.width as u32,
        height: h.height as u32,
        colorspace: h.colorspace,
    })
}

/// The stored pixels: RGB, or CMYK still to be converted.
pub enum JpegPixels {
    Rgb(Bitmap),
    /// 4 bytes per pixel, as stored (Adobe files are inverted).
    Cmyk {
        width: u32,
        height: u32,
        data: Vec<u8>,
    },
}

/// Decodes at `scale` (1/8, 1/4, 1/2 or 1), in one pass of libjpeg-turbo.
pub fn decode(bytes: &[u8], header: &JpegHeader, scale: ScalingFactor) -> Result<JpegPixels> {
    let mut d = Decompressor::new().map_err(tj_err)?;
    let full = d
        .read_header(bytes)
        .map_err(|e| EngineError::corrupt(format!("invalid JPEG header: {}", tj_msg(&e))))?;
    // Lossless JPEGs (rare, medical) cannot be DCT-scaled.
    let scale = if full.is_lossless {
        ScalingFactor::ONE
    } else {
        scale
    };
    d.set_scan_limit(MAX_SCANS).map_err(tj_err)?;
    d.set_scaling_factor(scale).map_err(tj_err)?;
    let w = scale.scale(header.width as usize);
    let h = scale.scale(header.height as usize);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let (format, ch) = if cmyk {
        (PixelFormat::CMYK, 4)
    } else {
        (PixelFormat::RGB, 3)
    };
    let mut data = vec![0u8; w * h * ch];
    let image = Image {
        pixels: data.as_mut_slice(),
        width: w,
        pitch: w * ch,
        height: h,
        format,
    };
    d.decompress(bytes, image)
        .map_err(|e| EngineError::corrupt(format!("JPEG decode failed: {}", tj_msg(&e))))?;
    if cmyk {
        Ok(JpegPixels::Cmyk {
            width: w as u32,
            height: h as u32,
            data,
        })
    } else {
        Ok(JpegPixels::Rgb(Bitmap::new(w as u32, h as u32, 3, data)))
    }
}

fn tj_msg(e: &turbojpeg::Error) -> String {
    match e {
        turbojpeg::Error::TurboJpegError(m) => m.clone(),
        other => other.to_string(),
    }
}

fn tj_err(e: turbojpeg::Error) -> EngineError {
    EngineError::internal(format!("libjpeg-turbo: {}", tj_msg(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_app_markers() {
        let mut j = vec![0xFF, 0xD8];
        let mut seg = |marker: u8, payload: &[u8]| {
            j.extend_from_slice(&[0xFF, marker]);
            j.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            j.extend_from_slice(payload);
        };
        seg(0xE1, b"Exif\0\0MM\0*");
        seg(0xE2, b"ICC_PROFILE\0\x02\x02world");
        seg(0xE2, b"ICC_PROFILE\0\x01\x02hello ");
        seg(0xEE, b"Adobe\0\x64\0\0\0\0\x02");
        j.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        let m = read_meta(&j);
        assert_eq!(m.exif.as_deref(), Some(&b"MM\0*"[..]));
        assert_eq!(m.icc.as_deref(), Some(&b"hello world"[..]));
        assert!(m.adobe);
    }

    #[test]
    fn lossless_jpeg_is_decoded_unscaled() {
        let pixels: Vec<u8> = (0..32 * 16 * 3).map(|i| (i % 251) as u8).collect();
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_lossless(true).unwrap();
        let image = Image {
            pixels: pixels.as_slice(),
            width: 32,
            pitch: 32 * 3,
            height: 16,
            format: PixelFormat::RGB,
        };
        let jpeg = c.compress_to_vec(image).unwrap();
        let header = read_header(&jpeg).unwrap();
        let JpegPixels::Rgb(b) = decode(&jpeg, &header, ScalingFactor::ONE_EIGHTH).unwrap() else {
            panic!("expected RGB");
        };
        assert_eq!((b.width, b.height), (32, 16));
        assert_eq!(b.data, pixels, "lossless round trip");
    }

    #[test]
    fn survives_truncated_markers() {
        let m = read_meta(&[0xFF, 0xD8, 0xFF, 0xE1, 0x40, 0x00, b'E']);
        assert_eq!(m, JpegMeta::default());
    }
}
