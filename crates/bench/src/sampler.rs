//! Runs one runner as a child process under a time limit, capturing its
//! output and sampling the peak resident memory of its process tree.

use anyhow::{bail, Context as _};
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a runner printed, and its process tree's peak resident memory.
#[derive(Debug, Clone)]
pub struct Measured {
    pub stdout: String,
    pub stderr: String,
    /// The largest sampled sum of VmRSS over the runner and its
    /// descendants, in bytes (0 where /proc is not available).
    pub peak_rss: u64,
}

/// How often the process tree's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Runs `command` with `job_file` appended and `env` set, killing it after
/// `limit`; returns its stdout, stderr and the peak resident memory of its
/// process tree in bytes: the largest sum of VmRSS over the runner and its
/// children, sampled every 5 ms. (`wait4`'s `ru_maxrss` would do for one
/// process, but Linux seeds it with the parent's high-water mark at fork,
/// and it ignores grandchildren.)
pub fn spawn_measured(
    command: &[String],
    job_file: &Path,
    env: &[(&str, String)],
    limit: Duration,
) -> anyhow::Result<Measured> {
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
    let (status, peak_rss) = sample_until_exit(&mut child, limit);
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
    Ok(Measured {
        stdout,
        stderr,
        peak_rss,
    })
}

/// Samples `child`'s process tree every [`SAMPLE_EVERY`] until it exits,
/// killing it (SIGKILL) once `limit` has passed; returns its exit status
/// and the peak sample.
fn sample_until_exit(child: &mut Child, limit: Duration) -> (std::io::Result<ExitStatus>, u64) {
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    loop {
        peak = peak.max(tree_rss_bytes(pid));
        match child.try_wait() {
            Ok(Some(status)) => return (Ok(status), peak),
            Ok(None) => {}
            Err(e) => return (Err(e), peak),
        }
        if started.elapsed() > limit {
            // Not yet reaped (try_wait said so), so the pid is still ours.
            let _ = child.kill();
            return (child.wait(), peak);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// The summed resident memory of `pid` and all its descendants, in bytes.
#[cfg(target_os = "linux")]
fn tree_rss_bytes(pid: u32) -> u64 {
    process_tree(pid).into_iter().map(rss_bytes).sum()
}

#[cfg(not(target_os = "linux"))]
fn tree_rss_bytes(_pid: u32) -> u64 {
    0
}

/// The pids of `pid` and all its descendants (from /proc/PID/task/*/children).
#[cfg(target_os = "linux")]
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let tasks = i32::try_from(all[i])
            .ok()
            .and_then(|p| procfs::process::Process::new(p).ok())
            .and_then(|p| p.tasks().ok());
        for task in tasks.into_iter().flatten().flatten() {
            if let Ok(children) = task.children() {
                all.extend(children);
            }
        }
        i += 1;
    }
    all
}

/// Resident memory of one process in bytes (VmRSS), 0 if it is gone.
#[cfg(target_os = "linux")]
fn rss_bytes(pid: u32) -> u64 {
    i32::try_from(pid)
        .ok()
        .and_then(|p| procfs::process::Process::new(p).ok())
        .and_then(|p| p.status().ok())
        .and_then(|s| s.vmrss)
        .map_or(0, |kb| kb * 1024)
}
