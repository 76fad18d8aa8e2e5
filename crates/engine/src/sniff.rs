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
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
            SourceFormat::Gif => "gif",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Avif => "avif",
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
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    if let Some(brands) = ftyp_brands(bytes) {
        if brands.iter().any(|b| b == b"avif" || b == b"avis") {
            return Ok(SourceFormat::Avif);
        }
        let what = if brands
            .iter()
            .any(|b| matches!(b, b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1"))
        {
            "HEIF/HEIC image"
        } else {
            "MP4/QuickTime video"
        };
        return Err(MediaError::unsupported(format!(
            "unsupported format: {what} (ftyp {})",
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
    } else if bytes.starts_with(b"\xFF\x0A") || bytes.starts_with(b"\0\0\0\x0CJXL ") {
        "JPEG XL"
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
        "unsupported format: {hint} (expected JPEG, PNG, WebP, GIF, TIFF or AVIF)"
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
    fn names_what_it_is_not() {
        let e = sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("HEIC"), "{e}");
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
