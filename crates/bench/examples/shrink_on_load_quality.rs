//! What `[output] fast_shrink_on_load` costs in quality: each JPEG given on
//! the command line is resized to several sizes twice, with the setting on
//! (decode at the smallest DCT scale at least as large as the output) and
//! off (at least twice the output), and scored with the bench's quality
//! reference (SSIMULACRA2 and SSIM against a full-resolution decode resized
//! with Lanczos3). `--format png` (the default) writes losslessly, so that
//! only the decode scale and the resampler differ; `--format jpeg`, `webp`
//! or `avif` shows what a plan's outputs keep of the difference at the
//! engine's default quality. Prints one Markdown table.
//!
//! ```sh
//! cargo run --release -p mediaflow-bench --example shrink_on_load_quality -- \
//!     [--format jpeg] sample-media/*.jpg sample-media/large/*.jpg
//! ```

use anyhow::Context as _;
use mediaflow_bench::quality::Reference;
use mediaflow_engine::{EncodeOptions, Fit, FormatChoice, Limits, OutputFormat, Plan, Variant};
use std::path::PathBuf;

/// (width, height): a height makes it a cover crop, as in the bench's jobs.
const SIZES: [(u32, Option<u32>); 7] = [
    (128, Some(128)),
    (256, Some(256)),
    (256, None),
    (480, None),
    (720, None),
    (1024, None),
    (1600, None),
];

struct Run {
    decoded: (u32, u32),
    ms: f64,
    ssimulacra2: f64,
    ssim: f64,
}

fn run(
    bytes: &[u8],
    reference: &mut Reference,
    size: (u32, Option<u32>),
    fast: bool,
    format: OutputFormat,
    dir: &std::path::Path,
) -> anyhow::Result<Run> {
    let variant = Variant::new("o", Some(size.0), size.1)
        .with_fit(Fit::Cover)
        .with_formats([FormatChoice::Fixed(format)]);
    let plan = Plan::new(Limits::default(), vec![variant], EncodeOptions::default())?
        .with_placeholder(false)
        .with_fast_shrink_on_load(fast);
    let out = mediaflow_engine::process(bytes, &plan)?;
    let path = dir.join(format!(
        "{}-{:?}-{fast}.{}",
        size.0,
        size.1,
        format.extension()
    ));
    std::fs::write(&path, &out.variants[0].data)?;
    let scores = reference.score(&path, size.1.is_some())?;
    Ok(Run {
        decoded: (out.source.decoded_width, out.source.decoded_height),
        ms: out.timings.total_ms,
        ssimulacra2: scores.ssimulacra2,
        ssim: scores.ssim,
    })
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut format = OutputFormat::Png;
    if args.first().map(String::as_str) == Some("--format") && args.len() > 1 {
        format = OutputFormat::parse(&args[1])
            .with_context(|| format!("unknown format {:?}", args[1]))?;
        args.drain(..2);
    }
    let photos: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    anyhow::ensure!(
        !photos.is_empty(),
        "usage: shrink_on_load_quality [--format png|jpeg|webp|avif] PHOTO.jpg..."
    );
    let dir = tempfile::tempdir()?;
    println!(
        "| photo | output | decode on | decode off | SSIMULACRA2 on | SSIMULACRA2 off | difference | SSIM on | SSIM off | ms on | ms off |"
    );
    println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut worst: Option<(f64, String)> = None;
    for photo in &photos {
        let bytes = std::fs::read(photo).with_context(|| format!("reading {}", photo.display()))?;
        let mut reference = Reference::new(photo)?;
        let name = photo.file_name().unwrap_or_default().to_string_lossy();
        for size in SIZES {
            let on = run(&bytes, &mut reference, size, true, format, dir.path())
                .with_context(|| format!("{name} at {size:?}, fast"))?;
            let off = run(&bytes, &mut reference, size, false, format, dir.path())
                .with_context(|| format!("{name} at {size:?}, not fast"))?;
            let label = match size.1 {
                Some(h) => format!("{}x{h} cover", size.0),
                None => format!("{} px wide", size.0),
            };
            let diff = on.ssimulacra2 - off.ssimulacra2;
            if on.decoded != off.decoded && worst.as_ref().is_none_or(|(d, _)| diff < *d) {
                worst = Some((diff, format!("{name}, {label}")));
            }
            println!(
                "| {name} | {label} | {}x{} | {}x{} | {:.2} | {:.2} | {diff:+.2} | {:.4} | {:.4} | {:.1} | {:.1} |",
                on.decoded.0,
                on.decoded.1,
                off.decoded.0,
                off.decoded.1,
                on.ssimulacra2,
                off.ssimulacra2,
                on.ssim,
                off.ssim,
                on.ms,
                off.ms
            );
        }
    }
    match worst {
        Some((diff, at)) => println!("\nLargest loss where the decode differs: {diff:+.2} ({at})."),
        None => println!("\nThe setting changed no decode."),
    }
    Ok(())
}
