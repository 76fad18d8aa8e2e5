//! Hostile inputs: each fails with the right category, never a panic, and
//! bombs are refused from their headers before any pixel buffer exists.

mod common;
use common::*;
use mediaflow_engine::{process, ErrorKind, Limits, Plan};

#[test]
fn hostile_files_fail_in_the_right_category() {
    let plan = Plan::builtin();
    for (name, kind) in [
        ("empty.bin", ErrorKind::Corrupt),
        ("random.bin", ErrorKind::Unsupported),
        ("text.jpg", ErrorKind::Unsupported),
        ("html.png", ErrorKind::Unsupported),
        ("truncated.jpg", ErrorKind::Corrupt),
        ("truncated.png", ErrorKind::Corrupt),
        ("truncated-header.webp", ErrorKind::Corrupt),
        ("bomb.png", ErrorKind::Limits),
        ("bomb.jpg", ErrorKind::Limits),
        ("bomb.gif", ErrorKind::Limits),
        ("heic-truncated.heic", ErrorKind::Corrupt),
        ("heic-bomb.heic", ErrorKind::Limits),
        ("heic-grid-bomb.heic", ErrorKind::Limits),
        ("jxl-truncated.jxl", ErrorKind::Corrupt),
        ("jxl-bomb.jxl", ErrorKind::Limits),
        // From the attack review (tests/hostile/attacks/README.md): each
        // took seconds to hours, or aborted the process, before its fix.
        ("heif-many-items.heic", ErrorKind::Limits),
    ] {
        let err = process(&hostile(name), &plan).expect_err(name);
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert!(!err.to_string().contains('\n'), "{name}: one line");
        assert!(err.is_permanent(), "{name}");
    }
}

/// The built-in variants under other limits.
fn builtin_with(limits: Limits) -> Plan {
    Plan::new(
        limits,
        Plan::builtin().variants().to_vec(),
        Default::default(),
    )
    .unwrap()
}

#[test]
fn byte_limit_is_checked_first() {
    let limits = Limits {
        max_input_bytes: 100,
        ..Limits::default()
    };
    let plan = builtin_with(limits);
    let err = process(&fixture("upright.jpg"), &plan).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limits);
    assert!(err.message().contains("over the limit"), "{err}");
}

#[test]
fn pixel_limit_applies_to_every_format() {
    let limits = Limits {
        max_pixels: 96 * 64 - 1,
        ..Limits::default()
    };
    let plan = builtin_with(limits);
    for name in [
        "upright.jpg",
        "rgba.png",
        "lossy.webp",
        "animated.gif",
        "tiff.tiff",
        "avif.avif",
        "formats/heic-single.heic",
        "formats/heic-grid.heic",
        "formats/jxl-lossy.jxl",
    ] {
        let err = process(&fixture(name), &plan).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limits, "{name}: {err}");
    }
}

/// Deterministic mutation fuzzing: flipped bytes and truncations of every
/// fixture must give Ok or a categorised error — never a panic (which the
/// engine would report as Internal).
#[test]
fn mutated_inputs_never_panic() {
    let plan = Plan::new(
        Limits::default(),
        vec![
            mediaflow_engine::Variant::new("t", Some(32), None).with_formats([
                mediaflow_engine::FormatChoice::Fixed(mediaflow_engine::OutputFormat::Png),
            ]),
        ],
        Default::default(),
    )
    .unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let names = [
        "upright.jpg",
        "progressive.jpg",
        "cmyk-adobe.jpg",
        "icc-prophoto.jpg",
        "rgba.png",
        "interlaced.png",
        "palette.png",
        "lossy.webp",
        "alpha.webp",
        "animated.gif",
        "tiff.tiff",
        "avif.avif",
        "orientation-6.jpg",
    ];
    for name in names {
        let orig = fixture(name);
        for round in 0..24 {
            let mut m = orig.clone();
            if round % 3 == 0 {
                let cut = (next() as usize) % m.len();
                m.truncate(cut);
            } else {
                for _ in 0..(1 + round % 5) {
                    let i = (next() as usize) % m.len();
                    m[i] = next() as u8;
                }
            }
            if let Err(e) = process(&m, &plan) {
                assert_ne!(e.kind(), ErrorKind::Internal, "{name} round {round}: {e}");
            }
        }
    }
}

// ---- Costly inputs within the limits (issue 13) ----

use mediaflow_engine::stages::{self, Bitmap};
use mediaflow_engine::OutputFormat;

/// A `w x h` gradient with `channels` channels (alpha, if any, half-transparent
/// on the right half).
fn gradient(w: u32, h: u32, channels: u8) -> Bitmap {
    let mut data = Vec::with_capacity((w * h) as usize * usize::from(channels));
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            if channels == 4 {
                data.push(if x < w / 2 { 255 } else { 128 });
            }
        }
    }
    Bitmap::new(w, h, channels, data)
}

/// Rewrites the size in every `ispe` box, as a lying muxer would.
fn patch_ispe(avif: &mut [u8], w: u32, h: u32) -> usize {
    let mut patched = 0;
    let mut i = 0;
    while i + 16 <= avif.len() {
        if &avif[i..i + 4] == b"ispe" {
            avif[i + 8..i + 12].copy_from_slice(&w.to_be_bytes());
            avif[i + 12..i + 16].copy_from_slice(&h.to_be_bytes());
            patched += 1;
        }
        i += 1;
    }
    patched
}

#[test]
fn avif_frame_larger_than_its_ispe_is_refused_before_decoding() {
    let mut avif = stages::encode(&gradient(640, 480, 3), OutputFormat::Avif, 50).unwrap();
    assert!(patch_ispe(&mut avif, 100, 100) >= 1);
    let err = process(&avif, &Plan::builtin()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.message().contains("640x480") && err.message().contains("100x100"),
        "{err}"
    );
    // The same lie with a frame over the pixel limit is a limits error,
    // though the header (100x100) is well within it.
    let plan = builtin_with(Limits {
        max_pixels: 100_000,
        ..Limits::default()
    });
    let err = process(&avif, &plan).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limits, "{err}");
    assert!(err.message().contains("640x480"), "{err}");
}

#[test]
fn avif_with_alpha_decodes_with_its_alpha() {
    let avif = stages::encode(&gradient(64, 48, 4), OutputFormat::Avif, 90).unwrap();
    let img = mediaflow_engine::decode_upright(&avif, &Limits::default()).unwrap();
    assert_eq!((img.width, img.height, img.channels), (64, 48, 4));
    let alpha = |x: u32| img.data[(10 * 64 + x) as usize * 4 + 3];
    assert!(alpha(5) > 240, "opaque half: {}", alpha(5));
    assert!(
        alpha(60).abs_diff(128) < 16,
        "half-transparent half: {}",
        alpha(60)
    );
}

/// A small real progressive JPEG whose SOF claims `w x h`: the first bytes of
/// a huge progressive file look exactly like this.
fn progressive_jpeg(w: u16, h: u16, arithmetic: bool) -> Vec<u8> {
    let b = gradient(64, 64, 3);
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_progressive(true).unwrap();
    c.set_arithmetic(arithmetic).unwrap();
    c.set_quality(90).unwrap();
    let mut j = c
        .compress_to_vec(turbojpeg::Image {
            pixels: b.data.as_slice(),
            width: 64,
            pitch: 64 * 3,
            height: 64,
            format: turbojpeg::PixelFormat::RGB,
        })
        .unwrap();
    let sof = (0..j.len() - 1)
        .find(|&i| j[i] == 0xFF && matches!(j[i + 1], 0xC2 | 0xCA))
        .expect("a progressive SOF");
    j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    j
}

#[test]
fn truncated_huge_progressive_jpeg_fails_before_allocating() {
    // 10000x10000 = 100 MP, at the default limit; only the first 2 KB exist.
    let mut j = progressive_jpeg(10_000, 10_000, false);
    j.truncate(2048);
    let err = process(&j, &Plan::builtin()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.message().contains("truncated"), "{err}");
    assert!(err.message().contains("10000x10000"), "{err}");
}

#[test]
fn jpeg_with_hundreds_of_scans_over_a_huge_frame_is_refused() {
    let j = progressive_jpeg(10_000, 10_000, false);
    // Repeat the first scan (SOS header and its data) until there are 499.
    let sos = (0..j.len() - 1)
        .find(|&i| j[i] == 0xFF && j[i + 1] == 0xDA)
        .unwrap();
    let next = (sos + 2..j.len() - 1)
        .find(|&i| j[i] == 0xFF && j[i + 1] != 0 && !(0xD0..=0xD7).contains(&j[i + 1]))
        .unwrap();
    let mut many = j[..sos].to_vec();
    for _ in 0..499 {
        many.extend_from_slice(&j[sos..next]);
    }
    many.extend_from_slice(&[0xFF, 0xD9]);
    let err = process(&many, &Plan::builtin()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limits, "{err}");
    assert!(err.message().contains("499 scans"), "{err}");
}

#[test]
fn arithmetic_coded_jpeg_is_unsupported() {
    let j = progressive_jpeg(64, 64, true);
    let err = process(&j, &Plan::builtin()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.message().contains("arithmetic"), "{err}");
}

#[test]
fn normal_progressive_jpeg_at_the_pixel_limit_passes_the_scan_checks() {
    // libjpeg-turbo's progressive script (10 scans) at 100 MP is within the
    // scan budget; the real file (not just its header) must still decode.
    let j = progressive_jpeg(64, 64, false);
    let out = process(&j, &Plan::builtin()).unwrap();
    assert_eq!(out.source.width, 64);
    let scans = j.windows(2).filter(|w| w == &[0xFF, 0xDA]).count() as u64;
    assert!(
        scans * 100_000_000 <= 20 * Limits::default().max_pixels,
        "{scans}"
    );
}

/// A 64x64 PNG whose iCCP chunk inflates to `icc_len` bytes of zeros.
fn png_with_icc(icc_len: usize) -> Vec<u8> {
    let mut info = png::Info::with_size(64, 64);
    info.color_type = png::ColorType::Rgb;
    info.bit_depth = png::BitDepth::Eight;
    info.icc_profile = Some(vec![0u8; icc_len].into());
    let mut out = Vec::new();
    let mut w = png::Encoder::with_info(&mut out, info)
        .unwrap()
        .write_header()
        .unwrap();
    w.write_image_data(&gradient(64, 64, 3).data).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn png_icc_bomb_is_not_inflated() {
    // 64 MiB of profile, about 64 KB compressed (1 GiB compresses to ~1 MB).
    let bomb = png_with_icc(64 << 20);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let out = process(&bomb, &Plan::builtin()).unwrap();
    // The png crate stops inflating at its metadata allowance and drops the
    // profile; before, all 64 MiB were inflated and then found invalid.
    assert_eq!(out.source.icc_profile, None);
    // A profile within the allowance still reaches the colour stage.
    let small = process(&png_with_icc(1000), &Plan::builtin()).unwrap();
    assert_eq!(
        small.source.icc_profile.as_deref(),
        Some("invalid ICC profile")
    );
}

/// A many-frame animation (a 2000x2000 canvas, thousands of 1x1 frames: a
/// pixel bomb for anyone compositing every frame) is judged from its
/// header: the animated variant becomes a still, within milliseconds.
#[test]
fn many_frame_animations_are_refused_from_their_headers() {
    let mut v = mediaflow_engine::Variant::new("a", Some(64), None).with_formats([
        mediaflow_engine::FormatChoice::Fixed(mediaflow_engine::OutputFormat::Webp),
    ]);
    v.animated = true;
    let limits = Limits {
        max_frames: 100_000,
        ..Limits::default()
    };
    let plan = Plan::new(limits, vec![v], Default::default()).unwrap();
    for name in ["anim-many-frames.gif", "anim-many-frames.webp"] {
        let out = process(&hostile(name), &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        let a = out.source.animation.expect("animation facts");
        assert!(a.frames >= 3000, "{name}: {a:?}");
        let why = a.kept_still.unwrap_or_default();
        assert!(why.contains("max_animation_pixels"), "{name}: {why}");
        assert_eq!(out.variants[0].frames, 1, "{name}");
    }
}

/// HEIC item graphs that make the decoder do far more than the declared
/// size: refused before any picture is decoded (an overlay of one 8000x8000
/// item repeated over a 1x1 canvas aborted the process with out-of-memory;
/// a grid naming one tile in every cell multiplies the work; an SPS larger
/// than its `ispe` decodes 8000x8000 behind a 16x16 header).
#[cfg(feature = "heic")]
#[test]
fn heic_item_graphs_are_checked_before_decoding() {
    let plan = Plan::builtin();
    for (name, kind, says) in [
        ("heic-iovl-flat-4.heic", ErrorKind::Unsupported, "iovl"),
        ("heic-grid-reuse-16.heic", ErrorKind::Corrupt, "twice"),
        ("heic-sps-big-ispe-16.heic", ErrorKind::Corrupt, "8000x8000"),
    ] {
        let err = process(&hostile(name), &plan).expect_err(name);
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert!(err.message().contains(says), "{name}: {err}");
        let est = mediaflow_engine::estimate_memory(&hostile(name), &plan).expect_err(name);
        assert_eq!(est.kind(), kind, "{name} (estimate): {est}");
    }
}

/// A GIF whose frames are larger than its logical screen would decode far
/// more than the canvas-based budget: its animated variants stay stills.
#[test]
fn gif_frames_beyond_the_canvas_keep_the_still() {
    let mut v = mediaflow_engine::Variant::new("a", Some(64), None).with_formats([
        mediaflow_engine::FormatChoice::Fixed(mediaflow_engine::OutputFormat::Webp),
    ]);
    v.animated = true;
    let limits = Limits {
        max_frames: 100,
        ..Limits::default()
    };
    let plan = Plan::new(limits, vec![v], Default::default()).unwrap();
    let out = process(&hostile("gif-bigframes-3.gif"), &plan).unwrap();
    let a = out.source.animation.expect("animation facts");
    assert_eq!(
        a.kept_still.as_deref(),
        Some("a frame extends beyond the canvas")
    );
    assert_eq!(out.variants[0].frames, 1);
}
