//! Golden tests: every real photo in sample-media through a test plan.
//! Dimensions are computed independently from the source size; the pixels
//! are compared perceptually (8x8 grid of mean colours) with a full-resolution
//! reference decode, so shrink-on-load, colour and resizing are all checked.

mod common;
use common::*;
use mediaflow_engine::{process, Fit, FormatChoice, Limits, OutputFormat, Plan, Variant};
use mediaflow_testkit::{sample, workspace_root};

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
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "sample-media photos missing: {names:?}");
    let plan = test_plan();
    for name in names {
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
    let plan = Plan::new(
        Limits::default(),
        vec![Variant::new("w640", Some(640), None)],
        Default::default(),
    )
    .unwrap();
    let out = process(&bytes, &plan).unwrap();
    // 640 * DECODE_MARGIN / 5312 = 0.24 -> libjpeg-turbo decodes at 1/4.
    assert_eq!(
        (out.source.decoded_width, out.source.decoded_height),
        (1328, 747)
    );
    let full = decode(&bytes);
    let img = decode(&out.variants[0].data);
    let d = grid_diff(&grid(&img, 16), &grid(&full, 16));
    assert!(
        d <= 3.0,
        "shrink-on-load output differs from full decode by {d:.2}"
    );
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
