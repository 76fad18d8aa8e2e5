//! `mediaflow process`: turn local image and video files into variants,
//! renditions and manifests.
//!
//! Steps: [`collect`] the sources (files as given, directories recursed),
//! detect sources whose outputs would collide, then process the rest in
//! parallel, writing every output atomically under the output directory with
//! the same keys the serverless pipeline uses (prefix `""`):
//! `DIR/<variant>/<rel without extension>.<ext>` and
//! `DIR/manifest/<rel>.json`. Videos (sniffed: MP4/MOV, WebM/Matroska, and
//! animated GIFs when `animated_gif` is on) also get
//! `DIR/<rendition>/<rel without extension>.mp4`, through ffmpeg
//! (`MEDIAFLOW_FFMPEG`, else `ffmpeg` on the PATH).

use crate::UsageError;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use mediaflow_config::Config;
use mediaflow_engine::{
    content_hash, manifest_key, Manifest, MediaError, OutputNames, PublicBase, SourceRef,
};
use mediaflow_pipeline::media::{self, Media, Produced, VideoMedia};
use mediaflow_pipeline::MemoryBudget;
use mediaflow_video::{Tools, VideoManifest, VideoOutput};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use walkdir::WalkDir;

/// File extensions (lowercase) picked up when recursing a directory. Files
/// named explicitly are processed whatever their name; either way the format
/// is sniffed from the bytes.
pub const IMAGE_EXTENSIONS: [&str; 13] = [
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "tif", "tiff", "avif", "heic", "heif",
    "jxl",
];

/// Video file extensions (lowercase) picked up when recursing a directory.
pub const VIDEO_EXTENSIONS: [&str; 5] = ["mp4", "m4v", "mov", "webm", "mkv"];

/// Arguments of `mediaflow process`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessArgs {
    /// Image or video files, or directories. Directories are recursed
    /// (sorted; hidden entries, symlinked directories and the output
    /// directory are skipped) for files with an image or video extension.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Output directory (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,

    /// Configuration file [default: ./mediaflow.toml if present, else the
    /// built-in plan].
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Sources processed in parallel [default: all cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,

    /// Print a JSON summary to stdout instead of the human one.
    #[arg(long)]
    pub json: bool,

    /// Time allowed for one video source (probe, every rendition, the
    /// poster); ffmpeg is stopped when it passes and the file fails with
    /// `timeout`, as in Lambda.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Peak memory all sources in flight may take together (`2GiB`,
    /// `1500MB`): a source starts when its estimate (from its header) fits
    /// in what is left, and one that could never fit fails with `limits`
    /// [default: the memory available at start].
    #[arg(long, value_name = "SIZE", value_parser = crate::memory::parse)]
    pub memory: Option<bytesize::ByteSize>,

    /// Where the output directory will be served (e.g.
    /// https://cdn.example.com): each manifest then gives every output's
    /// `url` (the key percent-encoded), `srcset` strings per format and a
    /// `<picture>` snippet per family of variants.
    #[arg(long, value_name = "URL", env = "MEDIAFLOW_PUBLIC_BASE_URL", value_parser = crate::parse_public_base)]
    pub public_base_url: Option<PublicBase>,
}

/// How [`run`] reports while it works.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Print `error: <input>: <reason>` to stderr for each failing source, as
    /// it fails.
    pub print_errors: bool,
}

/// A source to process: where to read it and its key (path relative to the
/// directory it was found in, `/`-separated; the file name for a file given
/// explicitly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub key: String,
}

/// Why one source failed: a kind (`corrupt`, `limits`, …, `io` for file
/// system errors, `collision` for clashing outputs) and a one-line reason;
/// `Display` is `kind: reason`.
pub type SourceError = MediaError;

/// One file written.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFile {
    pub path: PathBuf,
    /// The variant's or rendition's name.
    pub variant: String,
    /// `jpeg`, `png`, `webp`, `avif` or `mp4`.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// A source processed successfully.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceOk {
    pub key: String,
    /// The sniffed format: `jpeg`, `png`, …, or a video container (`mp4`,
    /// `mov`, `webm`, `matroska`, `gif`).
    pub format: &'static str,
    /// Displayed (upright) source dimensions.
    pub width: u32,
    pub height: u32,
    pub manifest: PathBuf,
    pub outputs: Vec<OutputFile>,
    /// Wall time for this source: read, process, write.
    pub ms: f64,
}

/// The outcome for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub input: PathBuf,
    pub result: Result<SourceOk, SourceError>,
}

/// Everything [`run`] did, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub sources: Vec<SourceReport>,
    pub elapsed: Duration,
}

impl Summary {
    /// Sources processed successfully.
    pub fn processed(&self) -> usize {
        self.sources.iter().filter(|s| s.result.is_ok()).count()
    }
    pub fn failed(&self) -> usize {
        self.sources.len() - self.processed()
    }

    /// One line per source and a total line.
    pub fn to_human(&self) -> String {
        let mut text = String::new();
        let (mut outputs, mut bytes) = (0usize, 0u64);
        for s in &self.sources {
            let input = s.input.display();
            match &s.result {
                Ok(ok) => {
                    let b: u64 = ok.outputs.iter().map(|o| o.bytes).sum();
                    outputs += ok.outputs.len();
                    bytes += b;
                    text.push_str(&format!(
                        "{input}  {}x{} {} -> {} outputs, {}, {:.0} ms\n",
                        ok.width,
                        ok.height,
                        ok.format,
                        ok.outputs.len(),
                        kb(b),
                        ok.ms
                    ));
                }
                Err(e) => text.push_str(&format!("{input}  FAILED ({})\n", e.kind())),
            }
        }
        text.push_str(&format!(
            "{} processed, {} failed: {outputs} outputs, {} in {:.0} ms\n",
            self.processed(),
            self.failed(),
            kb(bytes),
            self.elapsed.as_secs_f64() * 1000.0
        ));
        text
    }

    /// The machine-readable summary printed by `--json` (pretty JSON, keys in
    /// a stable documented order).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            sources: Vec<JsonSource<'a>>,
            processed: usize,
            failed: usize,
            elapsed_ms: f64,
        }
        #[derive(Serialize)]
        #[serde(untagged)]
        enum JsonSource<'a> {
            Ok {
                input: String,
                ok: bool,
                key: &'a str,
                format: &'static str,
                width: u32,
                height: u32,
                manifest: String,
                outputs: Vec<JsonOutput<'a>>,
                ms: f64,
            },
            Failed {
                input: String,
                ok: bool,
                error_kind: &'static str,
                error: &'a str,
            },
        }
        #[derive(Serialize)]
        struct JsonOutput<'a> {
            path: String,
            variant: &'a str,
            format: &'static str,
            width: u32,
            height: u32,
            bytes: u64,
        }
        let sources = self
            .sources
            .iter()
            .map(|s| {
                let input = s.input.display().to_string();
                match &s.result {
                    Ok(ok) => JsonSource::Ok {
                        input,
                        ok: true,
                        key: &ok.key,
                        format: ok.format,
                        width: ok.width,
                        height: ok.height,
                        manifest: ok.manifest.display().to_string(),
                        outputs: ok
                            .outputs
                            .iter()
                            .map(|o| JsonOutput {
                                path: o.path.display().to_string(),
                                variant: &o.variant,
                                format: o.format,
                                width: o.width,
                                height: o.height,
                                bytes: o.bytes,
                            })
                            .collect(),
                        ms: round2(ok.ms),
                    },
                    Err(e) => JsonSource::Failed {
                        input,
                        ok: false,
                        error_kind: e.kind().as_str(),
                        error: e.message(),
                    },
                }
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&Json {
            sources,
            processed: self.processed(),
            failed: self.failed(),
            elapsed_ms: round2(self.elapsed.as_secs_f64() * 1000.0),
        })
        .expect("summary serialises");
        text.push('\n');
        text
    }
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

fn round2(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// An input as found by [`collect`]: a source to process, or a path that
/// already failed (unreadable, not a file, colliding outputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    Source(Source),
    Failed { path: PathBuf, error: SourceError },
}

/// Finds the sources named by `inputs`: files as given (whatever their
/// name), directories recursed in sorted order for files with an image
/// extension, skipping hidden entries, symlinked directories and `out_dir`
/// (when it lies inside an input directory). Sources whose outputs would
/// collide with another source's are turned into failures.
///
/// `out_dir` must exist. Fails (as a [`UsageError`]) when an input directory
/// is the output directory itself.
pub fn collect(
    inputs: &[PathBuf],
    out_dir: &Path,
    plan: &mediaflow_engine::Plan,
) -> Result<Vec<Collected>> {
    let out_canon = fs::canonicalize(out_dir)
        .with_context(|| format!("{}: cannot resolve the output directory", out_dir.display()))?;
    let mut found = Vec::new();
    for input in inputs {
        let meta = match fs::metadata(input) {
            Ok(m) => m,
            Err(e) => {
                found.push(Collected::Failed {
                    path: input.clone(),
                    error: SourceError::io(e.to_string()),
                });
                continue;
            }
        };
        if meta.is_dir() {
            if fs::canonicalize(input).is_ok_and(|c| c == out_canon) {
                return Err(UsageError(format!(
                    "{}: the output directory cannot be an input directory (use a subdirectory or another path for --out)",
                    input.display()
                ))
                .into());
            }
            walk(input, &out_canon, &mut found);
        } else if meta.is_file() {
            match input.file_name().map(|n| n.to_str()) {
                Some(Some(name)) => found.push(Collected::Source(Source {
                    path: input.clone(),
                    key: name.to_string(),
                })),
                _ => found.push(Collected::Failed {
                    path: input.clone(),
                    error: SourceError::io("file name is not valid UTF-8"),
                }),
            }
        } else {
            found.push(Collected::Failed {
                path: input.clone(),
                error: SourceError::io("not a regular file or directory"),
            });
        }
    }
    dedup(&mut found);
    mark_collisions(&mut found, plan);
    Ok(found)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| {
            IMAGE_EXTENSIONS.contains(&e.as_str()) || VIDEO_EXTENSIONS.contains(&e.as_str())
        })
}

fn walk(root: &Path, out_canon: &Path, found: &mut Vec<Collected>) {
    let skip = |e: &walkdir::DirEntry| {
        if e.depth() == 0 {
            return false;
        }
        if e.file_name().to_str().is_some_and(|n| n.starts_with('.')) {
            tracing::trace!(path = %e.path().display(), "skipping hidden entry");
            return true;
        }
        if e.file_type().is_dir() && fs::canonicalize(e.path()).is_ok_and(|c| c == out_canon) {
            tracing::debug!(path = %e.path().display(), "skipping the output directory");
            return true;
        }
        false
    };
    let walker = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !skip(e));
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                let reason = match e.io_error() {
                    Some(io) => format!("cannot read directory: {io}"),
                    None => e.to_string(),
                };
                found.push(Collected::Failed {
                    path,
                    error: SourceError::io(reason),
                });
                continue;
            }
        };
        let ft = entry.file_type();
        if ft.is_dir() || !has_image_extension(entry.path()) {
            continue;
        }
        let path = entry.path().to_path_buf();
        if ft.is_symlink() {
            // A symlinked file is a source; a symlinked directory is not
            // followed (no loops, no escaping the tree).
            match fs::metadata(&path) {
                Ok(m) if m.is_file() => {}
                Ok(_) => continue,
                Err(e) => {
                    found.push(Collected::Failed {
                        path,
                        error: SourceError::io(format!("broken symbolic link: {e}")),
                    });
                    continue;
                }
            }
        } else if !ft.is_file() {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        match parts {
            Some(parts) => found.push(Collected::Source(Source {
                key: parts.join("/"),
                path,
            })),
            None => found.push(Collected::Failed {
                path,
                error: SourceError::io("path is not valid UTF-8"),
            }),
        }
    }
}

/// Drops repeats of the same file under the same key (a file named twice, or
/// `dir` and `dir/a.jpg` both given): processing it once is enough.
fn dedup(found: &mut Vec<Collected>) {
    let mut seen = HashSet::new();
    found.retain(|c| match c {
        Collected::Source(s) => {
            let id = fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone());
            seen.insert((id, s.key.clone()))
        }
        Collected::Failed { .. } => true,
    });
}

/// Fails every source whose outputs could land on another source's: the
/// key template without its hash renders both keys alike, compared
/// case-insensitively so that case-insensitive file systems cannot
/// overwrite either (under the default template only `a.jpg` and `A.JPG`
/// meet; under `{variant}/{dir}{stem}.{ext}`, `a.jpg` and `a.png` do too).
fn mark_collisions(found: &mut [Collected], plan: &mediaflow_engine::Plan) {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in found.iter().enumerate() {
        if let Collected::Source(s) = c {
            groups
                .entry(plan.keys().render("", "", &s.key, "", "").to_lowercase())
                .or_default()
                .push(i);
        }
    }
    let mut clashes: Vec<(usize, String)> = Vec::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        for &i in members {
            let Collected::Source(me) = &found[i] else {
                continue;
            };
            let others: Vec<String> = members
                .iter()
                .filter(|&&j| j != i)
                .filter_map(|&j| match &found[j] {
                    Collected::Source(o) => Some(o.path.display().to_string()),
                    Collected::Failed { .. } => None,
                })
                .collect();
            clashes.push((
                i,
                format!(
                    "outputs for {:?} would overwrite those of {} (the [output] keys template gives both the same keys, ignoring case); nothing was written for either, rename one or process them separately",
                    me.key,
                    others.join(", ")
                ),
            ));
        }
    }
    for (i, message) in clashes {
        let path = match &found[i] {
            Collected::Source(s) => s.path.clone(),
            Collected::Failed { path, .. } => path.clone(),
        };
        found[i] = Collected::Failed {
            path,
            error: SourceError::collision(message),
        };
    }
}

/// Runs `mediaflow process` with an already loaded configuration.
pub fn run(args: &ProcessArgs, config: &Config, options: RunOptions) -> Result<Summary> {
    let video = LocalVideo {
        config,
        tools: crate::local_video_tools(),
        fingerprint: config.video.fingerprint(&config.image.fingerprint()),
        timeout: args.timeout,
        budget: crate::memory::budget(args.memory),
        public_base: args.public_base_url.clone(),
    };
    let start = Instant::now();
    fs::create_dir_all(&args.out).map_err(|e| {
        UsageError(format!(
            "{}: cannot create the output directory: {e}",
            args.out.display()
        ))
    })?;
    let collected = collect(&args.inputs, &args.out, &config.image)?;
    // Inputs are never overwritten, even when the output directory contains
    // some of them (e.g. `mediaflow process out/w640 --out out`).
    let protected: HashSet<PathBuf> = collected
        .iter()
        .filter_map(|c| match c {
            Collected::Source(s) => fs::canonicalize(&s.path).ok(),
            Collected::Failed { .. } => None,
        })
        .collect();
    let sources = collected
        .iter()
        .filter(|c| matches!(c, Collected::Source(_)))
        .count();
    tracing::debug!(
        sources,
        failed = collected.len() - sources,
        "collected inputs"
    );

    let bar = if options.progress {
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
        )
        .expect("valid template");
        ProgressBar::new(sources as u64).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let report_error = |input: &Path, error: &SourceError| {
        if options.print_errors {
            // Escaped: a file name with a newline must not forge a line.
            let input = input.to_string_lossy();
            bar.suspend(|| eprintln!("error: {}: {error}", mediaflow_store::escape_key(&input)));
        }
    };
    for c in &collected {
        if let Collected::Failed { path, error } = c {
            report_error(path, error);
        }
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.map_or(0, |n| n as usize))
        .thread_name(|i| format!("mediaflow-worker-{i}"))
        .build()
        .context("cannot start worker threads")?;
    let reports: Vec<SourceReport> = pool.install(|| {
        collected
            .into_par_iter()
            .map(|c| match c {
                Collected::Failed { path, error } => SourceReport {
                    input: path,
                    result: Err(error),
                },
                Collected::Source(source) => {
                    let result = process_source(&source, &video, &args.out, &protected);
                    if let Err(e) = &result {
                        report_error(&source.path, e);
                    }
                    bar.inc(1);
                    SourceReport {
                        input: source.path,
                        result,
                    }
                }
            })
            .collect()
    });
    bar.finish_and_clear();
    Ok(Summary {
        sources: reports,
        elapsed: start.elapsed(),
    })
}

/// What video sources need: the configuration, the tools, the fingerprint.
#[derive(Debug)]
pub struct LocalVideo<'a> {
    pub config: &'a Config,
    pub tools: Tools,
    pub fingerprint: String,
    /// Time allowed for one video source.
    pub timeout: Duration,
    /// Memory all sources in flight share.
    pub budget: MemoryBudget,
    /// Where the outputs are served: URLs and markup in the manifests.
    pub public_base: Option<PublicBase>,
}

/// Reads, processes and writes one source: [`media::process_file`] makes
/// the outputs, and they are written under `out_dir`, the manifest last.
pub fn process_source(
    source: &Source,
    video: &LocalVideo<'_>,
    out_dir: &Path,
    protected: &HashSet<PathBuf>,
) -> Result<SourceOk, SourceError> {
    let start = Instant::now();
    tracing::debug!(input = %mediaflow_store::escape_key(&source.path.to_string_lossy()), key = %mediaflow_store::escape_key(&source.key), "processing");
    // Renditions are made here (removed afterwards) and then moved into place.
    let work = tempfile::Builder::new()
        .prefix("mediaflow-")
        .tempdir()
        .map_err(|e| SourceError::io(format!("cannot create a work directory: {e}")))?;
    let media = Media {
        image: &video.config.image,
        video: Some(VideoMedia {
            plan: &video.config.video,
            tools: &video.tools,
        }),
    };
    let deadline = start + video.timeout;
    let produced = media::process_file(
        &source.path,
        &media,
        work.path(),
        Some(deadline),
        &video.budget,
    )?;
    // As in S3: outputs named by the content hash of the file's ETag (its
    // MD5) and the plan the manifest records.
    let etag = mediaflow_store::md5_etag_of_file(&source.path)
        .map_err(|e| SourceError::io(format!("cannot read: {e}")))?;
    let fingerprint = match &produced {
        Produced::Image(output) => output.plan_fingerprint.clone(),
        Produced::Video(_) => video.fingerprint.clone(),
    };
    let hash = content_hash(&etag, &fingerprint);
    let names = OutputNames {
        template: video.config.image.keys(),
        prefix: "",
        source_key: &source.key,
        hash: &hash,
    };
    let local = SourceRef {
        key: &source.key,
        etag: Some(&etag),
        version_id: None,
    };
    let mut ok = match produced {
        Produced::Image(output) => {
            write_image(source, &local, &names, &output, video, out_dir, protected)?
        }
        Produced::Video(output) => {
            write_video(source, &local, &names, &output, video, out_dir, protected)?
        }
    };
    ok.ms = start.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(input = %source.path.display(), outputs = ok.outputs.len(), ms = ok.ms, "done");
    Ok(ok)
}

/// An image's variants, then its manifest.
fn write_image(
    source: &Source,
    local: &SourceRef<'_>,
    names: &OutputNames<'_>,
    output: &mediaflow_engine::Output,
    video: &LocalVideo<'_>,
    out_dir: &Path,
    protected: &HashSet<PathBuf>,
) -> Result<SourceOk, SourceError> {
    let mut outputs = Vec::with_capacity(output.variants.len());
    write_variants(output, names, out_dir, protected, &mut outputs)?;
    // The manifest goes last: when it exists, every output it lists does.
    let mut manifest = Manifest::build(names, local, output);
    if let Some(base) = &video.public_base {
        manifest.publish(&video.config.image, base);
    }
    let manifest_path = out_dir.join(manifest_key("", &source.key));
    write_output(&manifest_path, &manifest.to_json(), protected)?;
    Ok(SourceOk {
        key: source.key.clone(),
        format: output.source.format.as_str(),
        width: output.source.width,
        height: output.source.height,
        manifest: manifest_path,
        outputs,
        ms: 0.0,
    })
}

/// A video's renditions moved into place from the work directory, the
/// poster's variants, then the video manifest.
fn write_video(
    source: &Source,
    local: &SourceRef<'_>,
    names: &OutputNames<'_>,
    out: &VideoOutput,
    video: &LocalVideo<'_>,
    out_dir: &Path,
    protected: &HashSet<PathBuf>,
) -> Result<SourceOk, SourceError> {
    let mut outputs = Vec::new();
    for r in &out.renditions {
        let path = out_dir.join(mediaflow_video::rendition_key(names, &r.name));
        install_file(&r.path, &path, protected)?;
        outputs.push(OutputFile {
            path,
            variant: r.name.clone(),
            format: "mp4",
            width: r.width,
            height: r.height,
            bytes: r.bytes,
        });
    }
    write_variants(&out.poster, names, out_dir, protected, &mut outputs)?;
    let mut manifest = VideoManifest::build(names, local, out, &video.fingerprint);
    if let Some(base) = &video.public_base {
        manifest.publish(&video.config.image, base);
    }
    let manifest_path = out_dir.join(manifest_key("", &source.key));
    write_output(&manifest_path, &manifest.to_json(), protected)?;
    let (width, height) = out.probe.display_size();
    Ok(SourceOk {
        key: source.key.clone(),
        format: out.container.as_str(),
        width,
        height,
        manifest: manifest_path,
        outputs,
        ms: 0.0,
    })
}

/// Writes the engine's variants of the source `key` (a photo's, or a
/// video's poster), recording each in `outputs`.
fn write_variants(
    output: &mediaflow_engine::Output,
    names: &OutputNames<'_>,
    out_dir: &Path,
    protected: &HashSet<PathBuf>,
    outputs: &mut Vec<OutputFile>,
) -> Result<(), SourceError> {
    for v in &output.variants {
        let path = out_dir.join(names.key(&v.name, v.format.extension()));
        write_output(&path, &v.data, protected)?;
        outputs.push(OutputFile {
            path,
            variant: v.name.clone(),
            format: v.format.as_str(),
            width: v.width,
            height: v.height,
            bytes: v.data.len() as u64,
        });
    }
    Ok(())
}

/// Outputs never replace an input (see [`run`]).
fn refuse_inputs(path: &Path, protected: &HashSet<PathBuf>) -> Result<(), SourceError> {
    if let Ok(existing) = fs::canonicalize(path) {
        if protected.contains(&existing) {
            return Err(SourceError::io(format!(
                "refusing to overwrite {}: it is one of the inputs",
                path.display()
            )));
        }
    }
    Ok(())
}

fn write_output(path: &Path, data: &[u8], protected: &HashSet<PathBuf>) -> Result<(), SourceError> {
    refuse_inputs(path, protected)?;
    write_atomic(path, data)
        .map_err(|e| SourceError::io(format!("cannot write {}: {e}", path.display())))
}

/// Copies the file at `from` to `path` atomically (a rendition from the
/// work directory, which may be on another file system).
fn install_file(from: &Path, path: &Path, protected: &HashSet<PathBuf>) -> Result<(), SourceError> {
    refuse_inputs(path, protected)?;
    write_atomic_with(path, |file| {
        io::copy(&mut fs::File::open(from)?, file).map(|_| ())
    })
    .map_err(|e| SourceError::io(format!("cannot write {}: {e}", path.display())))
}

/// Writes `data` to a hidden temporary file in the destination's directory,
/// flushes it to disk and renames it into place, so the destination is
/// either its old content or the complete new one, never a partial file.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(data))
}

/// [`write_atomic`] with the content written by `fill`.
fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".mediaflow-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
