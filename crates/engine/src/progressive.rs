//! Scan selection for scaled decodes of progressive JPEGs.
//!
//! libjpeg-turbo entropy-decodes every scan of a progressive JPEG whatever
//! the DCT scale, although its reduced-size IDCTs read only some of the 64
//! coefficients of a block: at 1/8 only the DC one. [`for_scale`] rewrites
//! the file for a decode at 1/8, 1/4 or 1/2: it drops each scan whose
//! spectral band lies wholly outside the coefficients that scale's IDCT
//! reads, and codes the dropped bands once as zeros, so the decoder sees
//! every coefficient as complete. That last part matters: given a file
//! whose AC scans are missing, libjpeg-turbo "smooths" the blocks (it
//! estimates the missing coefficients and, since 2.1, adjusts the DC ones),
//! and the pixels would no longer be those of the full file. With the
//! zeros, the scaled IDCT sees exactly the coefficients it would have seen
//! in the full file, so the pixels are identical.
//!
//! Which coefficients the IDCTs read (libjpeg-turbo's `jidctred.c` and its
//! SIMD ports, which compute the same thing): 1/8 (`jpeg_idct_1x1`) the DC
//! term; 1/4 (`jpeg_idct_2x2`) rows and columns 0, 1, 3, 5, 7; 1/2
//! (`jpeg_idct_4x4`) rows and columns 0-3 and 5-7. At 1/4 and 1/2 every band
//! that reaches zigzag index 63 is therefore needed, so the scan scripts of
//! libjpeg, mozjpeg and ImageMagick keep all their scans there; a file
//! whose script isolates the unused coefficients gains.
//!
//! The rewrite keeps every other marker where it was (tables, restart
//! intervals, metadata), so each kept scan decodes as before. Anything it
//! does not recognise makes it decline (`None`): the file is then decoded
//! as it is.

use turbojpeg::ScalingFactor;

/// The natural-order positions (row * 8 + column) of zigzag indices 0..64.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The IDCT size (output pixels per block side) of a decode at `scale`, for
/// the scales with a reduced IDCT here.
fn idct_size(scale: ScalingFactor) -> Option<u32> {
    match (scale.num(), scale.denom()) {
        (1, 8) => Some(1),
        (1, 4) => Some(2),
        (1, 2) => Some(4),
        _ => None,
    }
}

/// The IDCT size libjpeg-turbo gives a component (`jdmaster.c`): a
/// subsampled component is scaled up by its IDCT instead of by upsampling,
/// doubling the size while both of its sampling ratios allow, up to 8. So
/// at 1/8 the chroma blocks of a 4:2:0 file use the 2x2 IDCT.
fn component_idct_size(base: u32, c: &Component, hmax: u32, vmax: u32) -> u32 {
    let mut size = base;
    while size < 8
        && (hmax * base).is_multiple_of(c.h * size * 2)
        && (vmax * base).is_multiple_of(c.v * size * 2)
    {
        size *= 2;
    }
    size
}

/// The zigzag indices an IDCT of `size` reads, as a bit set.
fn used_coefficients(size: u32) -> u64 {
    let rows: &[u8] = match size {
        1 => &[0],
        2 => &[0, 1, 3, 5, 7],
        4 => &[0, 1, 2, 3, 5, 6, 7],
        _ => return u64::MAX,
    };
    let mut set = 0u64;
    for (zz, &natural) in ZIGZAG.iter().enumerate() {
        if rows.contains(&(natural / 8)) && rows.contains(&(natural % 8)) {
            set |= 1 << zz;
        }
    }
    set
}

/// Bits `ss..=se` of a u64.
fn band(ss: u8, se: u8) -> u64 {
    let upper = if se >= 63 {
        u64::MAX
    } else {
        (1u64 << (se + 1)) - 1
    };
    upper & !((1u64 << ss) - 1)
}

/// What a rewrite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The rewritten file.
    pub bytes: Vec<u8>,
    /// Scans in the original.
    pub scans: u32,
    /// Scans kept.
    pub kept: u32,
    /// Entropy-coded bytes of the kept scans over those of all scans.
    pub kept_entropy_bytes: u64,
    pub entropy_bytes: u64,
}

/// One component of the frame header.
#[derive(Debug, Clone, Copy)]
struct Component {
    id: u8,
    h: u32,
    v: u32,
}

/// One marker segment or scan of the file, as byte ranges into it.
struct Segment {
    marker: u8,
    /// The whole segment, marker included.
    start: usize,
    /// For SOS: the end of its entropy-coded data; otherwise of the segment.
    end: usize,
}

/// The file rewritten for a decode at `scale`, or `None` when there is
/// nothing to drop or the file is not a progressive Huffman JPEG this
/// understands (the caller then decodes the file as it is).
pub fn for_scale(bytes: &[u8], scale: ScalingFactor) -> Option<Selected> {
    let base = idct_size(scale)?;
    let segments = segments(bytes)?;
    let sof = segments.iter().find(|s| is_sof(s.marker))?;
    if sof.marker != 0xC2 {
        return None; // progressive Huffman only
    }
    let (width, height, components) = frame(&bytes[sof.start + 4..sof.end])?;
    let hmax = components.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = components.iter().map(|c| c.v).max().unwrap_or(1);
    let used: Vec<u64> = components
        .iter()
        .map(|c| used_coefficients(component_idct_size(base, c, hmax, vmax)))
        .collect();

    // Per component: the coefficients whose first scan is dropped, and the
    // coefficients of kept scans (which must not overlap them).
    let mut dropped = vec![0u64; components.len()];
    let mut kept_bands = vec![0u64; components.len()];
    let mut keep = Vec::with_capacity(segments.len());
    let (mut scans, mut kept, mut entropy, mut kept_entropy) = (0u32, 0u32, 0u64, 0u64);
    for s in &segments {
        if s.marker != 0xDA {
            keep.push(true);
            continue;
        }
        let header = &bytes[s.start + 4..];
        let len = usize::from(u16::from_be_bytes([bytes[s.start + 2], bytes[s.start + 3]]));
        let ns = usize::from(*header.first()?);
        if len != 6 + 2 * ns || ns == 0 || ns > 4 {
            return None;
        }
        let (ss, se) = (header[1 + 2 * ns], header[2 + 2 * ns]);
        if ss > se || se > 63 {
            return None;
        }
        let ids: Vec<usize> = (0..ns)
            .map(|k| components.iter().position(|c| c.id == header[1 + 2 * k]))
            .collect::<Option<_>>()?;
        let data = (s.end - (s.start + 2 + len)) as u64;
        scans += 1;
        entropy += data;
        let this = band(ss, se);
        let drop = ss > 0 && ids.iter().all(|&c| this & used[c] == 0);
        for &c in &ids {
            if drop {
                dropped[c] |= this;
            } else {
                kept_bands[c] |= this;
            }
        }
        keep.push(!drop);
        if !drop {
            kept += 1;
            kept_entropy += data;
        }
    }
    if kept == scans || dropped.iter().zip(&kept_bands).any(|(d, k)| d & k != 0) {
        return None; // nothing to gain, or a band split between kept and dropped scans
    }
    // The zero scans (one per contiguous run of dropped coefficients) must
    // not make the file longer in scans than it was: the scan limit applies
    // to what is decoded.
    let zero: u32 = dropped.iter().map(|&d| runs(d)).sum();
    if kept + zero >= scans {
        return None;
    }

    let mut out = Vec::with_capacity(bytes.len() / 4);
    out.extend_from_slice(&bytes[..2]); // SOI
    for (s, keep) in segments.iter().zip(keep) {
        if s.marker == 0xD9 {
            zero_scans(&mut out, width, height, &components, &dropped);
        }
        if keep {
            out.extend_from_slice(&bytes[s.start..s.end]);
        }
    }
    Some(Selected {
        bytes: out,
        scans,
        kept,
        kept_entropy_bytes: kept_entropy,
        entropy_bytes: entropy,
    })
}

fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Every segment from after SOI to EOI; `None` unless the file is a
/// well-formed sequence of them ending in EOI.
fn segments(bytes: &[u8]) -> Option<Vec<Segment>> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let n = bytes.len();
    let mut out = Vec::new();
    let mut i = 2;
    loop {
        if i + 1 >= n || bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xD9 {
            out.push(Segment {
                marker,
                start: i,
                end: i + 2,
            });
            return Some(out);
        }
        if marker == 0xFF || marker == 0x00 || marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            return None;
        }
        if i + 4 > n {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let mut end = i + 2 + len;
        if len < 2 || end > n {
            return None;
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker other than RSTn
            // (0xFF00 is a stuffed 0xFF).
            loop {
                let ff = end + memchr(&bytes[end..])?;
                let next = *bytes.get(ff + 1)?;
                if next == 0 || (0xD0..=0xD7).contains(&next) {
                    end = ff + 2;
                } else {
                    end = ff;
                    break;
                }
            }
        }
        out.push(Segment {
            marker,
            start: i,
            end,
        });
        i = end;
    }
}

fn memchr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == 0xFF)
}

/// Width, height and components from a SOF payload.
fn frame(payload: &[u8]) -> Option<(u32, u32, Vec<Component>)> {
    let height = u32::from(u16::from_be_bytes([*payload.get(1)?, *payload.get(2)?]));
    let width = u32::from(u16::from_be_bytes([*payload.get(3)?, *payload.get(4)?]));
    let count = usize::from(*payload.get(5)?);
    let comps: Vec<Component> = payload
        .get(6..6 + 3 * count)?
        .chunks_exact(3)
        .map(|c| Component {
            id: c[0],
            h: u32::from(c[1] >> 4),
            v: u32::from(c[1] & 0x0F),
        })
        .collect();
    if width == 0 || height == 0 || comps.is_empty() || comps.len() > 4 {
        return None;
    }
    if (1..comps.len()).any(|k| comps[..k].iter().any(|c| c.id == comps[k].id)) {
        return None; // duplicate component ids: scans could not name one
    }
    if comps
        .iter()
        .any(|c| !(1..=4).contains(&c.h) || !(1..=4).contains(&c.v))
    {
        return None;
    }
    Some((width, height, comps))
}

/// For each component with dropped coefficients, one AC first scan per
/// contiguous run of them that codes every block as an end-of-band (EOB
/// runs), with its own Huffman table and restart markers off. They come
/// last, just before EOI, so the table and restart interval they set are
/// used by nothing else.
fn zero_scans(out: &mut Vec<u8>, width: u32, height: u32, comps: &[Component], dropped: &[u64]) {
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    // AC table 0: symbols EOB0..EOB14 (r << 4), each a 4-bit code equal to r.
    let mut dht = vec![0xFF, 0xC4, 0, 2 + 1 + 16 + 15, 0x10];
    let mut counts = [0u8; 16];
    counts[3] = 15;
    dht.extend_from_slice(&counts);
    dht.extend((0..15u8).map(|r| r << 4));
    out.extend_from_slice(&dht);
    out.extend_from_slice(&[0xFF, 0xDD, 0, 4, 0, 0]); // DRI: no restart markers
    for (c, &mask) in comps.iter().zip(dropped) {
        let blocks_w = (width * c.h).div_ceil(hmax * 8);
        let blocks_h = (height * c.v).div_ceil(vmax * 8);
        let blocks = blocks_w * blocks_h;
        let mut rest = mask;
        while rest != 0 {
            let ss = rest.trailing_zeros() as u8;
            let se = ss + (rest >> ss).trailing_ones() as u8 - 1;
            rest &= !band(ss, se);
            out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, c.id, 0x00, ss, se, 0x00]);
            eob_runs(out, blocks);
        }
    }
}

/// The contiguous runs of set bits of `set`.
fn runs(set: u64) -> u32 {
    (set & !(set << 1)).count_ones()
}

/// Entropy-coded data for `blocks` blocks that are all end-of-band, with the
/// table of [`zero_scans`]: EOBr codes a run of 2^r + (r extra bits) blocks.
fn eob_runs(out: &mut Vec<u8>, blocks: u32) {
    let mut bits = BitWriter::new(out);
    let mut rest = blocks;
    while rest > 0 {
        let run = rest.min(0x7FFF);
        let r = 31 - run.leading_zeros();
        bits.put(r, 4);
        bits.put(run - (1 << r), r);
        rest -= run;
    }
    bits.finish();
}

/// MSB-first bits with JPEG byte stuffing and 1-bit padding.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u32,
    n: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    fn put(&mut self, value: u32, count: u32) {
        for k in (0..count).rev() {
            self.acc = (self.acc << 1) | ((value >> k) & 1);
            self.n += 1;
            if self.n == 8 {
                self.byte();
            }
        }
    }

    fn byte(&mut self) {
        let b = self.acc as u8;
        self.out.push(b);
        if b == 0xFF {
            self.out.push(0x00);
        }
        self.acc = 0;
        self.n = 0;
    }

    fn finish(mut self) {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{self, JpegPixels};

    #[test]
    fn the_reduced_idcts_read_these_coefficients() {
        assert_eq!(used_coefficients(1), 1);
        let quarter = used_coefficients(2);
        assert_eq!(quarter.count_ones(), 25);
        assert_ne!(quarter & (1 << 63), 0, "(7,7) is read by the 2x2 IDCT");
        assert_eq!(quarter & (1 << 3), 0, "zigzag 3 is (2,0): not read by it");
        assert_eq!(used_coefficients(4).count_ones(), 49);
        assert_eq!(used_coefficients(8), u64::MAX);
        assert_eq!(idct_size(ScalingFactor::ONE), None);
    }

    #[test]
    fn subsampled_components_get_a_larger_idct() {
        let c = |h, v| Component { id: 1, h, v };
        // 4:2:0 at 1/8: luma 1x1, chroma 2x2; at 1/2: chroma 8x8.
        assert_eq!(component_idct_size(1, &c(2, 2), 2, 2), 1);
        assert_eq!(component_idct_size(1, &c(1, 1), 2, 2), 2);
        assert_eq!(component_idct_size(4, &c(1, 1), 2, 2), 8);
        // 4:2:2 (2x1 luma): both ratios must allow it, so chroma stays 1x1.
        assert_eq!(component_idct_size(1, &c(1, 1), 2, 1), 1);
        // 4:4:4.
        assert_eq!(component_idct_size(2, &c(1, 1), 1, 1), 2);
    }

    #[test]
    fn runs_of_bits() {
        assert_eq!(runs(0), 0);
        assert_eq!(runs(band(1, 63)), 1);
        assert_eq!(runs(0b1011_0110), 3);
        assert_eq!(runs(u64::MAX), 1);
    }

    #[test]
    fn bands() {
        assert_eq!(band(0, 0), 1);
        assert_eq!(band(1, 5), 0b111110);
        assert_eq!(band(0, 63), u64::MAX);
        assert_eq!(band(6, 63).count_ones(), 58);
    }

    #[test]
    fn eob_runs_code_the_block_count() {
        // 1 block: EOB0 = 0000, padded with 1s.
        let mut v = Vec::new();
        eob_runs(&mut v, 1);
        assert_eq!(v, [0b0000_1111]);
        // 5 blocks: EOB2 (0010) + 1 in 2 bits (01) + padding (11).
        let mut v = Vec::new();
        eob_runs(&mut v, 5);
        assert_eq!(v, [0b0010_0111]);
        // 40,000 blocks: EOB14 with 32,767 - 16,384 (14 ones), then EOB12
        // with 7,233 - 4,096; the 0xFF byte is stuffed.
        let mut v = Vec::new();
        eob_runs(&mut v, 40_000);
        assert_eq!(v, [0xEF, 0xFF, 0x00, 0xF3, 0x10, 0x7F]);
    }

    fn sample(path: &str) -> Vec<u8> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-media/");
        std::fs::read(format!("{root}{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn pixels(bytes: &[u8], scale: ScalingFactor, select: bool) -> (u32, u32, Vec<u8>) {
        let header = jpeg::read_header(bytes).unwrap();
        match jpeg::decode(bytes, &header, scale, select).unwrap() {
            JpegPixels::Rgb(b) => (b.width, b.height, b.data),
            JpegPixels::Cmyk {
                width,
                height,
                data,
            } => (width, height, data),
        }
    }

    /// Every progressive fixture and golden photo, at each reduced scale:
    /// the scans kept (of all; `None`: nothing dropped), and the pixels,
    /// which are those of the decode of every scan, to the bit.
    #[test]
    fn same_pixels_as_decoding_every_scan() {
        let eighth = ScalingFactor::ONE_EIGHTH;
        let quarter = ScalingFactor::ONE_QUARTER;
        let half = ScalingFactor::ONE_HALF;
        type Expect = [(ScalingFactor, Option<(u32, u32)>); 3];
        // libjpeg's default script: DC (first and refinement), luma AC in
        // four scans, each chroma AC in two. In 4:2:0 files the chroma
        // blocks use the 2x2 IDCT at 1/8, so their AC scans stay.
        let libjpeg_default: Expect = [(eighth, Some((2, 10))), (quarter, None), (half, None)];
        let libjpeg_420: Expect = [(eighth, Some((6, 10))), (quarter, None), (half, None)];
        let cases: [(&str, Expect); 8] = [
            ("seeding_by_Clements_Engelhardt.jpg", libjpeg_420),
            ("Wine_by_Jakkub_Mede.jpg", libjpeg_default),
            ("fixtures/progressive.jpg", libjpeg_420),
            (
                "fixtures/progressive/gray.jpg",
                [(eighth, Some((2, 6))), (quarter, None), (half, None)],
            ),
            (
                "fixtures/progressive/cmyk.jpg",
                [(eighth, Some((2, 18))), (quarter, None), (half, None)],
            ),
            ("fixtures/progressive/restart.jpg", libjpeg_default),
            (
                "fixtures/progressive/bands.jpg",
                [
                    (eighth, Some((2, 67))),
                    (quarter, Some((67 - 39, 67))),
                    (half, Some((67 - 15, 67))),
                ],
            ),
            (
                "fixtures/progressive/split.jpg",
                [(eighth, Some((1, 7))), (quarter, None), (half, None)],
            ),
        ];
        for (path, expect) in cases {
            let bytes = sample(path);
            for (scale, kept) in expect {
                let selected = for_scale(&bytes, scale);
                let what = format!("{path} at {}/{}", scale.num(), scale.denom());
                assert_eq!(
                    selected.as_ref().map(|s| (s.kept, s.scans)),
                    kept,
                    "{what}: scans kept"
                );
                let (w, h, all) = pixels(&bytes, scale, false);
                let (sw, sh, some) = pixels(&bytes, scale, true);
                assert_eq!((sw, sh), (w, h), "{what}");
                let differ = all.iter().zip(&some).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{what}: samples that differ");
            }
        }
    }

    /// Without the zero scans, libjpeg-turbo would smooth the blocks of the
    /// DC-only file and the pixels would differ: the check above can fail.
    #[test]
    fn without_the_zero_scans_the_pixels_differ() {
        let bytes = sample("seeding_by_Clements_Engelhardt.jpg");
        let mut selected = for_scale(&bytes, ScalingFactor::ONE_EIGHTH).unwrap().bytes;
        // The zero scans start at the last DHT, the one written for them.
        let zero = selected
            .windows(2)
            .rposition(|w| w == [0xFF, 0xC4])
            .unwrap();
        selected.truncate(zero);
        selected.extend_from_slice(&[0xFF, 0xD9]);
        let header = jpeg::read_header(&bytes).unwrap();
        let eighth = ScalingFactor::ONE_EIGHTH;
        let (_, _, all) = pixels(&bytes, eighth, false);
        let JpegPixels::Rgb(dc_only) = jpeg::decode(&selected, &header, eighth, false).unwrap()
        else {
            panic!("RGB expected");
        };
        let differ = all
            .iter()
            .zip(&dc_only.data)
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ > all.len() / 10, "{differ} of {} differ", all.len());
    }

    #[test]
    fn every_prefix_is_declined_or_rewritten_without_panic() {
        for path in ["fixtures/progressive.jpg", "fixtures/progressive/split.jpg"] {
            let bytes = sample(path);
            for n in 0..bytes.len() {
                let s = for_scale(&bytes[..n], ScalingFactor::ONE_EIGHTH);
                assert!(s.is_none(), "{path}: {n} bytes have no EOI");
            }
        }
    }

    #[test]
    fn declines_what_it_does_not_understand() {
        assert!(for_scale(b"\xFF\xD8\xFF\xD9", ScalingFactor::ONE_EIGHTH).is_none());
        assert!(for_scale(b"not a jpeg", ScalingFactor::ONE_EIGHTH).is_none());
        assert!(for_scale(b"\xFF\xD8\xFF\xC2\x00", ScalingFactor::ONE_EIGHTH).is_none());
    }
}
