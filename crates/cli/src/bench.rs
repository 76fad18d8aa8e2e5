//! `mediaflow bench`: fixed, named workloads on `sample-media`, timed side
//! by side with peer pipelines, with a quality score and the Lambda cost.
//!
//! Every implementation, mediaflow included, runs as a child process that
//! follows the protocol of `benches/peers/README.md` (a job file in, one
//! JSON result out), so each row is measured the same way and its peak RSS
//! is that of the child's process tree (sampled from /proc). mediaflow's runner is the hidden
//! `mediaflow bench-runner` subcommand, which also drives the `image`
//! crate's own decode/resize/encode as a baseline.
//!
//! Quality: SSIM (8x8-window mean SSIM on luma, `image-compare`'s
//! `MSSIMSimple`) of each output against a reference made from a full
//! resolution decode (no shrink-on-load) composited over white and resized
//! with the `image` crate's Lanczos3 in floating point.

use anyhow::{bail, Context as _};
use mediaflow_engine::{EncodeOptions, Filter, FormatChoice, Limits, OutputFormat, Plan, Variant};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// AWS prices used for the cost columns: US East (N. Virginia), first
/// pricing tier, as listed on aws.amazon.com/lambda/pricing and
/// aws.amazon.com/s3/pricing (unchanged since arm64 Lambda launched in 2021;
/// recorded here 2026-11-23 — check them before relying on the figures).
pub mod prices {
    pub const DATE: &str = "2026-11-23 (us-east-1, tier 1)";
    /// USD per GB-second of Lambda duration, arm64.
    pub const LAMBDA_ARM64_GB_S: f64 = 0.000_013_333_4;
    /// USD per GB-second of Lambda duration, x86_64.
    pub const LAMBDA_X86_GB_S: f64 = 0.000_016_666_7;
    /// USD per Lambda request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
    /// USD per S3 Standard GET.
    pub const S3_GET: f64 = 0.0004 / 1000.0;
    /// USD per S3 Standard PUT.
    pub const S3_PUT: f64 = 0.005 / 1000.0;
    /// Lambda memory at which a function gets one full vCPU.
    pub const ONE_VCPU_MB: u32 = 1769;
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Also run every installed peer (benches/peers/setup installs them).
    #[arg(long)]
    pub compare: bool,
    /// Threads for the multi-threaded rows (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed images per row (after the warm-up).
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Untimed images per row before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Only these workloads (repeatable): thumb-jpeg, upload-preset, png-alpha, avif.
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    /// Lambda memory size for the cost columns, in MB.
    #[arg(long, default_value_t = 2048)]
    pub memory_mb: u32,
    /// Write every result as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the tables as Markdown.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// The sample media directory.
    #[arg(long, default_value = "sample-media")]
    pub media: PathBuf,
    /// The peers directory (runners and their installs).
    #[arg(long, default_value = "benches/peers")]
    pub peers: PathBuf,
}

/// One output of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOutput {
    pub width: u32,
    pub format: String,
    pub quality: u8,
}

/// A job file, as every runner reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub workload: String,
    pub input: PathBuf,
    pub outputs: Vec<JobOutput>,
    pub filter: String,
    pub threads: usize,
    pub iterations: usize,
    pub warmup: usize,
    pub out_dir: PathBuf,
}

/// One output file a runner wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// A runner's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub peer: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub threads: usize,
    #[serde(default)]
    pub iterations: usize,
    #[serde(default)]
    pub wall_ms: f64,
    #[serde(default)]
    pub per_image_ms: Vec<f64>,
    #[serde(default)]
    pub outputs: Vec<OutFile>,
    #[serde(default)]
    pub notes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A fixed, named workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: &'static str,
    pub what: String,
    pub input: PathBuf,
    pub outputs: Vec<JobOutput>,
}

fn out(width: u32, format: &str, quality: u8) -> JobOutput {
    JobOutput {
        width,
        format: format.into(),
        quality,
    }
}

/// The workloads, with inputs under `media`. `upload-preset` wants the
/// 20 MP photo from `sample-media/fetch-large.sh`; without it, it uses the
/// 16 MP one and says so.
pub fn workloads(media: &Path) -> Vec<Workload> {
    let large = media.join("large/Kleiber_by_Lukas_Baubkus.jpg");
    let seeding = media.join("seeding_by_Clements_Engelhardt.jpg");
    let (upload_input, upload_what) = if large.is_file() {
        (large, "20 MP JPEG (6028x3391)")
    } else {
        (
            seeding.clone(),
            "16 MP JPEG (5312x2988; run sample-media/fetch-large.sh for the 20 MP one)",
        )
    };
    let widths = [2048, 1024, 512, 256];
    vec![
        Workload {
            name: "thumb-jpeg",
            what: "16 MP JPEG (5312x2988) -> 720 px JPEG q80, Lanczos3".into(),
            input: seeding,
            outputs: vec![out(720, "jpeg", 80)],
        },
        Workload {
            name: "upload-preset",
            what: format!("{upload_what} -> 2048/1024/512/256 px in JPEG q80 and WebP q80"),
            input: upload_input,
            outputs: widths
                .iter()
                .flat_map(|&w| [out(w, "jpeg", 80), out(w, "webp", 80)])
                .collect(),
        },
        Workload {
            name: "png-alpha",
            what: "RGBA PNG (400x328 clip art) -> 512 px WebP q80 (not enlarged: 400 px)".into(),
            input: media.join("horse.png"),
            outputs: vec![out(512, "webp", 80)],
        },
        Workload {
            name: "avif",
            what: "9.8 MP JPEG (2560x3837) -> 1024 px AVIF q60".into(),
            input: media.join("Wine_by_Jakkub_Mede.jpg"),
            outputs: vec![out(1024, "avif", 60)],
        },
    ]
}

// ---------------------------------------------------------------- runners

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
        let mut v = Variant::new(format!("o{i}"), Some(o.width), None)
            .with_formats([FormatChoice::Fixed(parse_format(&o.format)?)]);
        v.quality = Some(o.quality);
        v.filter = filter;
        variants.push(v);
    }
    let encode = EncodeOptions {
        jpeg_progressive: false,
        ..EncodeOptions::default()
    };
    let plan = Plan::new(Limits::default(), variants, encode)?.with_placeholder(false);
    let (wall_ms, per_image_ms, output) =
        timed(job, &|| Ok(mediaflow_engine::process(&bytes, &plan)?))?;
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
        notes: "libjpeg-turbo DCT shrink-on-load (>= 2x margin), Lanczos3, largest variant first; JPEG baseline \
                4:2:0 optimised Huffman; WebP method 4; AVIF ravif speed 7"
            .into(),
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
            let w = o.width.min(img.width());
            let h = ((img.height() as u64 * w as u64 + img.width() as u64 / 2) / img.width() as u64)
                .max(1) as u32;
            let small = image::imageops::resize(&img, w, h, image::imageops::FilterType::Lanczos3);
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
        notes: "full-size decode, then imageops::resize Lanczos3 per output".into(),
        ..RunResult::default()
    })
}

/// The hidden `bench-runner` subcommand: prints one JSON result.
pub fn runner(args: &RunnerArgs) -> anyhow::Result<String> {
    let job: Job = serde_json::from_slice(&std::fs::read(&args.job)?).context("reading the job")?;
    let result = match args.implementation.as_str() {
        "mediaflow" => run_mediaflow(&job)?,
        "image" => run_image_crate(&job)?,
        other => bail!("unknown --impl {other:?} (mediaflow or image)"),
    };
    Ok(serde_json::to_string(&result)?)
}

// ---------------------------------------------------------------- driver

/// How to start one implementation's runner.
struct Peer {
    name: &'static str,
    command: Vec<String>,
    /// Why it cannot run, if it is not installed.
    missing: Option<String>,
}

fn peers(args: &BenchArgs) -> anyhow::Result<Vec<Peer>> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let dir = &args.peers;
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let mut list = vec![Peer {
        name: "mediaflow",
        command: vec![
            exe.clone(),
            "bench-runner".into(),
            "--impl".into(),
            "mediaflow".into(),
        ],
        missing: None,
    }];
    if !args.compare {
        return Ok(list);
    }
    let need = |path: PathBuf, what: &str| {
        (!path.exists()).then(|| format!("not installed ({what}; run benches/peers/setup)"))
    };
    list.push(Peer {
        name: "sharp",
        command: vec!["node".into(), p("sharp.mjs")],
        missing: need(
            dir.join("node/node_modules/sharp"),
            "node/node_modules/sharp",
        ),
    });
    list.push(Peer {
        name: "libvips (pyvips)",
        command: vec![p("pyvips_runner.py")],
        missing: need(dir.join(".venv/bin/python"), ".venv"),
    });
    let vipsthumbnail = which("vipsthumbnail");
    list.push(Peer {
        name: "vipsthumbnail",
        command: vec![p("vipsthumbnail_runner.py")],
        missing: (!vipsthumbnail).then(|| "not installed (apt-get install libvips-tools)".into()),
    });
    list.push(Peer {
        name: "Pillow",
        command: vec![p("pillow_runner.py")],
        missing: need(dir.join(".venv/bin/python"), ".venv"),
    });
    list.push(Peer {
        name: "image crate",
        command: vec![exe, "bench-runner".into(), "--impl".into(), "image".into()],
        missing: None,
    });
    list.push(Peer {
        name: "oximg",
        command: vec![p("oximg_runner.py")],
        missing: need(dir.join(".cargo/bin/oximg"), ".cargo/bin/oximg"),
    });
    Ok(list)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The pids of `pid` and all its descendants (from /proc/PID/task/*/children).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                    all.extend(
                        text.split_whitespace()
                            .filter_map(|c| c.parse::<u32>().ok()),
                    );
                }
            }
        }
        i += 1;
    }
    all
}

/// Resident memory of one process in bytes (VmRSS), 0 if it is gone.
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Runs a runner with a time limit; returns its stdout, stderr and the peak
/// resident memory of its process tree in bytes: the largest sum of VmRSS
/// over the runner and its children, sampled every 5 ms. (`wait4`'s
/// `ru_maxrss` would do for one process, but Linux seeds it with the
/// parent's high-water mark at fork, and it ignores grandchildren.)
fn spawn_measured(
    command: &[String],
    job_file: &Path,
    env: &[(&str, String)],
    limit: Duration,
) -> anyhow::Result<(String, String, u64)> {
    use std::io::Read as _;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .arg(job_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", command.join(" ")))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let peak = std::sync::Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while !done.load(Ordering::Relaxed) {
                let total: u64 = process_tree(pid).into_iter().map(rss_bytes).sum();
                peak.fetch_max(total, Ordering::Relaxed);
                if started.elapsed() > limit {
                    // SAFETY: kill(2) on our own child, which is not reaped until wait() below returns.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let status = child.wait();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let status = status.with_context(|| format!("waiting for {}", command.join(" ")))?;
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() && stdout.trim().is_empty() {
        bail!(
            "{} exited with {status}: {}",
            command.join(" "),
            stderr.trim()
        );
    }
    Ok((stdout, stderr, peak.load(Ordering::Relaxed)))
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub peer: String,
    pub version: String,
    pub threads: usize,
    pub images_per_s: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub peak_rss_mb: f64,
    pub output_bytes: u64,
    pub ssim_min: Option<f64>,
    pub cost_arm64_per_million: Option<f64>,
    pub cost_x86_per_million: Option<f64>,
    pub notes: String,
    pub skipped: Option<String>,
}

impl Row {
    /// A row with no measurements yet; `skipped` says why, if it stays empty.
    fn skipped(workload: &str, peer: &str, threads: usize, skipped: Option<String>) -> Row {
        Row {
            workload: workload.into(),
            peer: peer.into(),
            version: String::new(),
            threads,
            images_per_s: 0.0,
            median_ms: 0.0,
            p95_ms: 0.0,
            peak_rss_mb: 0.0,
            output_bytes: 0,
            ssim_min: None,
            cost_arm64_per_million: None,
            cost_x86_per_million: None,
            notes: String::new(),
            skipped,
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Lambda duration + request cost per million images at `memory_mb`, for a
/// single-thread time per image (one image per invocation).
pub fn lambda_cost_per_million(ms_per_image: f64, memory_mb: u32, gb_s_price: f64) -> f64 {
    let gb = memory_mb as f64 / 1024.0;
    1_000_000.0 * (ms_per_image / 1000.0 * gb * gb_s_price + prices::LAMBDA_REQUEST)
}

/// S3 request cost per million images: one GET, one PUT per output, one
/// PUT for the manifest.
pub fn s3_cost_per_million(outputs: usize) -> f64 {
    1_000_000.0 * (prices::S3_GET + (outputs as f64 + 1.0) * prices::S3_PUT)
}

/// Quality references, one per output size, computed once per workload.
struct Reference {
    upright: image::RgbImage,
    cache: HashMap<(u32, u32), image::GrayImage>,
}

fn over_white(img: &mediaflow_engine::RgbImage) -> image::RgbImage {
    let (w, h) = (img.width, img.height);
    let c = img.channels as usize;
    let mut out = image::RgbImage::new(w, h);
    for (i, px) in out.pixels_mut().enumerate() {
        let s = &img.data[i * c..i * c + c];
        let a = if c == 4 { s[3] as u32 } else { 255 };
        let mix = |v: u8| ((v as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        *px = image::Rgb([mix(s[0]), mix(s[1]), mix(s[2])]);
    }
    out
}

impl Reference {
    fn new(source: &Path) -> anyhow::Result<Reference> {
        let bytes = std::fs::read(source)?;
        let decoded = mediaflow_engine::decode_upright(&bytes, &Limits::default())?;
        Ok(Reference {
            upright: over_white(&decoded),
            cache: HashMap::new(),
        })
    }

    fn ssim(&mut self, output: &Path) -> anyhow::Result<f64> {
        let bytes = std::fs::read(output)?;
        let decoded = mediaflow_engine::decode_upright(&bytes, &Limits::default())
            .with_context(|| format!("decoding {}", output.display()))?;
        let got = image::DynamicImage::ImageRgb8(over_white(&decoded)).into_luma8();
        let key = (got.width(), got.height());
        let upright = &self.upright;
        let reference = self.cache.entry(key).or_insert_with(|| {
            let small = image::imageops::resize(
                upright,
                key.0,
                key.1,
                image::imageops::FilterType::Lanczos3,
            );
            image::DynamicImage::ImageRgb8(small).into_luma8()
        });
        let sim = image_compare::gray_similarity_structure(
            &image_compare::Algorithm::MSSIMSimple,
            reference,
            &got,
        )
        .map_err(|e| anyhow::anyhow!("SSIM of {}: {e:?}", output.display()))?;
        Ok(sim.score)
    }
}

fn measure(
    args: &BenchArgs,
    work: &Workload,
    peer: &Peer,
    threads: usize,
    dir: &Path,
    reference: &mut Reference,
) -> anyhow::Result<Row> {
    let mut row = Row::skipped(work.name, peer.name, threads, peer.missing.clone());
    if row.skipped.is_some() {
        return Ok(row);
    }
    let slug: String = peer
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let out_dir = dir.join(format!("{}-{slug}-t{threads}", work.name));
    let job = Job {
        workload: work.name.into(),
        input: work
            .input
            .canonicalize()
            .with_context(|| format!("{} (run from the repository root)", work.input.display()))?,
        outputs: work.outputs.clone(),
        filter: "lanczos3".into(),
        threads,
        iterations: args.iterations.max(threads),
        warmup: args.warmup,
        out_dir: out_dir.clone(),
    };
    let job_file = dir.join(format!("{}-{slug}-t{threads}.json", work.name));
    std::fs::write(&job_file, serde_json::to_vec_pretty(&job)?)?;
    // Single-thread rows pin every thread pool the peers know of to one.
    let pools = if threads == 1 {
        "1".to_string()
    } else {
        threads.to_string()
    };
    let env = [
        ("RAYON_NUM_THREADS", pools.clone()),
        ("VIPS_CONCURRENCY", pools.clone()),
        ("UV_THREADPOOL_SIZE", pools),
    ];
    let (stdout, stderr, rss) =
        spawn_measured(&peer.command, &job_file, &env, Duration::from_secs(900))?;
    let result: RunResult = serde_json::from_str(stdout.trim()).with_context(|| {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        format!(
            "{}: no result ({})",
            peer.name,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    })?;
    if let Some(reason) = result.skipped.or(result.error) {
        row.skipped = Some(reason);
        return Ok(row);
    }
    let mut times = result.per_image_ms.clone();
    times.sort_by(f64::total_cmp);
    row.version = result.version;
    row.notes = result.notes;
    row.median_ms = percentile(&times, 0.5);
    row.p95_ms = percentile(&times, 0.95);
    row.images_per_s = result.per_image_ms.len() as f64 / (result.wall_ms / 1000.0);
    row.peak_rss_mb = rss as f64 / (1 << 20) as f64;
    row.output_bytes = result.outputs.iter().map(|o| o.bytes).sum();
    let mut worst: Option<f64> = None;
    for o in &result.outputs {
        let s = reference.ssim(&o.path)?;
        worst = Some(worst.map_or(s, |w| w.min(s)));
    }
    row.ssim_min = worst;
    if threads == 1 {
        row.cost_arm64_per_million = Some(lambda_cost_per_million(
            row.median_ms,
            args.memory_mb,
            prices::LAMBDA_ARM64_GB_S,
        ));
        row.cost_x86_per_million = Some(lambda_cost_per_million(
            row.median_ms,
            args.memory_mb,
            prices::LAMBDA_X86_GB_S,
        ));
    }
    Ok(row)
}

fn fmt_cost(c: Option<f64>) -> String {
    c.map_or("-".into(), |c| format!("${c:.2}"))
}

/// The Markdown table for one workload.
pub fn markdown_table(work_name: &str, what: &str, rows: &[Row], outputs: usize) -> String {
    let mut s = format!("### `{work_name}`: {what}\n\n");
    s.push_str("| peer | threads | images/s | median ms | p95 ms | peak RSS MB | output bytes | SSIM (min) | Lambda arm64 $/M | Lambda x86 $/M |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        if let Some(why) = &r.skipped {
            s.push_str(&format!(
                "| {} | {} | skipped: {} | | | | | | | |\n",
                r.peer,
                r.threads,
                why.replace('|', "/")
            ));
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} |\n",
            r.peer,
            r.threads,
            r.images_per_s,
            r.median_ms,
            r.p95_ms,
            r.peak_rss_mb,
            r.output_bytes,
            r.ssim_min.map_or("-".into(), |v| format!("{v:.4}")),
            fmt_cost(r.cost_arm64_per_million),
            fmt_cost(r.cost_x86_per_million),
        ));
    }
    s.push_str(&format!(
        "\nS3 requests, the same for every row: ${:.2} per million images (1 GET, {} PUTs + 1 manifest PUT).\n\n",
        s3_cost_per_million(outputs),
        outputs
    ));
    s
}

/// Runs the benchmark; returns the text to print.
pub fn run(args: &BenchArgs) -> anyhow::Result<String> {
    let all = workloads(&args.media);
    let chosen: Vec<Workload> = if args.workloads.is_empty() {
        all
    } else {
        for w in &args.workloads {
            if !all.iter().any(|x| x.name == w) {
                bail!("unknown workload {w:?}: use thumb-jpeg, upload-preset, png-alpha or avif");
            }
        }
        all.into_iter()
            .filter(|w| args.workloads.iter().any(|n| n == w.name))
            .collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let multi = args.threads.unwrap_or(cores).max(1);
    let modes: Vec<usize> = if multi > 1 { vec![1, multi] } else { vec![1] };
    let peers = peers(args)?;
    let dir = tempfile::tempdir()?;
    let machine = machine_description();
    let mut text = format!(
        "mediaflow bench: {machine}\n{} timed images per row after {} warm-up; Lambda cost at {} MB ({:.2} vCPU), prices {}\n\
         Cost assumes one image per invocation taking the single-thread median measured here; arm64 Lambda cores are \
         slower than this machine's, so treat it as an estimate.\n\n",
        args.iterations,
        args.warmup,
        args.memory_mb,
        args.memory_mb as f64 / prices::ONE_VCPU_MB as f64,
        prices::DATE
    );
    let mut markdown = text.clone();
    let mut rows_all = Vec::new();
    for work in &chosen {
        eprintln!("{}: {}", work.name, work.what);
        let mut reference =
            Reference::new(&work.input).with_context(|| format!("reference for {}", work.name))?;
        let mut rows = Vec::new();
        for &threads in &modes {
            for peer in &peers {
                let row = match measure(args, work, peer, threads, dir.path(), &mut reference) {
                    Ok(r) => r,
                    Err(e) => Row::skipped(
                        work.name,
                        peer.name,
                        threads,
                        Some(format!("failed: {e:#}")),
                    ),
                };
                eprintln!(
                    "  {:<18} t={threads} {}",
                    row.peer,
                    row.skipped.clone().unwrap_or_else(|| format!(
                        "{:.1} images/s, median {:.1} ms",
                        row.images_per_s, row.median_ms
                    ))
                );
                rows.push(row);
            }
        }
        let table = markdown_table(work.name, &work.what, &rows, work.outputs.len());
        text.push_str(&table);
        markdown.push_str(&table);
        rows_all.extend(rows);
    }
    let versions: Vec<String> = {
        let mut v: Vec<String> = rows_all
            .iter()
            .filter(|r| !r.version.is_empty())
            .map(|r| format!("{}: {}", r.peer, r.version))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let footer = format!(
        "Versions: {}\nQuality: SSIM = mean 8x8-window SSIM on luma (image-compare MSSIMSimple) against a full-resolution \
         decode resized with the image crate's Lanczos3 (1.0 = identical).\n",
        versions.join("; ")
    );
    text.push_str(&footer);
    markdown.push_str(&footer);
    if let Some(path) = &args.json {
        let doc = serde_json::json!({"machine": machine, "memory_mb": args.memory_mb, "prices": prices::DATE, "rows": rows_all});
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(text)
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let simd = mediaflow_engine::cpu_extension_name();
    format!("{cpu}, {cores} cores, {} ({simd})", std::env::consts::ARCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        // 100 ms at 1024 MB on arm64: 0.1 GB-s * price * 1e6 + $0.20 requests.
        let c = lambda_cost_per_million(100.0, 1024, prices::LAMBDA_ARM64_GB_S);
        assert!(
            (c - (0.1 * 0.000_013_333_4 * 1e6 + 0.2)).abs() < 1e-9,
            "{c}"
        );
        // 8 outputs: 1 GET + 9 PUTs per image.
        assert!((s3_cost_per_million(8) - (0.4 + 45.0)).abs() < 1e-9);
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.95), 100.0);
    }

    #[test]
    fn workloads_are_the_four_named() {
        let w = workloads(Path::new("sample-media"));
        let names: Vec<_> = w.iter().map(|w| w.name).collect();
        assert_eq!(names, ["thumb-jpeg", "upload-preset", "png-alpha", "avif"]);
        assert_eq!(w[1].outputs.len(), 8);
    }
}
