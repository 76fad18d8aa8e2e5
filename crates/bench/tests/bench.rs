//! `mediaflow-bench` (what `mediaflow bench` runs) end to end on the
//! smallest workload: the runner protocol, the statistics, the quality
//! score and the report files.

use mediaflow_testkit::workspace_root;
use serde_json::Value;
use std::process::Command;

#[test]
fn bench_png_alpha_writes_json_and_markdown() {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let (json, md) = (dir.path().join("r.json"), dir.path().join("r.md"));
    let out = Command::new(env!("CARGO_BIN_EXE_mediaflow-bench"))
        .current_dir(&root)
        .args([
            "--workload",
            "png-alpha",
            "--iterations",
            "3",
            "--warmup",
            "1",
            "--threads",
            "2",
            // A second speed adds rows only where there is an AVIF output.
            "--avif-speed",
            "10,9",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("### `png-alpha`"), "{stdout}");
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        2,
        "one and two threads, the first speed only: {v}"
    );
    for r in rows {
        assert_eq!(r["peer"], "mediaflow avif_speed 10");
        assert!(r["skipped"].is_null(), "{r}");
        assert!(r["images_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["median_ms"].as_f64().unwrap() <= r["p95_ms"].as_f64().unwrap());
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 1.0);
        let ssim = r["ssim_min"].as_f64().unwrap();
        assert!(ssim > 0.95 && ssim <= 1.0, "{ssim}");
        let s2 = r["ssimulacra2_min"].as_f64().unwrap();
        assert!(s2 > 50.0 && s2 <= 100.0, "{s2}");
        assert_eq!(r["quality"], 80, "the workload's own setting");
        assert!(r["output_bytes"].as_u64().unwrap() > 100);
        let stages = &r["stages"];
        let (decode, encode) = (
            stages["decode_ms"].as_f64().unwrap(),
            stages["encode_ms"].as_f64().unwrap(),
        );
        assert!(decode > 0.0 && encode > 0.0, "{stages}");
        assert!(
            decode + encode < r["p95_ms"].as_f64().unwrap() * 2.0,
            "stage medians within an image's time: {r}"
        );
    }
    assert!(
        rows[0]["cost_arm64_per_million"].as_f64().unwrap() > 0.2,
        "requests alone cost $0.20/M"
    );
    assert!(
        rows[1]["cost_arm64_per_million"].is_null(),
        "cost only from single-thread rows"
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| mediaflow avif_speed 10 | 1 |"), "{md}");
    assert!(
        md.contains("Engine stages, median per image on one thread") && md.contains("encode "),
        "{md}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_mediaflow-bench"))
        .current_dir(&root)
        .args(["--workload", "nope"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown workload \"nope\""));
}

/// The quality-matched AVIF workload: mediaflow's setting is bisected to the
/// lowest quality reaching the target score, and the timed row runs at it;
/// each `--avif-speed` gets its own row, calibrated on its own.
#[test]
fn avif_quality_is_matched_to_the_target_score() {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mediaflow-bench"))
        .current_dir(&root)
        .args(["--workload", "avif", "--iterations", "1", "--warmup", "0"])
        .args(["--threads", "1", "--avif-speed", "10,9,10"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("reaches SSIMULACRA2 70"), "{stderr}");
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["peer"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["mediaflow avif_speed 10", "mediaflow avif_speed 9"],
        "one row per distinct speed: {v}"
    );
    for r in rows {
        assert!(r["skipped"].is_null(), "{r}");
        assert_eq!(r["mediaflow"], true, "{r}");
        let q = r["quality"].as_u64().unwrap();
        assert!((2..100).contains(&q), "a setting inside the range: {q}");
        let score = r["ssimulacra2_min"].as_f64().unwrap();
        assert!(score >= 70.0, "{score}");
        assert!(
            score < 85.0,
            "the lowest such setting, not a high one: {score}"
        );
        assert!(r["bytes_at_target"].as_f64().unwrap() > 1000.0, "{r}");
    }
}
