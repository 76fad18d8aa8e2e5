//! Quality: SSIM (8x8-window mean SSIM on luma, `image-compare`'s
//! `MSSIMSimple`) of each output against a reference made from a full
//! resolution decode (no shrink-on-load) composited over white and resized
//! with the `image` crate's Lanczos3 in floating point.

use anyhow::Context as _;
use mediaflow_engine::Limits;
use std::collections::HashMap;
use std::path::Path;

/// Quality references, one per output size, computed once per workload.
pub struct Reference {
    upright: image::RgbImage,
    cache: HashMap<(u32, u32), image::GrayImage>,
}

fn over_white(img: &mediaflow_engine::RgbImage) -> image::RgbImage {
    let (w, h) = (img.width, img.height);
    let c = img.channels as usize;
    let mut out = image::RgbImage::new(w, h);
    for (i, px) in out.pixels_mut().enumerate() {
        let s = &img.data[i * c..i * c + c];
        let a = if c == 4 { s[3] as u32 } else { 255 };
        let mix = |v: u8| ((v as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        *px = image::Rgb([mix(s[0]), mix(s[1]), mix(s[2])]);
    }
    out
}

impl Reference {
    /// The reference for the workload whose input is `source`.
    pub fn new(source: &Path) -> anyhow::Result<Reference> {
        let bytes = std::fs::read(source)?;
        let decoded = mediaflow_engine::decode_upright(&bytes, &Limits::default())?;
        Ok(Reference {
            upright: over_white(&decoded),
            cache: HashMap::new(),
        })
    }

    /// The SSIM of the image file `output` (1.0 = identical).
    pub fn ssim(&mut self, output: &Path) -> anyhow::Result<f64> {
        let bytes = std::fs::read(output)?;
        let decoded = mediaflow_engine::decode_upright(&bytes, &Limits::default())
            .with_context(|| format!("decoding {}", output.display()))?;
        let got = image::DynamicImage::ImageRgb8(over_white(&decoded)).into_luma8();
        let key = (got.width(), got.height());
        let upright = &self.upright;
        let reference = self.cache.entry(key).or_insert_with(|| {
            let small = image::imageops::resize(
                upright,
                key.0,
                key.1,
                image::imageops::FilterType::Lanczos3,
            );
            image::DynamicImage::ImageRgb8(small).into_luma8()
        });
        let sim = image_compare::gray_similarity_structure(
            &image_compare::Algorithm::MSSIMSimple,
            reference,
            &got,
        )
        .map_err(|e| anyhow::anyhow!("SSIM of {}: {e:?}", output.display()))?;
        Ok(sim.score)
    }
}
