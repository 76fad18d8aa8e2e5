//! The fixed, named workloads.

use crate::job::JobOutput;
use std::path::{Path, PathBuf};

/// A fixed, named workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: &'static str,
    pub what: String,
    pub input: PathBuf,
    pub outputs: Vec<JobOutput>,
    /// Quality-matched: each implementation's quality setting is the lowest
    /// whose every output scores at least this SSIMULACRA2 (found by
    /// bisection before timing); `outputs`' quality is then ignored.
    pub target_ssimulacra2: Option<f64>,
}

/// The SSIMULACRA2 score the quality-matched AVIF workload asks of every
/// encoder: "high quality" on the metric's scale.
pub const AVIF_TARGET_SSIMULACRA2: f64 = 70.0;

fn out(width: u32, format: &str, quality: u8) -> JobOutput {
    JobOutput {
        width,
        height: None,
        format: format.into(),
        quality,
    }
}

/// A `width` x `height` centre crop (cover).
fn cover(width: u32, height: u32, format: &str, quality: u8) -> JobOutput {
    JobOutput {
        height: Some(height),
        ..out(width, format, quality)
    }
}

/// The workloads, with inputs under `media`. `upload-preset` wants the
/// 20 MP photo from `sample-media/fetch-large.sh`; without it, it uses the
/// 16 MP one and says so.
pub fn workloads(media: &Path) -> Vec<Workload> {
    let large = media.join("large/Kleiber_by_Lukas_Baubkus.jpg");
    let seeding = media.join("seeding_by_Clements_Engelhardt.jpg");
    let (upload_input, upload_what) = if large.is_file() {
        (large, "20 MP JPEG (6028x3391)")
    } else {
        (
            seeding.clone(),
            "16 MP JPEG (5312x2988; run sample-media/fetch-large.sh for the 20 MP one)",
        )
    };
    let widths = [2048, 1024, 512, 256];
    vec![
        Workload {
            name: "thumb-jpeg",
            what: "16 MP JPEG (5312x2988) -> 720 px JPEG q80, Lanczos3".into(),
            input: seeding.clone(),
            outputs: vec![out(720, "jpeg", 80)],
            target_ssimulacra2: None,
        },
        Workload {
            name: "thumb-progressive-256",
            what: "16 MP progressive JPEG (5312x2988, 4:2:0) -> 256x256 centre crop (cover) JPEG q80, \
                   Lanczos3"
                .into(),
            input: seeding,
            outputs: vec![cover(256, 256, "jpeg", 80)],
            target_ssimulacra2: None,
        },
        Workload {
            name: "upload-preset",
            what: format!("{upload_what} -> 2048/1024/512/256 px in JPEG q80 and WebP q80"),
            input: upload_input,
            outputs: widths
                .iter()
                .flat_map(|&w| [out(w, "jpeg", 80), out(w, "webp", 80)])
                .collect(),
            target_ssimulacra2: None,
        },
        Workload {
            name: "png-alpha",
            what: "RGBA PNG (400x328 clip art) -> 512 px WebP q80 (not enlarged: 400 px)".into(),
            input: media.join("horse.png"),
            outputs: vec![out(512, "webp", 80)],
            target_ssimulacra2: None,
        },
        Workload {
            name: "avif",
            what: format!(
                "9.8 MP JPEG (2560x3837) -> 1024 px AVIF, quality matched: each encoder at its lowest \
                 quality setting that reaches SSIMULACRA2 {AVIF_TARGET_SSIMULACRA2}"
            ),
            input: media.join("Wine_by_Jakkub_Mede.jpg"),
            outputs: vec![out(1024, "avif", 50)],
            target_ssimulacra2: Some(AVIF_TARGET_SSIMULACRA2),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_the_five_named() {
        let w = workloads(Path::new("sample-media"));
        let names: Vec<_> = w.iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "thumb-jpeg",
                "thumb-progressive-256",
                "upload-preset",
                "png-alpha",
                "avif"
            ]
        );
        assert_eq!(w[2].outputs.len(), 8);
        assert_eq!(w[1].outputs[0].height, Some(256), "a cover crop");
        let matched: Vec<_> = w
            .iter()
            .filter(|w| w.target_ssimulacra2.is_some())
            .map(|w| w.name)
            .collect();
        assert_eq!(matched, ["avif"]);
    }
}
