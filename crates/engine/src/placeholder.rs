//! Placeholders: a BlurHash and the dominant colour, from a small thumbnail.

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use crate::output::Placeholder;
use crate::plan::Color;
use crate::resize::thumbnail;

/// Longest side of the thumbnail the placeholder is computed from.
const THUMB: u32 = 32;

pub fn compute(img: &Bitmap) -> Result<Placeholder> {
    let thumb = thumbnail(img, THUMB)?.with_alpha();
    let (w, h) = (thumb.width, thumb.height);
    // 4x3 components for landscape, 3x4 for portrait: about 28 characters.
    let (cx, cy) = if w >= h { (4, 3) } else { (3, 4) };
    let blurhash = blurhash::encode(cx, cy, w, h, &thumb.data)
        .map_err(|e| MediaError::internal(format!("blurhash: {e:?}")))?;
    Ok(Placeholder {
        blurhash,
        dominant: dominant(&thumb),
    })
}

/// Most common colour: 4-bit-per-channel histogram over visible pixels, the
/// winning bin's mean. Fully transparent images give transparent.
fn dominant(rgba: &Bitmap) -> Color {
    let mut bins = vec![(0u32, [0u32; 3]); 4096];
    for p in rgba.data.chunks_exact(4).filter(|p| p[3] >= 128) {
        let i =
            (usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4);
        bins[i].0 += 1;
        for (acc, &v) in bins[i].1.iter_mut().zip(&p[..3]) {
            *acc += u32::from(v);
        }
    }
    // Ties resolve to the lowest bin index, deterministically.
    let (n, sum) = bins
        .iter()
        .copied()
        .reduce(|best, b| if b.0 > best.0 { b } else { best })
        .unwrap_or_default();
    if n == 0 {
        return Color::TRANSPARENT;
    }
    Color::rgb((sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_is_the_majority_colour() {
        let mut data = Vec::new();
        for i in 0..100 {
            data.extend_from_slice(if i < 70 {
                &[200, 10, 10]
            } else {
                &[10, 10, 200]
            });
        }
        let p = compute(&Bitmap::new(10, 10, 3, data)).unwrap();
        assert_eq!(p.dominant, Color::rgb(200, 10, 10));
        assert!((6..=40).contains(&p.blurhash.len()), "{}", p.blurhash);
    }

    #[test]
    fn transparent_image_has_transparent_dominant() {
        let p = compute(&Bitmap::new(2, 2, 4, vec![0; 16])).unwrap();
        assert_eq!(p.dominant, Color::TRANSPARENT);
    }
}
