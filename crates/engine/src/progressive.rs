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
//! SIMD ports): 1/8 (`jpeg_idct_1x1`) the DC term; 1/4 (`jpeg_idct_2x2`)
//! rows and columns 0, 1, 3, 5, 7; 1/2 (`jpeg_idct_4x4`) all but row 4 and
//! (0, 4) (see [`used_coefficients`] for why column 4 counts). A subsampled
//! component may get a larger IDCT than the scale's ([`component_idct_size`]).
//! At 1/4 and 1/2 every band that reaches zigzag index 63 is therefore
//! needed, so the scan scripts of libjpeg, mozjpeg and ImageMagick keep all
//! their scans there; a file whose script isolates the unused coefficients
//! gains.
//!
//! The rewrite keeps every other marker where it was (tables, restart
//! intervals, metadata), so each kept scan decodes as before. Anything it
//! does not recognise, and anything libjpeg-turbo would refuse or warn
//! about in a scan it drops (parameters, progression order, undefined
//! tables, more than [`MAX_SCANS`] scans), makes it decline (`None`): the
//! file is then decoded as it is. What it cannot see without decoding them
//! is corrupt entropy-coded data inside the dropped scans: such a file now
//! gives its thumbnail where the full decode fails, as browsers show a
//! progressive image whose later scans are damaged.

use crate::jpeg::MAX_SCANS;
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
///
/// At size 4 the C code reads rows and columns 0-3 and 5-7, but the x86
/// SSE2 version (`jsimd_idct_4x4_sse2`) first tests whether rows 1-3 and
/// 5-7 are zero in all eight columns, column 4 included, and then takes a
/// shortcut whose arithmetic wraps where the full path saturates: a zero
/// in column 4 can change the pixels of a crafted block. So column 4 counts
/// as read there, and only row 4 and (0, 4) are not.
fn used_coefficients(size: u32) -> u64 {
    let read = |row: u8, col: u8| match size {
        1 => row == 0 && col == 0,
        2 => [0, 1, 3, 5, 7].contains(&row) && [0, 1, 3, 5, 7].contains(&col),
        4 => row != 4 && (row, col) != (0, 4),
        _ => true,
    };
    let mut set = 0u64;
    for (zz, &natural) in ZIGZAG.iter().enumerate() {
        if read(natural / 8, natural % 8) {
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
    // libjpeg's progression state: the successive-approximation bit each
    // coefficient has reached (-1: none yet), and the AC tables defined.
    let mut coef_bits = vec![[-1i8; 64]; components.len()];
    let mut ac_tables = [false; 4];
    let mut keep = Vec::with_capacity(segments.len());
    let (mut scans, mut kept, mut entropy, mut kept_entropy) = (0u32, 0u32, 0u64, 0u64);
    for s in &segments {
        if s.marker == 0xC4 {
            define_tables(&bytes[s.start + 4..s.end], &mut ac_tables)?;
        }
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
        let (ss, se, ah, al) = (
            header[1 + 2 * ns],
            header[2 + 2 * ns],
            header[3 + 2 * ns] >> 4,
            header[3 + 2 * ns] & 0x0F,
        );
        // What libjpeg-turbo refuses (`start_pass_phuff_decoder`); the file
        // then fails as it is.
        let ac = ss > 0;
        if (ac && (se > 63 || ss > se || ns != 1)) || (!ac && se != 0) {
            return None;
        }
        if (ah != 0 && al + 1 != ah) || al > 13 {
            return None;
        }
        let ids: Vec<usize> = (0..ns)
            .map(|k| components.iter().position(|c| c.id == header[1 + 2 * k]))
            .collect::<Option<_>>()?;
        let data = (s.end - (s.start + 2 + len)) as u64;
        scans += 1;
        entropy += data;
        let this = band(ss, se);
        let drop = ac && ids.iter().all(|&c| this & used[c] == 0);
        for &c in &ids {
            let bits = &mut coef_bits[c];
            if drop {
                // Whatever libjpeg-turbo would warn about in a scan it no
                // longer sees (a warning fails the decode): keep the scan.
                let table = usize::from(header[2] & 0x0F); // an AC scan has one component
                let in_order = (ss..=se).all(|k| ah == bits[usize::from(k)].max(0) as u8);
                if bits[0] < 0 || !in_order || table > 3 || !ac_tables[table] {
                    return None;
                }
                dropped[c] |= this;
            } else {
                kept_bands[c] |= this;
            }
            for k in ss..=se {
                bits[usize::from(k)] = al as i8;
            }
        }
        keep.push(!drop);
        if !drop {
            kept += 1;
            kept_entropy += data;
        }
    }
    if scans > MAX_SCANS
        || kept == scans
        || dropped.iter().zip(&kept_bands).any(|(d, k)| d & k != 0)
    {
        return None; // nothing to gain, or a band split between kept and dropped scans
    }
    // The zero scans (one per contiguous run of dropped coefficients) must
    // not make the file longer in scans than it was: the scan limit applies
    // to what is decoded.
    let zero: u32 = dropped.iter().map(|&d| runs(d)).sum();
    if kept + zero >= scans {
        return None;
    }

    let mut zeros = Vec::new();
    zero_scans(&mut zeros, width, height, &components, &dropped);
    let kept_bytes: usize = segments
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(s, _)| s.end - s.start)
        .sum();
    let mut out = Vec::with_capacity(2 + kept_bytes + zeros.len());
    out.extend_from_slice(&bytes[..2]); // SOI
    for (s, keep) in segments.iter().zip(keep) {
        if s.marker == 0xD9 {
            out.extend_from_slice(&zeros);
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

/// Marks the AC tables (class 1) a DHT payload defines; `None` if it is
/// malformed (libjpeg-turbo refuses it too).
fn define_tables(mut payload: &[u8], ac_tables: &mut [bool; 4]) -> Option<()> {
    while let Some(&class_id) = payload.first() {
        let counts = payload.get(1..17)?;
        let symbols: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if class_id >> 4 == 1 {
            *ac_tables.get_mut(usize::from(class_id & 0x0F))? = true;
        }
        payload = payload.get(17 + symbols..)?;
    }
    Some(())
}

fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Segments a rewrite looks at, at most: real files have a few dozen
/// (tables, metadata, up to [`MAX_SCANS`] scans).
const MAX_SEGMENTS: usize = 2 * MAX_SCANS as usize + 64;

/// Every segment from after SOI to EOI; `None` unless the file is a
/// well-formed sequence of at most [`MAX_SEGMENTS`] of them ending in EOI,
/// with a progressive Huffman frame (SOF2) before the first scan. Stops at
/// the first other frame type, so a baseline file costs its headers only.
fn segments(bytes: &[u8]) -> Option<Vec<Segment>> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let n = bytes.len();
    let mut out = Vec::new();
    let mut sof = false;
    let mut i = 2;
    loop {
        if i + 1 >= n || bytes[i] != 0xFF || out.len() >= MAX_SEGMENTS {
            return None;
        }
        let marker = bytes[i + 1];
        if is_sof(marker) {
            if marker != 0xC2 || sof {
                return None;
            }
            sof = true;
        }
        if marker == 0xDA && !sof {
            return None;
        }
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
        assert_eq!(used_coefficients(4).count_ones(), 64 - 9);
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
                    // Only row 4 and (0, 4): nine single-coefficient scans,
                    // which would take nine zero scans.
                    (half, None),
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

    /// An 8x8 grayscale progressive JPEG: quantizer `q0` for DC and 1 for
    /// every AC coefficient, a DC of `dc` (7 bits), and `scans` of
    /// (Ss, Se, Ah << 4 | Al, AC table, coefficient Ss = 1 or EOB).
    fn crafted(q0: u8, dc: u32, scans: &[(u8, u8, u8, u8, bool)]) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        let seg = |b: &mut Vec<u8>, marker: u8, payload: &[u8]| {
            b.extend_from_slice(&[0xFF, marker]);
            b.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            b.extend_from_slice(payload);
        };
        let mut dqt = vec![0u8; 65];
        dqt[1..].fill(1);
        dqt[1] = q0;
        seg(&mut b, 0xDB, &dqt);
        seg(&mut b, 0xC2, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]);
        // DC table 0: 00 -> category 0, 01 -> category 7. AC table 0:
        // 00 -> EOB, 01 -> (run 0, size 1).
        let mut counts = [0u8; 16];
        counts[1] = 2;
        let table = |class: u8, symbols: [u8; 2]| {
            let mut t = vec![class];
            t.extend_from_slice(&counts);
            t.extend_from_slice(&symbols);
            t
        };
        seg(&mut b, 0xC4, &table(0x00, [0x00, 0x07]));
        seg(&mut b, 0xC4, &table(0x10, [0x00, 0x01]));
        let mut data = Vec::new();
        let mut w = BitWriter::new(&mut data);
        w.put(0b01, 2);
        w.put(dc, 7);
        w.finish();
        seg(&mut b, 0xDA, &[1, 1, 0x00, 0, 0, 0]);
        b.extend_from_slice(&data);
        for &(ss, se, ahal, tbl, one) in scans {
            let mut data = Vec::new();
            let mut w = BitWriter::new(&mut data);
            if one {
                w.put(0b011, 3); // (0, 1) and the positive sign bit
                if ss < se {
                    w.put(0b00, 2); // EOB after it
                }
            } else {
                w.put(0b00, 2);
            }
            w.finish();
            seg(&mut b, 0xDA, &[1, 1, tbl, ss, se, ahal]);
            b.extend_from_slice(&data);
        }
        b.extend_from_slice(&[0xFF, 0xD9]);
        b
    }

    /// A block whose dequantized DC is large and whose only AC coefficient
    /// is (3, 4): x86's SSE2 4x4 IDCT takes a shortcut (wrapping) when rows
    /// 1-3 and 5-7 are zero in every column, column 4 included, so zeroing
    /// that coefficient would turn the block from white to black at 1/2.
    #[test]
    fn a_coefficient_in_column_4_is_kept_at_one_half() {
        let scans = [
            (1, 30, 0, 0, false),
            (31, 31, 0, 0, true), // zigzag 31 is (3, 4)
            (32, 32, 0, 0, false),
            (33, 63, 0, 0, false),
        ];
        let bytes = crafted(100, 100, &scans);
        let half = ScalingFactor::ONE_HALF;
        assert_eq!(pixels(&bytes, half, true), pixels(&bytes, half, false));
        if let Some(s) = for_scale(&bytes, half) {
            assert!(
                !s.bytes.windows(4).any(|w| w == [31, 31, 0, 0]),
                "scan 31 kept"
            );
        }
    }

    /// What libjpeg-turbo would refuse or warn about in a scan that would
    /// be dropped makes the rewrite decline, so the file fails as it is.
    #[test]
    fn declines_when_a_dropped_scan_is_out_of_order() {
        let eighth = ScalingFactor::ONE_EIGHTH;
        for fine in [
            crafted(8, 10, &[(1, 63, 0x01, 0, false), (1, 63, 0x10, 0, false)]),
            crafted(8, 10, &[(1, 5, 0, 0, true), (6, 63, 0, 0, false)]),
        ] {
            let kept = for_scale(&fine, eighth).map(|s| (s.kept, s.scans));
            assert_eq!(kept, Some((1, 3)));
            assert_eq!(pixels(&fine, eighth, true), pixels(&fine, eighth, false));
        }
        let refinement_first = crafted(8, 10, &[(1, 63, 0x10, 0, false), (1, 63, 0, 0, false)]);
        assert!(for_scale(&refinement_first, eighth).is_none());
        let undefined_table = crafted(8, 10, &[(1, 5, 0, 1, false), (6, 63, 0, 0, false)]);
        assert!(for_scale(&undefined_table, eighth).is_none());
        let al_too_large = crafted(8, 10, &[(1, 5, 14, 0, false), (6, 63, 0, 0, false)]);
        assert!(for_scale(&al_too_large, eighth).is_none());
        for bytes in [refinement_first, undefined_table, al_too_large] {
            let header = jpeg::read_header(&bytes).unwrap();
            assert!(jpeg::decode(&bytes, &header, eighth, true).is_err());
        }
    }

    #[test]
    fn declines_what_it_does_not_understand() {
        assert!(for_scale(b"\xFF\xD8\xFF\xD9", ScalingFactor::ONE_EIGHTH).is_none());
        assert!(for_scale(b"not a jpeg", ScalingFactor::ONE_EIGHTH).is_none());
        assert!(for_scale(b"\xFF\xD8\xFF\xC2\x00", ScalingFactor::ONE_EIGHTH).is_none());
    }
}
