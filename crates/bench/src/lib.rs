//! mediaflow's benchmark (`mediaflow-bench`, also run as `mediaflow
//! bench`): fixed, named workloads on `sample-media`, timed side by side
//! with peer pipelines, with a quality score and the Lambda cost.
//!
//! Every implementation, mediaflow included, runs as a child process that
//! follows the protocol of `benches/peers/README.md` (a job file in, one
//! JSON result out: [`job`]), so each row is measured the same way and its
//! peak RSS is that of the child's process tree ([`sampler`], from /proc).
//! mediaflow's runner is the hidden `mediaflow-bench runner` subcommand
//! ([`runners`]), which also drives the `image` crate's own
//! decode/resize/encode as a baseline; [`peers`] lists the others.
//!
//! The driver ([`run`]) computes median/p95 ([`stats`]), SSIM against a
//! full-resolution reference ([`quality`]) and the Lambda/S3 cost
//! ([`cost`]), and prints one Markdown table per workload ([`report`]).
//!
//! This crate is separate from `mediaflow-cli` so that the shipped
//! `mediaflow` binary and the Lambda functions do not link what only the
//! benchmark needs (`image-compare`, the `image` crate's JPEG codec,
//! `procfs`).

pub mod cost;
pub mod job;
pub mod peers;
pub mod quality;
pub mod report;
pub mod runners;
pub mod sampler;
pub mod stats;
pub mod workloads;

pub use cost::prices;

use anyhow::{bail, Context as _};
use cost::lambda_cost_per_million;
use job::{Job, RunResult};
use peers::Peer;
use quality::Reference;
use report::{machine_description, markdown_table, Row};
use stats::percentile;
use std::path::{Path, PathBuf};
use std::time::Duration;
use workloads::{workloads, Workload};

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
    /// Only these workloads (repeatable): thumb-jpeg, thumb-progressive-256,
    /// upload-preset, png-alpha, avif.
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    /// mediaflow's AVIF speed (1..=10, libaom's cpu-used + 1) in its rows;
    /// a list (`7,6`) adds one mediaflow row per further speed to the
    /// workloads with an AVIF output.
    #[arg(
        long,
        value_name = "N[,N...]",
        value_delimiter = ',',
        default_values_t = [mediaflow_engine::EncodeOptions::default().avif_speed],
        value_parser = clap::value_parser!(u8).range(1..=10)
    )]
    pub avif_speed: Vec<u8>,
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

/// One run of `peer`'s runner on `job`: its result (one output per job
/// output unless it skipped or failed) and the measured process.
fn run_job(
    peer: &Peer,
    job: &Job,
    job_file: &Path,
) -> anyhow::Result<(RunResult, sampler::Measured)> {
    std::fs::write(job_file, serde_json::to_vec_pretty(job)?)?;
    // Single-thread rows pin every thread pool the peers know of to one.
    let pools = job.threads.max(1).to_string();
    let env = [
        ("RAYON_NUM_THREADS", pools.clone()),
        ("VIPS_CONCURRENCY", pools.clone()),
        ("UV_THREADPOOL_SIZE", pools),
    ];
    let measured =
        sampler::spawn_measured(&peer.command, job_file, &env, Duration::from_secs(900))?;
    let result: RunResult = serde_json::from_str(measured.stdout.trim()).with_context(|| {
        let tail: Vec<&str> = measured.stderr.lines().rev().take(5).collect();
        format!(
            "{}: no result ({})",
            peer.name,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    })?;
    let done = result.skipped.is_none() && result.error.is_none();
    if done && result.outputs.len() != job.outputs.len() {
        anyhow::bail!(
            "{}: {} outputs for the {} asked",
            peer.name,
            result.outputs.len(),
            job.outputs.len()
        );
    }
    Ok((result, measured))
}

/// `peer`'s job for `work` at `threads`, writing under `dir`; `quality`
/// overrides every output's quality.
fn job_for(
    args: &BenchArgs,
    peer: &Peer,
    work: &Workload,
    threads: usize,
    out_dir: PathBuf,
    quality: Option<u8>,
) -> anyhow::Result<Job> {
    let mut outputs = work.outputs.clone();
    if let Some(q) = quality {
        for o in &mut outputs {
            o.quality = q;
        }
    }
    Ok(Job {
        workload: work.name.into(),
        input: work
            .input
            .canonicalize()
            .with_context(|| format!("{} (run from the repository root)", work.input.display()))?,
        outputs,
        filter: "lanczos3".into(),
        threads,
        iterations: args.iterations.max(threads),
        warmup: args.warmup,
        out_dir,
        avif_speed: peer.avif_speed,
    })
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A quality-matched workload's setting for one implementation.
#[derive(Debug, Clone)]
enum Calibration {
    /// The lowest quality whose outputs all reach the target, and the
    /// output bytes at exactly the target score, interpolated linearly
    /// between the setting below it and this one (none at quality 1).
    Reached(u8, Option<f64>),
    /// Even quality 100 stays below the target.
    Unreachable,
    /// The runner skipped or failed the job.
    Skipped(String),
}

/// Bisects `peer`'s quality setting (1..=100) for the lowest whose every
/// output scores at least `target` SSIMULACRA2, one untimed image per step
/// (about seven steps). Assumes the score grows with the setting, as it
/// does for every encoder measured; a row's printed score shows the result.
fn calibrate(
    args: &BenchArgs,
    work: &Workload,
    peer: &Peer,
    dir: &Path,
    reference: &mut Reference,
    target: f64,
) -> anyhow::Result<Calibration> {
    // quality -> (worst score, total bytes) of every step run.
    let mut seen = std::collections::HashMap::new();
    let mut step = |quality: u8| -> anyhow::Result<Result<f64, String>> {
        let name = format!("{}-{}-q{quality}", work.name, slug(&peer.name));
        let mut job = job_for(args, peer, work, 1, dir.join(&name), Some(quality))?;
        job.iterations = 1;
        job.warmup = 0;
        let (result, _) = run_job(peer, &job, &dir.join(format!("{name}.json")))?;
        if let Some(reason) = result.skipped.or(result.error) {
            return Ok(Err(reason));
        }
        let mut worst = f64::INFINITY;
        for (o, wanted) in result.outputs.iter().zip(&job.outputs) {
            let score = reference
                .score(&o.path, wanted.height.is_some())?
                .ssimulacra2;
            if !score.is_finite() {
                anyhow::bail!(
                    "{}: SSIMULACRA2 of {} is {score}",
                    peer.name,
                    o.path.display()
                );
            }
            worst = worst.min(score);
        }
        let bytes: u64 = result.outputs.iter().map(|o| o.bytes).sum();
        tracing::debug!(
            peer = peer.name.as_str(),
            quality,
            score = worst,
            bytes,
            "calibration step"
        );
        seen.insert(quality, (worst, bytes));
        Ok(Ok(worst))
    };
    match step(100)? {
        Err(reason) => return Ok(Calibration::Skipped(reason)),
        Ok(s) if s < target => return Ok(Calibration::Unreachable),
        Ok(_) => {}
    }
    let (mut lo, mut hi) = (1u8, 100u8);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match step(mid)? {
            Err(reason) => return Ok(Calibration::Skipped(reason)),
            Ok(s) if s >= target => hi = mid,
            Ok(_) => lo = mid + 1,
        }
    }
    // The bisection ran both `lo` (reached) and `lo - 1` (below), unless
    // `lo` is 1.
    let at_target = lo
        .checked_sub(1)
        .and_then(|below| Some((seen.get(&below)?, seen.get(&lo)?)))
        .map(|(&(s0, b0), &(s1, b1))| {
            let t = ((target - s0) / (s1 - s0)).clamp(0.0, 1.0);
            b0 as f64 + t * (b1 as f64 - b0 as f64)
        });
    Ok(Calibration::Reached(lo, at_target))
}

fn measure(
    args: &BenchArgs,
    work: &Workload,
    peer: &Peer,
    threads: usize,
    dir: &Path,
    reference: &mut Reference,
    quality: Option<u8>,
) -> anyhow::Result<Row> {
    let mut row = Row::skipped(work.name, &peer.name, threads, peer.missing.clone());
    if row.skipped.is_some() {
        return Ok(row);
    }
    let name = format!("{}-{}-t{threads}", work.name, slug(&peer.name));
    let job = job_for(args, peer, work, threads, dir.join(&name), quality)?;
    let (result, measured) = run_job(peer, &job, &dir.join(format!("{name}.json")))?;
    if let Some(reason) = result.skipped.or(result.error) {
        row.skipped = Some(reason);
        return Ok(row);
    }
    let mut times = result.per_image_ms.clone();
    times.sort_by(f64::total_cmp);
    row.version = result.version;
    row.notes = result.notes;
    row.stages = result.stages;
    row.quality = job.outputs.iter().map(|o| o.quality).min();
    row.median_ms = percentile(&times, 0.5);
    row.p95_ms = percentile(&times, 0.95);
    row.images_per_s = result.per_image_ms.len() as f64 / (result.wall_ms / 1000.0);
    row.peak_rss_mb = measured.peak_rss as f64 / (1 << 20) as f64;
    row.output_bytes = result.outputs.iter().map(|o| o.bytes).sum();
    for (o, wanted) in result.outputs.iter().zip(&job.outputs) {
        let s = reference.score(&o.path, wanted.height.is_some())?;
        row.ssim_min = Some(row.ssim_min.map_or(s.ssim, |w| w.min(s.ssim)));
        row.ssimulacra2_min = Some(
            row.ssimulacra2_min
                .map_or(s.ssimulacra2, |w| w.min(s.ssimulacra2)),
        );
    }
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

/// Runs the benchmark; returns the text to print. Steps: choose the
/// workloads, find the peers, measure every row, then the footer and the
/// report files.
pub fn run(args: &BenchArgs) -> anyhow::Result<String> {
    let chosen = chosen_workloads(args)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let multi = args.threads.unwrap_or(cores).max(1);
    let modes: Vec<usize> = if multi > 1 { vec![1, multi] } else { vec![1] };
    let peers = peers::peers(args)?;
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
        let rows = measure_workload(args, work, &peers, &modes, dir.path())?;
        let mut table = markdown_table(work.name, &work.what, &rows, work.outputs.len());
        table.push_str(&report::stage_line(&rows));
        if let Some(target) = work.target_ssimulacra2 {
            table.push_str(&report::bytes_at_target(&rows, target));
            table.push_str(&report::against_each_peer(&rows, target));
        }
        text.push_str(&table);
        markdown.push_str(&table);
        rows_all.extend(rows);
    }
    let footer = footer(&rows_all);
    text.push_str(&footer);
    markdown.push_str(&footer);
    write_reports(args, &machine, &rows_all, &markdown)?;
    Ok(text)
}

/// The workloads asked for (all by default).
fn chosen_workloads(args: &BenchArgs) -> anyhow::Result<Vec<Workload>> {
    let all = workloads(&args.media);
    if args.workloads.is_empty() {
        return Ok(all);
    }
    for w in &args.workloads {
        if !all.iter().any(|x| x.name == w) {
            let names: Vec<&str> = all.iter().map(|x| x.name).collect();
            bail!("unknown workload {w:?}: use one of {}", names.join(", "));
        }
    }
    Ok(all
        .into_iter()
        .filter(|w| args.workloads.iter().any(|n| n == w.name))
        .collect())
}

/// Every peer at every thread count on one workload, a progress line each.
fn measure_workload(
    args: &BenchArgs,
    work: &Workload,
    peers: &[Peer],
    modes: &[usize],
    dir: &Path,
) -> anyhow::Result<Vec<Row>> {
    eprintln!("{}: {}", work.name, work.what);
    let has_avif = work.outputs.iter().any(|o| o.format == "avif");
    let peers: Vec<&Peer> = peers.iter().filter(|p| has_avif || !p.avif_only).collect();
    let mut reference =
        Reference::new(&work.input).with_context(|| format!("reference for {}", work.name))?;
    // Quality-matched workloads: one setting per implementation, found
    // before any timing and used at every thread count.
    // Per implementation: Ok(None) for a workload at its own settings,
    // Ok(Some((quality, bytes at the target))), or why it is skipped.
    type Setting = Result<Option<(u8, Option<f64>)>, String>;
    let mut settings: Vec<Setting> = Vec::new();
    for &peer in &peers {
        settings.push(match (work.target_ssimulacra2, &peer.missing) {
            (Some(target), None) => {
                match calibrate(args, work, peer, dir, &mut reference, target) {
                    Ok(Calibration::Reached(q, at_target)) => {
                        eprintln!(
                            "  {:<18} quality {q} reaches SSIMULACRA2 {target}",
                            peer.name
                        );
                        Ok(Some((q, at_target)))
                    }
                    Ok(Calibration::Unreachable) => {
                        Err(format!("quality 100 stays below SSIMULACRA2 {target}"))
                    }
                    Ok(Calibration::Skipped(reason)) => Err(reason),
                    Err(e) => Err(format!("failed: {e:#}")),
                }
            }
            _ => Ok(None),
        });
    }
    let mut rows = Vec::new();
    for &threads in modes {
        for (&peer, setting) in peers.iter().zip(&settings) {
            let measured = match setting {
                Ok(setting) => {
                    let quality = setting.map(|(q, _)| q);
                    measure(args, work, peer, threads, dir, &mut reference, quality).map(|mut r| {
                        r.bytes_at_target = setting.and_then(|(_, b)| b);
                        r
                    })
                }
                Err(reason) => Ok(Row::skipped(
                    work.name,
                    &peer.name,
                    threads,
                    Some(reason.clone()),
                )),
            };
            let mut row = match measured {
                Ok(r) => r,
                Err(e) => Row::skipped(
                    work.name,
                    &peer.name,
                    threads,
                    Some(format!("failed: {e:#}")),
                ),
            };
            row.mediaflow = peer.is_mediaflow();
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
    Ok(rows)
}

/// The versions of every peer measured, and how quality is scored.
fn footer(rows: &[Row]) -> String {
    let mut versions: Vec<String> = rows
        .iter()
        .filter(|r| !r.version.is_empty())
        .map(|r| format!("{}: {}", r.peer, r.version))
        .collect();
    versions.sort();
    versions.dedup();
    format!(
        "Versions: {}\nQuality, against a full-resolution decode resized with the image crate's Lanczos3: SSIM = mean \
         8x8-window SSIM on luma (image-compare MSSIMSimple; 1.0 = identical); SSIMULACRA2 = the ssimulacra2 crate's \
         score (100 = identical, 90 visually lossless, 70 high, 50 medium). \"quality\" is the encoder setting each \
         row ran at; in a quality-matched workload it is each implementation's lowest setting that reaches the target.\n",
        versions.join("; ")
    )
}

/// `--json` and `--markdown`, when asked for.
fn write_reports(
    args: &BenchArgs,
    machine: &str,
    rows: &[Row],
    markdown: &str,
) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        let doc = serde_json::json!({"machine": machine, "memory_mb": args.memory_mb, "prices": prices::DATE, "rows": rows});
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
