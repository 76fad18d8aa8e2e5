//! Video containers from magic bytes (the first 64 bytes are enough).

use std::fmt;

/// A container the video path accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO base media (MP4, M4V, 3GP).
    Mp4,
    /// QuickTime (MOV), as phones write it.
    Mov,
    /// WebM (Matroska with the `webm` doc type).
    Webm,
    /// Matroska (MKV).
    Matroska,
    /// GIF; a video only when animated and so configured.
    Gif,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
            Container::Webm => "webm",
            Container::Matroska => "matroska",
            Container::Gif => "gif",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Container::Mp4 => "video/mp4",
            Container::Mov => "video/quicktime",
            Container::Webm => "video/webm",
            Container::Matroska => "video/x-matroska",
            Container::Gif => "image/gif",
        }
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Brands of still-image formats that share the ISO box structure
/// (HEIF/AVIF): never videos here.
const IMAGE_BRANDS: [&[u8; 4]; 7] = [
    b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1", b"heim",
];

/// The container `head` (the start of a file) is, if it is one the video
/// path reads. GIF is reported as [`Container::Gif`] whether or not it is
/// animated; the caller decides.
pub fn sniff(head: &[u8]) -> Option<Container> {
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(Container::Gif);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // The EBML header names the doc type within its first bytes.
        let window = &head[..head.len().min(64)];
        return Some(if window.windows(4).any(|w| w == b"webm") {
            Container::Webm
        } else {
            Container::Matroska
        });
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = size.clamp(16, 64).min(head.len());
        let major = &head[8..12];
        let brands = std::iter::once(major).chain(head[16.min(end)..end].chunks_exact(4));
        let mut quicktime = major == b"qt  ";
        for b in brands {
            if IMAGE_BRANDS.iter().any(|i| &i[..] == b) {
                return None;
            }
            quicktime |= b == b"qt  ";
        }
        return Some(if quicktime {
            Container::Mov
        } else {
            Container::Mp4
        });
    }
    // Old QuickTime files start with a movie atom, not `ftyp`.
    if head.len() >= 8 && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"free" | b"skip") {
        return Some(Container::Mov);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers() {
        assert_eq!(
            sniff(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41"),
            Some(Container::Mp4)
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypqt  \0\0\x02\0qt  "),
            Some(Container::Mov)
        );
        assert_eq!(sniff(b"\0\0\0\x08wide\0\0\0\0mdat"), Some(Container::Mov));
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"),
            Some(Container::Webm)
        );
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska"),
            Some(Container::Matroska)
        );
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(Container::Gif));
    }

    #[test]
    fn images_and_others_are_not_videos() {
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), None);
        assert_eq!(sniff(b"\0\0\0\x1cftypmp42\0\0\0\0mif1avif"), None);
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\0\0\0\x0cftypmp42"), Some(Container::Mp4));
        assert_eq!(sniff(b"\0\0\0\x0cftyp"), None);
    }
}
