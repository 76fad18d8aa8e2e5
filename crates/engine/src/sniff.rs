//! Format detection from magic bytes (never from a file name).

use crate::error::{MediaError, Result};
use std::fmt;

/// A source format the engine decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    Avif,
    /// HEIF with HEVC-coded images (iPhone photos): `.heic`/`.heif`.
    Heic,
    /// JPEG XL, bare codestream or ISO-BMFF container.
    Jxl,
}

/// `ftyp` brands of AVIF files.
pub const AVIF_BRANDS: [&[u8; 4]; 2] = [b"avif", b"avis"];

/// `ftyp` brands of HEIF images and image sequences (ISO/IEC 23008-12):
/// HEVC stills (`heic`, `heix`), multi-layer (`heim`, `heis`), sequences
/// (`hevc`, `hevx`, `msf1`) and the generic `mif1`. The video sniffer
/// refuses the same list (and [`AVIF_BRANDS`]), so a file is never both.
pub const HEIF_BRANDS: [&[u8; 4]; 8] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
];

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
            SourceFormat::Gif => "gif",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Avif => "avif",
            SourceFormat::Heic => "heic",
            SourceFormat::Jxl => "jxl",
        }
    }
    pub fn mime_type(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "image/jpeg",
            SourceFormat::Png => "image/png",
            SourceFormat::Webp => "image/webp",
            SourceFormat::Gif => "image/gif",
            SourceFormat::Tiff => "image/tiff",
            SourceFormat::Avif => "image/avif",
            SourceFormat::Heic => "image/heic",
            SourceFormat::Jxl => "image/jxl",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signature box of a JPEG XL container.
const JXL_CONTAINER: &[u8] = b"\0\0\0\x0CJXL \r\n\x87\n";

/// ISO-BMFF brands (ftyp) of the box at the start of `bytes`: major + compatible.
fn ftyp_brands(bytes: &[u8]) -> Option<Vec<[u8; 4]>> {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = size.clamp(16, bytes.len().min(256));
    let mut brands = vec![[bytes[8], bytes[9], bytes[10], bytes[11]]];
    let mut i = 16;
    while i + 4 <= end {
        brands.push([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        i += 4;
    }
    Some(brands)
}

/// Identifies the format of `bytes`, or says what it looks like instead.
pub fn sniff(bytes: &[u8]) -> Result<SourceFormat> {
    if bytes.is_empty() {
        return Err(MediaError::corrupt("empty input (0 bytes)"));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(SourceFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(SourceFormat::Webp);
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Ok(SourceFormat::Tiff);
    }
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(JXL_CONTAINER) {
        return Ok(SourceFormat::Jxl);
    }
    if let Some(brands) = ftyp_brands(bytes) {
        let any = |list: &[&[u8; 4]]| brands.iter().any(|b| list.contains(&b));
        if any(&AVIF_BRANDS) {
            return Ok(SourceFormat::Avif);
        }
        if any(&HEIF_BRANDS) {
            return Ok(SourceFormat::Heic);
        }
        return Err(MediaError::unsupported(format!(
            "unsupported format: MP4/QuickTime video (ftyp {})",
            String::from_utf8_lossy(&brands[0])
        )));
    }
    let hint = if bytes.starts_with(b"BM") {
        "BMP"
    } else if bytes.starts_with(b"%PDF") {
        "PDF"
    } else if bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+") {
        "BigTIFF"
    } else if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "WebM/Matroska video"
    } else if bytes.starts_with(&[0x00, 0x00, 0x00, 0x0C, b'j', b'P'])
        || bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
    {
        "JPEG 2000"
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" {
        "RIFF container (not WebP)"
    } else {
        let head = &bytes[..bytes.len().min(512)];
        let text = head
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80);
        let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
        if lower.contains("<svg") {
            "SVG"
        } else if lower.contains("<html") || lower.contains("<!doctype") {
            "HTML"
        } else if text {
            "text"
        } else {
            "unknown bytes"
        }
    };
    Err(MediaError::unsupported(format!(
        "unsupported format: {hint} (expected JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC or JPEG XL)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn sniffs_magic() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest").unwrap(), SourceFormat::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest").unwrap(), SourceFormat::Png);
        assert_eq!(sniff(b"GIF89a....").unwrap(), SourceFormat::Gif);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), SourceFormat::Webp);
        assert_eq!(sniff(b"II*\0\x08\0\0\0").unwrap(), SourceFormat::Tiff);
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf").unwrap(),
            SourceFormat::Avif
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf").unwrap(),
            SourceFormat::Avif
        );
    }

    #[test]
    fn sniffs_heif_and_jpeg_xl() {
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").unwrap(),
            SourceFormat::Heic
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypmif1\0\0\0\0mif1").unwrap(),
            SourceFormat::Heic
        );
        assert_eq!(sniff(b"\xFF\x0A\xFA\x7F").unwrap(), SourceFormat::Jxl);
        assert_eq!(
            sniff(b"\0\0\0\x0CJXL \r\n\x87\n\0\0\0\x14ftypjxl ").unwrap(),
            SourceFormat::Jxl
        );
        // A video's ftyp is named, not taken for an image.
        let e = sniff(b"\0\0\0\x18ftypisom\0\0\0\0isommp41").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("video"), "{e}");
    }

    #[test]
    fn names_what_it_is_not() {
        let e = sniff(b"<!DOCTYPE html><html>").unwrap_err();
        assert!(e.message().contains("HTML"), "{e}");
        assert!(sniff(b"BM....").unwrap_err().message().contains("BMP"));
        assert_eq!(sniff(b"").unwrap_err().kind(), ErrorKind::Corrupt);
        assert_eq!(
            sniff(&[0u8, 1, 2, 3, 250, 7]).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}
