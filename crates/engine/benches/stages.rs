//! Criterion microbenchmarks, one parameterised bench per stage:
//!
//! - `decode`: the 16 MP sample JPEG at full size and at each DCT scale, and
//!   at the reduced scales also with every progressive scan decoded;
//! - `resize`: each filter, RGB and RGBA, 5312x2988 -> 720 px wide, with the
//!   SIMD extension in use named in the group;
//! - `encode`: JPEG, WebP and AVIF of a 1024 px image at the default settings;
//! - `engine`: the whole engine per preset (the built-in upload preset, a
//!   720 px thumbnail, an AVIF variant);
//! - `smart_crop`: a 256x256 cover crop with gravity centre, attention and
//!   entropy;
//! - `decode_new_formats`: 12 MP HEIC (single, grid) and JPEG XL, from the
//!   directory `MEDIAFLOW_BENCH_LARGE` (`sample-media/fixtures/make_formats.py
//!   --large DIR`), skipped without it.
//!
//! `cargo bench -p mediaflow-engine --bench stages` (add `-- decode` etc.
//! to run one stage). The side-by-side comparison with other tools is
//! `mediaflow bench --compare`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mediaflow_engine::stages::{self, Bitmap};
use mediaflow_engine::{
    decode_upright, process, Filter, Fit, FormatChoice, Gravity, Limits, OutputFormat, Plan,
    Variant, JPEG_SCALES,
};
use mediaflow_testkit::sample;
use std::hint::black_box;
use std::time::Duration;

fn photo() -> Vec<u8> {
    sample("seeding_by_Clements_Engelhardt.jpg").into()
}

fn decode(c: &mut Criterion) {
    let bytes = photo();
    let mut g = c.benchmark_group("decode/jpeg-16MP");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for &(num, den) in JPEG_SCALES.iter().rev() {
        let id = BenchmarkId::from_parameter(format!("{num}/{den}"));
        g.bench_with_input(id, &(num, den), |b, &(num, den)| {
            b.iter(|| stages::decode_jpeg(black_box(&bytes), num, den).expect("decodes"))
        });
    }
    // The photo is progressive: at the reduced scales only the scans the
    // scaled IDCT reads are decoded. What every scan would cost:
    for &(num, den) in JPEG_SCALES.iter().rev().filter(|&&(n, d)| n < d) {
        let kept = stages::jpeg_scans_kept(&bytes, num, den);
        eprintln!(
            "decode/jpeg-16MP {num}/{den}: scans kept (kept, all, bytes kept, bytes): {kept:?}"
        );
        let id = BenchmarkId::new("every-scan", format!("{num}/{den}"));
        g.bench_with_input(id, &(num, den), |b, &(num, den)| {
            b.iter(|| stages::decode_jpeg_every_scan(black_box(&bytes), num, den).expect("decodes"))
        });
    }
    g.finish();
}

fn rgba(b: &Bitmap) -> Bitmap {
    let mut data = Vec::with_capacity(b.data.len() / 3 * 4);
    for px in b.data.chunks_exact(3) {
        data.extend_from_slice(&[px[0], px[1], px[2], 200]);
    }
    Bitmap {
        width: b.width,
        height: b.height,
        channels: 4,
        data,
    }
}

fn resize(c: &mut Criterion) {
    let rgb = stages::decode_jpeg(&photo(), 1, 1).expect("decodes");
    let rgba = rgba(&rgb);
    let (w, h) = (720, (720 * rgb.height + rgb.width / 2) / rgb.width);
    let name = format!(
        "resize/5312x2988-to-720/{}",
        mediaflow_engine::cpu_extension_name()
    );
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(
        u64::from(rgb.width) * u64::from(rgb.height),
    ));
    for filter in Filter::ALL {
        for src in [&rgb, &rgba] {
            let id = BenchmarkId::new(
                filter.as_str(),
                if src.channels == 3 { "rgb" } else { "rgba" },
            );
            g.bench_with_input(id, src, |b, src| {
                b.iter(|| stages::resize(black_box(src), w, h, filter).expect("resizes"))
            });
        }
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let full = stages::decode_jpeg(&photo(), 1, 1).expect("decodes");
    let img = stages::resize(&full, 1024, 576, Filter::Lanczos3).expect("resizes");
    let mut g = c.benchmark_group("encode/1024x576");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for format in [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Avif] {
        let quality = format.default_quality();
        g.bench_with_input(
            BenchmarkId::from_parameter(format.as_str()),
            &format,
            |b, &format| {
                b.iter(|| stages::encode(black_box(&img), format, quality).expect("encodes"))
            },
        );
    }
    g.finish();
}

fn engine(c: &mut Criterion) {
    let bytes = photo();
    let thumb = Plan::new(
        Limits::default(),
        vec![Variant::new("t", Some(720), None)
            .with_formats([FormatChoice::Fixed(OutputFormat::Jpeg)])],
        Default::default(),
    )
    .expect("valid");
    let avif = Plan::new(
        Limits::default(),
        vec![Variant::new("a", Some(1024), None)
            .with_formats([FormatChoice::Fixed(OutputFormat::Avif)])],
        Default::default(),
    )
    .expect("valid");
    let presets = [
        ("upload-preset", Plan::builtin()),
        ("thumb-720-jpeg", thumb),
        ("avif-1024", avif),
    ];
    let mut g = c.benchmark_group("engine/16MP-jpeg");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for (name, plan) in &presets {
        g.bench_with_input(BenchmarkId::from_parameter(name), plan, |b, plan| {
            b.iter(|| process(black_box(&bytes), plan).expect("processes"))
        });
    }
    g.finish();
}

/// Smart crop against the centre: a 256x256 `cover` JPEG of the 16 MP
/// photo, the whole engine (decode at the DCT scale, crop, resize, encode).
fn smart_crop(c: &mut Criterion) {
    let bytes = photo();
    let mut g = c.benchmark_group("cover-256/16MP-jpeg");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for gravity in [Gravity::Center, Gravity::Attention, Gravity::Entropy] {
        let mut v = Variant::new("c", Some(256), Some(256))
            .with_fit(Fit::Cover)
            .with_formats([FormatChoice::Fixed(OutputFormat::Jpeg)]);
        v.gravity = gravity;
        let plan = Plan::new(Limits::default(), vec![v], Default::default()).expect("valid");
        g.bench_with_input(
            BenchmarkId::from_parameter(gravity.canonical()),
            &plan,
            |b, plan| b.iter(|| process(black_box(&bytes), plan).expect("processes")),
        );
    }
    g.finish();
}

/// Decoding 12 MP HEIC (single image and 512 px grid) and JPEG XL, when
/// `MEDIAFLOW_BENCH_LARGE` names the directory `make_formats.py --large`
/// wrote (the files are not committed).
fn decode_new_formats(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("MEDIAFLOW_BENCH_LARGE") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut g = c.benchmark_group("decode/12MP");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for name in [
        "large-4032x3024.heic",
        "large-4032x3024-grid.heic",
        "large-4032x3024.jxl",
    ] {
        let Ok(bytes) = std::fs::read(dir.join(name)) else {
            continue;
        };
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| decode_upright(black_box(bytes), &Limits::default()).expect("decodes"))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    decode,
    resize,
    encode,
    engine,
    smart_crop,
    decode_new_formats
);
criterion_main!(benches);
