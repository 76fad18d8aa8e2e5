//! Quality: each output against a reference made from a full-resolution
//! decode (no shrink-on-load) composited over white and resized with the
//! `image` crate's Lanczos3 in floating point (from the centred region of
//! the output's aspect ratio for cover outputs), scored two ways:
//! - SSIM: 8x8-window mean SSIM on luma (`image-compare`'s `MSSIMSimple`);
//! - SSIMULACRA2 (the `ssimulacra2` crate): a perceptual score on colour,
//!   about 90 and up visually lossless, 70 high quality, 50 medium. The
//!   quality-matched workloads choose each encoder's setting by it.

use anyhow::Context as _;
use mediaflow_engine::Limits;
use std::collections::HashMap;
use std::path::Path;

/// Quality references, one per output size, computed once per workload.
pub struct Reference {
    upright: image::RgbImage,
    /// Per output size and cover flag: the resized reference and its luma.
    cache: HashMap<(u32, u32, bool), (image::RgbImage, image::GrayImage)>,
}

/// The scores of one output.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    /// 1.0 = identical.
    pub ssim: f64,
    /// 100 = identical; can be negative for very poor outputs.
    pub ssimulacra2: f64,
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

fn linear_input(img: &image::RgbImage) -> anyhow::Result<ssimulacra2::Rgb> {
    let data = img
        .pixels()
        .map(|p| p.0.map(|v| f32::from(v) / 255.0))
        .collect();
    ssimulacra2::Rgb::new(
        data,
        img.width() as usize,
        img.height() as usize,
        ssimulacra2::TransferCharacteristic::SRGB,
        ssimulacra2::ColorPrimaries::BT709,
    )
    .map_err(|e| anyhow::anyhow!("SSIMULACRA2 input: {e:?}"))
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

    /// The scores of the image file `output`, a centre crop of the source
    /// when `cover`, else the whole source.
    pub fn score(&mut self, output: &Path, cover: bool) -> anyhow::Result<Scores> {
        let bytes = std::fs::read(output)?;
        let decoded = mediaflow_engine::decode_upright(&bytes, &Limits::default())
            .with_context(|| format!("decoding {}", output.display()))?;
        let got = over_white(&decoded);
        let key = (got.width(), got.height(), cover);
        let upright = &self.upright;
        let gray = |img: &image::RgbImage| image::DynamicImage::ImageRgb8(img.clone()).into_luma8();
        let (reference, reference_gray) = self.cache.entry(key).or_insert_with(|| {
            let small = if cover {
                crate::runners::fit_or_cover(upright, key.0, Some(key.1))
            } else {
                image::imageops::resize(
                    upright,
                    key.0,
                    key.1,
                    image::imageops::FilterType::Lanczos3,
                )
            };
            let luma = gray(&small);
            (small, luma)
        });
        let ssim = image_compare::gray_similarity_structure(
            &image_compare::Algorithm::MSSIMSimple,
            reference_gray,
            &gray(&got),
        )
        .map_err(|e| anyhow::anyhow!("SSIM of {}: {e:?}", output.display()))?
        .score;
        let ssimulacra2 =
            ssimulacra2::compute_frame_ssimulacra2(linear_input(reference)?, linear_input(&got)?)
                .map_err(|e| anyhow::anyhow!("SSIMULACRA2 of {}: {e:?}", output.display()))?;
        Ok(Scores { ssim, ssimulacra2 })
    }
}
