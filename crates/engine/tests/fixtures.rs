//! Hard cases from sample-media/fixtures: orientation, CMYK, ICC, every
//! input kind. Expected values come from sample-media/fixtures/README.md.

mod common;
use common::*;
use mediaflow_engine::{process, FormatChoice, Limits, OutputFormat, Plan, Variant};

/// One lossless, same-size PNG output: what the engine *displays*.
fn plan_png(width: u32) -> Plan {
    let v = Variant::new("full", Some(width), None)
        .with_formats([FormatChoice::Fixed(OutputFormat::Png)]);
    Plan::new(Limits::default(), vec![v], Default::default()).unwrap()
}

fn displayed(name: &str) -> mediaflow_engine::RgbImage {
    let out = process(&fixture(name), &plan_png(96)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.variants.len(), 1);
    let img = decode(&out.variants[0].data);
    assert_eq!((img.width, img.height), (96, 64), "{name}: displayed size");
    assert_eq!(
        (out.source.width, out.source.height),
        (96, 64),
        "{name}: facts"
    );
    img
}

/// Base picture: TL red, TR green, BL blue, BR yellow (quadrant centres).
fn assert_base(img: &mediaflow_engine::RgbImage, tol: u8, what: &str) {
    assert_rgb(img, 24, 16, [255, 0, 0], tol, what);
    assert_rgb(img, 72, 16, [0, 255, 0], tol, what);
    assert_rgb(img, 24, 48, [0, 0, 255], tol, what);
    assert_rgb(img, 72, 48, [255, 255, 0], tol, what);
}

#[test]
fn every_orientation_displays_upright() {
    for o in 1..=8 {
        let name = format!("orientation-{o}.jpg");
        let img = displayed(&name);
        assert_base(&img, 12, &name);
        let out = process(&fixture(&name), &plan_png(96)).unwrap();
        assert_eq!(out.source.orientation, o);
        let stored = if o >= 5 { (64, 96) } else { (96, 64) };
        assert_eq!((out.source.stored_width, out.source.stored_height), stored);
    }
    for name in [
        "orientation-6-png.png",
        "orientation-6-webp.webp",
        "orientation-8-tiff.tiff",
    ] {
        assert_base(&displayed(name), 0, name);
    }
}

#[test]
fn box_applies_to_displayed_orientation() {
    // A 96x64 displayed image stored as 64x96: a 48-wide box gives 48x32.
    let out = process(&fixture("orientation-6.jpg"), &plan_png(48)).unwrap();
    assert_eq!((out.variants[0].width, out.variants[0].height), (48, 32));
}

#[test]
fn cmyk_and_ycck_have_correct_colours() {
    for name in ["cmyk-adobe.jpg", "ycck.jpg"] {
        let img = displayed(name);
        assert_rgb(&img, 16, 16, [255, 0, 0], 10, name);
        assert_rgb(&img, 48, 16, [0, 255, 0], 10, name);
        assert_rgb(&img, 80, 16, [0, 0, 255], 10, name);
        assert_rgb(&img, 16, 48, [0, 0, 0], 10, name);
        assert_rgb(&img, 48, 48, [255, 255, 255], 10, name);
        assert_rgb(&img, 80, 48, [128, 128, 128], 10, name);
        let out = process(&fixture(name), &plan_png(96)).unwrap();
        assert_eq!(out.source.color_model, "cmyk");
        assert!(out.source.converted_to_srgb);
    }
}

#[test]
fn icc_profiles_are_converted_to_srgb() {
    for name in [
        "icc-prophoto.jpg",
        "icc-prophoto-png.png",
        "icc-swapped-rg.jpg",
    ] {
        let img = displayed(name);
        let tol = 8;
        assert_rgb(&img, 16, 16, [220, 40, 40], tol, name);
        assert_rgb(&img, 48, 16, [40, 180, 60], tol, name);
        assert_rgb(&img, 80, 16, [40, 60, 200], tol, name);
        assert_rgb(&img, 16, 48, [230, 170, 120], tol, name);
        assert_rgb(&img, 48, 48, [128, 128, 128], tol, name);
        assert_rgb(&img, 80, 48, [50, 150, 200], tol, name);
        let out = process(&fixture(name), &plan_png(96)).unwrap();
        assert!(out.source.converted_to_srgb, "{name}");
        assert!(out.source.icc_profile.is_some(), "{name}");
    }
}

#[test]
fn every_input_kind_decodes() {
    for (name, tol) in [
        ("upright.jpg", 12),
        ("progressive.jpg", 12),
        ("interlaced.png", 0),
        ("rgb16.png", 0),
        ("wrong-extension.jpg", 0),
        ("lossy.webp", 20),
        ("lossless.webp", 0),
        ("animated.gif", 0),
        ("tiff.tiff", 0),
        ("avif.avif", 24),
    ] {
        assert_base(&displayed(name), tol, name);
    }
    for (name, tol) in [("gray.png", 0), ("grayscale.jpg", 8)] {
        let img = displayed(name);
        assert_rgb(&img, 24, 16, [76, 76, 76], tol, name);
        assert_rgb(&img, 72, 16, [150, 150, 150], tol, name);
        assert_rgb(&img, 24, 48, [29, 29, 29], tol, name);
        assert_rgb(&img, 72, 48, [226, 226, 226], tol, name);
    }
}

#[test]
fn alpha_is_kept_where_the_format_allows_and_flattened_for_jpeg() {
    let v = Variant::new("a", Some(96), None).with_formats([
        FormatChoice::Fixed(OutputFormat::Png),
        FormatChoice::Fixed(OutputFormat::Webp),
        FormatChoice::Fixed(OutputFormat::Jpeg),
    ]);
    let plan = Plan::new(Limits::default(), vec![v], Default::default()).unwrap();
    for name in ["rgba.png", "gray-alpha.png", "alpha.webp", "palette.png"] {
        let out = process(&fixture(name), &plan).unwrap();
        assert!(out.source.has_alpha, "{name}");
        let png = decode(&out.variants[0].data);
        assert_eq!(png.channels, 4, "{name}: PNG keeps alpha");
        let webp = decode(&out.variants[1].data);
        assert_eq!(webp.channels, 4, "{name}: WebP keeps alpha");
        let jpg = decode(&out.variants[2].data);
        assert_eq!(jpg.channels, 3, "{name}");
        if name != "palette.png" {
            // Fully transparent columns (x >= 80) become the white background.
            assert_rgb(&jpg, 90, 32, [255, 255, 255], 6, name);
            assert_eq!(px(&png, 90, 32)[3], 0, "{name}");
            assert!(px(&png, 8, 8)[3] == 255, "{name}");
        } else {
            assert_eq!(px(&png, 48, 32)[3], 0);
            assert_rgb(&jpg, 48, 32, [255, 255, 255], 6, name);
        }
    }
}

#[test]
fn opaque_alpha_is_dropped() {
    // An RGBA PNG whose alpha is all 255 takes the 3-channel path and its
    // PNG output has no alpha channel.
    let img = image::RgbaImage::from_fn(40, 20, |x, y| {
        image::Rgba([x as u8 * 6, y as u8 * 12, 90, 255])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let out = process(png.get_ref(), &plan_png(20)).unwrap();
    assert!(!out.source.has_alpha);
    let decoded = decode(&out.variants[0].data);
    assert_eq!(decoded.channels, 3);
    assert_eq!((decoded.width, decoded.height), (20, 10));
    // A real alpha channel is kept.
    let out = process(&fixture("rgba.png"), &plan_png(20)).unwrap();
    assert!(out.source.has_alpha);
    assert_eq!(decode(&out.variants[0].data).channels, 4);
}

#[test]
fn outputs_carry_no_metadata() {
    let v = Variant::new("m", Some(64), None).with_formats([
        FormatChoice::Fixed(OutputFormat::Jpeg),
        FormatChoice::Fixed(OutputFormat::Png),
        FormatChoice::Fixed(OutputFormat::Webp),
    ]);
    let plan = Plan::new(Limits::default(), vec![v], Default::default()).unwrap();
    for name in [
        "orientation-6.jpg",
        "icc-prophoto.jpg",
        "orientation-6-png.png",
        "orientation-6-webp.webp",
    ] {
        let out = process(&fixture(name), &plan).unwrap();
        for o in &out.variants {
            let d = &o.data;
            let has = |needle: &[u8]| d.windows(needle.len()).any(|w| w == needle);
            assert!(!has(b"Exif\0\0"), "{name} -> {}: EXIF", o.format);
            assert!(!has(b"ICC_PROFILE"), "{name} -> {}: ICC", o.format);
            assert!(
                !has(b"iCCP") && !has(b"eXIf"),
                "{name} -> {}: PNG chunks",
                o.format
            );
            assert!(
                !has(b"http://ns.adobe.com/xap"),
                "{name} -> {}: XMP",
                o.format
            );
        }
    }
}
