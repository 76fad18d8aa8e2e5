//! The measured rows and how they are printed: the Markdown table per
//! workload and the machine description in the header.

use crate::cost::s3_cost_per_million;
use crate::job::Stages;
use serde::Serialize;

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub peer: String,
    /// One of mediaflow's own rows (there is one per `--avif-speed`).
    pub mediaflow: bool,
    pub version: String,
    pub threads: usize,
    /// The encoder quality setting of the outputs (the lowest, if they differ).
    pub quality: Option<u8>,
    pub images_per_s: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub peak_rss_mb: f64,
    pub output_bytes: u64,
    pub ssim_min: Option<f64>,
    pub ssimulacra2_min: Option<f64>,
    /// Quality-matched workloads: output bytes at exactly the target score
    /// (interpolated between the settings either side of it).
    pub bytes_at_target: Option<f64>,
    pub cost_arm64_per_million: Option<f64>,
    pub cost_x86_per_million: Option<f64>,
    pub notes: String,
    /// mediaflow's rows: the median time of each engine stage.
    pub stages: Option<Stages>,
    pub skipped: Option<String>,
}

impl Row {
    /// A row with no measurements yet; `skipped` says why, if it stays empty.
    pub fn skipped(workload: &str, peer: &str, threads: usize, skipped: Option<String>) -> Row {
        Row {
            workload: workload.into(),
            peer: peer.into(),
            mediaflow: false,
            version: String::new(),
            threads,
            quality: None,
            images_per_s: 0.0,
            median_ms: 0.0,
            p95_ms: 0.0,
            peak_rss_mb: 0.0,
            output_bytes: 0,
            ssim_min: None,
            ssimulacra2_min: None,
            bytes_at_target: None,
            cost_arm64_per_million: None,
            cost_x86_per_million: None,
            notes: String::new(),
            stages: None,
            skipped,
        }
    }
}

fn fmt_cost(c: Option<f64>) -> String {
    c.map_or("-".into(), |c| format!("${c:.2}"))
}

/// The Markdown table for one workload.
pub fn markdown_table(work_name: &str, what: &str, rows: &[Row], outputs: usize) -> String {
    let mut s = format!("### `{work_name}`: {what}\n\n");
    s.push_str("| peer | threads | quality | images/s | median ms | p95 ms | peak RSS MB | output bytes | SSIM (min) | SSIMULACRA2 (min) | Lambda arm64 $/M | Lambda x86 $/M |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        if let Some(why) = &r.skipped {
            s.push_str(&format!(
                "| {} | {} | | skipped: {} | | | | | | | | |\n",
                r.peer,
                r.threads,
                why.replace('|', "/")
            ));
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} | {} |\n",
            r.peer,
            r.threads,
            r.quality.map_or("-".into(), |q| q.to_string()),
            r.images_per_s,
            r.median_ms,
            r.p95_ms,
            r.peak_rss_mb,
            r.output_bytes,
            r.ssim_min.map_or("-".into(), |v| format!("{v:.4}")),
            r.ssimulacra2_min.map_or("-".into(), |v| format!("{v:.2}")),
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

/// The line under a table with mediaflow's single-thread stage medians,
/// which explain its rows (empty if no such row ran).
pub fn stage_line(rows: &[Row]) -> String {
    let list: Vec<String> = rows
        .iter()
        .filter(|r| r.mediaflow && r.threads == 1)
        .filter_map(|r| Some((r, r.stages?)))
        .map(|(r, s)| {
            format!(
                "{}: decode {:.1} ms, resize {:.1} ms, encode {:.1} ms",
                r.peer, s.decode_ms, s.resize_ms, s.encode_ms
            )
        })
        .collect();
    if list.is_empty() {
        return String::new();
    }
    format!(
        "Engine stages, median per image on one thread (decode includes sniffing and colour conversion; resize, \
         orientation): {}.\n\n",
        list.join("; ")
    )
}

/// A quality-matched workload's line under its table: each
/// implementation's output bytes at exactly the target score (the rows
/// land at or just above it, one setting step apart).
pub fn bytes_at_target(rows: &[Row], target: f64) -> String {
    let mut seen = Vec::new();
    let list: Vec<String> = rows
        .iter()
        .filter_map(|r| Some((r.peer.as_str(), r.bytes_at_target?)))
        .filter(|(peer, _)| {
            let first = !seen.contains(peer);
            seen.push(peer);
            first
        })
        .map(|(peer, b)| format!("{peer} {b:.0}"))
        .collect();
    if list.is_empty() {
        return String::new();
    }
    format!(
        "Output bytes at exactly SSIMULACRA2 {target}, interpolated between each implementation's setting below the \
         target and the one it ran at: {}.\n\n",
        list.join(", ")
    )
}

/// A quality-matched workload's second line: for each peer, the fastest
/// single-thread mediaflow row whose bytes at the target are no more than
/// the peer's, and its speed relative to the peer (above 1 is faster).
/// Empty without both a peer and a mediaflow row at the target.
pub fn against_each_peer(rows: &[Row], target: f64) -> String {
    let at_target = |r: &&Row| r.threads == 1 && r.skipped.is_none() && r.bytes_at_target.is_some();
    let (ours, theirs): (Vec<&Row>, Vec<&Row>) =
        rows.iter().filter(at_target).partition(|r| r.mediaflow);
    if ours.is_empty() || theirs.is_empty() {
        return String::new();
    }
    let bytes = |r: &Row| r.bytes_at_target.unwrap_or(f64::INFINITY);
    let list: Vec<String> = theirs
        .iter()
        .map(|peer| {
            let fastest = ours
                .iter()
                .filter(|m| bytes(m) <= bytes(peer))
                .min_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
            let head = format!(
                "{} ({:.0} B, {:.1} ms)",
                peer.peer,
                bytes(peer),
                peer.median_ms
            );
            match fastest {
                Some(m) => format!(
                    "{head}: {} ({:.0} B, {:.1} ms), {:.2}x its speed",
                    m.peer,
                    bytes(m),
                    m.median_ms,
                    peer.median_ms / m.median_ms
                ),
                None => format!("{head}: no mediaflow row is as small"),
            }
        })
        .collect();
    format!(
        "Against each peer at SSIMULACRA2 {target}, one thread: the fastest mediaflow row with no more bytes at the \
         target, and its speed relative to the peer (above 1.00x is faster): {}.\n\n",
        list.join("; ")
    )
}

/// The CPU model, core count, architecture and the SIMD extension the
/// resizer uses.
pub fn machine_description() -> String {
    let cpu = cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let simd = mediaflow_engine::cpu_extension_name();
    format!("{cpu}, {cores} cores, {} ({simd})", std::env::consts::ARCH)
}

/// The first CPU's `model name` from /proc/cpuinfo.
#[cfg(target_os = "linux")]
fn cpu_model() -> Option<String> {
    use procfs::Current as _;
    let info = procfs::CpuInfo::current().ok()?;
    info.model_name(0).map(|m| m.trim().to_string())
}

#[cfg(not(target_os = "linux"))]
fn cpu_model() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(peer: &str, mediaflow: bool, threads: usize, median_ms: f64, at: Option<f64>) -> Row {
        let mut r = Row::skipped("avif", peer, threads, None);
        r.mediaflow = mediaflow;
        r.median_ms = median_ms;
        r.bytes_at_target = at;
        r
    }

    #[test]
    fn each_peer_meets_the_fastest_mediaflow_row_as_small_as_it() {
        let rows = [
            row("mediaflow", true, 1, 300.0, Some(39_400.0)),
            row("mediaflow avif_speed 6", true, 1, 1200.0, Some(36_500.0)),
            row("Pillow", false, 1, 600.0, Some(40_700.0)),
            row("vipsthumbnail", false, 1, 1000.0, Some(37_100.0)),
            row("tiny", false, 1, 50.0, Some(30_000.0)),
            // Two-thread rows and rows without a figure at the target
            // take no part.
            row("mediaflow", true, 2, 10.0, Some(10_000.0)),
            row("sharp", false, 1, 3000.0, None),
        ];
        let line = against_each_peer(&rows, 70.0);
        assert!(
            line.contains(
                "Pillow (40700 B, 600.0 ms): mediaflow (39400 B, 300.0 ms), 2.00x its speed"
            ),
            "{line}"
        );
        assert!(
            line.contains(
                "vipsthumbnail (37100 B, 1000.0 ms): mediaflow avif_speed 6 (36500 B, 1200.0 ms), 0.83x its speed"
            ),
            "{line}"
        );
        assert!(
            line.contains("tiny (30000 B, 50.0 ms): no mediaflow row is as small"),
            "{line}"
        );
        assert!(!line.contains("sharp"), "{line}");
        assert!(
            against_each_peer(&rows[..2], 70.0).is_empty(),
            "no peer, no line"
        );
    }
}
