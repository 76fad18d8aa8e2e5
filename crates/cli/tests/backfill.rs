//! `mediaflow backfill` as a user runs it, against real components on
//! loopback: the local S3 server (s3s) and moto's SQS, started and
//! stopped here; and `mediaflow dev`.

mod support;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use futures::StreamExt as _;
use mediaflow_pipeline::{parse_body, Outcome, Pipeline, PipelineConfig, SourceObject};
use mediaflow_s3_local::{LocalS3, ACCESS_KEY, REGION};
use mediaflow_store::{md5_etag, ObjectStore, PutOptions};
use mediaflow_store_s3::{S3Store, SqsQueue};
use mediaflow_testkit::{sample, wait_until, MotoServer, Running};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Dev;

const PLAN: &str = r#"
[output]
placeholder = false
[[variant]]
name = "w16"
width = 16
formats = ["png"]
"#;

const OTHER_PLAN: &str = r#"
[output]
placeholder = false
[[variant]]
name = "w16"
width = 16
formats = ["png"]
[[variant]]
name = "w8"
width = 8
formats = ["png"]
"#;

/// 10,000 keys across prefixes: spaces, `+`, `%`, quotes, `&<>`, other
/// scripts, and names that are prefixes of others (`a` and `a-1`).
fn keys() -> Vec<String> {
    let dirs = [
        "a",
        "a b",
        "a+b",
        "100%",
        "q'\"&<>",
        "ünï/фото",
        "東京",
        "deep/er/still",
    ];
    let mut keys = Vec::new();
    for i in 0..10_000 {
        let dir = dirs[i % dirs.len()];
        let name = match i % 5 {
            0 => format!("img {i}.png"),
            1 => format!("img+{i}.png"),
            2 => format!("{i}"),
            3 => format!("{i}-1"),
            _ => format!("é {i} %41.png"),
        };
        keys.push(format!("{dir}/{name}"));
    }
    keys
}

fn config(text: &str) -> mediaflow_config::Config {
    mediaflow_config::parse_config(text).unwrap()
}

fn pipeline(store: &S3Store, text: &str) -> Pipeline {
    let config = config(text);
    let mut settings = PipelineConfig::new("media", "out/");
    settings.concurrency = 16;
    Pipeline::new(Arc::new(store.clone()), config.image, settings)
}

async fn process(pipeline: &Pipeline, objects: &[SourceObject]) {
    for chunk in objects.chunks(256) {
        for r in pipeline.process_all(chunk, None).await {
            assert!(
                matches!(r.outcome, Outcome::Processed { .. }),
                "{}: {:?}",
                r.key,
                r.outcome
            );
        }
    }
}

fn source(key: &str, body: &[u8]) -> SourceObject {
    SourceObject {
        bucket: "uploads".into(),
        key: key.into(),
        size: Some(body.len() as u64),
        etag: Some(md5_etag(body)),
        version_id: None,
        event_name: "ObjectCreated:Put".into(),
        sequencer: None,
    }
}

async fn upload_all(store: &S3Store, keys: &[String], body: &bytes::Bytes) {
    futures::stream::iter(keys)
        .map(|k| async move {
            store
                .put("uploads", k, body.clone(), &PutOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{k}: {e}"));
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

struct Env<'a> {
    dir: &'a Path,
    s3: String,
    secret: String,
    sqs: Option<String>,
}

impl Env<'_> {
    fn command<S: AsRef<str>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mediaflow"));
        c.arg("backfill")
            .args(args.iter().map(AsRef::as_ref))
            .current_dir(self.dir)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env("AWS_ENDPOINT_URL_S3", &self.s3)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "off")
            .stdin(Stdio::null());
        if let Some(sqs) = &self.sqs {
            c.env("AWS_ENDPOINT_URL_SQS", sqs);
        }
        c
    }

    /// Runs to the end (at most 300 s) and returns the exit code and the JSON summary.
    fn run<S: AsRef<str> + std::fmt::Debug>(&self, args: &[S]) -> (i32, Value, String) {
        let out_path = self.dir.join("out.json");
        let err_path = self.dir.join("err.txt");
        let mut cmd = self.command(args);
        cmd.arg("--json")
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        let mut running = Running::spawn("mediaflow backfill", &mut cmd);
        let mut status = None;
        let done = wait_until(Duration::from_secs(300), Duration::from_millis(50), || {
            status = running.try_wait();
            status.is_some()
        });
        assert!(done, "mediaflow backfill {args:?} did not end within 300 s");
        let err = std::fs::read_to_string(&err_path).unwrap();
        let out = std::fs::read_to_string(&out_path).unwrap();
        let json = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: stdout {out:?}, stderr {err}"));
        (status.unwrap().code().unwrap_or(-1), json, err)
    }
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

/// Receives and deletes messages (four receivers, DeleteMessageBatch)
/// until `expected` have come and the queue is then empty (bounded: 180
/// s). Deleting as they come keeps moto's queue short: moto's SendMessage
/// takes time in proportion to the messages the queue holds. Returns each
/// message once by its id: SQS (moto too) may deliver one message twice
/// to concurrent receivers, which is not a second send.
///
/// moto 5.2's DeleteMessage rebuilds the queue's message list without a
/// lock, so two deletes at once can put back a message the other one
/// deleted, and it comes back when its visibility timeout ends (in CI,
/// eleven messages were delivered a second time, and the final "nothing
/// sent" check received one). The receivers therefore delete one batch
/// at a time, and a received message stays invisible for an hour (longer
/// than the test), so a message put back that way is not delivered again.
fn drain(queue: &SqsQueue, expected: usize) -> tokio::task::JoinHandle<Vec<String>> {
    let queue = queue.clone();
    tokio::spawn(async move {
        let bodies = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let deleting = Arc::new(tokio::sync::Mutex::new(()));
        let receivers = (0..4).map(|_| {
            let (queue, bodies) = (queue.clone(), Arc::clone(&bodies));
            let deleting = Arc::clone(&deleting);
            async move {
                let client = queue.client();
                let until = Instant::now() + Duration::from_secs(180);
                let mut empty_after = 0;
                while Instant::now() < until && empty_after < 2 {
                    let out = client
                        .receive_message()
                        .queue_url(queue.queue_url())
                        .max_number_of_messages(10)
                        .visibility_timeout(3600)
                        .send()
                        .await
                        .expect("ReceiveMessage");
                    let messages = out.messages.unwrap_or_default();
                    if messages.is_empty() {
                        if bodies.lock().unwrap().len() >= expected {
                            empty_after += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    let entries = messages.iter().enumerate().map(|(i, m)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(m.receipt_handle.clone().unwrap())
                            .build()
                            .unwrap()
                    });
                    let deleted = {
                        let _one_at_a_time = deleting.lock().await;
                        client
                            .delete_message_batch()
                            .queue_url(queue.queue_url())
                            .set_entries(Some(entries.collect()))
                            .send()
                            .await
                            .expect("DeleteMessageBatch")
                    };
                    // A receipt handle of a copy another receiver got and
                    // deleted first is refused: the message is gone.
                    for failed in deleted.failed() {
                        eprintln!("delete refused: {} {:?}", failed.code(), failed.message());
                    }
                    let mut bodies = bodies.lock().unwrap();
                    for m in messages {
                        let (id, body) = (m.message_id.unwrap(), m.body.unwrap());
                        if let Some(before) = bodies.insert(id.clone(), body.clone()) {
                            assert_eq!(before, body, "message {id} came back with another body");
                            eprintln!("message {id} delivered again (at-least-once delivery)");
                        }
                    }
                }
            }
        });
        futures::future::join_all(receivers).await;
        let bodies: Vec<String> = bodies.lock().unwrap().values().cloned().collect();
        bodies
    })
}

/// The objects in the bodies, each body one S3 event of one object.
fn objects(bodies: &[String]) -> Vec<SourceObject> {
    bodies
        .iter()
        .map(|b| {
            let n = parse_body(b).unwrap_or_else(|e| panic!("{e}: {b}"));
            assert_eq!(n.objects.len(), 1, "{b}");
            n.objects.into_iter().next().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto_server: ./scripts/test runs it"]
async fn ten_thousand_objects_enqueued_once_resumed_and_then_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalS3::start(
        &dir.path().join("s3"),
        "127.0.0.1:0".parse().unwrap(),
        &["uploads", "media"],
    )
    .await
    .unwrap();
    let secret = server.credentials().secret_key.clone();
    let store = S3Store::with_static_credentials(&server.endpoint(), ACCESS_KEY, &secret, REGION);
    std::fs::write(dir.path().join("mf.toml"), PLAN).unwrap();

    // 10,000 sources; 1,250 processed with the plan and 250 with another
    // one; 250 of the first re-uploaded with other bytes.
    let keys = keys();
    let (gray, other) = (
        sample("fixtures/gray.png"),
        sample("fixtures/gray-alpha.png"),
    );
    let t = Instant::now();
    upload_all(&store, &keys, &gray).await;
    eprintln!("uploaded 10,000 in {:.1} s", t.elapsed().as_secs_f64());
    let with_plan: Vec<SourceObject> = keys[..1250].iter().map(|k| source(k, &gray)).collect();
    let with_other: Vec<SourceObject> = keys[1250..1500].iter().map(|k| source(k, &gray)).collect();
    let t = Instant::now();
    process(&pipeline(&store, PLAN), &with_plan).await;
    process(&pipeline(&store, OTHER_PLAN), &with_other).await;
    eprintln!("processed 1,500 in {:.1} s", t.elapsed().as_secs_f64());
    upload_all(&store, &keys[1000..1250], &other).await;
    let missing: BTreeSet<String> = keys[1500..].iter().cloned().collect();
    let stale: BTreeSet<String> = keys[1000..1500].iter().cloned().collect();

    let moto = MotoServer::start();
    let sqs = SqsQueue::with_static_credentials(&moto.endpoint(), ACCESS_KEY, &secret, REGION, "");
    let url = sqs
        .client()
        .create_queue()
        .queue_name("uploads")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue = SqsQueue::new(sqs.client().clone(), url.clone());
    let env = Env {
        dir: dir.path(),
        s3: server.endpoint(),
        secret: secret.clone(),
        sqs: Some(moto.endpoint()),
    };
    let base = [
        "--source",
        "s3://uploads",
        "--output",
        "s3://media/out/",
        "--config",
        "mf.toml",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    // The dry run counts exactly, from listings alone.
    let (code, dry, err) = env.run(&with(&["--dry-run"]));
    assert_eq!(code, 0, "{err}");
    for (field, want) in [
        ("listed", 10_000),
        ("current", 1_000),
        ("missing", 8_500),
        ("stale", 500),
        ("rejected", 0),
        ("to_do", 9_000),
        ("enqueued", 0),
        ("failed", 0),
        ("head_requests", 0),
    ] {
        assert_eq!(n(&dry, field), want, "{field}: {dry}");
    }
    assert_eq!(
        n(&dry, "listed_bytes"),
        9_750 * gray.len() as u64 + 250 * other.len() as u64
    );
    assert!(n(&dry, "list_requests") <= 45, "{dry}");
    eprintln!(
        "dry run: {} objects examined per second, {:.1} requests per 1,000 objects",
        dry["examined_per_second"], dry["requests_per_1000"]
    );
    let (_, dry, _) = env.run(&with(&["--dry-run", "--only", "missing"]));
    assert_eq!(n(&dry, "to_do"), 8_500, "{dry}");

    // The missing ones, stopped half way by SIGINT and resumed.
    let received = drain(&queue, 8_500);
    let checkpoint = dir.path().join("checkpoint.json");
    let run = with(&[
        "--queue",
        &url,
        "--only",
        "missing",
        "--resume",
        "checkpoint.json",
        "--max-rate",
        "4000",
    ]);
    let mut cmd = env.command(&run);
    cmd.arg("--json")
        .stdout(std::fs::File::create(dir.path().join("first.json")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("first.err")).unwrap());
    let mut first = Running::spawn("mediaflow backfill", &mut cmd);
    let half_way = wait_until(Duration::from_secs(120), Duration::from_millis(10), || {
        std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|c| c["counts"]["enqueued"].as_u64().unwrap_or(0) >= 3_000)
    });
    assert!(
        half_way,
        "3,000 not sent within 120 s: {:?} {:?} {}",
        first.try_wait(),
        std::fs::read_to_string(&checkpoint),
        std::fs::read_to_string(dir.path().join("first.err")).unwrap_or_default()
    );
    // Ctrl-C: the batch in flight ends, the checkpoint is written.
    let status = first
        .interrupt(Duration::from_secs(30))
        .expect("stops within 30 s");
    assert_eq!(status.code(), Some(130), "interrupted exit status");
    let stopped: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let sent_first = n(&stopped["counts"], "enqueued");
    assert!(
        (3_000..8_500).contains(&sent_first),
        "stopped half way: {stopped}"
    );
    assert_eq!(stopped["complete"], false);
    let (code, resumed, err) = env.run(&run);
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&resumed, "enqueued"), 8_500, "{resumed}");
    assert_eq!(n(&resumed, "listed"), 10_000, "{resumed}");
    assert_eq!(n(&resumed, "failed"), 0);
    assert!(
        n(&resumed, "examined") < 10_000,
        "the resumed run started after the checkpoint: {resumed}"
    );

    // Exactly those 8,500, once each, each an S3 event the functions read.
    let bodies = received.await.unwrap();
    assert_eq!(bodies.len(), 8_500, "messages sent (distinct message ids)");
    let sent = objects(&bodies);
    let sent_keys: BTreeSet<String> = sent.iter().map(|o| o.key.clone()).collect();
    assert_eq!(sent_keys.len(), 8_500, "no object sent twice");
    assert_eq!(sent_keys, missing);
    for o in &sent {
        assert_eq!(o.bucket, "uploads");
        assert_eq!(o.etag.as_deref(), Some(md5_etag(&gray).as_str()));
        assert!(!o.is_removal());
    }

    // The stale ones.
    let received = drain(&queue, 500);
    let (code, stale_run, err) = env.run(&with(&["--queue", &url, "--only", "stale"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&stale_run, "enqueued"), 500);
    let stale_bodies = received.await.unwrap();
    let stale_sent = objects(&stale_bodies);
    assert_eq!(
        stale_sent
            .iter()
            .map(|o| o.key.clone())
            .collect::<BTreeSet<_>>(),
        stale
    );

    // The functions process them (the pipeline, as on-upload runs it)...
    let t = Instant::now();
    let all: Vec<SourceObject> = sent.into_iter().chain(stale_sent).collect();
    process(&pipeline(&store, PLAN), &all).await;
    eprintln!("processed 9,000 in {:.1} s", t.elapsed().as_secs_f64());
    // ... and then there is nothing to do.
    let (code, again, err) = env.run(&with(&["--queue", &url]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&again, "current"), 10_000, "{again}");
    assert_eq!(n(&again, "enqueued"), 0, "{again}");
    assert!(drain(&queue, 0).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_against_mediaflow_dev_after_a_plan_change_once_then_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(seed.join("sub dir")).unwrap();
    std::fs::write(seed.join("rocket.jpg"), sample("rocket.jpg")).unwrap();
    std::fs::write(seed.join("sub dir/horse.png"), sample("horse.png")).unwrap();
    std::fs::write(seed.join("a+b 1.png"), sample("fixtures/gray.png")).unwrap();
    let mut dev = Dev::start(dir.path(), &["--seed", seed.to_str().unwrap()]);
    let seeded = wait_until(Duration::from_secs(120), Duration::from_millis(100), || {
        dev.out().contains("source(s) in")
    });
    assert!(seeded, "no seed table within 120 s: {}", dev.logs());
    std::fs::write(dir.path().join("changed.toml"), PLAN).unwrap();
    let env = Env {
        dir: dir.path(),
        s3: format!("http://127.0.0.1:{}", dev.port),
        secret: dev.secret(),
        sqs: None,
    };
    let args = [
        "--source",
        "s3://uploads",
        "--output",
        "s3://media",
        "--config",
        "changed.toml",
    ];
    let local: Vec<&str> = args.iter().copied().chain(["--local"]).collect();
    // The seeded data is current with dev's plan.
    let (code, before, err) = env.run(&[&args[..4], &["--local"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (n(&before, "current"), n(&before, "enqueued")),
        (3, 0),
        "{before}"
    );
    // After the plan change: everything once...
    let (code, first, err) = env.run(&local);
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&first, "stale"), 3, "{first}");
    assert_eq!(n(&first, "enqueued"), 3, "{first}");
    let store = dev.store();
    let manifest = store
        .get("media", "manifest/a+b 1.png.json", 1 << 20)
        .await
        .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest.body).unwrap();
    let names: BTreeMap<String, Value> = manifest["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_string(), v.clone()))
        .collect();
    assert_eq!(names.keys().collect::<Vec<_>>(), ["w16"], "{manifest}");
    // ... then nothing.
    let (code, second, err) = env.run(&local);
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&second, "current"), 3, "{second}");
    assert_eq!(n(&second, "enqueued"), 0, "{second}");
    dev.interrupt();
}
