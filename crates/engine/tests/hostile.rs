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
