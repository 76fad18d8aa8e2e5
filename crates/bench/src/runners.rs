//! The in-process runners behind the hidden `runner` subcommand: the
//! mediaflow engine, and the `image` crate's own decode/resize/encode as a
//! baseline. Each reads a [`Job`] and returns one [`RunResult`].

use crate::job::{Job, OutFile, RunResult, Stages};
use crate::stats::percentile;
use anyhow::{bail, Context as _};
use mediaflow_engine::{
    EncodeOptions, Filter, Fit, FormatChoice, Limits, OutputFormat, Plan, Variant,
};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// The job file.
    pub job: PathBuf,
    /// `mediaflow` (the engine) or `image` (the image crate's own pipeline).
    #[arg(long = "impl", default_value = "mediaflow")]
    pub implementation: String,
}

/// Runs `one` for each image: warm-up untimed, then `iterations` timed over
/// `threads` workers. Returns (wall ms, per-image ms, last image's result).
fn timed<T: Send>(
    job: &Job,
    one: &(dyn Fn() -> anyhow::Result<T> + Sync),
) -> anyhow::Result<(f64, Vec<f64>, T)> {
    for _ in 0..job.warmup {
        one()?;
    }
    let threads = job.threads.max(1);
    let per_worker = job.iterations.max(1).div_ceil(threads);
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Vec<f64>, Option<T>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut times = Vec::with_capacity(per_worker);
                    let mut last = None;
                    for _ in 0..per_worker {
                        let t = Instant::now();
                        last = Some(one()?);
                        times.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok((times, last))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    let mut all = Vec::new();
    let mut last = None;
    for r in results {
        let (times, l) = r?;
        all.extend(times);
        last = l.or(last);
    }
    Ok((wall, all, last.expect("at least one image")))
}

fn parse_format(f: &str) -> anyhow::Result<OutputFormat> {
    OutputFormat::parse(f).with_context(|| format!("unknown format {f:?}"))
}

fn run_mediaflow(job: &Job) -> anyhow::Result<RunResult> {
    let bytes =
        std::fs::read(&job.input).with_context(|| format!("reading {}", job.input.display()))?;
    let filter =
        Filter::parse(&job.filter).with_context(|| format!("unknown filter {:?}", job.filter))?;
    let mut variants = Vec::new();
    for (i, o) in job.outputs.iter().enumerate() {
        let mut v = Variant::new(format!("o{i}"), Some(o.width), o.height)
            .with_formats([FormatChoice::Fixed(parse_format(&o.format)?)]);
        v.fit = Fit::Cover;
        v.quality = Some(o.quality);
        v.filter = filter;
        variants.push(v);
    }
    let defaults = EncodeOptions::default();
    let encode = EncodeOptions {
        jpeg_progressive: false,
        avif_speed: job.avif_speed.unwrap_or(defaults.avif_speed),
        ..defaults
    };
    let plan = Plan::new(Limits::default(), variants, encode)?.with_placeholder(false);
    // Every image's stage times, the warm-up's first (it runs before the
    // timed images start).
    let stages = std::sync::Mutex::new(Vec::new());
    let (wall_ms, per_image_ms, output) = timed(job, &|| {
        let output = mediaflow_engine::process(&bytes, &plan)?;
        stages
            .lock()
            .expect("no worker panicked")
            .push(output.timings.stages());
        Ok(output)
    })?;
    let stages = stages.into_inner().expect("no worker panicked");
    let median = |i: usize| {
        let mut v: Vec<f64> = stages[job.warmup..].iter().map(|s| s[i]).collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    };
    let stages = Stages {
        decode_ms: median(0),
        resize_ms: median(1),
        encode_ms: median(2),
    };
    std::fs::create_dir_all(&job.out_dir)?;
    let mut outputs = Vec::new();
    for (i, v) in output.variants.iter().enumerate() {
        let path = job
            .out_dir
            .join(format!("mediaflow-{i}.{}", v.format.extension()));
        std::fs::write(&path, &v.data)?;
        outputs.push(OutFile {
            path,
            bytes: v.data.len() as u64,
            width: v.width,
            height: v.height,
        });
    }
    let simd = mediaflow_engine::cpu_extension_name();
    Ok(RunResult {
        peer: "mediaflow".into(),
        version: format!("{} (fast_image_resize {simd})", mediaflow_engine::ENGINE_VERSION),
        threads: job.threads,
        iterations: per_image_ms.len(),
        wall_ms,
        per_image_ms,
        outputs,
        notes: format!(
            "libjpeg-turbo DCT shrink-on-load (>= {}x the output), Lanczos3, largest variant first; JPEG baseline \
             4:2:0 optimised Huffman; WebP method 4; AVIF libaom all-intra at avif_speed {} (cpu-used {}), 4:2:0, \
             tune SSIM, one thread",
            mediaflow_engine::shrink_on_load_margin(&plan),
            encode.avif_speed,
            encode.avif_speed - 1
        ),
        stages: Some(stages),
        ..RunResult::default()
    })
}

fn run_image_crate(job: &Job) -> anyhow::Result<RunResult> {
    if let Some(o) = job.outputs.iter().find(|o| o.format != "jpeg") {
        return Ok(RunResult {
            peer: "image crate".into(),
            skipped: Some(format!(
                "the image crate has no lossy {} encoder (WebP is lossless only; AVIF needs its avif feature)",
                o.format
            )),
            ..RunResult::default()
        });
    }
    let bytes =
        std::fs::read(&job.input).with_context(|| format!("reading {}", job.input.display()))?;
    let one = || -> anyhow::Result<Vec<(Vec<u8>, u32, u32)>> {
        let img = image::load_from_memory(&bytes)?.into_rgb8();
        let mut encoded = Vec::new();
        for o in &job.outputs {
            let small = fit_or_cover(&img, o.width, o.height);
            let (w, h) = small.dimensions();
            let mut buf = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, o.quality)
                .encode_image(&small)?;
            encoded.push((buf, w, h));
        }
        Ok(encoded)
    };
    let (wall_ms, per_image_ms, last) = timed(job, &one)?;
    std::fs::create_dir_all(&job.out_dir)?;
    let mut outputs = Vec::new();
    for (i, (data, width, height)) in last.into_iter().enumerate() {
        let path = job.out_dir.join(format!("image-{i}.jpg"));
        std::fs::write(&path, &data)?;
        outputs.push(OutFile {
            path,
            bytes: data.len() as u64,
            width,
            height,
        });
    }
    Ok(RunResult {
        peer: "image crate".into(),
        version: "image 0.25 (zune-jpeg decode, own Lanczos3, own JPEG encoder)".into(),
        threads: job.threads,
        iterations: per_image_ms.len(),
        wall_ms,
        per_image_ms,
        outputs,
        notes: "full-size decode, then imageops::resize Lanczos3 per output (of the centre crop for cover outputs)"
            .into(),
        ..RunResult::default()
    })
}

/// `img` resized to `width` (aspect kept) or, with a `height`, to exactly
/// `width` x `height` from a centre crop; never enlarged. Lanczos3.
pub fn fit_or_cover(img: &image::RgbImage, width: u32, height: Option<u32>) -> image::RgbImage {
    let (src_w, src_h) = img.dimensions();
    let filter = image::imageops::FilterType::Lanczos3;
    let Some(height) = height else {
        let w = width.min(src_w);
        let h = ((u64::from(src_h) * u64::from(w) + u64::from(src_w) / 2) / u64::from(src_w)).max(1)
            as u32;
        return image::imageops::resize(img, w, h, filter);
    };
    let (w, h) = (width.min(src_w), height.min(src_h));
    // The largest centred region with the box's aspect ratio.
    let (crop_w, crop_h) = if u64::from(src_w) * u64::from(h) > u64::from(src_h) * u64::from(w) {
        (
            ((u64::from(src_h) * u64::from(w) + u64::from(h) / 2) / u64::from(h)).max(1) as u32,
            src_h,
        )
    } else {
        (
            src_w,
            ((u64::from(src_w) * u64::from(h) + u64::from(w) / 2) / u64::from(w)).max(1) as u32,
        )
    };
    let region = image::imageops::crop_imm(
        img,
        (src_w - crop_w) / 2,
        (src_h - crop_h) / 2,
        crop_w,
        crop_h,
    )
    .to_image();
    image::imageops::resize(&region, w, h, filter)
}

/// The hidden `runner` subcommand: prints one JSON result.
pub fn runner(args: &RunnerArgs) -> anyhow::Result<String> {
    // As the Lambda functions do (mediaflow_engine::allocator); the workers
    // start after this.
    mediaflow_engine::allocator::use_one_malloc_arena();
    let job: Job = serde_json::from_slice(&std::fs::read(&args.job)?).context("reading the job")?;
    let result = match args.implementation.as_str() {
        "mediaflow" => run_mediaflow(&job)?,
        "image" => run_image_crate(&job)?,
        other => bail!("unknown --impl {other:?} (mediaflow or image)"),
    };
    Ok(serde_json::to_string(&result)?)
}

#[cfg(test)]
mod tests {
    use super::fit_or_cover;

    /// 120x40: red in the left third, green in the middle, blue on the right.
    fn stripes() -> image::RgbImage {
        image::RgbImage::from_fn(120, 40, |x, _| match x / 40 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        })
    }

    #[test]
    fn cover_is_the_centred_region_of_the_box_aspect() {
        let out = fit_or_cover(&stripes(), 20, Some(20));
        assert_eq!(out.dimensions(), (20, 20));
        // The 40x40 centre is all green: no red or blue reaches the output.
        for p in out.pixels() {
            assert!(p[1] > 200 && p[0] < 40 && p[2] < 40, "{p:?}");
        }
    }

    #[test]
    fn width_fit_keeps_the_aspect_ratio_and_never_enlarges() {
        let img = stripes();
        assert_eq!(fit_or_cover(&img, 60, None).dimensions(), (60, 20));
        assert_eq!(fit_or_cover(&img, 500, None).dimensions(), (120, 40));
        assert_eq!(fit_or_cover(&img, 500, Some(500)).dimensions(), (120, 40));
    }
}
