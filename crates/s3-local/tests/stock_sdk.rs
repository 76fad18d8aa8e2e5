//! The local S3 server as the stock AWS tools see it: boto3 and the AWS CLI
//! from the repository's `.venv` (`scripts/venv`) list, download and sync
//! keys whose characters need S3's listing encoding (`encoding-type=url`,
//! which botocore asks for and decodes with `unquote_plus`), and get back
//! exactly what was put.

use mediaflow_s3_local::{LocalS3, REGION};
use mediaflow_store::form_encode_key;
use mediaflow_testkit::{wait_until, workspace_root, Running};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Keys that `+`-as-space, `%`, a space, URL delimiters and non-ASCII
/// would each break if a listing carried them unencoded.
const KEYS: [&str; 7] = [
    "x+y.png",
    "100%.png",
    "a b.png",
    "what?.png",
    "hash#1.png",
    "ünï/фото.png",
    "plain.png",
];

/// The longest any one tool may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn body(key: &str) -> String {
    format!("body of {key}\n")
}

/// [`KEYS`] in S3's listing order (by UTF-8 bytes).
fn sorted_keys() -> Vec<String> {
    let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    keys.sort();
    keys
}

fn venv_tool(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/venv (it installs boto3 and the AWS CLI from infra/requirements.txt)",
        path.display()
    );
    path
}

/// The environment the stock tools read, pointing at `server` only: any
/// `AWS_*` variable of the caller's is dropped first.
fn aws_command(program: &Path, server: &LocalS3, scratch: &Path) -> Command {
    let config = scratch.join("aws-config");
    std::fs::write(
        &config,
        format!("[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n"),
    )
    .unwrap();
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", &server.credentials().access_key)
        .env("AWS_SECRET_ACCESS_KEY", &server.credentials().secret_key)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", &config)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            scratch.join("no-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PYTHONUTF8", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end (killed by PID after [`TOOL_TIMEOUT`]): whether it
/// succeeded, its stdout and its stderr.
fn run(name: &'static str, cmd: &mut Command, scratch: &Path) -> (bool, String, String) {
    let out_path = scratch.join(format!("{name}.out"));
    let err_path = scratch.join(format!("{name}.err"));
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = Running::spawn(name, cmd);
    let mut status = None;
    let finished = wait_until(TOOL_TIMEOUT, Duration::from_millis(50), || {
        status = child.try_wait();
        status.is_some()
    });
    drop(child);
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        finished,
        "{name} did not finish within {TOOL_TIMEOUT:?}; stdout:\n{out}\nstderr:\n{err}"
    );
    (status.is_some_and(|s| s.success()), out, err)
}

/// Runs `cmd` and panics with its output unless it succeeds: its stdout.
fn run_ok(name: &'static str, cmd: &mut Command, scratch: &Path) -> String {
    let (ok, out, err) = run(name, cmd, scratch);
    assert!(ok, "{name} failed; stdout:\n{out}\nstderr:\n{err}");
    out
}

/// The keys `aws s3 ls --recursive` printed (date, time, size, key).
fn ls_keys(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut rest = line;
            for _ in 0..3 {
                rest = rest.trim_start();
                let end = rest
                    .find(' ')
                    .unwrap_or_else(|| panic!("not an ls line: {line:?}"));
                rest = &rest[end..];
            }
            // One space separates the size from the key.
            rest[1..].to_string()
        })
        .collect()
}

/// Every file under `dir`: its path relative to `dir` (with `/`) and text.
fn files_under(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.insert(
                    rel.replace('\\', "/"),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn expected_files() -> BTreeMap<String, String> {
    KEYS.iter().map(|k| (k.to_string(), body(k))).collect()
}

#[test]
#[ignore = "needs the aws CLI and boto3: ./scripts/test runs it"]
fn boto3_and_the_aws_cli_round_trip_keys_that_need_listing_encoding() {
    let python = venv_tool("python");
    let aws = venv_tool("aws");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let server = rt
        .block_on(LocalS3::start(
            &root,
            "127.0.0.1:0".parse().unwrap(),
            &["uploads", "copy"],
        ))
        .unwrap();

    // boto3: put, then list every way and read back.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stock_sdk.py");
    let mut cmd = aws_command(&python, &server, &scratch);
    cmd.arg(&script)
        .arg("uploads")
        .env("STOCK_SDK_KEYS", json!(KEYS).to_string());
    let out: Value = serde_json::from_str(&run_ok("boto3", &mut cmd, &scratch)).unwrap();
    assert_eq!(files_under(&root.join("uploads")), expected_files());

    let all = sorted_keys();
    let strings = |v: &Value| -> Vec<String> { serde_json::from_value(v.clone()).unwrap() };
    assert_eq!(strings(&out["v2"]), all, "list_objects_v2");
    let pages: Vec<Vec<String>> = all.chunks(2).map(<[String]>::to_vec).collect();
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(out["v2_pages"].clone()).unwrap(),
        pages,
        "list_objects_v2, MaxKeys=2"
    );
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(out["v1_pages"].clone()).unwrap(),
        pages,
        "list_objects, MaxKeys=2"
    );
    assert_eq!(
        out["v2_prefix"],
        json!({"keys": ["ünï/фото.png"], "Prefix": "ünï/"})
    );
    let after_hash: Vec<&String> = all.iter().filter(|k| k.as_str() > "hash#1.png").collect();
    assert_eq!(
        out["v2_start_after"],
        json!({"keys": after_hash, "StartAfter": "hash#1.png"})
    );
    let top: Vec<&String> = all.iter().filter(|k| !k.contains('/')).collect();
    assert_eq!(
        out["v2_delimiter"],
        json!({"keys": top, "CommonPrefixes": ["ünï/"], "Delimiter": "/"})
    );
    assert_eq!(
        out["v2_plus_prefix"],
        json!({"keys": ["x+y.png"], "Prefix": "x+"})
    );
    // S3 encodes a v1 listing's Prefix too, and botocore does not decode it.
    assert_eq!(
        out["v1_plus_prefix"],
        json!({"keys": ["x+y.png"], "Prefix": "x%2B"})
    );
    assert_eq!(
        out["v1_marker"],
        json!({"keys": after_hash, "Marker": "hash#1.png"})
    );
    let encoded: Vec<String> = all.iter().map(|k| form_encode_key(k)).collect();
    assert!(encoded.contains(&"x%2By.png".to_string()), "{encoded:?}");
    assert_eq!(
        out["v2_url_raw"],
        json!({"keys": encoded, "EncodingType": "url"})
    );
    // s3s-fs does not serve ListObjectVersions (no versioning).
    assert_eq!(out["versions"], "NotImplemented");
    let bodies: BTreeMap<String, String> = serde_json::from_value(out["bodies"].clone()).unwrap();
    assert_eq!(bodies, expected_files(), "get_object of each listed key");

    // The AWS CLI: ls, sync down, sync up into another bucket.
    let listing = run_ok(
        "aws s3 ls",
        aws_command(&aws, &server, &scratch).args(["s3", "ls", "--recursive", "s3://uploads/"]),
        &scratch,
    );
    assert_eq!(ls_keys(&listing), all, "aws s3 ls --recursive:\n{listing}");

    let down = dir.path().join("down");
    let synced = run_ok(
        "aws s3 sync down",
        aws_command(&aws, &server, &scratch)
            .args(["s3", "sync", "--no-progress", "s3://uploads/"])
            .arg(&down),
        &scratch,
    );
    assert_eq!(files_under(&down), expected_files(), "{synced}");

    let synced = run_ok(
        "aws s3 sync up",
        aws_command(&aws, &server, &scratch)
            .args(["s3", "sync", "--no-progress"])
            .arg(&down)
            .arg("s3://copy/"),
        &scratch,
    );
    assert_eq!(
        files_under(&root.join("copy")),
        expected_files(),
        "{synced}"
    );
    let listing = run_ok(
        "aws s3 ls copy",
        aws_command(&aws, &server, &scratch).args(["s3", "ls", "--recursive", "s3://copy/"]),
        &scratch,
    );
    assert_eq!(ls_keys(&listing), all, "aws s3 ls --recursive:\n{listing}");
    // A second sync finds nothing to do: the listing matches the files.
    let again = run_ok(
        "aws s3 sync again",
        aws_command(&aws, &server, &scratch)
            .args(["s3", "sync", "--no-progress", "s3://uploads/"])
            .arg(&down),
        &scratch,
    );
    assert_eq!(again.trim(), "", "nothing left to sync");

    rt.block_on(server.stop());
}
