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
    let file = HeifFile::parse(bytes).map_err(container)?;
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

/// Decodes the primary image of a HEIC whose header is `header`.
#[cfg(feature = "heic")]
pub fn decode(bytes: &[u8], header: &HeicHeader, limits: &Limits) -> Result<UprightPixels> {
    crate::limits::check_pixels(header.width, header.height, limits)?;
    let facts = item_facts(bytes)?;
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
