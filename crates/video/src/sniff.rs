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

    /// The ffmpeg demuxer that reads this container, forced with `-f` so
    /// ffmpeg never picks another one (DASH, HLS, concat, image2…) that
    /// would open files or URLs named inside the upload.
    pub fn demuxer(self) -> &'static str {
        match self {
            Container::Mp4 | Container::Mov => "mov",
            Container::Webm | Container::Matroska => "matroska",
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

/// Brands of still-image formats that share the ISO box structure but are
/// not video, besides the engine's AVIF and HEIF brands: JPEG 2000 and
/// camera raw. Never videos here, wherever they appear in the brand list.
const FOREIGN_BRANDS: [&[u8; 4]; 5] = [b"jp2 ", b"jpx ", b"jpm ", b"mjp2", b"crx "];

/// An image brand: the engine's (AVIF, HEIF sequences included) or foreign.
fn is_image_brand(brand: &[u8]) -> bool {
    mediaflow_engine::AVIF_BRANDS
        .iter()
        .chain(mediaflow_engine::HEIF_BRANDS.iter())
        .chain(FOREIGN_BRANDS.iter())
        .any(|f| &f[..] == brand)
}

/// Major brands of the MP4/QuickTime family that ffmpeg's `mov` demuxer
/// reads and phones, cameras and encoders write.
const VIDEO_BRANDS: [&[u8; 4]; 30] = [
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
    b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"f4v ", b"3gp4", b"3gp5", b"3gp6",
    b"3gp7", b"3gg6", b"3g2a", b"3g2b", b"3g2c", b"qt  ", b"MSNV", b"XAVC", b"mmp4", b"dash",
];

/// Compatible brands that vouch for an unlisted major brand (a camera's
/// own major brand, e.g. Canon's `CAEP`, usually lists one of these).
const CORE_BRANDS: [&[u8; 4]; 5] = [b"isom", b"iso2", b"mp41", b"mp42", b"qt  "];

/// Old QuickTime files start with a movie atom, not `ftyp`.
const QUICKTIME_ATOMS: [&[u8; 4]; 5] = [b"moov", b"mdat", b"wide", b"free", b"skip"];

/// The container `head` (the start of a file) is, if it is one the video
/// path reads. GIF is reported as [`Container::Gif`] whether or not it is
/// animated; the caller decides.
///
/// Hostile files are built to pass sniffers and then be read by a more
/// permissive demuxer (a DASH playlist behind `<!--ftyp`, an AVI whose
/// RIFF size spells `free`), so every branch checks the structure, not
/// only a magic word: the `ftyp` box has a sane size and a known brand,
/// and an old QuickTime file's first atoms chain up. The demuxer is then
/// forced to the sniffed one ([`Container::demuxer`]), so what was sniffed
/// is what ffmpeg reads.
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
        return sniff_ftyp(head);
    }
    sniff_quicktime(head)
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// An ISO base media file: the `ftyp` box (size, type, major brand, minor
/// version, compatible brands) must have a plausible size and name a
/// video brand.
fn sniff_ftyp(head: &[u8]) -> Option<Container> {
    let size = be32(head);
    // A real ftyp box holds a handful of brands; `<!--` reads as ~1 GB.
    if !(12..=256).contains(&size) || !size.is_multiple_of(4) {
        return None;
    }
    let end = size.min(head.len());
    let major = &head[8..12];
    let compatible: Vec<&[u8]> = head[16.min(end)..end].chunks_exact(4).collect();
    let brands = || std::iter::once(major).chain(compatible.iter().copied());
    if brands().any(is_image_brand) {
        return None;
    }
    let known = VIDEO_BRANDS.iter().any(|v| &v[..] == major)
        || compatible
            .iter()
            .any(|b| CORE_BRANDS.iter().any(|c| &c[..] == *b));
    if !known {
        return None;
    }
    Some(if brands().any(|b| b == b"qt  ") {
        Container::Mov
    } else {
        Container::Mp4
    })
}

/// A QuickTime file without `ftyp`: its first atoms must be movie atoms
/// whose sizes chain up within `head` (an AVI's `RIFF` size never does).
fn sniff_quicktime(head: &[u8]) -> Option<Container> {
    let mut at = 0;
    while at + 8 <= head.len() {
        let size = be32(&head[at..]);
        let kind = &head[at + 4..at + 8];
        if !QUICKTIME_ATOMS.iter().any(|a| &a[..] == kind) {
            return None;
        }
        match kind {
            // The media data or the movie itself: the rest of the file
            // (0: to the end; 1: a 64-bit size follows).
            b"moov" | b"mdat" if size == 0 || size == 1 || size >= 8 => {
                return Some(Container::Mov)
            }
            // Padding atoms are small and must be followed by another atom.
            b"wide" | b"free" | b"skip" if (8..=65536).contains(&size) => at += size,
            _ => return None,
        }
    }
    // Only padding within the head: not enough to tell.
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

    /// Issue 13: a DASH playlist behind `<!--ftyp` + `jp2 ` passed as a
    /// video and ffmpeg's DASH demuxer then opened the files it named.
    #[test]
    fn a_playlist_dressed_as_mp4_is_not_a_video() {
        let mpd = b"<!--ftypjp2 -->\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"><BaseURL>../victim/secret.mp4</BaseURL></MPD>";
        assert_eq!(sniff(mpd), None);
        // A sane ftyp size but a foreign brand, in either place.
        assert_eq!(sniff(b"\0\0\0\x14ftypjp2 \0\0\0\0jp2 "), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomjp2 "), None);
        // An unknown major brand without a core compatible brand.
        assert_eq!(sniff(b"\0\0\0\x14ftypxxxx\0\0\0\0xxxx"), None);
        // A camera's own major brand vouched for by `isom`.
        assert_eq!(
            sniff(b"\0\0\0\x18ftypCAEP\0\0\0\0CAEPisom"),
            Some(Container::Mp4)
        );
        // Sizes that are not a box: too large, not a multiple of four.
        assert_eq!(sniff(b"\0\0\x10\0ftypisom\0\0\0\0isom"), None);
        assert_eq!(sniff(b"\0\0\0\x13ftypisom\0\0\0\0isom"), None);
    }

    /// Issue 13: an AVI whose RIFF size bytes spell `free` was labelled
    /// QuickTime.
    #[test]
    fn an_avi_whose_size_reads_free_is_not_quicktime() {
        assert_eq!(sniff(b"RIFFfreeAVI LIST\0\0\0\x10hdrlavih"), None);
        // Padding must chain to a movie atom.
        assert_eq!(sniff(b"\0\0\0\x08freeLIST\0\0\0\0"), None);
        assert_eq!(
            sniff(b"\0\0\0\x08free\0\0\0\x10moov\0\0\0\x08mvhd"),
            Some(Container::Mov)
        );
        assert_eq!(sniff(b"\0\0\0\0mdat"), Some(Container::Mov));
        assert_eq!(sniff(b"\0\0\0\x04moov"), None);
    }
}
