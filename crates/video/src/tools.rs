//! ffmpeg and ffprobe as subprocesses, each bounded by a deadline.

use crate::error::{internal, timeout, MediaError, Result};
use crate::sniff::Container;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where the default Lambda layer puts ffmpeg (`bin/ffmpeg` in the layer
/// zip; layers are extracted under `/opt`).
pub const DEFAULT_FFMPEG: &str = "/opt/bin/ffmpeg";

/// The two programs the video path runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    /// `ffprobe` defaults to the file named `ffprobe` beside `ffmpeg` (or
    /// `ffprobe` on the PATH when `ffmpeg` is a bare name).
    pub fn new(ffmpeg: impl Into<PathBuf>, ffprobe: Option<PathBuf>) -> Tools {
        let ffmpeg = ffmpeg.into();
        let ffprobe = ffprobe.unwrap_or_else(|| ffmpeg.with_file_name("ffprobe"));
        Tools { ffmpeg, ffprobe }
    }

    /// Runs `ffmpeg -version` and `ffprobe -version` and returns ffmpeg's
    /// first line; the error says which program is missing and where it
    /// was looked for.
    pub fn check(&self) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut version = String::new();
        for (name, path) in [("ffmpeg", &self.ffmpeg), ("ffprobe", &self.ffprobe)] {
            let unusable = |why: String| {
                internal(format!(
                    "{name} is not usable at {}: {why} (install ffmpeg, or set MEDIAFLOW_FFMPEG / MEDIAFLOW_FFPROBE; in Lambda, attach the ffmpeg layer)",
                    path.display()
                ))
            };
            let mut cmd = Command::new(path);
            cmd.arg("-version");
            let out = run(&mut cmd, deadline).map_err(|e| unusable(e.message().to_string()))?;
            if !out.status.success() {
                // 126/127: a shell or an emulator could not execute it.
                return Err(unusable(out.stderr_tail()));
            }
            if name == "ffmpeg" {
                version = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
            }
        }
        Ok(version)
    }
}

/// An input file as ffmpeg and ffprobe are allowed to read it.
///
/// An upload decides nothing about how it is read: the demuxer is forced
/// to the sniffed container (so no DASH/HLS/concat playlist inside it is
/// ever followed), only the `file` protocol is allowed and the path is
/// given as `file:` (so no name is taken for a URL), QuickTime external
/// data references stay off, and the decoder refuses frames over the
/// pixel limit (a stream that switches to a huge size mid-way).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input<'a> {
    pub path: &'a Path,
    pub container: Container,
    pub max_pixels: u64,
}

impl Input<'_> {
    /// The options before `-i`, then `-i file:PATH`.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-f".into(), self.container.demuxer().into()];
        if self.container.demuxer() == "mov" {
            a.extend(["-enable_drefs".into(), "0".into()]);
        }
        a.extend([
            "-protocol_whitelist".into(),
            "file".into(),
            "-max_pixels".into(),
            self.max_pixels.min(i32::MAX as u64).to_string().into(),
            "-i".into(),
        ]);
        let mut file = OsString::from("file:");
        file.push(self.path.as_os_str());
        a.push(file);
        a
    }
}

/// What a finished subprocess left.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The last non-empty lines of stderr, joined: what ffmpeg said last is
    /// what went wrong.
    pub fn stderr_tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = &lines[lines.len().saturating_sub(3)..];
        if tail.is_empty() {
            format!("exited with {}", self.status)
        } else {
            tail.join(" / ")
        }
    }
}

/// `deadline`, or (without one) a day from now: long enough for any clip
/// the limits allow, and never an unbounded wait.
pub(crate) fn or_a_day(deadline: Option<Instant>) -> Instant {
    deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(24 * 3600))
}

/// Output kept from each stream, so a chatty program cannot fill memory.
const MAX_CAPTURE: u64 = 4 * 1024 * 1024;

/// Runs `cmd` to completion or until `deadline`, when it is killed and a
/// retryable timeout returned. stdout and stderr are captured (bounded)
/// on their own threads so the child never blocks on a full pipe.
pub(crate) fn run(cmd: &mut Command, deadline: Instant) -> Result<Finished> {
    let program = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| internal(format!("cannot start {program}: {e}")))?;
    let capture = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let mut r = r.take(MAX_CAPTURE);
                let _ = r.read_to_end(&mut buf);
                // Drain the rest so the child is never blocked on the pipe.
                let _ = std::io::copy(&mut r.into_inner(), &mut std::io::sink());
            }
            buf
        })
    };
    let out = capture(child.stdout.take().map(|s| Box::new(s) as _));
    let err = capture(child.stderr.take().map(|s| Box::new(s) as _));
    let mut pause = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(internal(format!("waiting for {program}: {e}"))),
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = (out.join(), err.join());
            return Err(timeout(format!(
                "{program} was stopped at the deadline (will be retried)"
            )));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A failed run as an error of `kind_on_exit` when the program exited with
/// an error status, or a retryable internal error when it was killed by a
/// signal (out of memory, most often).
pub(crate) fn failure(
    program: &str,
    done: &Finished,
    kind_on_exit: fn(String) -> MediaError,
) -> MediaError {
    if done.status.code().is_some() {
        kind_on_exit(format!("{program}: {}", done.stderr_tail()))
    } else {
        internal(format!(
            "{program} was killed ({}); out of memory? (will be retried)",
            done.status
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_captures() {
        let done = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Instant::now() + Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr_tail(), "err");
    }

    #[test]
    fn kills_at_the_deadline() {
        let started = Instant::now();
        let e = run(
            Command::new("sleep").arg("30"),
            Instant::now() + Duration::from_millis(200),
        )
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Timeout);
        assert!(!e.is_permanent());
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_missing_program_is_named() {
        let tools = Tools::new("/nonexistent/bin/ffmpeg", None);
        assert_eq!(tools.ffprobe, PathBuf::from("/nonexistent/bin/ffprobe"));
        let e = tools.check().unwrap_err();
        assert!(e.message().contains("/nonexistent/bin/ffmpeg"), "{e}");
        assert!(!e.is_permanent());
    }
}
