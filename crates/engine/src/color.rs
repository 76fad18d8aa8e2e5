//! Colour: every output is sRGB.
//!
//! Policy (documented in ARCHITECTURE.md): pixels described by an embedded ICC
//! profile are converted to sRGB with moxcms and the profile is dropped, as
//! browsers assume sRGB for untagged images. CMYK/YCCK JPEGs are converted
//! through their embedded CMYK profile when there is one, otherwise with the
//! naive ink formula; Adobe (APP14) files store inverted samples and are
//! un-inverted first. A profile that does not parse is reported in the facts
//! and the pixels are treated as sRGB, as browsers do.

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use moxcms::{ColorProfile, DataColorSpace, Layout, ProfileText, TransformOptions};

/// What was done to the colours of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColorFacts {
    /// Profile description, `invalid ICC profile` when it did not parse.
    pub profile: Option<String>,
    pub converted: bool,
}

fn text(t: &ProfileText) -> String {
    match t {
        ProfileText::PlainString(s) => s.clone(),
        ProfileText::Localizable(v) => v.first().map(|s| s.value.clone()).unwrap_or_default(),
        ProfileText::Description(d) => d.ascii_string.clone(),
    }
    .trim_matches(char::from(0))
    .trim()
    .to_string()
}

fn describe(p: &ColorProfile) -> String {
    p.description
        .as_ref()
        .map(text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("unnamed {:?} profile", p.color_space))
}

/// Larger ICC profiles are not parsed (treated like an invalid one): real
/// profiles, even with large CMYK lookup tables, are well under 1 MB.
pub const MAX_ICC_BYTES: usize = 4 << 20;

fn parse(icc: &[u8]) -> Option<ColorProfile> {
    if icc.len() > MAX_ICC_BYTES {
        return None;
    }
    ColorProfile::new_from_slice(icc).ok()
}

/// Converts an RGB(A) bitmap described by `icc` to sRGB in place.
pub fn rgb_to_srgb(bitmap: &mut Bitmap, icc: &[u8]) -> Result<ColorFacts> {
    let Some(profile) = parse(icc) else {
        return Ok(ColorFacts {
            profile: Some("invalid ICC profile".into()),
            converted: false,
        });
    };
    let description = describe(&profile);
    profile_to_srgb(bitmap, &profile, description)
}

/// Converts RGB(A) pixels described by the coding-independent code points
/// of an `nclx` colour box (HEIF, AVIF) to sRGB: Display P3 and BT.2020
/// primaries with an SDR transfer are converted; sRGB/BT.709, unspecified
/// and HDR transfers (PQ, HLG: tone mapping is out of scope) are left as
/// they are.
pub fn nclx_to_srgb(bitmap: &mut Bitmap, primaries: u16, transfer: u16) -> Result<ColorFacts> {
    // Transfers whose curve is (close to) sRGB's: BT.709/601/2020 SDR, sRGB.
    let sdr = matches!(transfer, 1 | 2 | 6 | 13 | 14 | 15);
    let (profile, name) = match primaries {
        12 if sdr => (ColorProfile::new_display_p3(), "Display P3 (nclx)"),
        9 if sdr => (ColorProfile::new_bt2020(), "BT.2020 (nclx)"),
        _ => return Ok(ColorFacts::default()),
    };
    profile_to_srgb(bitmap, &profile, name.to_string())
}

/// Converts `bitmap` from `profile` to sRGB (a no-op for profiles that are
/// sRGB in all but name).
fn profile_to_srgb(
    bitmap: &mut Bitmap,
    profile: &ColorProfile,
    description: String,
) -> Result<ColorFacts> {
    if profile.color_space != DataColorSpace::Rgb {
        // A gray profile on a gray image (expanded to RGB): its tone curve is
        // close to sRGB's; leave the pixels as they are.
        return Ok(ColorFacts {
            profile: Some(description),
            converted: false,
        });
    }
    let layout = if bitmap.channels == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let srgb = ColorProfile::new_srgb();
    let transform = profile
        .create_transform_8bit(layout, &srgb, layout, TransformOptions::default())
        .map_err(|e| MediaError::unsupported(format!("ICC profile {description:?}: {e}")))?;
    // Skip the full-image pass when the profile is sRGB in all but name
    // (compact sRGB profiles, "IEC 61966-2.1", camera copies of sRGB...).
    let probe: Vec<u8> = (0..=255u8)
        .step_by(17)
        .flat_map(|v| [v, 255 - v, v / 2, v, v, 255 - v / 3])
        .collect::<Vec<u8>>();
    let probe = if layout == Layout::Rgba {
        probe
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    } else {
        probe
    };
    let mut probe_out = vec![0u8; probe.len()];
    transform
        .transform(&probe, &mut probe_out)
        .map_err(|e| MediaError::internal(format!("colour transform: {e}")))?;
    let identity = probe
        .iter()
        .zip(&probe_out)
        .all(|(a, b)| a.abs_diff(*b) <= 1);
    if identity {
        return Ok(ColorFacts {
            profile: Some(description),
            converted: false,
        });
    }
    let mut out = vec![0u8; bitmap.data.len()];
    transform
        .transform(&bitmap.data, &mut out)
        .map_err(|e| MediaError::internal(format!("colour transform: {e}")))?;
    bitmap.data = out;
    Ok(ColorFacts {
        profile: Some(description),
        converted: true,
    })
}

/// Converts CMYK samples to an sRGB bitmap.
pub fn cmyk_to_srgb(
    width: u32,
    height: u32,
    mut data: Vec<u8>,
    adobe_inverted: bool,
    icc: Option<&[u8]>,
) -> Result<(Bitmap, ColorFacts)> {
    if adobe_inverted {
        for v in data.iter_mut() {
            *v = 255 - *v;
        }
    }
    // Now 0 = no ink, 255 = full ink.
    let profile = icc.and_then(parse);
    if let Some(profile) = profile.filter(|p| p.color_space == DataColorSpace::Cmyk) {
        let description = describe(&profile);
        let srgb = ColorProfile::new_srgb();
        let transform = profile
            .create_transform_8bit(
                Layout::Rgba,
                &srgb,
                Layout::Rgb,
                TransformOptions::default(),
            )
            .map_err(|e| {
                MediaError::unsupported(format!("CMYK ICC profile {description:?}: {e}"))
            })?;
        let mut out = vec![0u8; width as usize * height as usize * 3];
        transform
            .transform(&data, &mut out)
            .map_err(|e| MediaError::internal(format!("CMYK transform: {e}")))?;
        return Ok((
            Bitmap::new(width, height, 3, out),
            ColorFacts {
                profile: Some(description),
                converted: true,
            },
        ));
    }
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for p in data.chunks_exact(4) {
        let k = 255 - u32::from(p[3]);
        let ink = |c: u8| ((255 - u32::from(c)) * k / 255) as u8;
        out.extend_from_slice(&[ink(p[0]), ink(p[1]), ink(p[2])]);
    }
    let facts = ColorFacts {
        profile: icc.map(|i| {
            parse(i)
                .map(|p| describe(&p))
                .unwrap_or_else(|| "invalid ICC profile".into())
        }),
        converted: true,
    };
    Ok((Bitmap::new(width, height, 3, out), facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_cmyk() {
        // Stored inverted (Adobe): full cyan+yellow -> green; no ink -> white.
        let data = vec![0, 255, 0, 255, 255, 255, 255, 255];
        let (b, f) = cmyk_to_srgb(2, 1, data, true, None).unwrap();
        assert_eq!(b.data, vec![0, 255, 0, 255, 255, 255]);
        assert!(f.converted);
        // Not inverted: full black -> black.
        let (b, _) = cmyk_to_srgb(1, 1, vec![0, 0, 0, 255], false, None).unwrap();
        assert_eq!(b.data, vec![0, 0, 0]);
    }

    #[test]
    fn invalid_profile_is_reported_not_fatal() {
        let mut b = Bitmap::new(1, 1, 3, vec![10, 20, 30]);
        let f = rgb_to_srgb(&mut b, b"not a profile").unwrap();
        assert_eq!(f.profile.as_deref(), Some("invalid ICC profile"));
        assert_eq!(b.data, vec![10, 20, 30]);
    }
}
