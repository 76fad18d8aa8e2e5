//! The implementations a benchmark runs, and how to start each one's
//! runner: mediaflow and the `image` crate through this binary's hidden
//! `runner` subcommand, the peers through `benches/peers/*` (only with
//! `--compare`; a peer that is not installed becomes a skipped row).

use crate::BenchArgs;
use std::path::PathBuf;

/// How to start one implementation's runner.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: &'static str,
    /// The runner's command line; the job file is appended.
    pub command: Vec<String>,
    /// Why it cannot run, if it is not installed.
    pub missing: Option<String>,
}

/// mediaflow, then (with `--compare`) every peer, installed or not.
pub fn peers(args: &BenchArgs) -> anyhow::Result<Vec<Peer>> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let dir = &args.peers;
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let mut list = vec![Peer {
        name: "mediaflow",
        command: vec![
            exe.clone(),
            "runner".into(),
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
        command: vec![exe, "runner".into(), "--impl".into(), "image".into()],
        missing: None,
    });
    list.push(Peer {
        name: "oximg",
        command: vec![p("oximg_runner.py")],
        missing: need(dir.join(".cargo/bin/oximg"), ".cargo/bin/oximg"),
    });
    Ok(list)
}

/// True when `program` is a file in a directory on the PATH.
fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}
