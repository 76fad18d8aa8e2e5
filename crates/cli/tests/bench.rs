//! `mediaflow bench` runs the `mediaflow-bench` binary found next to
//! `mediaflow`, with the arguments unchanged and its exit status, and says
//! how to build it when it is missing. (The benchmark itself is tested end
//! to end in `crates/bench/tests`.)

use std::path::PathBuf;
use std::process::Command;

/// A copy of `mediaflow` (a hard link where possible) alone in a fresh
/// directory, so that what sits next to it is up to the test.
fn mediaflow_alone() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let exe = dir
        .path()
        .join(format!("mediaflow{}", std::env::consts::EXE_SUFFIX));
    let original = env!("CARGO_BIN_EXE_mediaflow");
    if std::fs::hard_link(original, &exe).is_err() {
        std::fs::copy(original, &exe).unwrap();
    }
    (dir, exe)
}

#[cfg(unix)]
#[test]
fn bench_runs_mediaflow_bench_next_to_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, exe) = mediaflow_alone();

    let missing = Command::new(&exe)
        .args(["bench", "--workload", "png-alpha"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("mediaflow-bench") && stderr.contains("cargo build"),
        "{stderr}"
    );

    // A stand-in that shows what it was given and exits with its own status.
    let fake = dir.path().join("mediaflow-bench");
    std::fs::write(&fake, "#!/bin/sh\necho \"args: $*\"\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&exe)
        .args([
            "-v",
            "bench",
            "--workload",
            "png-alpha",
            "--json",
            "r.json",
            "--help",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "args: -v --workload png-alpha --json r.json --help\n"
    );
}
