//! Golden tests: every real photo in sample-media through a test plan.
//! Dimensions are computed independently from the source size; the pixels
//! are compared perceptually (8x8 grid of mean colours) with a full-resolution
//! reference decode, so shrink-on-load, colour and resizing are all checked.
//!
//! Across architectures: with `MEDIAFLOW_GOLDEN_EXPORT=DIR` the golden test
//! also writes every output it made to DIR (the aarch64 run under qemu does,
//! see scripts/test-aarch64), and [`arm64_outputs_match_this_machines`]
//! compares those files, decoded, pixel by pixel with the outputs this
//! machine makes from the same photos.

mod common;
use common::*;
use mediaflow_engine::{process, Fit, FormatChoice, Limits, OutputFormat, Plan, Variant};
use mediaflow_testkit::{sample, workspace_root};
use std::path::PathBuf;

/// Where the golden test writes its outputs for the cross-architecture
/// comparison (unset: nowhere).
const EXPORT_ENV: &str = "MEDIAFLOW_GOLDEN_EXPORT";
/// The aarch64 run's exported outputs, for [`arm64_outputs_match_this_machines`].
const ARM64_ENV: &str = "MEDIAFLOW_ARM64_GOLDEN";

/// The golden photos: every JPEG and PNG in sample-media, sorted.
fn sample_photos() -> Vec<String> {
    let dir = workspace_root().join("sample-media");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "sample-media photos missing: {names:?}");
    names
}

/// The file an output of `photo` is exported as.
fn export_name(photo: &str, v: &mediaflow_engine::EncodedVariant) -> String {
    format!("{photo}.{}.{}", v.name, v.format.extension())
}

fn test_plan() -> Plan {
    use OutputFormat::*;
    let f = |fs: &[OutputFormat]| {
        fs.iter()
            .map(|&f| FormatChoice::Fixed(f))
            .collect::<Vec<_>>()
    };
    let mut cover = Variant::new("sq128", Some(128), Some(128)).with_fit(Fit::Cover);
    cover.formats = f(&[Jpeg]);
    let mut contain = Variant::new("box200", Some(200), Some(200)).with_fit(Fit::Contain);
    contain.formats = f(&[Png]);
    Plan::new(
        Limits::default(),
        vec![
            Variant::new("w640", Some(640), None).with_formats(f(&[Jpeg, Webp])),
            Variant::new("w160", Some(160), None).with_formats(f(&[Png, Avif])),
            cover,
            contain,
        ],
        Default::default(),
    )
    .unwrap()
}

fn inside(w: u32, h: u32, bw: u32) -> (u32, u32) {
    if w <= bw {
        (w, h)
    } else {
        (
            bw,
            ((f64::from(h) * f64::from(bw) / f64::from(w)).round() as u32).max(1),
        )
    }
}

#[test]
fn every_sample_photo_matches_its_reference() {
    let dir = workspace_root().join("sample-media");
    let export = std::env::var_os(EXPORT_ENV).map(PathBuf::from);
    if let Some(e) = &export {
        std::fs::create_dir_all(e).unwrap();
    }
    let plan = test_plan();
    for name in sample_photos() {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let reference = decode(&bytes);
        let ref_grid = grid(&reference, 8);
        let (w, h) = (reference.width, reference.height);
        let out = process(&bytes, &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((out.source.width, out.source.height), (w, h), "{name}");
        let names: Vec<_> = out
            .variants
            .iter()
            .map(|v| (v.name.as_str(), v.format))
            .collect();
        use OutputFormat::*;
        assert_eq!(
            names,
            [
                ("w640", Jpeg),
                ("w640", Webp),
                ("w160", Png),
                ("w160", Avif),
                ("sq128", Jpeg),
                ("box200", Png)
            ],
            "{name}: plan order"
        );
        for v in &out.variants {
            if let Some(e) = &export {
                std::fs::write(e.join(export_name(&name, v)), &v.data).unwrap();
            }
            let img = decode(&v.data);
            assert_eq!(
                (img.width, img.height),
                (v.width, v.height),
                "{name} {}",
                v.name
            );
            let want = match v.name.as_str() {
                "w640" => inside(w, h, 640),
                "w160" => inside(w, h, 160),
                "sq128" => (128.min(w), 128.min(h)),
                _ => (200, 200),
            };
            assert_eq!((v.width, v.height), want, "{name} {} {}", v.name, v.format);
            if v.name.starts_with('w') {
                let d = grid_diff(&grid(&img, 8), &ref_grid);
                let tol = if v.format == Avif { 6.0 } else { 4.0 };
                assert!(
                    d <= tol,
                    "{name} {} {}: mean grid difference {d:.2} > {tol}",
                    v.name,
                    v.format
                );
            }
        }
        let ph = out.placeholder.as_ref().expect("placeholder");
        assert!(ph.blurhash.len() >= 20, "{name}");
    }
}

#[test]
fn large_jpeg_uses_shrink_on_load_and_keeps_quality() {
    let bytes = sample("seeding_by_Clements_Engelhardt.jpg");
    let fast = Plan::new(
        Limits::default(),
        vec![Variant::new("w640", Some(640), None)],
        Default::default(),
    )
    .unwrap();
    let full = decode(&bytes);
    // fast_shrink_on_load (the default): 640 / 5312 = 0.12 -> 1/8 (664 >= 640).
    // Off: 640 * DECODE_MARGIN / 5312 = 0.24 -> 1/4.
    for (plan, decoded) in [
        (fast.clone(), (664, 374)),
        (fast.with_fast_shrink_on_load(false), (1328, 747)),
    ] {
        let out = process(&bytes, &plan).unwrap();
        assert_eq!(
            (out.source.decoded_width, out.source.decoded_height),
            decoded
        );
        let img = decode(&out.variants[0].data);
        assert_eq!((img.width, img.height), (640, 360));
        let d = grid_diff(&grid(&img, 16), &grid(&full, 16));
        assert!(
            d <= 3.0,
            "shrink-on-load to {decoded:?}: output differs from full decode by {d:.2}"
        );
    }
}

#[test]
fn smaller_variants_come_from_intermediates_without_visible_loss() {
    let bytes = sample("seeding_by_Clements_Engelhardt.jpg");
    let widths = [2048, 1024, 512, 256];
    let variants: Vec<_> = widths
        .iter()
        .map(|&w| Variant::new(format!("w{w}"), Some(w), None))
        .collect();
    let plan = Plan::new(Limits::default(), variants, Default::default()).unwrap();
    let out = process(&bytes, &plan).unwrap();
    let full = decode(&bytes);
    for v in &out.variants {
        let img = decode(&v.data);
        let d = grid_diff(&grid(&img, 16), &grid(&full, 16));
        assert!(d <= 3.0, "{}: {d:.2}", v.name);
    }
}

#[test]
fn manifest_lists_every_output() {
    let out = process(&fixture("upright.jpg"), &test_plan()).unwrap();
    let template = mediaflow_engine::KeyTemplate::default();
    let names = mediaflow_engine::OutputNames {
        template: &template,
        prefix: "out/",
        source_key: "a b/c.jpg",
        hash: "0123456789abcdef",
    };
    let m = mediaflow_engine::Manifest::build(
        &names,
        &mediaflow_engine::SourceRef {
            key: "a b/c.jpg",
            etag: Some("\"abc\""),
            version_id: None,
        },
        &out,
    );
    let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    assert_eq!(json["source"]["key"], "a b/c.jpg");
    assert_eq!(json["source"]["width"], 96);
    assert_eq!(json["variants"].as_array().unwrap().len(), 6);
    assert_eq!(
        json["variants"][0]["key"],
        "out/w640/a b/c.jpg.0123456789abcdef.jpg"
    );
    assert_eq!(
        json["variants"][1]["key"],
        "out/w640/a b/c.jpg.0123456789abcdef.webp"
    );
    assert_eq!(json["variants"][1]["content_type"], "image/webp");
    assert!(json["placeholder"]["blurhash"].as_str().unwrap().len() > 10);
    assert!(json["placeholder"]["dominant_color"]
        .as_str()
        .unwrap()
        .starts_with('#'));
    assert!(json["timings_ms"]["total"].as_f64().unwrap() >= 0.0);
}

/// The same photos through the same plan on aarch64 (NEON resize, the
/// arm64 builds of libjpeg-turbo, libwebp and libaom) and on this
/// machine: decoded, the outputs may differ only by rounding. Every pixel
/// channel is compared; the table of differences is printed (scripts/test
/// shows it) and the bounds are: mean absolute difference at most 0.25 and
/// no channel more than 16 apart (the resize kernels may differ by 2 levels
/// from scalar, and a lossy encoder that sees a pixel one level apart may
/// choose another quantised block). Measured on 2026-12-01: 0 and 0, every
/// decoded output identical.
#[test]
#[ignore = "needs the outputs of the aarch64 golden run in MEDIAFLOW_ARM64_GOLDEN (scripts/test-aarch64 makes them)"]
fn arm64_outputs_match_this_machines() {
    let arm = PathBuf::from(std::env::var_os(ARM64_ENV).unwrap_or_else(|| {
        panic!("{ARM64_ENV} is not set: run scripts/test-aarch64, which exports the aarch64 outputs and runs this test")
    }));
    let dir = workspace_root().join("sample-media");
    let plan = test_plan();
    let (mut worst_max, mut worst_mean, mut compared) = (0u8, 0f64, 0usize);
    println!(
        "{:<58} {:>9} {:>4} {:>7} {:>9}",
        "output", "size", "max", "mean", "differing"
    );
    for name in sample_photos() {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let out = process(&bytes, &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        for v in &out.variants {
            let file = export_name(&name, v);
            let theirs = std::fs::read(arm.join(&file))
                .unwrap_or_else(|e| panic!("{file}: the aarch64 run did not export it: {e}"));
            let (a, b) = (decode(&v.data), decode(&theirs));
            assert_eq!(
                (a.width, a.height, a.channels),
                (b.width, b.height, b.channels),
                "{file}"
            );
            let (mut max, mut sum, mut differing) = (0u8, 0u64, 0usize);
            for (x, y) in a.data.iter().zip(&b.data) {
                let d = x.abs_diff(*y);
                max = max.max(d);
                sum += u64::from(d);
                differing += usize::from(d > 0);
            }
            let mean = sum as f64 / a.data.len() as f64;
            println!(
                "{file:<58} {:>9} {max:>4} {mean:>7.3} {:>8.2}%",
                format!("{}x{}", a.width, a.height),
                differing as f64 * 100.0 / a.data.len() as f64
            );
            assert!(mean <= 0.25, "{file}: mean difference {mean:.3} > 0.25");
            assert!(max <= 16, "{file}: a channel differs by {max} > 16");
            worst_max = worst_max.max(max);
            worst_mean = worst_mean.max(mean);
            compared += 1;
        }
    }
    assert!(compared >= 24, "only {compared} outputs compared");
    println!("arm64 vs this machine: {compared} outputs, largest channel difference {worst_max}, largest mean difference {worst_mean:.3}");
}
