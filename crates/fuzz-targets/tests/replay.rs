//! The fuzz smoke: every committed corpus file and crash reproducer
//! (`fuzz/corpus/<target>/`, `fuzz/crashes/<target>/`) replayed through its
//! target. A reproducer stays committed after its fix, so this is the
//! regression test for every crash the fuzzer has found.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    mediaflow_testkit::workspace_root().join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for (name, f) in mediaflow_fuzz::TARGETS {
        for path in files(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&path).expect("readable input");
            let run = std::panic::catch_unwind(|| f(&data));
            assert!(
                run.is_ok(),
                "{name}: {} panicked (replay it: cargo test -p mediaflow-fuzz --test replay)",
                path.display()
            );
            n += 1;
        }
    }
    n
}

#[test]
fn corpus_replays_without_panics() {
    let n = replay("corpus");
    // Every target has a committed corpus.
    for (name, _) in mediaflow_fuzz::TARGETS {
        assert!(
            !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty"
        );
    }
    eprintln!("replayed {n} corpus inputs");
}

#[test]
fn crash_reproducers_replay_without_panics() {
    let n = replay("crashes");
    eprintln!("replayed {n} crash reproducers");
}

#[test]
fn every_target_is_named_once() {
    for (i, (name, _)) in mediaflow_fuzz::TARGETS.iter().enumerate() {
        assert!(mediaflow_fuzz::target(name).is_some());
        assert!(!mediaflow_fuzz::TARGETS[..i].iter().any(|(n, _)| n == name));
    }
}
