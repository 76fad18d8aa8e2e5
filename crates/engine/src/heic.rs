//! HEIC/HEIF (HEVC-coded stills, as phones write them) through `heifer`,
//! a pure-Rust container parser and HEVC decoder (MIT OR Apache-2.0; see
//! ARCHITECTURE.md for the choice, the measurements and the patent note),
//! on one thread.
//!
//! The header stage parses the container only: the primary item (never the
//! thumbnail), its `ispe` (a grid's is the output size), `clap`, `irot`,
//! `imir`. The pixel limit is checked on that declared size before any tile
//! is decoded, and the decoder is given the same limit for every image it
//! assembles. Pixels come back with the transforms applied in the item's
//! order (upright), 8 bits per channel whatever the coded depth, YCbCr
//! converted by the `nclx` matrix (or the bitstream's); an ICC profile in
//! `colr`, or wide-gamut `nclx` primaries without one, are converted to
//! sRGB by the engine's colour module. EXIF orientation inside a HEIF is
//! ignored: `irot` and `imir` are the file's orientation, as browsers and
//! libheif treat it.
//!
//! The same container parser gives AVIF its transforms and ICC profile
//! ([`item_facts`]), so both ISO-BMFF image formats read them one way.

use crate::bitmap::Bitmap;
use crate::color::{self, ColorFacts};
use crate::decode::UprightPixels;
use crate::error::{MediaError, Result};
use crate::orient::{self, ItemTransform};
use crate::plan::Limits;
use heifer_isobmff::boxes::{ColorInfo, Property};
use heifer_isobmff::HeifFile;

/// The primary item as its container describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeicHeader {
    /// Stored size: the clean aperture before rotation.
    pub width: u32,
    pub height: u32,
    /// `irot`/`imir` as an EXIF orientation.
    pub orientation: u8,
    pub has_alpha: bool,
}

fn container(e: heifer_isobmff::Error) -> MediaError {
    MediaError::corrupt(format!("heic: {e}"))
}

#[cfg(feature = "heic")]
fn decode_error(e: heifer::Error) -> MediaError {
    match e {
        heifer::Error::Unsupported(what) => MediaError::unsupported(format!("heic: {what}")),
        e => MediaError::corrupt(format!("heic: {e}")),
    }
}

/// Transforms, ICC profile and `nclx` code points of an ISO-BMFF image's
/// primary item (HEIF or AVIF), from its `meta` box.
#[derive(Debug, Default)]
pub struct ItemFacts {
    /// `irot` and `imir`, in the item's association order.
    pub transforms: Vec<ItemTransform>,
    /// `ispe`: the coded (or grid output) size.
    pub size: Option<(u32, u32)>,
    /// `clap`: the clean aperture's size, applied before the rotation.
    pub clean_aperture: Option<(u32, u32)>,
    pub icc: Option<Vec<u8>>,
    /// (colour primaries, transfer characteristics) of an `nclx` box.
    pub nclx: Option<(u16, u16)>,
    pub has_alpha: bool,
}

impl ItemFacts {
    pub fn orientation(&self) -> u8 {
        orient::from_item_transforms(self.transforms.iter().copied())
    }

    /// Converts `bitmap` to sRGB from the item's colour: its ICC profile
    /// when it has one, else its `nclx` primaries (HEIC and AVIF alike).
    pub fn to_srgb(&self, bitmap: &mut Bitmap) -> Result<ColorFacts> {
        match (&self.icc, self.nclx) {
            (Some(icc), _) => color::rgb_to_srgb(bitmap, icc),
            (None, Some((primaries, transfer))) => color::nclx_to_srgb(bitmap, primaries, transfer),
            (None, None) => Ok(ColorFacts::default()),
        }
    }
}

/// Reads [`ItemFacts`] of the primary item of `bytes`.
pub fn item_facts(bytes: &[u8]) -> Result<ItemFacts> {
    facts_of(&parse(bytes)?)
}

/// The container, once its item counts are checked.
fn parse(bytes: &[u8]) -> Result<HeifFile<'_>> {
    check_item_counts(bytes)?;
    HeifFile::parse(bytes).map_err(container)
}

/// [`ItemFacts`] of the primary item of a parsed container.
fn facts_of(file: &HeifFile<'_>) -> Result<ItemFacts> {
    let id = file.primary_id;
    let mut facts = ItemFacts {
        size: file.image_size(id).map_err(container)?,
        ..ItemFacts::default()
    };
    for p in file.item_properties(id).map_err(container)? {
        match p {
            Property::Rotation(q) => facts.transforms.push(ItemTransform::RotateCcw(*q)),
            // ISO/IEC 23008-12:2022, libheif, libavif, browsers: `imir`
            // mode 0 exchanges top and bottom, 1 left and right.
            Property::Mirror(true) => facts.transforms.push(ItemTransform::MirrorTopBottom),
            Property::Mirror(false) => facts.transforms.push(ItemTransform::MirrorLeftRight),
            Property::CleanAperture {
                width,
                height,
                horiz_offset,
                vert_offset,
            } => {
                facts.clean_aperture = facts
                    .size
                    .map(|size| clap_size(size, *width, *height, *horiz_offset, *vert_offset));
            }
            Property::Color(ColorInfo::Icc(icc)) => facts.icc = Some(icc.clone()),
            Property::Color(ColorInfo::Nclx {
                primaries,
                transfer,
                ..
            }) => facts.nclx = Some((*primaries, *transfer)),
            _ => {}
        }
    }
    facts.has_alpha = file.referencing_items(id, b"auxl").iter().any(|&aux| {
        file.item_properties(aux).is_ok_and(|mut props| {
            props.any(|p| {
                matches!(p, Property::AuxiliaryType(urn)
                    if urn.starts_with("urn:mpeg:hevc:2015:auxid:1")
                        || urn.starts_with("urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"))
            })
        })
    });
    Ok(facts)
}

/// The size of a clean aperture cut from a `size` image, rounded as the
/// decoder rounds it (centre-relative offsets, then the window clipped to
/// the image).
fn clap_size(
    (w, h): (u32, u32),
    width: (u32, u32),
    height: (u32, u32),
    horiz: (i32, u32),
    vert: (i32, u32),
) -> (u32, u32) {
    let axis = |full: u32, size: (u32, u32), offset: (i32, u32)| {
        if size.1 == 0 || offset.1 == 0 {
            return full;
        }
        let c = f64::from(size.0) / f64::from(size.1);
        let centre = f64::from(offset.0) / f64::from(offset.1) + (f64::from(full) - 1.0) / 2.0;
        let start = (centre - (c - 1.0) / 2.0).round().max(0.0);
        let start = if start >= f64::from(full) {
            full
        } else {
            start as u32
        };
        (c.round().max(0.0) as u32).min(full - start)
    };
    (axis(w, width, horiz), axis(h, height, vert))
}

/// Reads the container (no pixel is decoded).
pub fn header(bytes: &[u8]) -> Result<HeicHeader> {
    let facts = item_facts(bytes)?;
    let (width, height) = facts
        .clean_aperture
        .or(facts.size)
        .ok_or_else(|| MediaError::corrupt("heic: the primary image has no size (ispe)"))?;
    if width == 0 || height == 0 {
        return Err(MediaError::corrupt(format!(
            "heic: the primary image is {width}x{height}"
        )));
    }
    Ok(HeicHeader {
        width,
        height,
        orientation: facts.orientation(),
        has_alpha: facts.has_alpha,
    })
}

/// The most items, item locations or property associations a HEIF file
/// may declare. Phones write tens (a 48-tile grid, its thumbnail, EXIF);
/// the container parser pairs them up in quadratic time, so a file
/// declaring hundreds of thousands would take hours before anything is
/// decoded.
pub const MAX_ITEMS: u32 = 4096;

/// Refuses a `meta` box that declares more than [`MAX_ITEMS`] items
/// (`iinf`), locations (`iloc`) or property associations (`ipma`), from
/// their counts alone, before the container is parsed.
pub fn check_item_counts(bytes: &[u8]) -> Result<()> {
    let be32 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let be16 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes(
            b.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    // (type, body) of each box in `b`; stops at the first box that does
    // not fit (the parser reports it).
    fn boxes(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let be32 = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let mut out = Vec::new();
        let mut at = 0usize;
        while let (Some(size), Some(kind)) = (be32(at), b.get(at + 4..at + 8)) {
            let (header, size) = match size {
                0 => (8, b.len() - at),
                1 => match b.get(at + 8..at + 16) {
                    Some(l) => (
                        16,
                        usize::try_from(u64::from_be_bytes(l.try_into().expect("8")))
                            .unwrap_or(usize::MAX),
                    ),
                    None => break,
                },
                n => (8, n as usize),
            };
            let end = at.saturating_add(size);
            if size < header || end > b.len() {
                break;
            }
            out.push((<[u8; 4]>::try_from(kind).expect("4"), &b[at + header..end]));
            at = end;
        }
        out
    }
    let too_many = |what: &str, n: u32| {
        MediaError::limits(format!(
            "heif: the file declares {n} {what}, over the limit of {MAX_ITEMS}"
        ))
    };
    for (kind, meta) in boxes(bytes) {
        if &kind != b"meta" || meta.len() < 4 {
            continue;
        }
        for (kind, body) in boxes(&meta[4..]) {
            let version = body.first().copied().unwrap_or(0);
            let count = match &kind {
                b"iinf" if version == 0 => be16(body, 4),
                b"iinf" => be32(body, 4),
                b"iloc" if version < 2 => be16(body, 6),
                b"iloc" => be32(body, 6),
                b"iprp" => {
                    for (kind, body) in boxes(body) {
                        if &kind == b"ipma" {
                            let n = be32(body, 4).unwrap_or(0);
                            if n > MAX_ITEMS {
                                return Err(too_many("property associations", n));
                            }
                        }
                    }
                    None
                }
                _ => None,
            };
            if let Some(n) = count.filter(|&n| n > MAX_ITEMS) {
                return Err(too_many("items or locations", n));
            }
        }
    }
    Ok(())
}

/// Checks every picture the decoder will decode for the primary image,
/// and returns their total pixels (the decode's real size, for the memory
/// estimate): the primary `hvc1` item or a grid's tiles, and their alpha
/// items. Refused before any is decoded:
/// - overlay (`iovl`) and identity (`iden`) primaries, and grids of
///   anything but coded tiles (a derived tile could multiply the work);
/// - a tile listed twice, a tile size other than the first's, tiles that
///   do not cover the grid's output exactly (or cover it more than once
///   over), a grid whose output is not its `ispe`;
/// - a coded picture (its SPS) larger than its `ispe` plus one coding tree
///   block of padding;
/// - more than twice the pixel limit in all.
#[cfg(feature = "heic")]
pub fn decode_plan(bytes: &[u8], limits: &Limits) -> Result<u64> {
    plan_of(&parse(bytes)?, limits)
}

/// [`decode_plan`] of a parsed container.
#[cfg(feature = "heic")]
fn plan_of(file: &HeifFile<'_>, limits: &Limits) -> Result<u64> {
    use heifer::heifer_hevc_dec::nal::{split_annex_b, NalUnit};
    use heifer::heifer_hevc_dec::params::Sps;
    let kind = |id| file.item(id).map(|i| i.item_type.0).map_err(container);
    let size = |id| -> Result<(u32, u32)> {
        file.image_size(id)
            .map_err(container)?
            .ok_or_else(|| MediaError::corrupt(format!("heic: item {id} has no size (ispe)")))
    };
    let is_alpha = |id| {
        file.item_properties(id).is_ok_and(|mut props| {
            props.any(|p| {
                matches!(p, Property::AuxiliaryType(urn)
                    if urn.starts_with("urn:mpeg:hevc:2015:auxid:1")
                        || urn.starts_with("urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"))
            })
        })
    };
    // The coded items of one image (itself, or its grid's tiles).
    let coded_of = |id| -> Result<Vec<u32>> {
        match &kind(id)? {
            b"hvc1" => Ok(vec![id]),
            b"grid" => {
                let tiles = file.referenced_items(id, b"dimg").to_vec();
                let grid = file.grid(id).map_err(container)?;
                let (w, h) = size(id)?;
                if (grid.output_width, grid.output_height) != (w, h) {
                    return Err(MediaError::corrupt(format!(
                        "heic: grid output {}x{} is not its ispe {w}x{h}",
                        grid.output_width, grid.output_height
                    )));
                }
                let (cols, rows) = (u32::from(grid.columns), u32::from(grid.rows));
                if tiles.len() as u64 != u64::from(cols) * u64::from(rows) || tiles.is_empty() {
                    return Err(MediaError::corrupt(format!(
                        "heic: grid of {cols}x{rows} lists {} tiles",
                        tiles.len()
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                let first = size(tiles[0])?;
                for &t in &tiles {
                    if !seen.insert(t) {
                        return Err(MediaError::corrupt(format!(
                            "heic: grid lists tile {t} twice"
                        )));
                    }
                    if &kind(t)? != b"hvc1" {
                        return Err(MediaError::unsupported(
                            "heic: grid tiles that are derived images",
                        ));
                    }
                    if size(t)? != first {
                        return Err(MediaError::corrupt("heic: grid tiles differ in size"));
                    }
                }
                let covers = |n: u32, tile: u32, out: u32| {
                    u64::from(n.saturating_sub(1)) * u64::from(tile) < u64::from(out)
                        && u64::from(out) <= u64::from(n) * u64::from(tile)
                };
                if !covers(cols, first.0, w) || !covers(rows, first.1, h) {
                    return Err(MediaError::corrupt(format!(
                        "heic: {cols}x{rows} tiles of {}x{} do not cover {w}x{h}",
                        first.0, first.1
                    )));
                }
                Ok(tiles)
            }
            other => Err(MediaError::unsupported(format!(
                "heic: {} primary images (only coded and grid images are decoded)",
                String::from_utf8_lossy(other)
            ))),
        }
    };
    let primary = file.primary_id;
    let mut coded = coded_of(primary)?;
    // Alpha items of the primary image and of each of its coded pictures.
    let owners: Vec<u32> = std::iter::once(primary)
        .chain(coded.iter().copied())
        .collect();
    for owner in owners {
        for aux in file.referencing_items(owner, b"auxl") {
            if is_alpha(aux) {
                coded.extend(coded_of(aux)?);
            }
        }
    }
    let mut total = 0u64;
    for id in coded {
        let (w, h) = size(id)?;
        let stream = file.hevc_bitstream(id).map_err(container)?;
        for nal in split_annex_b(&stream) {
            let Ok(unit) = NalUnit::parse(nal) else {
                continue;
            };
            if nal.len() < 2 || (nal[0] >> 1) & 0x3F != 33 {
                continue;
            }
            let sps = Sps::parse(&unit.rbsp)
                .map_err(|e| MediaError::corrupt(format!("heic: item {id}: bad SPS: {e}")))?;
            let (sw, sh) = (
                sps.pic_width_in_luma_samples,
                sps.pic_height_in_luma_samples,
            );
            if sw > w.saturating_add(64) || sh > h.saturating_add(64) {
                return Err(MediaError::corrupt(format!(
                    "heic: item {id} codes {sw}x{sh} pixels but its ispe says {w}x{h}"
                )));
            }
            total = total.saturating_add(u64::from(sw) * u64::from(sh));
        }
    }
    if total > limits.max_pixels.saturating_mul(2) {
        return Err(MediaError::limits(format!(
            "heic: the pictures to decode hold {total} pixels, over twice the limit of {} pixels",
            limits.max_pixels
        )));
    }
    Ok(total)
}

/// Decodes the primary image of a HEIC whose header is `header`.
#[cfg(feature = "heic")]
pub fn decode(bytes: &[u8], header: &HeicHeader, limits: &Limits) -> Result<UprightPixels> {
    crate::limits::check_pixels(header.width, header.height, limits)?;
    // One parse for the checks and the colour boxes (heifer parses again).
    let file = parse(bytes)?;
    plan_of(&file, limits)?;
    let facts = facts_of(&file)?;
    drop(file);
    let options = heifer::Options {
        max_threads: 1,
        max_pixels: limits.max_pixels,
    };
    let image = heifer::decode_rgba8(bytes, &options).map_err(decode_error)?;
    let (dw, dh) = orient::displayed_dims(header.width, header.height, header.orientation);
    if (image.width, image.height) != (dw, dh) {
        return Err(MediaError::corrupt(format!(
            "heic: decoded {}x{}, the container says {dw}x{dh}",
            image.width, image.height
        )));
    }
    let (w, h) = (image.width, image.height);
    let mut bitmap = if image.has_alpha {
        Bitmap::new(w, h, 4, image.data)
    } else {
        Bitmap::new(w, h, 3, image.into_rgb8())
    };
    let color = facts.to_srgb(&mut bitmap)?;
    Ok(UprightPixels {
        bitmap,
        color_model: "rgb",
        color,
    })
}

/// Without the `heic` feature: HEIC is recognised, and refused.
#[cfg(not(feature = "heic"))]
pub fn decode(_: &[u8], _: &HeicHeader, _: &Limits) -> Result<UprightPixels> {
    Err(MediaError::unsupported(
        "heic: this build has no HEIC decoder (cargo feature `heic` of mediaflow-engine)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_aperture_rounds_like_the_decoder() {
        // An odd-sized photo in a 4:2:0 stream: 1002x1502 coded, 1001x1501 shown.
        assert_eq!(
            clap_size((1002, 1502), (1001, 1), (1501, 1), (-1, 2), (-1, 2)),
            (1001, 1501)
        );
        // A window past the edge is clipped to the image.
        assert_eq!(
            clap_size((100, 100), (90, 1), (90, 1), (20, 1), (0, 1)),
            (75, 90)
        );
        assert_eq!(
            clap_size((100, 100), (90, 1), (90, 1), (0, 0), (0, 1)),
            (100, 90)
        );
    }
}
