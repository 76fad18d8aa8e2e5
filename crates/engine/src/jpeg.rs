//! JPEG specifics: metadata markers and libjpeg-turbo decoding with DCT scaling.

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use crate::progressive;
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

/// Progressive JPEGs with more scans than this are rejected: a few KB of
/// crafted scans can otherwise cost minutes of CPU (libjpeg-turbo's advice).
pub(crate) const MAX_SCANS: u32 = 500;

/// Scans allowed at the pixel limit: the budget is `scans × pixels <=
/// SCANS_AT_PIXEL_LIMIT × max_pixels`. Every scan of a progressive (or
/// multi-scan sequential) JPEG is a pass over the whole coefficient buffer,
/// so the work grows with scans × pixels. Encoders write 10 (libjpeg,
/// ImageMagick, jpegtran) to about a dozen (mozjpeg) scans; a small image
/// may still have up to `MAX_SCANS`.
pub const SCANS_AT_PIXEL_LIMIT: u64 = 20;

/// What the marker walk over the whole file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegScans {
    /// The frame marker (0xC0..=0xCF), if any.
    pub sof: Option<u8>,
    /// Start-of-scan markers.
    pub scans: u32,
    /// Bytes of entropy-coded data after all SOS headers.
    pub entropy_bytes: u64,
    /// 8x8 blocks of the frame's least-sampled component (0 without a SOF).
    pub min_component_blocks: u64,
    /// 8x8 blocks of all components (the coefficient buffer holds 64 i16
    /// per block when the file has more than one scan).
    pub total_blocks: u64,
}

impl JpegScans {
    pub fn progressive(&self) -> bool {
        matches!(self.sof, Some(0xC2 | 0xC6 | 0xCA | 0xCE))
    }
    pub fn arithmetic(&self) -> bool {
        matches!(self.sof, Some(0xC9..=0xCB | 0xCD..=0xCF))
    }
}

/// Walks every marker of the file, skipping entropy-coded data, to count the
/// scans and the entropy-coded bytes. Linear in the file size.
pub fn scan_markers(bytes: &[u8]) -> JpegScans {
    let mut out = JpegScans {
        sof: None,
        scans: 0,
        entropy_bytes: 0,
        min_component_blocks: 0,
        total_blocks: 0,
    };
    let n = bytes.len();
    let mut i = 2; // after SOI
    while i + 1 < n {
        if bytes[i] != 0xFF {
            i += 1; // junk between markers (libjpeg-turbo warns, so it fails later)
            continue;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 || marker == 0 {
            i += 2;
            continue;
        }
        if marker == 0xD9 || i + 4 > n {
            break;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let end = (i + 2 + len).min(n);
        let payload = &bytes[(i + 4).min(end)..end];
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            out.sof.get_or_insert(marker);
            if out.total_blocks == 0 {
                (out.min_component_blocks, out.total_blocks) = component_blocks(payload);
            }
        }
        i = end;
        if marker == 0xDA {
            out.scans += 1;
            // Entropy-coded data runs to the next marker other than RSTn
            // (0xFF00 is a stuffed 0xFF, 0xFFFF fill before a marker).
            let start = i;
            while i + 1 < n {
                if bytes[i] == 0xFF {
                    let b = bytes[i + 1];
                    if b != 0 && b != 0xFF && !(0xD0..=0xD7).contains(&b) {
                        break;
                    }
                }
                i += 1;
            }
            if i + 1 >= n {
                i = n;
            }
            out.entropy_bytes += (i - start) as u64;
        }
    }
    out
}

/// Blocks of the least-sampled component and of all components, from a
/// SOF payload.
fn component_blocks(sof: &[u8]) -> (u64, u64) {
    if sof.len() < 6 {
        return (0, 0);
    }
    let h = u64::from(u16::from_be_bytes([sof[1], sof[2]]));
    let w = u64::from(u16::from_be_bytes([sof[3], sof[4]]));
    let comps: Vec<(u64, u64)> = sof[6..]
        .chunks_exact(3)
        .take(usize::from(sof[5]))
        .map(|c| (u64::from(c[1] >> 4).max(1), u64::from(c[1] & 0x0F).max(1)))
        .collect();
    let hmax = comps.iter().map(|c| c.0).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.1).max().unwrap_or(1);
    let blocks = comps.iter().map(|&(hi, vi)| {
        let cw = (w * hi).div_ceil(hmax);
        let ch = (h * vi).div_ceil(vmax);
        cw.div_ceil(8) * ch.div_ceil(8)
    });
    (blocks.clone().min().unwrap_or(0), blocks.sum())
}

/// Refuses, before anything is allocated, JPEGs whose decoding would cost far
/// more than their bytes justify:
///
/// - arithmetic coding (SOF9-11, SOF13-15): `unsupported`, as in browsers;
///   it can code a block in under a bit, so no size bound holds for it;
/// - too many scans for the size (`scans × pixels` over the budget, see
///   [`SCANS_AT_PIXEL_LIMIT`]): `limits`;
/// - too little entropy-coded data to fill the image: every Huffman-coded
///   block of the first scan of a component costs at least one bit (a DC
///   code or, in sequential files, also an EOB), so a file with fewer than
///   `blocks / 8` bytes of scan data (blocks of the least-sampled component)
///   is truncated: `corrupt`. This stops a few KB from making libjpeg-turbo
///   allocate a 100 MP coefficient buffer (or us the output buffer).
pub fn check_cost(bytes: &[u8], header: &JpegHeader, max_pixels: u64) -> Result<JpegScans> {
    let s = scan_markers(bytes);
    if s.arithmetic() {
        return Err(MediaError::unsupported(format!(
            "arithmetic-coded JPEG (SOF{}) is not supported (browsers cannot show it either)",
            s.sof.unwrap_or(0) - 0xC0
        )));
    }
    let pixels = u64::from(header.width) * u64::from(header.height);
    let budget = SCANS_AT_PIXEL_LIMIT.saturating_mul(max_pixels);
    if u64::from(s.scans).saturating_mul(pixels) > budget {
        return Err(MediaError::limits(format!(
            "JPEG has {} scans over {}x{} = {pixels} pixels, over the budget of {budget} scan-pixels ({SCANS_AT_PIXEL_LIMIT} scans at the {max_pixels}-pixel limit)",
            s.scans, header.width, header.height
        )));
    }
    let needed = s.min_component_blocks / 8;
    if s.entropy_bytes < needed {
        return Err(MediaError::corrupt(format!(
            "JPEG is truncated: {} bytes of scan data cannot code a {}x{} image (at least {needed} bytes needed)",
            s.entropy_bytes, header.width, header.height
        )));
    }
    Ok(s)
}

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
        .map_err(|e| MediaError::corrupt(format!("invalid JPEG header: {}", tj_msg(&e))))?;
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
/// With `select`, a progressive file is decoded without the scans the
/// scale does not read (the same pixels, see `progressive`); without, every
/// scan is (the reference the selection is checked and timed against).
pub fn decode(
    bytes: &[u8],
    header: &JpegHeader,
    scale: ScalingFactor,
    select: bool,
) -> Result<JpegPixels> {
    let mut d = Decompressor::new().map_err(tj_err)?;
    let full = d
        .read_header(bytes)
        .map_err(|e| MediaError::corrupt(format!("invalid JPEG header: {}", tj_msg(&e))))?;
    // Lossless JPEGs (rare, medical) cannot be DCT-scaled.
    let scale = if full.is_lossless {
        ScalingFactor::ONE
    } else {
        scale
    };
    d.set_scan_limit(MAX_SCANS).map_err(tj_err)?;
    d.set_scaling_factor(scale).map_err(tj_err)?;
    let selected = select
        .then(|| progressive::for_scale(bytes, scale))
        .flatten();
    let input = selected.as_ref().map_or(bytes, |s| s.bytes.as_slice());
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
    d.decompress(input, image)
        .map_err(|e| MediaError::corrupt(format!("JPEG decode failed: {}", tj_msg(&e))))?;
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

fn tj_err(e: turbojpeg::Error) -> MediaError {
    MediaError::internal(format!("libjpeg-turbo: {}", tj_msg(&e)))
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
        let JpegPixels::Rgb(b) = decode(&jpeg, &header, ScalingFactor::ONE_EIGHTH, true).unwrap()
        else {
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
