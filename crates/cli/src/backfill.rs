//! `mediaflow backfill`: bring an existing bucket up to date.
//!
//! Steps: list the sources (or read an S3 Inventory report), decide what
//! each needs from listings of the outputs
//! ([`mediaflow_pipeline::backfill`]), and for each object needing work
//! either send the S3 event the functions read to their queue
//! (SendMessageBatch, ten at a time) or run the pipeline here (`--local`).
//! Work is committed in key order, a batch at a time: after each batch
//! the checkpoint (`--resume`) records the last key whose fate is final
//! and the counts so far, so a resumed run starts after it and sends
//! nothing twice. SIGINT or SIGTERM ends the batch in flight, writes the
//! checkpoint and exits with status 130.

use crate::UsageError;
use anyhow::Context as _;
use mediaflow_config::Config;
use mediaflow_pipeline::backfill::inventory::{self, InventoryListing};
use mediaflow_pipeline::backfill::{
    BucketListing, Examined, Requests, Selection, Selector, SourceListing, State,
};
use mediaflow_pipeline::{Outcome, Pipeline, PipelineConfig, S3Notification, SourceObject};
use mediaflow_store::{object_url, valid_bucket_name, MessageQueue, ObjectStore};
use mediaflow_store_s3::{S3Store, SqsQueue, MAX_BATCH_ENTRIES};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&object_url(&self.bucket, &self.prefix))
    }
}

/// Parses `s3://BUCKET[/PREFIX]`; the prefix is kept verbatim.
pub fn parse_s3_url(s: &str) -> Result<S3Url, String> {
    let rest = s
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{s:?} is not s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if !valid_bucket_name(bucket) {
        return Err(format!("{bucket:?} in {s:?} is not a valid S3 bucket name"));
    }
    Ok(S3Url {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

/// Which objects are work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Only {
    /// Objects without a manifest.
    Missing,
    /// Objects whose manifest is of other bytes or another plan.
    Stale,
    /// Both.
    All,
}

impl Only {
    fn wants(self, state: State) -> bool {
        matches!(
            (self, state),
            (Only::Missing | Only::All, State::Missing) | (Only::Stale | Only::All, State::Stale)
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Only::Missing => "missing",
            Only::Stale => "stale",
            Only::All => "all",
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").args(["queue", "local", "dry_run"]).required(true)))]
pub struct BackfillArgs {
    /// The sources: s3://BUCKET[/PREFIX] (PREFIX is a listing prefix).
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_s3_url)]
    pub source: S3Url,
    /// Where the functions write: s3://BUCKET[/PREFIX], PREFIX being their
    /// output prefix (MEDIAFLOW_OUTPUT_PREFIX) exactly, e.g. s3://media/out/.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_s3_url)]
    pub output: S3Url,
    /// Configuration file (the plan the functions run with) [default:
    /// ./mediaflow.toml if present, else the built-in plan].
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Send an S3 event per object needing work to this SQS queue (the
    /// one on-upload consumes), ten per SendMessageBatch.
    #[arg(long, value_name = "SQS_URL")]
    pub queue: Option<String>,
    /// Run the pipeline in this process instead (with videos when ffmpeg
    /// is there), for `mediaflow dev` and small buckets.
    #[arg(long)]
    pub local: bool,
    /// With --local: objects processed at once [default: the cores].
    #[arg(long, value_name = "N", requires = "local", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Count what there is to do (and its bytes); send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read the sources from this S3 Inventory report's manifest.json
    /// (CSV) instead of listing the source bucket.
    #[arg(long, value_name = "s3://BUCKET/KEY/manifest.json", value_parser = parse_s3_url)]
    pub inventory: Option<S3Url>,
    /// Which objects are work.
    #[arg(long, value_enum, default_value_t = Only::All)]
    pub only: Only,
    /// At most N messages (or, with --local, objects started) per second.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub max_rate: Option<f64>,
    /// Checkpoint file: created if missing, continued from if present.
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    pub resume: Option<PathBuf>,
    /// The functions' MEDIAFLOW_ANIMATED_GIF (the stack's
    /// AnimatedGifToVideo), which overrides `[video_options] animated_gif`
    /// in their plan: give the same value, or their GIFs and videos look
    /// stale.
    #[arg(long, value_name = "true|false", env = "MEDIAFLOW_ANIMATED_GIF")]
    pub animated_gif: Option<bool>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a positive rate (messages per second)"
        )),
    }
}

/// Counts of one run (carried across resumed runs by the checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub listed: u64,
    pub current: u64,
    pub missing: u64,
    pub stale: u64,
    pub rejected: u64,
    pub to_do: u64,
    /// Sent to the queue, or processed with --local.
    pub enqueued: u64,
    pub failed: u64,
    pub listed_bytes: u64,
    pub current_bytes: u64,
    pub missing_bytes: u64,
    pub stale_bytes: u64,
    pub rejected_bytes: u64,
    pub to_do_bytes: u64,
    pub enqueued_bytes: u64,
    pub failed_bytes: u64,
    pub list_requests: u64,
    pub head_requests: u64,
    pub get_requests: u64,
    pub send_requests: u64,
}

impl Counts {
    fn state(&mut self, state: State, size: u64) {
        let (n, b) = match state {
            State::Current => (&mut self.current, &mut self.current_bytes),
            State::Missing => (&mut self.missing, &mut self.missing_bytes),
            State::Stale => (&mut self.stale, &mut self.stale_bytes),
            State::Rejected => (&mut self.rejected, &mut self.rejected_bytes),
        };
        *n += 1;
        *b += size;
    }
}

const CHECKPOINT_VERSION: u32 = 1;

/// What `--resume` keeps: the run it belongs to, the last key whose fate
/// is final, and the counts up to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    version: u32,
    /// The invocation this checkpoint belongs to (source, output,
    /// inventory, selection, plan, where work goes).
    run: RunIdentity,
    after: Option<String>,
    complete: bool,
    counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RunIdentity {
    source: String,
    output: String,
    inventory: Option<String>,
    only: Only,
    fingerprints: Vec<String>,
    to: String,
}

impl Checkpoint {
    /// The checkpoint at `path` if it exists (it must be of this run), else a new one.
    fn open(path: &Path, run: &RunIdentity) -> anyhow::Result<Checkpoint> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let c: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                    UsageError(format!(
                        "{} is not a mediaflow backfill checkpoint: {e}",
                        path.display()
                    ))
                })?;
                if c.version != CHECKPOINT_VERSION || &c.run != run {
                    return Err(UsageError(format!(
                        "{} is the checkpoint of another backfill ({}); remove it or use another file",
                        path.display(),
                        serde_json::to_string(&c.run).unwrap_or_default()
                    ))
                    .into());
                }
                Ok(c)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint {
                version: CHECKPOINT_VERSION,
                run: run.clone(),
                after: None,
                complete: false,
                counts: Counts::default(),
            }),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the checkpoint whole (a new file renamed over the old).
    fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing the checkpoint in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut file, self)?;
        file.as_file().sync_data()?;
        file.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// What the run did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    pub dry_run: bool,
    /// False when the run was interrupted or stopped early.
    pub complete: bool,
    /// Objects examined by this invocation (a resumed run examines the rest).
    pub examined: u64,
    pub seconds: f64,
    pub examined_per_second: f64,
    /// Listing and HEAD requests per 1,000 objects examined.
    pub requests_per_1000: f64,
    /// Whether the listings alone decided current from stale (a key
    /// template with {hash}); otherwise each manifest took a HEAD.
    pub decided_from_listings: bool,
    #[serde(skip)]
    pub interrupted: bool,
    /// Objects of this invocation that failed (`failed` counts resumed
    /// runs' too): the exit status.
    #[serde(skip)]
    pub failed_now: u64,
    #[serde(skip)]
    pub resumable: bool,
    #[serde(skip)]
    pub only: Only,
    #[serde(skip)]
    pub to: String,
}

impl Summary {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("JSON");
        s.push('\n');
        s
    }

    pub fn to_human(&self) -> String {
        let c = &self.counts;
        let size = |b: u64| bytesize::ByteSize::b(b).display().si().to_string();
        let mut out = String::new();
        let mut row = |name: &str, n: u64, b: u64| {
            let _ = writeln!(out, "  {name:<16} {n:>10}  {:>10}", size(b));
        };
        row("listed", c.listed, c.listed_bytes);
        row("current", c.current, c.current_bytes);
        row("missing", c.missing, c.missing_bytes);
        row("stale", c.stale, c.stale_bytes);
        row("rejected", c.rejected, c.rejected_bytes);
        let to_do = format!("to do ({})", self.only.as_str());
        row(&to_do, c.to_do, c.to_do_bytes);
        row(
            if self.dry_run { "enqueued" } else { &self.to },
            c.enqueued,
            c.enqueued_bytes,
        );
        row("failed", c.failed, c.failed_bytes);
        let _ = writeln!(
            out,
            "{}{} examined in {:.1} s ({:.0}/s); {} LIST, {} HEAD, {} GET requests ({:.1} per 1,000 objects){}",
            if self.dry_run { "dry run, nothing sent: " } else { "" },
            self.examined,
            self.seconds,
            self.examined_per_second,
            c.list_requests,
            c.head_requests,
            c.get_requests,
            self.requests_per_1000,
            if c.send_requests > 0 {
                format!(", {} SendMessageBatch", c.send_requests)
            } else {
                String::new()
            },
        );
        if self.interrupted {
            out.push_str(if self.resumable {
                "interrupted: run the same command again to continue after the checkpoint\n"
            } else {
                "interrupted: without --resume a new run starts over (objects sent and not yet processed count as work again)\n"
            });
        }
        out
    }
}

/// Where work goes.
enum Sink {
    DryRun,
    Queue(Arc<dyn MessageQueue>),
    /// The pipeline, and the work directory it uses (removed on drop).
    Local {
        pipeline: Pipeline,
        _work: tempfile::TempDir,
    },
}

/// How the run reports as it goes.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub progress: bool,
}

/// Runs the backfill until done or `stop` is set. Errors that end the run
/// (a listing fails, the queue does not exist) come back as `Err`, with
/// the checkpoint written up to the last finished batch.
pub async fn run(
    args: &BackfillArgs,
    config: Config,
    options: RunOptions,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Summary> {
    if args.source.bucket == args.output.bucket && args.output.prefix.is_empty() {
        return Err(UsageError(
            "the source and output buckets are the same: the output needs a prefix (e.g. s3://BUCKET/media/)".into(),
        )
        .into());
    }
    let mut config = config;
    if let Some(on) = args.animated_gif {
        config.video = config.video.with_animated_gif(on);
    }
    let image_fp = config.image.fingerprint();
    let video_fp = config.video.fingerprint(&image_fp);
    let fingerprints = vec![image_fp, video_fp];
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::from_env(path_style_from_env()).await);
    let sink = match (&args.queue, args.local, args.dry_run) {
        (_, _, true) => Sink::DryRun,
        (Some(url), _, _) => Sink::Queue(Arc::new(SqsQueue::from_env(url.as_str()).await)),
        _ => {
            let work = tempfile::Builder::new()
                .prefix("mediaflow-backfill-")
                .tempdir()
                .context("creating a work directory")?;
            let (pipeline, video) = crate::local_pipeline(
                Arc::clone(&store),
                config.clone(),
                PipelineConfig::new(&args.output.bucket, &args.output.prefix),
                work.path(),
                None,
                args.threads.map(|n| n as usize),
            )?;
            tracing::info!(video = %video, "processing in this process");
            Sink::Local {
                pipeline,
                _work: work,
            }
        }
    };
    let to = match &sink {
        Sink::DryRun => "dry-run".to_string(),
        Sink::Queue(q) => format!("queue:{}", q.name()),
        Sink::Local { .. } => "local".to_string(),
    };
    let run = RunIdentity {
        source: args.source.to_string(),
        output: args.output.to_string(),
        inventory: args.inventory.as_ref().map(ToString::to_string),
        only: args.only,
        fingerprints: fingerprints.clone(),
        to: to.clone(),
    };
    let mut checkpoint = match &args.resume {
        Some(path) => Checkpoint::open(path, &run)?,
        None => Checkpoint {
            version: CHECKPOINT_VERSION,
            run,
            after: None,
            complete: false,
            counts: Counts::default(),
        },
    };
    let started = Instant::now();
    let requests = Arc::new(Requests::default());
    let mut summary = Summary {
        counts: checkpoint.counts.clone(),
        dry_run: args.dry_run,
        complete: checkpoint.complete,
        examined: 0,
        seconds: 0.0,
        examined_per_second: 0.0,
        requests_per_1000: 0.0,
        decided_from_listings: true,
        interrupted: false,
        failed_now: 0,
        resumable: args.resume.is_some(),
        only: args.only,
        to: if matches!(sink, Sink::Local { .. }) {
            "processed".into()
        } else {
            "enqueued".into()
        },
    };
    if checkpoint.complete {
        eprintln!(
            "{}: this backfill is complete; remove the file to start another",
            args.resume.as_deref().unwrap_or(Path::new("-")).display()
        );
        return Ok(summary);
    }
    let after = checkpoint.after.clone();
    let base = checkpoint.counts.clone();
    let selection = Selection {
        source_bucket: args.source.bucket.clone(),
        source_prefix: args.source.prefix.clone(),
        output_bucket: args.output.bucket.clone(),
        output_prefix: args.output.prefix.clone(),
        fingerprints,
    };
    let mut selector = Selector::new(
        Arc::clone(&store),
        config.image.clone(),
        selection,
        after.as_deref(),
        Arc::clone(&requests),
    );
    summary.decided_from_listings = selector.decides_from_listings();
    let (mut listing, total): (Box<dyn SourceListing>, Option<u64>) = match &args.inventory {
        Some(report) => {
            let rows = inventory::read(
                store.as_ref(),
                &report.bucket,
                &report.prefix,
                &args.source.bucket,
                &args.source.prefix,
                &requests,
            )
            .await?;
            let listing = InventoryListing::new(rows, after.as_deref());
            let total = listing.len() as u64;
            (Box::new(listing), Some(total))
        }
        None => (
            Box::new(BucketListing::new(
                Arc::clone(&store),
                &args.source.bucket,
                &args.source.prefix,
                after.as_deref(),
                Arc::clone(&requests),
            )),
            None,
        ),
    };
    let progress = options.progress.then(|| progress_bar(total));
    let mut work = Work {
        source_bucket: args.source.bucket.clone(),
        sink,
        only: args.only,
        pending: Vec::new(),
        to_do: 0,
        pacer: args.max_rate.map(Pacer::new),
        progress: progress.clone(),
        examined: 0,
        failed: 0,
    };
    let batch = match &work.sink {
        Sink::DryRun => usize::MAX,
        Sink::Queue(_) => MAX_BATCH_ENTRIES,
        Sink::Local { pipeline: p, .. } => p.config().concurrency.max(1) * 2,
    };
    let mut outcome: anyhow::Result<()> = Ok(());
    'pages: loop {
        if stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            break;
        }
        let page = match listing.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) => {
                outcome = Err(anyhow::anyhow!("listing {}: {e}", args.source));
                break;
            }
        };
        let examined = match selector.examine(page).await {
            Ok(e) => e,
            Err(e) => {
                outcome = Err(anyhow::anyhow!(
                    "listing the outputs in {}: {e}",
                    args.output
                ));
                break;
            }
        };
        for e in examined {
            work.push(e);
            if work.to_do >= batch {
                if let Err(e) = work.flush(&mut checkpoint).await {
                    outcome = Err(e);
                    break 'pages;
                }
                save(&mut checkpoint, &base, args.resume.as_deref(), &requests)?;
                if stop.load(Ordering::Relaxed) {
                    summary.interrupted = true;
                    break 'pages;
                }
            }
        }
        if matches!(work.sink, Sink::DryRun) {
            work.flush(&mut checkpoint).await?;
        }
    }
    if outcome.is_ok() && !summary.interrupted {
        outcome = work.flush(&mut checkpoint).await;
        checkpoint.complete = outcome.is_ok();
    }
    save(&mut checkpoint, &base, args.resume.as_deref(), &requests)?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    outcome?;
    let seconds = started.elapsed().as_secs_f64();
    let c = &checkpoint.counts;
    summary.examined = work.examined;
    summary.failed_now = work.failed;
    summary.seconds = seconds;
    summary.examined_per_second = work.examined as f64 / seconds.max(1e-9);
    summary.requests_per_1000 =
        (requests.list() + requests.head()) as f64 * 1000.0 / (work.examined.max(1)) as f64;
    summary.complete = checkpoint.complete;
    summary.counts = c.clone();
    Ok(summary)
}

/// Sets the request counts (earlier runs' in `base`, and this run's) and
/// writes the checkpoint when there is a file.
fn save(
    checkpoint: &mut Checkpoint,
    base: &Counts,
    path: Option<&Path>,
    requests: &Requests,
) -> anyhow::Result<()> {
    let c = &mut checkpoint.counts;
    c.list_requests = base.list_requests + requests.list();
    c.head_requests = base.head_requests + requests.head();
    c.get_requests = base.get_requests + requests.get();
    match path {
        Some(p) => checkpoint.save(p),
        None => Ok(()),
    }
}

/// Objects examined and not yet committed, and where their work goes.
struct Work {
    source_bucket: String,
    sink: Sink,
    only: Only,
    /// In key order: every examined object since the last commit.
    pending: Vec<Examined>,
    /// How many of `pending` are work.
    to_do: usize,
    pacer: Option<Pacer>,
    progress: Option<indicatif::ProgressBar>,
    examined: u64,
    /// Objects that failed in this invocation.
    failed: u64,
}

impl Work {
    fn push(&mut self, e: Examined) {
        if matches!(&e.state, Ok(s) if self.only.wants(*s)) {
            self.to_do += 1;
        }
        self.pending.push(e);
    }

    /// Does the pending work, then commits every pending object to the
    /// counts and moves the checkpoint past the last. `Err` when the run
    /// cannot go on (nothing of this batch is committed then).
    async fn flush(&mut self, checkpoint: &mut Checkpoint) -> anyhow::Result<()> {
        let Some(last) = self.pending.last().map(|e| e.entry.key.clone()) else {
            return Ok(());
        };
        let work: Vec<usize> = (0..self.pending.len())
            .filter(|&i| matches!(&self.pending[i].state, Ok(s) if self.only.wants(*s)))
            .collect();
        let objects: Vec<SourceObject> = work
            .iter()
            .map(|&i| {
                let e = &self.pending[i].entry;
                SourceObject {
                    bucket: self.source_bucket.clone(),
                    key: e.key.clone(),
                    size: Some(e.size),
                    etag: e.etag.clone(),
                    version_id: None,
                    event_name: "ObjectCreated:Put".into(),
                    sequencer: None,
                }
            })
            .collect();
        if let (Some(pacer), false) = (&mut self.pacer, objects.is_empty()) {
            pacer.wait(objects.len()).await;
        }
        let results: Vec<Result<(), String>> = match &self.sink {
            Sink::DryRun => objects.iter().map(|_| Ok(())).collect(),
            Sink::Queue(queue) if !objects.is_empty() => {
                let bodies: Vec<String> = objects
                    .iter()
                    .map(|o| serde_json::to_string(&S3Notification::backfill(o)).expect("JSON"))
                    .collect();
                send(
                    queue.as_ref(),
                    &bodies,
                    &mut checkpoint.counts.send_requests,
                )
                .await?
            }
            Sink::Queue(_) => Vec::new(),
            Sink::Local { pipeline, .. } => pipeline
                .process_all(&objects, None)
                .await
                .into_iter()
                .map(|r| match r.outcome {
                    Outcome::Failed(e) => Err(format!("{}: {}", e.category.as_str(), e.reason)),
                    _ => Ok(()),
                })
                .collect(),
        };
        let mut results = work
            .into_iter()
            .zip(results)
            .collect::<std::collections::HashMap<_, _>>();
        let c = &mut checkpoint.counts;
        let pending = std::mem::take(&mut self.pending);
        for (i, e) in pending.into_iter().enumerate() {
            let size = e.entry.size;
            c.listed += 1;
            c.listed_bytes += size;
            self.examined += 1;
            let outcome = match e.state {
                Err(err) => Err(format!("could not be examined: {err}")),
                Ok(state) => {
                    c.state(state, size);
                    match results.remove(&i) {
                        None => Ok(()),
                        Some(result) => {
                            c.to_do += 1;
                            c.to_do_bytes += size;
                            if result.is_ok() && !matches!(self.sink, Sink::DryRun) {
                                c.enqueued += 1;
                                c.enqueued_bytes += size;
                            }
                            result
                        }
                    }
                }
            };
            if let Err(reason) = outcome {
                c.failed += 1;
                c.failed_bytes += size;
                self.failed += 1;
                error_line(
                    self.progress.as_ref(),
                    &format!(
                        "error: {}: {reason}",
                        object_url(&self.source_bucket, &e.entry.key)
                    ),
                );
            }
        }
        self.to_do = 0;
        checkpoint.after = Some(last);
        if let Some(bar) = &self.progress {
            bar.set_position(self.examined);
            bar.set_message(format!(
                "to do {} · {} {} · failed {}",
                c.to_do,
                match self.sink {
                    Sink::Local { .. } => "processed",
                    _ => "sent",
                },
                c.enqueued,
                c.failed
            ));
        }
        Ok(())
    }
}

/// Attempts at sending a batch whose messages fail transiently, with a
/// backoff of 1, 2, 4, 8 s between them (on top of the SDK's own retries).
const SEND_ATTEMPTS: u32 = 5;

/// Sends `bodies`, retrying the messages that failed transiently; one
/// result per body. `Err` (nothing of the batch committed, the run stops
/// with its checkpoint before it) when the queue refuses the request as a
/// whole for good (missing, denied) or is still failing after the last
/// attempt: an outage must not turn the rest of the bucket into failures.
async fn send(
    queue: &dyn MessageQueue,
    bodies: &[String],
    requests: &mut u64,
) -> anyhow::Result<Vec<Result<(), String>>> {
    let mut results: Vec<Option<Result<(), String>>> = vec![None; bodies.len()];
    for attempt in 1..=SEND_ATTEMPTS {
        let pending: Vec<usize> = (0..bodies.len())
            .filter(|&i| results[i].is_none())
            .collect();
        if pending.is_empty() {
            break;
        }
        if attempt > 1 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 2))).await;
        }
        let batch: Vec<String> = pending.iter().map(|&i| bodies[i].clone()).collect();
        *requests += batch.len().div_ceil(MAX_BATCH_ENTRIES) as u64;
        let last = attempt == SEND_ATTEMPTS;
        match queue.send_batch(&batch).await {
            Ok(outcomes) => {
                for (&i, outcome) in pending.iter().zip(outcomes) {
                    match outcome {
                        Ok(_) => results[i] = Some(Ok(())),
                        Err(e) if e.is_permanent() => {
                            results[i] = Some(Err(format!("not sent: {e}")))
                        }
                        Err(e) if last => {
                            return Err(anyhow::anyhow!(
                                "sending to {}: still failing after {SEND_ATTEMPTS} attempts: {e}",
                                queue.name()
                            ))
                        }
                        Err(_) => {}
                    }
                }
            }
            Err(e) if e.is_permanent() || last => {
                return Err(anyhow::anyhow!("sending to {}: {e}", queue.name()))
            }
            Err(e) => tracing::warn!("sending to {}: {e}; retrying", queue.name()),
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every message has a result"))
        .collect())
}

/// One line on stderr, above the progress bar when there is one.
fn error_line(bar: Option<&indicatif::ProgressBar>, line: &str) {
    match bar {
        Some(bar) => bar.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// `--max-rate`: the n-th message is not sent before n / rate seconds.
struct Pacer {
    rate: f64,
    start: tokio::time::Instant,
    sent: u64,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            rate,
            start: tokio::time::Instant::now(),
            sent: 0,
        }
    }

    async fn wait(&mut self, n: usize) {
        let at = self.start + Duration::from_secs_f64(self.sent as f64 / self.rate);
        tokio::time::sleep_until(at).await;
        self.sent += n as u64;
    }
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let (bar, template) = match total {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            "{bar:30} {pos}/{len} examined ({per_sec}, ETA {eta}) {msg}",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{spinner} {pos} examined ({per_sec}, {elapsed}) {msg}",
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Path-style addressing when an endpoint is set (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_S3`: a local server) or `MEDIAFLOW_S3_PATH_STYLE`
/// says so, as the functions read it.
fn path_style_from_env() -> bool {
    let set = |n: &str| std::env::var(n).is_ok_and(|v| !v.trim().is_empty());
    set("AWS_ENDPOINT_URL")
        || set("AWS_ENDPOINT_URL_S3")
        || std::env::var("MEDIAFLOW_S3_PATH_STYLE")
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}
