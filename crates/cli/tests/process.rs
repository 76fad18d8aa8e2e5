//! End-to-end tests of `mediaflow process`: run the built binary on a temp
//! dir of small fixtures with a small two-variant config.

use mediaflow_testkit::{sample, workspace_root};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mediaflow");

/// Two small variants covering all four output formats.
const CONFIG: &str = r#"
[[variant]]
name = "small"
width = 48
formats = ["jpeg", "webp"]

[[variant]]
name = "sq"
width = 16
height = 16
fit = "cover"
formats = ["png", "avif"]
"#;

/// A fixture's bytes: the shared file when present, else `fallback()`.
fn fixture(rel: &str, fallback: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    fs::read(workspace_root().join(rel)).unwrap_or_else(|_| fallback())
}

/// A valid 96x64 JPEG (sample-media/fixtures/upright.jpg).
fn jpeg() -> Vec<u8> {
    fixture("sample-media/fixtures/upright.jpg", || {
        panic!("sample-media/fixtures/upright.jpg is missing")
    })
}

/// A valid RGBA PNG (sample-media/fixtures/rgba.png), else a tiny one.
fn png() -> Vec<u8> {
    fixture("sample-media/fixtures/rgba.png", tiny_png)
}

/// A JPEG whose entropy-coded data ends early.
fn truncated_jpeg() -> Vec<u8> {
    fixture("crates/engine/tests/hostile/truncated.jpg", || {
        let mut b = jpeg();
        b.truncate(b.len() / 2);
        b
    })
}

/// Bytes that are no image at all.
fn random_bytes() -> Vec<u8> {
    fixture("crates/engine/tests/hostile/random.bin", || {
        let mut x: u32 = 0x1234_5678;
        (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    })
}

/// A 1x1 grey PNG, in case the fixture is missing.
fn tiny_png() -> Vec<u8> {
    vec![
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a,
        0x7e, 0x9b, 0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x48, 0xaf, 0xa4, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ]
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A temp dir holding `mf.toml` (the test config).
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mf.toml"), CONFIG).unwrap();
        Env { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    /// Runs the binary in the temp dir (relative paths are relative to it).
    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        Run(output)
    }
    /// `mediaflow process ARGS --config mf.toml`.
    fn process(&self, args: &[&str]) -> Run {
        let mut all = vec!["process", "--config", "mf.toml"];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

struct Run(Output);

impl Run {
    fn code(&self) -> i32 {
        self.0.status.code().expect("exit code")
    }
    fn stdout(&self) -> String {
        String::from_utf8(self.0.stdout.clone()).unwrap()
    }
    fn stderr(&self) -> String {
        String::from_utf8(self.0.stderr.clone()).unwrap()
    }
    fn stderr_lines(&self) -> Vec<String> {
        self.stderr().lines().map(str::to_string).collect()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout()))
    }
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

#[track_caller]
fn assert_magic(path: &Path, ext: &str) {
    let b = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ok = match ext {
        "jpg" => b.starts_with(&[0xFF, 0xD8, 0xFF]),
        "png" => b.starts_with(b"\x89PNG\r\n\x1a\n"),
        "webp" => b.len() > 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP",
        "avif" => b.len() > 12 && &b[4..8] == b"ftyp" && &b[8..12] == b"avif",
        _ => unreachable!(),
    };
    assert!(ok, "{} does not look like {ext}", path.display());
}

/// Every file under `dir`, relative, `/`-separated, sorted.
/// `name` without the content hash the default key template puts before
/// the extension: `small/a.jpg.0123456789abcdef.webp` is `small/a.jpg.webp`.
fn unhash(name: &str) -> String {
    if let Some((rest, ext)) = name.rsplit_once('.') {
        if let Some((before, hash)) = rest.rsplit_once('.') {
            if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return format!("{before}.{ext}");
            }
        }
    }
    name.to_string()
}

/// The file under `dir` whose name without its hash is `rel`.
fn find(dir: &Path, rel: &str) -> PathBuf {
    let (parent, _) = rel.rsplit_once('/').unwrap_or(("", rel));
    let parent = dir.join(parent);
    for e in fs::read_dir(&parent).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let unhashed = unhash(&name);
        if rel.ends_with(&format!("/{unhashed}")) || rel == unhashed {
            return p;
        }
    }
    panic!("no {rel} under {}", dir.display())
}

/// Every file under `dir`, relative, sorted, hashes taken out ([`unhash`]).
fn tree(dir: &Path) -> Vec<String> {
    fn go(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap();
                let parts: Vec<_> = rel.iter().map(|c| c.to_str().unwrap()).collect();
                out.push(unhash(&parts.join("/")));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        go(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// The outputs of the source `key` under the test config (hashes taken out).
fn outputs_for(key: &str) -> Vec<String> {
    let mut v = vec![
        format!("small/{key}.jpg"),
        format!("small/{key}.webp"),
        format!("sq/{key}.avif"),
        format!("sq/{key}.png"),
    ];
    v.sort();
    v
}

#[test]
fn writes_variants_and_manifests_at_the_right_paths() {
    let env = Env::new();
    env.write("in/photo.jpg", &jpeg());
    env.write("in/sub/dir/alpha.PNG", &png());
    env.write("in/sub/.hidden.jpg", &jpeg());
    env.write("in/.cache/x.jpg", &jpeg());
    env.write("in/notes.txt", b"not an image");
    env.write("single.dat", &jpeg()); // named explicitly: taken whatever its name
    let run = env.process(&["in", "single.dat", "--out", "out"]);
    run.assert_code(0);
    assert_eq!(run.stderr(), "");

    let mut expected = vec![
        "manifest/photo.jpg.json".to_string(),
        "manifest/single.dat.json".to_string(),
        "manifest/sub/dir/alpha.PNG.json".to_string(),
    ];
    expected.extend(outputs_for("photo.jpg"));
    expected.extend(outputs_for("single.dat"));
    expected.extend(outputs_for("sub/dir/alpha.PNG"));
    expected.sort();
    assert_eq!(tree(&env.path("out")), expected);
    for file in &expected {
        let ext = file.rsplit('.').next().unwrap();
        if ext != "json" {
            assert_magic(&find(&env.path("out"), file), ext);
        }
    }

    // The manifest lists every output with its key (relative to --out).
    let m: Value =
        serde_json::from_slice(&fs::read(env.path("out/manifest/sub/dir/alpha.PNG.json")).unwrap())
            .unwrap();
    assert_eq!(m["source"]["key"], "sub/dir/alpha.PNG");
    assert_eq!(m["source"]["format"], "png");
    // As in S3: the ETag is the bytes' MD5, and it names the outputs.
    assert_eq!(m["source"]["etag"].as_str().map(str::len), Some(32));
    let mut keys: Vec<String> = m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| unhash(v["key"].as_str().unwrap()))
        .collect();
    keys.sort();
    assert_eq!(keys, outputs_for("sub/dir/alpha.PNG"));
    for v in m["variants"].as_array().unwrap() {
        let path = env.path("out").join(v["key"].as_str().unwrap());
        assert_eq!(
            v["bytes"].as_u64().unwrap(),
            fs::metadata(path).unwrap().len()
        );
    }
    let sq = m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "sq")
        .unwrap();
    assert_eq!(
        (sq["width"].as_u64(), sq["height"].as_u64()),
        (Some(16), Some(16))
    );

    // Human summary: one line per source, then the total.
    let stdout = run.stdout();
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let photo = Path::new("in").join("photo.jpg");
    assert!(
        lines[0].starts_with(&format!("{}  96x64 jpeg -> 4 outputs, ", photo.display())),
        "{stdout}"
    );
    assert!(lines[0].ends_with(" ms"), "{stdout}");
    assert!(
        lines[3].starts_with("3 processed, 0 failed: 12 outputs, "),
        "{stdout}"
    );

    // No temporary files left behind.
    assert!(!tree(&env.path("out")).iter().any(|f| f.contains(".tmp")));
}

#[test]
fn a_failing_source_prints_one_line_and_the_others_are_written() {
    let env = Env::new();
    env.write("in/good.jpg", &jpeg());
    env.write("in/truncated.jpg", &truncated_jpeg());
    env.write("random.bin", &random_bytes());
    let run = env.process(&["in", "random.bin", "--out", "out"]);
    run.assert_code(1);
    let mut lines = run.stderr_lines();
    lines.sort();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "error: {}: corrupt: ",
            Path::new("in").join("truncated.jpg").display()
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("error: random.bin: unsupported: "),
        "{lines:?}"
    );
    let mut expected = vec!["manifest/good.jpg.json".to_string()];
    expected.extend(outputs_for("good.jpg"));
    expected.sort();
    assert_eq!(tree(&env.path("out")), expected);
    assert!(
        run.stdout().contains("1 processed, 2 failed"),
        "{}",
        run.stdout()
    );
}

#[test]
fn json_summary() {
    let env = Env::new();
    env.write("in/a.jpg", &jpeg());
    env.write("in/b.jpg", &random_bytes());
    let run = env.process(&[
        "in",
        "missing.jpg",
        "--out",
        "out",
        "--json",
        "--threads",
        "2",
    ]);
    run.assert_code(1);
    let j = run.json();
    assert_eq!(j["processed"], 1);
    assert_eq!(j["failed"], 2);
    assert!(j["elapsed_ms"].as_f64().unwrap() >= 0.0);
    let sources = j["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);

    let a = &sources[0];
    assert_eq!(
        a["input"],
        Path::new("in").join("a.jpg").display().to_string()
    );
    assert_eq!(a["ok"], true);
    assert!(a["ms"].as_f64().is_some());
    let manifest = a["manifest"].as_str().unwrap();
    assert_eq!(
        manifest,
        Path::new("out")
            .join("manifest/a.jpg.json")
            .display()
            .to_string()
    );
    assert!(env.path(manifest).is_file());
    let outputs = a["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4);
    for o in outputs {
        let path = env.path(o["path"].as_str().unwrap());
        assert_eq!(
            o["bytes"].as_u64().unwrap(),
            fs::metadata(&path).unwrap().len()
        );
        assert!(o["width"].as_u64().unwrap() > 0 && o["height"].as_u64().unwrap() > 0);
        let format = o["format"].as_str().unwrap();
        assert!(["jpeg", "webp", "png", "avif"].contains(&format), "{o}");
    }
    assert_eq!(outputs[0]["format"], "jpeg");
    assert_eq!(
        (outputs[0]["width"].as_u64(), outputs[0]["height"].as_u64()),
        (Some(48), Some(32))
    );

    let b = &sources[1];
    assert_eq!(b["ok"], false);
    assert_eq!(b["error_kind"], "unsupported");
    assert!(b["error"].as_str().unwrap().contains("unsupported format"));
    let missing = &sources[2];
    assert_eq!(missing["input"], "missing.jpg");
    assert_eq!(missing["error_kind"], "io");

    // Errors still go to stderr, one line each; stdout is only the JSON.
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr());
}

#[test]
fn config_errors_exit_2() {
    let env = Env::new();
    env.write("in/a.jpg", &jpeg());
    env.write(
        "bad.toml",
        b"[[variant]]\nname = \"w800\"\nwidth = 800\nfit = \"strech\"\n",
    );
    let run = env.run(&["process", "in", "--out", "out", "--config", "bad.toml"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr(),
        "error: bad.toml: variant[0] (\"w800\").fit: unknown value \"strech\", expected one of inside, cover, contain, fill\n"
    );
    assert!(
        !env.path("out").exists(),
        "nothing is written on a config error"
    );

    let run = env.run(&["process", "in", "--out", "out", "--config", "nope.toml"]);
    run.assert_code(2);
    assert!(
        run.stderr().starts_with("error: nope.toml: cannot read: "),
        "{}",
        run.stderr()
    );

    // ./mediaflow.toml is used when --config is absent...
    env.write(
        "mediaflow.toml",
        b"[[variant]]\nname = \"w800\"\nwidth = 800\nwidht = 1\n",
    );
    let run = env.run(&["process", "in", "--out", "out"]);
    run.assert_code(2);
    assert!(
        run.stderr()
            .starts_with("error: mediaflow.toml: unknown field \"widht\" in variant[0]"),
        "{}",
        run.stderr()
    );
    // ... and a TOML syntax error names line and column.
    env.write(
        "mediaflow.toml",
        b"[[variant]]\nname = \"w800\nwidth = 800\n",
    );
    let run = env.run(&["process", "in", "--out", "out"]);
    run.assert_code(2);
    assert!(
        run.stderr().starts_with("error: mediaflow.toml: "),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("line 2, column"), "{}", run.stderr());
}

#[test]
fn default_config_is_the_local_file_else_builtin() {
    let env = Env::new();
    env.write("in/a.jpg", &jpeg());
    env.write(
        "mediaflow.toml",
        b"[[variant]]\nname = \"only\"\nwidth = 10\n",
    );
    env.run(&["process", "in", "--out", "out1"]).assert_code(0);
    assert_eq!(
        tree(&env.path("out1")),
        ["manifest/a.jpg.json", "only/a.jpg.jpg"]
    );
    fs::remove_file(env.path("mediaflow.toml")).unwrap();
    let run = env.run(&["process", "in", "--out", "out2"]);
    run.assert_code(0);
    assert_eq!(run.stderr(), "", "nothing is said about the config");
    let files = tree(&env.path("out2"));
    for v in ["w2048", "w1024", "w512", "w256"] {
        assert!(files.contains(&format!("{v}/a.jpg.jpg")), "{files:?}");
        assert!(files.contains(&format!("{v}/a.jpg.webp")), "{files:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.write("in/a.jpg", &jpeg());
    env.process(&["--out", "out"]).assert_code(2);
    env.process(&["in"]).assert_code(2);
    env.process(&["in", "--out", "out", "--threads", "0"])
        .assert_code(2);
    let run = env.process(&["in", "--out", "in"]);
    run.assert_code(2);
    assert!(run.stderr().starts_with("error: in: "), "{}", run.stderr());
    assert_eq!(tree(&env.path("in")), ["a.jpg"]);
    env.write("file", b"x");
    let run = env.process(&["in", "--out", "file"]);
    run.assert_code(2);
    assert!(
        run.stderr().starts_with("error: file: cannot create"),
        "{}",
        run.stderr()
    );
}

#[test]
fn colliding_sources_fail_instead_of_overwriting() {
    let env = Env::new();
    env.write("d1/a.jpg", &jpeg());
    env.write("d2/a.jpg", &jpeg());
    env.write("d2/b.jpg", &jpeg());
    env.write("d2/b.png", &png());
    env.write("d2/c.jpg", &jpeg());
    // Under the default template only d1/a.jpg and d2/a.jpg (one key) meet.
    let run = env.process(&["d1", "d2", "--out", "out"]);
    run.assert_code(1);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, path) in lines.iter().zip(["d1/a.jpg", "d2/a.jpg"]) {
        let path = Path::new(path).display().to_string();
        assert!(
            line.starts_with(&format!("error: {path}: collision: ")),
            "{lines:?}"
        );
    }
    assert!(
        lines[0].contains(&Path::new("d2/a.jpg").display().to_string()),
        "{lines:?}"
    );
    let mut expected = vec![
        "manifest/b.jpg.json".to_string(),
        "manifest/b.png.json".to_string(),
        "manifest/c.jpg.json".to_string(),
    ];
    for key in ["b.jpg", "b.png", "c.jpg"] {
        expected.extend(outputs_for(key));
    }
    expected.sort();
    assert_eq!(tree(&env.path("out")), expected);
    // A template without the extension lets b.jpg and b.png meet as well.
    env.write(
        "mf.toml",
        format!("[output]\nkeys = \"{{variant}}/{{dir}}{{stem}}.{{ext}}\"\n{CONFIG}").as_bytes(),
    );
    let run = env.process(&["d1", "d2", "--out", "out2"]);
    run.assert_code(1);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (line, path) in lines
        .iter()
        .zip(["d1/a.jpg", "d2/a.jpg", "d2/b.jpg", "d2/b.png"])
    {
        let path = Path::new(path).display().to_string();
        assert!(
            line.starts_with(&format!("error: {path}: collision: ")),
            "{lines:?}"
        );
    }
}

#[test]
fn output_inside_input_is_not_reprocessed() {
    let env = Env::new();
    env.write("in/a.jpg", &jpeg());
    for _ in 0..2 {
        let run = env.process(&["in", "--out", "in/out", "--json"]);
        run.assert_code(0);
        let j = run.json();
        assert_eq!(j["processed"], 1, "{j}");
        assert_eq!(j["sources"].as_array().unwrap().len(), 1, "{j}");
    }
    let mut expected = vec!["a.jpg".to_string(), "out/manifest/a.jpg.json".to_string()];
    expected.extend(outputs_for("a.jpg").into_iter().map(|f| format!("out/{f}")));
    expected.sort();
    assert_eq!(tree(&env.path("in")), expected);
    // Originals are untouched.
    assert_eq!(fs::read(env.path("in/a.jpg")).unwrap(), jpeg());
}

#[test]
fn inputs_inside_the_output_are_never_overwritten() {
    let env = Env::new();
    // Keys without the hash, so an output path can be an input's.
    env.write(
        "mf.toml",
        format!("[output]\nkeys = \"{{variant}}/{{dir}}{{stem}}.{{ext}}\"\n{CONFIG}").as_bytes(),
    );
    env.write("out/small/a.jpg", &jpeg());
    let run = env.process(&["out/small/a.jpg", "--out", "out"]);
    run.assert_code(1);
    assert!(
        run.stderr().contains("refusing to overwrite"),
        "{}",
        run.stderr()
    );
    assert_eq!(fs::read(env.path("out/small/a.jpg")).unwrap(), jpeg());
}

#[test]
fn size_limit_is_checked_before_reading() {
    let env = Env::new();
    env.write("in/a.jpg", &jpeg());
    env.write(
        "limited.toml",
        format!("[limits]\nmax_input_bytes = 100\n{CONFIG}").as_bytes(),
    );
    let run = env.run(&["process", "in", "--out", "out", "--config", "limited.toml"]);
    run.assert_code(1);
    let a = Path::new("in").join("a.jpg").display().to_string();
    assert_eq!(
        run.stderr_lines(),
        [format!(
            "error: {a}: limits: input is {} bytes, over the limit of 100 bytes",
            jpeg().len()
        )]
    );
}

/// Videos next to photos: renditions through ffmpeg, the poster through the
/// image variants, a video manifest; a broken clip fails alone with a
/// one-line reason naming it.
#[test]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
fn videos_get_renditions_a_poster_and_a_manifest() {
    let env = Env::new();
    let video = |name: &str| sample(&format!("fixtures/video/{name}"));
    env.write("in/clips/phone.mp4", &video("phone-rotated.mp4"));
    env.write("in/clips/web.webm", &video("clip.webm"));
    env.write("in/clips/cut.mp4", &video("truncated.mp4"));
    env.write("in/photo.png", &tiny_png());
    let run = env.process(&["in", "--out", "out", "--json"]);
    assert_eq!(run.code(), 1, "one source failed: {}", run.stderr());
    let err = run.stderr();
    let line = err
        .lines()
        .find(|l| l.contains("cut.mp4"))
        .unwrap_or_else(|| panic!("no error line for cut.mp4: {err}"));
    assert!(
        line.starts_with("error: in/clips/cut.mp4: corrupt: ffprobe: "),
        "{line}"
    );
    let summary: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        (summary["processed"].as_u64(), summary["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let phone = summary["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "clips/phone.mp4")
        .unwrap();
    assert_eq!(phone["format"], "mp4");
    assert_eq!(
        (phone["width"].as_u64(), phone["height"].as_u64()),
        (Some(360), Some(640))
    );
    let mp4 = &phone["outputs"][0];
    assert_eq!(
        (mp4["variant"].as_str(), mp4["format"].as_str()),
        (Some("mp4"), Some("mp4"))
    );
    assert_eq!(
        unhash(mp4["path"].as_str().unwrap()),
        "out/mp4/clips/phone.mp4.mp4"
    );
    // The default video plan (no [[video]] in the config): one 720p-capped
    // rendition; the poster gets the config's two variants in its formats.
    assert_eq!(phone["outputs"].as_array().unwrap().len(), 1 + 4);
    let manifest: Value =
        serde_json::from_slice(&fs::read(env.path("out/manifest/clips/phone.mp4.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["kind"], "video");
    assert_eq!(manifest["source"]["rotation"], 90);
    assert_eq!(
        unhash(manifest["renditions"][0]["key"].as_str().unwrap()),
        "mp4/clips/phone.mp4.mp4"
    );
    let rendition = fs::read(find(&env.path("out"), "mp4/clips/phone.mp4.mp4")).unwrap();
    assert_eq!(
        manifest["renditions"][0]["bytes"].as_u64(),
        Some(rendition.len() as u64)
    );
    let poster = imagesize::size(find(&env.path("out"), "small/clips/phone.mp4.jpg")).unwrap();
    assert!(poster.height > poster.width, "upright poster {poster:?}");
    assert!(find(&env.path("out"), "mp4/clips/web.webm.mp4").is_file());
    assert!(!env.path("out/manifest/clips/cut.mp4.json").exists());
    assert!(!tree(&env.path("out")).contains(&"mp4/clips/cut.mp4.mp4".to_string()));
    // The photo is a photo.
    let m: Value =
        serde_json::from_slice(&fs::read(env.path("out/manifest/photo.png.json")).unwrap())
            .unwrap();
    assert!(m.get("kind").is_none());
}

/// HEIC, JPEG XL and an animated GIF in a directory: found by the scan,
/// decoded upright, the GIF kept animated in the variant that asks for it
/// (manifest: frames, duration, loop count), smart crop on the cover one.
#[test]
fn newer_formats_and_animations() {
    let env = Env::new();
    fs::write(
        env.path("anim.toml"),
        r#"
[limits]
max_frames = 100

[[variant]]
name = "anim"
width = 80
formats = ["webp", "jpeg"]
animated = true

[[variant]]
name = "sq"
width = 32
height = 32
fit = "cover"
gravity = "attention"
formats = ["png"]
"#,
    )
    .unwrap();
    let formats = workspace_root().join("sample-media/fixtures/formats");
    for name in [
        "heic-irot.heic",
        "heic-grid.heic",
        "jxl-jpeg.jxl",
        "anim.gif",
    ] {
        env.write(
            &format!("in/{name}"),
            &fs::read(formats.join(name)).unwrap(),
        );
    }
    let run = env.run(&["process", "--config", "anim.toml", "in", "--out", "out"]);
    run.assert_code(0);
    let manifest = |key: &str| -> Value {
        serde_json::from_slice(&fs::read(env.path(&format!("out/manifest/{key}.json"))).unwrap())
            .unwrap()
    };
    for (key, format, size) in [
        ("heic-irot.heic", "heic", (640, 480)),
        ("heic-grid.heic", "heic", (1040, 560)),
        ("jxl-jpeg.jxl", "jxl", (320, 240)),
    ] {
        let m = manifest(key);
        assert_eq!(m["source"]["format"], format, "{key}");
        assert_eq!(
            (
                m["source"]["width"].as_u64(),
                m["source"]["height"].as_u64()
            ),
            (Some(size.0), Some(size.1)),
            "{key}"
        );
        assert!(m["source"].get("animation").is_none(), "{key}");
    }
    let m = manifest("anim.gif");
    assert_eq!(m["source"]["animation"]["frames"], 6);
    assert_eq!(m["source"]["animation"]["duration_ms"], 1000);
    assert_eq!(m["source"]["animation"]["loop_count"], 4);
    let webp = m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "anim" && v["format"] == "webp")
        .unwrap();
    assert_eq!(
        (webp["frames"].as_u64(), webp["duration_ms"].as_u64()),
        (Some(6), Some(1000))
    );
    let bytes = fs::read(env.path("out").join(webp["key"].as_str().unwrap())).unwrap();
    assert!(bytes.windows(4).any(|w| w == b"ANMF"), "an animated WebP");
    let jpeg = m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "anim" && v["format"] == "jpeg")
        .unwrap();
    assert!(jpeg.get("frames").is_none(), "the JPEG is a still");
}
