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

// ---------------------------------------------------------------------------
// Newer formats (sample-media/fixtures/formats/README.md): HEIC, JPEG XL,
// AVIF transforms and colour, animations. Each is compared, upright and in
// sRGB, with the reference decode the fixture script made.

/// Mean absolute difference per channel of two images of equal size (RGB
/// only; alpha compared separately where it matters).
fn mae(a: &mediaflow_engine::RgbImage, b: &mediaflow_engine::RgbImage) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height), "sizes differ");
    let (ca, cb) = (a.channels as usize, b.channels as usize);
    let n = (a.width * a.height) as usize;
    let sum: u64 = (0..n)
        .flat_map(|i| (0..3).map(move |c| (i, c)))
        .map(|(i, c)| u64::from(a.data[i * ca + c].abs_diff(b.data[i * cb + c])))
        .sum();
    sum as f64 / (n * 3) as f64
}

/// Decodes `name` as the engine displays it and compares it with `reference`.
fn matches_reference(name: &str, reference: &str, tol: f64) -> mediaflow_engine::RgbImage {
    let img = decode(&fixture(&format!("formats/{name}")));
    let want = decode(&fixture(&format!("formats/ref/{reference}")));
    let e = mae(&img, &want);
    assert!(
        e <= tol,
        "{name}: mean error {e:.2} against {reference}, over {tol}"
    );
    img
}

#[test]
#[cfg(feature = "heic")]
fn heic_single_grid_and_transforms_match_their_references() {
    for (name, reference, size) in [
        ("heic-single.heic", "heic-single.png", (640, 480)),
        ("heic-grid.heic", "heic-grid.png", (1040, 560)),
        ("heic-irot.heic", "heic-single.png", (640, 480)),
        ("heic-imir.heic", "heic-single.png", (640, 480)),
    ] {
        let img = matches_reference(name, reference, 3.5);
        assert_eq!((img.width, img.height), size, "{name}");
    }
    let facts = process(&fixture("formats/heic-irot.heic"), &plan_png(64))
        .unwrap()
        .source;
    assert_eq!(facts.format.as_str(), "heic");
    assert_eq!((facts.stored_width, facts.stored_height), (480, 640));
    assert_eq!(
        (facts.width, facts.height, facts.orientation),
        (640, 480, 8)
    );
    let facts = process(&fixture("formats/heic-imir.heic"), &plan_png(64))
        .unwrap()
        .source;
    assert_eq!(facts.orientation, 4, "imir mode 0 exchanges top and bottom");
}

#[test]
#[cfg(feature = "heic")]
fn heic_10_bit_p3_is_converted_to_srgb() {
    let img = matches_reference("heic-p3-10bit.heic", "heic-p3-10bit.png", 3.5);
    // A P3 colour that is sRGB red shows as red, not as its P3 numbers.
    assert_rgb(&img, 235, 255, [255, 0, 0], 12, "srgb-red patch");
    assert_rgb(&img, 300, 255, [0, 255, 0], 12, "srgb-green patch");
    let facts = process(&fixture("formats/heic-p3-10bit.heic"), &plan_png(64))
        .unwrap()
        .source;
    assert!(facts.converted_to_srgb, "{facts:?}");
}

#[test]
#[cfg(feature = "heic")]
fn heic_alpha_is_kept() {
    let img = matches_reference("heic-alpha.heic", "heic-alpha.png", 3.5);
    assert_eq!(img.channels, 4);
    let want = decode(&fixture("formats/ref/heic-alpha.png"));
    for (x, y) in [(10, 100), (40, 40), (160, 120), (310, 200)] {
        let (a, b) = (px(&img, x, y)[3], px(&want, x, y)[3]);
        assert!(a.abs_diff(b) <= 4, "alpha at ({x},{y}): {a}, want {b}");
    }
}

#[test]
fn jpeg_xl_lossy_recompressed_icc_and_oriented_match_their_references() {
    for (name, reference, tol) in [
        ("jxl-lossy.jxl", "jxl-lossy.png", 2.5),
        ("jxl-jpeg.jxl", "jxl-jpeg.png", 3.0),
        ("jxl-icc.jxl", "jxl-icc.png", 2.0),
        ("jxl-orient.jxl", "jxl-orient.png", 2.5),
    ] {
        let img = matches_reference(name, reference, tol);
        assert_eq!(
            (img.width, img.height),
            (if name == "jxl-icc.jxl" {
                (300, 200)
            } else {
                (320, 240)
            }),
            "{name}"
        );
    }
    let facts = process(&fixture("formats/jxl-jpeg.jxl"), &plan_png(64))
        .unwrap()
        .source;
    assert_eq!(facts.format.as_str(), "jxl");
    assert_eq!(
        (facts.stored_width, facts.stored_height, facts.orientation),
        (240, 320, 6)
    );
    let facts = process(&fixture("formats/jxl-icc.jxl"), &plan_png(64))
        .unwrap()
        .source;
    assert!(facts.converted_to_srgb, "{facts:?}");
}

#[test]
fn avif_irot_imir_and_icc_are_honoured() {
    for name in ["avif-irot-icc.avif", "avif-imir-icc.avif"] {
        let img = matches_reference(name, "avif-icc.png", 4.0);
        assert_eq!((img.width, img.height), (320, 240), "{name}");
    }
}

fn animated_plan(max_frames: u32) -> Plan {
    let mut v = Variant::new("anim", Some(80), None).with_formats([
        FormatChoice::Fixed(OutputFormat::Webp),
        FormatChoice::Fixed(OutputFormat::Png),
    ]);
    v.animated = true;
    v.quality = Some(90);
    let limits = Limits {
        max_frames,
        ..Limits::default()
    };
    Plan::new(limits, vec![v], Default::default()).unwrap()
}

#[test]
fn animations_stay_animated_with_their_timing() {
    for source in ["anim.gif", "anim.webp"] {
        let out = process(&fixture(&format!("formats/{source}")), &animated_plan(100)).unwrap();
        let a = out.source.animation.clone().expect("animation facts");
        assert_eq!(
            (a.frames, a.duration_ms, a.loop_count, a.kept_still),
            (6, 1000, if source == "anim.gif" { 4 } else { 3 }, None),
            "{source}"
        );
        let webp = &out.variants[0];
        assert_eq!(
            (webp.format, webp.frames, webp.duration_ms),
            (OutputFormat::Webp, 6, 1000),
            "{source}"
        );
        assert_eq!((webp.width, webp.height), (80, 60));
        // The output plays the same way: frames, timing, loop count.
        let header = webp_anim_facts(&webp.data);
        assert_eq!(header, (6, 1000, a.loop_count), "{source}");
        // The PNG of the same variant is the first frame.
        assert_eq!(out.variants[1].frames, 1);
        // Each output frame is the reference frame, resized.
        let prefix = if source == "anim.gif" {
            "anim-gif"
        } else {
            "anim-webp"
        };
        for (i, frame) in webp_frames(&webp.data).iter().enumerate() {
            let reference = decode(&fixture(&format!(
                "formats/ref/{prefix}-frame-{}.png",
                i + 1
            )));
            let small = shrink(&reference, 2);
            let e = mae(frame, &small);
            assert!(e < 6.0, "{source} frame {}: mean error {e:.2}", i + 1);
        }
    }
}

#[test]
fn animations_over_the_limits_become_stills_and_say_why() {
    let out = process(&fixture("formats/anim.gif"), &animated_plan(5)).unwrap();
    let a = out.source.animation.expect("facts");
    assert!(
        a.kept_still.as_deref().unwrap_or("").contains("max_frames"),
        "{a:?}"
    );
    assert_eq!(out.variants[0].frames, 1);
    assert_eq!(webp_anim_facts(&out.variants[0].data).0, 1);
}

/// (frames, total duration in ms, loop count) from a WebP's chunks.
fn webp_anim_facts(webp: &[u8]) -> (u32, u64, u32) {
    let (mut frames, mut duration, mut loops) = (0u32, 0u64, 0u32);
    let mut at = 12;
    while at + 8 <= webp.len() {
        let size = u32::from_le_bytes(webp[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &webp[at + 8..];
        match &webp[at..at + 4] {
            b"ANIM" => loops = u32::from(u16::from_le_bytes([body[4], body[5]])),
            b"ANMF" => {
                frames += 1;
                duration += u64::from(u32::from_le_bytes([body[12], body[13], body[14], 0]));
            }
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
    (frames.max(1), duration, loops)
}

/// The composited frames of an animated WebP (Pillow-free: the image crate).
fn webp_frames(webp: &[u8]) -> Vec<mediaflow_engine::RgbImage> {
    use image::AnimationDecoder;
    image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp))
        .unwrap()
        .into_frames()
        .map(|f| {
            let buf = f.unwrap().into_buffer();
            mediaflow_engine::RgbImage {
                width: buf.width(),
                height: buf.height(),
                channels: 4,
                data: buf.into_raw(),
            }
        })
        .collect()
}

/// A box-filtered `1/n` of `img` (RGB(A)), for comparing resized frames.
fn shrink(img: &mediaflow_engine::RgbImage, n: u32) -> mediaflow_engine::RgbImage {
    let (w, h, ch) = (img.width / n, img.height / n, img.channels as usize);
    let mut data = Vec::with_capacity((w * h) as usize * ch);
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let mut s = 0u32;
                for dy in 0..n {
                    for dx in 0..n {
                        s += u32::from(px(img, x * n + dx, y * n + dy)[c]);
                    }
                }
                data.push((s / (n * n)) as u8);
            }
        }
    }
    mediaflow_engine::RgbImage {
        width: w,
        height: h,
        channels: img.channels,
        data,
    }
}
