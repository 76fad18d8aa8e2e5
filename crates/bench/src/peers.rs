//! The implementations a benchmark runs, and how to start each one's
//! runner: mediaflow and the `image` crate through this binary's hidden
//! `runner` subcommand, the peers through `benches/peers/*` (only with
//! `--compare`; a peer that is not installed becomes a skipped row).

use crate::BenchArgs;
use std::path::PathBuf;

/// How to start one implementation's runner.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    /// The runner's command line; the job file is appended.
    pub command: Vec<String>,
    /// Why it cannot run, if it is not installed.
    pub missing: Option<String>,
    /// mediaflow's own rows: the `avif_speed` its jobs ask for.
    pub avif_speed: Option<u8>,
    /// Runs only the workloads with an AVIF output (a second mediaflow
    /// speed, which would repeat the first row elsewhere).
    pub avif_only: bool,
}

impl Peer {
    /// A peer's runner: `command` plus the job file; installed unless
    /// `missing` says why not.
    fn other(name: &str, command: Vec<String>, missing: Option<String>) -> Peer {
        Peer {
            name: name.into(),
            command,
            missing,
            avif_speed: None,
            avif_only: false,
        }
    }

    /// True for mediaflow's own rows.
    pub fn is_mediaflow(&self) -> bool {
        self.avif_speed.is_some()
    }
}

/// mediaflow, once per `--avif-speed` (the engine's default speed is
/// plain "mediaflow", another "mediaflow avif_speed N"; every speed after
/// the first runs only the AVIF workloads), then (with `--compare`) every
/// peer, installed or not.
pub fn peers(args: &BenchArgs) -> anyhow::Result<Vec<Peer>> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let dir = &args.peers;
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let default_speed = mediaflow_engine::EncodeOptions::default().avif_speed;
    let mut speeds: Vec<u8> = Vec::new();
    for &s in &args.avif_speed {
        if !speeds.contains(&s) {
            speeds.push(s);
        }
    }
    let mut list: Vec<Peer> = speeds
        .iter()
        .enumerate()
        .map(|(i, &speed)| Peer {
            name: if speed == default_speed {
                "mediaflow".into()
            } else {
                format!("mediaflow avif_speed {speed}")
            },
            command: vec![
                exe.clone(),
                "runner".into(),
                "--impl".into(),
                "mediaflow".into(),
            ],
            missing: None,
            avif_speed: Some(speed),
            avif_only: i > 0,
        })
        .collect();
    if !args.compare {
        return Ok(list);
    }
    let need = |path: PathBuf, what: &str| {
        (!path.exists()).then(|| format!("not installed ({what}; run benches/peers/setup)"))
    };
    list.push(Peer::other(
        "sharp",
        vec!["node".into(), p("sharp.mjs")],
        need(
            dir.join("node/node_modules/sharp"),
            "node/node_modules/sharp",
        ),
    ));
    list.push(Peer::other(
        "libvips (pyvips)",
        vec![p("pyvips_runner.py")],
        need(dir.join(".venv/bin/python"), ".venv"),
    ));
    let vipsthumbnail = which("vipsthumbnail");
    list.push(Peer::other(
        "vipsthumbnail",
        vec![p("vipsthumbnail_runner.py")],
        (!vipsthumbnail).then(|| "not installed (apt-get install libvips-tools)".into()),
    ));
    list.push(Peer::other(
        "Pillow",
        vec![p("pillow_runner.py")],
        need(dir.join(".venv/bin/python"), ".venv"),
    ));
    list.push(Peer::other(
        "image crate",
        vec![exe, "runner".into(), "--impl".into(), "image".into()],
        None,
    ));
    list.push(Peer::other(
        "oximg",
        vec![p("oximg_runner.py")],
        need(dir.join(".cargo/bin/oximg"), ".cargo/bin/oximg"),
    ));
    Ok(list)
}

/// True when `program` is a file in a directory on the PATH.
fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}
