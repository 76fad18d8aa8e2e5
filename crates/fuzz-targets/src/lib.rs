//! Fuzz targets for mediaflow's byte-facing surfaces.
//!
//! One plain function per target, each taking arbitrary bytes. None may
//! panic: a panic (or an abort) is a finding. Where the product states a
//! property that holds for every input, the target asserts it too (for
//! example: the engine never reports an `internal` error, a variant never
//! exceeds its box, S3 key encoding round-trips).
//!
//! The AFL harnesses in `fuzz/` call these functions inside `afl::fuzz!`;
//! `tests/replay.rs` replays the committed corpus and crash reproducers
//! (`fuzz/corpus/<target>/`, `fuzz/crashes/<target>/`) through them in
//! `cargo test`.

use mediaflow_engine::stages::{self, Bitmap};
use mediaflow_engine::{ErrorKind, Fit, FormatChoice, Limits, OutputFormat, Plan, Variant};
use std::sync::OnceLock;

/// A target: its name (the directory names under `fuzz/`) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("sniff", sniff),
    ("jpeg_meta", jpeg_meta),
    ("exif", exif),
    ("icc", icc),
    ("decode", decode),
    ("event", event),
    ("config", config),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Both sniffers: the engine's image sniffer and the video path's container
/// sniffer, on the same bytes.
pub fn sniff(data: &[u8]) {
    match mediaflow_engine::sniff(data) {
        Ok(format) => {
            assert!(!format.as_str().is_empty() && !format.mime_type().is_empty());
        }
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::Unsupported | ErrorKind::Corrupt),
                "sniff: unexpected error kind {:?}: {e}",
                e.kind()
            );
            assert!(!e.message().contains('\n'), "sniff: multi-line error {e}");
        }
    }
    if let Some(c) = mediaflow_video::sniff(data) {
        assert!(!c.as_str().is_empty() && !c.mime_type().is_empty());
    }
}

/// The JPEG marker scan (EXIF, ICC chunks, Adobe), then what the engine
/// does with what it found: EXIF orientation and ICC parsing.
pub fn jpeg_meta(data: &[u8]) {
    let meta = stages::jpeg_meta(data);
    if let Some(exif) = &meta.exif {
        assert!(exif.len() <= data.len());
        let o = stages::exif_orientation(exif);
        assert!((1..=8).contains(&o), "orientation {o}");
    }
    if let Some(icc) = &meta.icc {
        assert!(icc.len() <= data.len());
        let mut b = gradient(3);
        check_color(stages::icc_to_srgb(&mut b, icc), &b, 3);
    }
}

/// EXIF orientation from a TIFF-structured EXIF payload (what follows
/// `Exif\0\0` in a JPEG's APP1, or a PNG `eXIf` / WebP `EXIF` chunk).
pub fn exif(data: &[u8]) {
    let o = stages::exif_orientation(data);
    assert!((1..=8).contains(&o), "orientation {o}");
}

/// An ICC profile applied to a small RGB and RGBA bitmap, and as the
/// profile of CMYK samples (plain and Adobe-inverted).
pub fn icc(data: &[u8]) {
    for channels in [3, 4] {
        let mut b = gradient(channels);
        check_color(stages::icc_to_srgb(&mut b, data), &b, channels);
    }
    let (w, h) = (GRADIENT_SIDE, GRADIENT_SIDE);
    let cmyk: Vec<u8> = (0..w * h * 4).map(|i| (i * 37 % 256) as u8).collect();
    for inverted in [false, true] {
        match stages::cmyk_to_srgb(w, h, cmyk.clone(), inverted, Some(data)) {
            Ok((b, _)) => {
                assert_eq!((b.width, b.height, b.channels), (w, h, 3));
                assert_eq!(b.data.len(), (w * h * 3) as usize);
            }
            Err(e) => assert_ne!(e.kind(), ErrorKind::Internal, "cmyk_to_srgb: {e}"),
        }
    }
}

/// The whole engine on the bytes, with tight limits (1 MiB input, 2^20
/// pixels) so every format's decoder is reached and one run stays fast:
/// sniff, header limits, decode, colour, orientation, one 32x32 cover
/// variant with an attention crop in PNG and WebP (animated for animated
/// sources, within 4 frames), placeholder.
pub fn decode(data: &[u8]) {
    let plan = fuzz_plan();
    if let Ok(p) = mediaflow_engine::probe(data, plan.limits()) {
        assert!(u64::from(p.width) * u64::from(p.height) <= plan.limits().max_pixels);
    }
    match mediaflow_engine::process(data, plan) {
        Ok(out) => {
            // One variant, in PNG and (animated or not) WebP.
            assert_eq!(out.variants.len(), 2);
            for v in &out.variants {
                assert!(v.width >= 1 && v.height >= 1 && v.width <= 32 && v.height <= 32);
                assert!(!v.data.is_empty());
            }
            let f = &out.source;
            assert!((1..=8).contains(&f.orientation));
            assert!(
                u64::from(f.stored_width) * u64::from(f.stored_height) <= plan.limits().max_pixels
            );
        }
        Err(e) => {
            // `internal` is a bug (a panic outside a decoder, an encoder
            // failure); everything a hostile input may cause is permanent.
            assert_ne!(e.kind(), ErrorKind::Internal, "process: {e}");
        }
    }
}

/// Event parsing as the functions see it: a message body (SQS) as text, and
/// the same bytes as a JSON payload (direct S3 / EventBridge invocation).
/// Keys of parsed objects (and the input itself) survive S3's form encoding.
pub fn event(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        round_trip_key(text);
        if let Ok(n) = mediaflow_pipeline::event::parse_body(text) {
            for o in &n.objects {
                round_trip_key(&o.key);
            }
        }
        let _ = mediaflow_pipeline::event::decode_s3_key(text);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(n) = mediaflow_pipeline::event::parse_payload(&v) {
            for o in &n.objects {
                round_trip_key(&o.key);
            }
        }
    }
}

/// `mediaflow.toml` parsing into a validated image plan and video plan.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mediaflow_config::parse_config(text) {
        Ok(c) => {
            assert!(!c.image.variants().is_empty());
            assert!(!c.image.fingerprint().is_empty());
            // Parsing is a function of the text.
            let again = mediaflow_config::parse_config(text).expect("parses twice");
            assert_eq!(again, c);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn round_trip_key(key: &str) {
    let encoded = mediaflow_pipeline::event::encode_s3_key(key);
    assert_eq!(
        mediaflow_pipeline::event::decode_s3_key(&encoded).as_deref(),
        Ok(key),
        "key {key:?} encoded as {encoded:?}"
    );
}

const GRADIENT_SIDE: u32 = 4;

fn gradient(channels: u8) -> Bitmap {
    let n = (GRADIENT_SIDE * GRADIENT_SIDE) as usize * usize::from(channels);
    let data = (0..n).map(|i| (i * 53 % 256) as u8).collect();
    Bitmap::new(GRADIENT_SIDE, GRADIENT_SIDE, channels, data)
}

fn check_color<T>(r: mediaflow_engine::Result<T>, b: &Bitmap, channels: u8) {
    if let Err(e) = r {
        assert_ne!(e.kind(), ErrorKind::Internal, "icc_to_srgb: {e}");
    }
    assert_eq!(
        (b.width, b.height, b.channels),
        (GRADIENT_SIDE, GRADIENT_SIDE, channels)
    );
    assert_eq!(
        b.data.len(),
        (GRADIENT_SIDE * GRADIENT_SIDE) as usize * usize::from(channels)
    );
}

/// The plan of the `decode` target: limits small enough that one run takes
/// milliseconds, one small variant.
pub fn fuzz_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let limits = Limits {
            max_input_bytes: 1 << 20,
            max_pixels: 1 << 20,
            max_frames: 4,
            max_animation_pixels: 1 << 22,
        };
        // Cover with a smart crop, and an animated WebP: every path an
        // upload can take through the engine.
        let mut variant = Variant::new("t", Some(32), Some(32))
            .with_fit(Fit::Cover)
            .with_formats([
                FormatChoice::Fixed(OutputFormat::Png),
                FormatChoice::Fixed(OutputFormat::Webp),
            ]);
        variant.gravity = mediaflow_engine::Gravity::Attention;
        variant.animated = true;
        Plan::new(limits, vec![variant], Default::default()).expect("valid fuzz plan")
    })
}
