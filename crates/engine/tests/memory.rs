//! `estimate_memory`: from the header alone, an upper bound of what
//! `process` takes; the same errors as `process` for what it refuses early.

mod common;
use common::*;
use mediaflow_engine::{
    estimate_memory, process, ErrorKind, FormatChoice, Limits, OutputFormat, Plan, Variant,
};
use mediaflow_testkit::workspace_root;

fn plan(width: u32) -> Plan {
    Plan::new(
        Limits::default(),
        vec![Variant::new("v", Some(width), None)
            .with_formats([FormatChoice::Fixed(OutputFormat::Jpeg)])],
        Default::default(),
    )
    .unwrap()
}

#[test]
fn every_fixture_has_an_estimate_above_its_decoded_size() {
    let plan = Plan::builtin();
    for name in [
        "upright.jpg",
        "progressive.jpg",
        "cmyk-adobe.jpg",
        "rgba.png",
        "rgb16.png",
        "lossless.webp",
        "lossy.webp",
        "animated.gif",
        "tiff.tiff",
        "avif.avif",
        "orientation-6.jpg",
        "formats/heic-grid.heic",
        "formats/heic-alpha.heic",
        "formats/heic-irot.heic",
        "formats/jxl-jpeg.jxl",
        "formats/jxl-icc.jxl",
        "formats/avif-irot-icc.avif",
    ] {
        let bytes = fixture(name);
        let est = estimate_memory(&bytes, &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = process(&bytes, &plan).unwrap();
        let decoded =
            u64::from(out.source.decoded_width) * u64::from(out.source.decoded_height) * 4;
        assert!(est > bytes.len() as u64 + decoded, "{name}: {est}");
    }
}

#[test]
fn estimate_follows_the_header_size() {
    // A PNG header claiming 10000x10000 RGBA (16-bit): the decoder alone
    // needs 800 MB, whatever the (tiny) file holds.
    let mut png = fixture("rgba.png");
    png[16..20].copy_from_slice(&10_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&10_000u32.to_be_bytes());
    png[24] = 16;
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let est = estimate_memory(&png, &Plan::builtin()).unwrap();
    assert!(est >= 10_000 * 10_000 * 8, "{est}");
    assert!(est < 10_000 * 10_000 * 8 * 3, "{est}");
}

#[test]
fn jpeg_estimate_uses_the_dct_scale() {
    let j = fixture("upright.jpg");
    let small = estimate_memory(&j, &plan(8)).unwrap();
    let full = estimate_memory(&j, &plan(4096)).unwrap();
    assert!(small <= full, "{small} vs {full}");
}

#[test]
fn refusals_match_process() {
    let plan = Plan::builtin();
    for name in [
        "bomb.png",
        "bomb.jpg",
        "bomb.gif",
        "random.bin",
        "empty.bin",
    ] {
        let bytes = hostile(name);
        let e = estimate_memory(&bytes, &plan).unwrap_err();
        let p = process(&bytes, &plan).unwrap_err();
        assert_eq!(e.kind(), p.kind(), "{name}: {e} / {p}");
    }
    let small = Plan::new(
        Limits {
            max_pixels: 100,
            ..Limits::default()
        },
        Plan::builtin().variants().to_vec(),
        Default::default(),
    )
    .unwrap();
    let e = estimate_memory(&fixture("avif.avif"), &small).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limits, "{e}");
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// The fuzzer's AVIF reproducers (avif-parse panics on them in debug
/// builds): the estimate refuses them as `corrupt`, as `process` does,
/// never as a retryable `internal` error.
#[test]
fn inputs_a_parser_panics_on_are_corrupt_for_the_estimate_too() {
    let dir = workspace_root().join("fuzz/crashes/decode");
    let plan = Plan::builtin();
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for result in [
            estimate_memory(&bytes, &plan).map(|_| ()),
            process(&bytes, &plan).map(|_| ()),
        ] {
            if let Err(e) = result {
                assert_ne!(e.kind(), ErrorKind::Internal, "{e}");
            }
        }
        n += 1;
    }
    assert!(n >= 5, "{n} reproducers");
}
