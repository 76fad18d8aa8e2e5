//! [`SqsQueue`] against moto's SQS (`moto_server`, started and stopped
//! here; `#[ignore]`d: `./scripts/test` installs it and runs them), and
//! `send_batch`'s per-entry results against a scripted SQS on loopback
//! (no tool needed).

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::Message;
use aws_sdk_sqs::Client;
use mediaflow_store::{md5_etag, MessageQueue, StoreError};
use mediaflow_store_s3::SqsQueue;
use mediaflow_testkit::moto::{MOTO_ACCESS_KEY, MOTO_ACCOUNT, MOTO_REGION, MOTO_SECRET_KEY};
use mediaflow_testkit::{wait_until, MotoServer, Running};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A JSON body as on-upload forwards them: non-ASCII, `+` (both literal
/// and in the percent-encoded key), `&`, `=` and `%`, which a form
/// encoding would mangle.
const JSON_BODY: &str = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"uploads"},"object":{"key":"vid%C3%A9os/%C3%A9t%C3%A9+2026/caf%C3%A9%2B1.mov","size":1048576}}}],"note":"été + hiver, 東京 🎥, a+b&c=d%2B"}"#;

fn moto_queue(moto: &MotoServer, queue_url: &str) -> SqsQueue {
    SqsQueue::with_static_credentials(
        &moto.endpoint(),
        MOTO_ACCESS_KEY,
        MOTO_SECRET_KEY,
        MOTO_REGION,
        queue_url,
    )
}

/// Creates the queue `name` in moto; returns its URL.
async fn create_queue(moto: &MotoServer, name: &str) -> String {
    let admin = moto_queue(moto, "");
    let out = admin
        .client()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}\n{}", moto.log()));
    out.queue_url.expect("a queue URL")
}

/// Receives (and deletes) `n` messages, waiting at most 20 s in all.
async fn receive(client: &Client, queue_url: &str, n: usize) -> Vec<Message> {
    let until = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < until {
        let out = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in out.messages.unwrap_or_default() {
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .expect("DeleteMessage");
            got.push(m);
        }
    }
    assert_eq!(got.len(), n, "messages received from {queue_url}");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: ./scripts/test runs it"]
async fn sent_bodies_come_back_byte_for_byte() {
    let moto = MotoServer::start();
    let url = create_queue(&moto, "videos").await;
    let queue = moto_queue(&moto, &url);
    assert_eq!(queue.name(), url);
    let queue: Arc<dyn MessageQueue> = Arc::new(queue);
    let bodies = ["hello", JSON_BODY];
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(queue.send(body).await.unwrap());
    }
    let sqs = moto_queue(&moto, &url);
    let got = receive(sqs.client(), &url, 2).await;
    for (body, id) in bodies.iter().zip(&ids) {
        let m = got
            .iter()
            .find(|m| m.message_id.as_ref() == Some(id))
            .unwrap_or_else(|| panic!("message {id} not received"));
        assert_eq!(m.body.as_deref(), Some(*body));
        assert_eq!(
            m.md5_of_body.as_deref(),
            Some(md5_etag(body.as_bytes()).as_str())
        );
    }
    let doc: Value = serde_json::from_str(got[1].body.as_deref().unwrap()).unwrap();
    assert_eq!(doc["note"], "été + hiver, 東京 🎥, a+b&c=d%2B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: ./scripts/test runs it"]
async fn send_batch_sends_23_bodies() {
    let moto = MotoServer::start();
    let url = create_queue(&moto, "backfill").await;
    let queue = moto_queue(&moto, &url);
    let bodies: Vec<String> = (0..23)
        .map(|i| json!({"n": i, "key": format!("clips/été+{i}.mp4")}).to_string())
        .collect();
    let results = queue.send_batch(&bodies).await.unwrap();
    assert_eq!(results.len(), 23);
    let ids: BTreeSet<String> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), 23, "distinct message ids");
    let got = receive(queue.client(), &url, 23).await;
    let received: BTreeSet<(String, String)> = got
        .into_iter()
        .map(|m| (m.message_id.unwrap(), m.body.unwrap()))
        .collect();
    let received_ids: BTreeSet<String> = received.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(received_ids, ids);
    let received_bodies: BTreeSet<&str> = received.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        received_bodies,
        bodies.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(queue.send_batch(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: ./scripts/test runs it"]
async fn a_missing_queue_is_a_permanent_error() {
    let moto = MotoServer::start();
    let url = format!("{}/{MOTO_ACCOUNT}/no-such-queue", moto.endpoint());
    let queue = moto_queue(&moto, &url);
    let e = queue.send(JSON_BODY).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("no-such-queue"), "{e}");
    let e = queue
        .send_batch(&["a".to_string(), "b".to_string()])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
}

/// The child of [`from_env_uses_the_sqs_endpoint_override`]: the queue
/// URL to send to, with the environment under test.
const CHILD_QUEUE_URL: &str = "MEDIAFLOW_TEST_SQS_FROM_ENV_QUEUE_URL";

/// `SqsQueue::from_env` in a child process (this test binary again, so
/// that no test changes this process's environment): it sends through
/// `AWS_ENDPOINT_URL_SQS` even when `AWS_ENDPOINT_URL` points elsewhere,
/// and through `AWS_ENDPOINT_URL` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: ./scripts/test runs it"]
async fn from_env_uses_the_sqs_endpoint_override() {
    if let Ok(url) = std::env::var(CHILD_QUEUE_URL) {
        let queue = SqsQueue::from_env(url).await;
        let id = queue.send(JSON_BODY).await.unwrap();
        println!("MESSAGE_ID={id}");
        return;
    }
    let moto = MotoServer::start();
    let url = create_queue(&moto, "from-env").await;
    let sqs = moto_queue(&moto, &url);
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens.
    let dead = "http://127.0.0.1:9";
    for (i, endpoints) in [
        vec![
            ("AWS_ENDPOINT_URL_SQS", moto.endpoint()),
            ("AWS_ENDPOINT_URL", dead.to_string()),
        ],
        vec![("AWS_ENDPOINT_URL", moto.endpoint())],
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("child-{i}.out"));
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "from_env_uses_the_sqs_endpoint_override",
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(CHILD_QUEUE_URL, &url)
        .env("AWS_REGION", MOTO_REGION)
        .env("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit());
        for (k, v) in &endpoints {
            cmd.env(k, v);
        }
        let mut child = Running::spawn("the from_env child test", &mut cmd);
        let mut status = None;
        wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
            status = child.try_wait();
            status.is_some()
        });
        let output = std::fs::read_to_string(&out).unwrap();
        assert!(
            status.is_some_and(|s| s.success()),
            "{endpoints:?}: {status:?}\n{output}"
        );
        // The test harness prints it after the test's name, on one line.
        let id = output
            .split_once("MESSAGE_ID=")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no message id in:\n{output}"));
        let got = receive(sqs.client(), &url, 1).await;
        assert_eq!(got[0].message_id.as_deref(), Some(id), "{endpoints:?}");
        assert_eq!(got[0].body.as_deref(), Some(JSON_BODY));
    }
}

/// What [`FakeSqs`] answers to the `n`th request (from 0), given its JSON
/// body: status, extra headers, JSON body.
type Script = dyn Fn(usize, &Value) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync;

/// An SQS endpoint on loopback that answers each request (one per
/// connection) from a script and records the requests' bodies. Stopped
/// (the thread joined) when dropped.
struct FakeSqs {
    port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSqs {
    fn start(script: Box<Script>) -> FakeSqs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(body) = read_request(&stream) {
                                let n = {
                                    let mut r = requests.lock().unwrap();
                                    r.push(body.clone());
                                    r.len() - 1
                                };
                                let (status, headers, text) = script(n, &body);
                                respond(stream, status, &headers, &text);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FakeSqs {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// A queue on this endpoint, without the SDK's retries.
    fn queue(&self) -> SqsQueue {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.port))
            .region(Region::new(MOTO_REGION))
            .credentials_provider(Credentials::new("k", "s", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .http_client(mediaflow_store_s3::https_client())
            .build();
        SqsQueue::new(
            Client::from_conf(config),
            format!("http://127.0.0.1:{}/{MOTO_ACCOUNT}/q", self.port),
        )
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeSqs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP request's JSON body (bounded by read timeouts).
fn read_request(stream: &TcpStream) -> Option<Value> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn respond(mut stream: TcpStream, status: u16, headers: &[(&str, String)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// SendMessageBatch's answer: every entry accepted, except that a body
/// saying `refuse` is the sender's fault, `busy` SQS's, and `badmd5`
/// comes back with another MD5.
fn batch_answer(body: &Value) -> (u16, Vec<(&'static str, String)>, String) {
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for e in body["Entries"].as_array().unwrap() {
        let (id, text) = (
            e["Id"].as_str().unwrap(),
            e["MessageBody"].as_str().unwrap(),
        );
        match text {
            "refuse" => failed.push(json!({"Id": id, "SenderFault": true, "Code": "InvalidParameterValue", "Message": "no"})),
            "busy" => failed.push(json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "later"})),
            _ => {
                let md5 = if text == "badmd5" { md5_etag(b"other") } else { md5_etag(text.as_bytes()) };
                successful.push(json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": md5}));
            }
        }
    }
    let answer = json!({"Successful": successful, "Failed": failed});
    (200, vec![], answer.to_string())
}

fn missing_queue() -> (u16, Vec<(&'static str, String)>, String) {
    (
        400,
        vec![(
            "x-amzn-query-error",
            "AWS.SimpleQueueService.NonExistentQueue;Sender".to_string(),
        )],
        json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."}).to_string(),
    )
}

fn texts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_reports_each_entrys_failure() {
    let sqs = FakeSqs::start(Box::new(|_, body| batch_answer(body)));
    let mut bodies = texts(&["a"; 12]);
    bodies[3] = "refuse".into();
    bodies[5] = "busy".into();
    bodies[11] = "badmd5".into();
    let results = sqs.queue().send_batch(&bodies).await.unwrap();
    assert_eq!(results.len(), 12);
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (3, Err(e)) => {
                assert!(matches!(e, StoreError::Other(_)), "{e:?}");
                assert!(e.to_string().contains("entry 3"), "{e}");
                assert!(e.to_string().contains("InvalidParameterValue: no"), "{e}");
            }
            (5, Err(e)) => assert!(matches!(e, StoreError::Transient(_)), "{e:?}"),
            (11, Err(e)) => {
                assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
                assert!(e.to_string().contains("MD5"), "{e}");
            }
            (i, Ok(id)) if ![3, 5, 11].contains(&i) => assert_eq!(id, &format!("m-{i}")),
            other => panic!("{other:?}"),
        }
    }
    // Ten, then two; entry ids are the bodies' indices.
    let requests = sqs.requests();
    let ids: Vec<Vec<&str>> = requests
        .iter()
        .map(|r| {
            r["Entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["Id"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            vec!["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            vec!["10", "11"]
        ]
    );
    assert!(requests
        .iter()
        .all(|r| r["QueueUrl"].as_str().unwrap().ends_with("/123456789012/q")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_stops_at_a_permanent_failure_after_the_first_batch() {
    // The queue disappears after the first request.
    let sqs = FakeSqs::start(Box::new(|n, body| {
        if n == 0 {
            batch_answer(body)
        } else {
            missing_queue()
        }
    }));
    let bodies = texts(&["a"; 25]);
    let results = sqs.queue().send_batch(&bodies).await.unwrap();
    assert_eq!(results.len(), 25);
    assert!(results[..10].iter().all(Result::is_ok));
    for r in &results[10..20] {
        let e = r.as_ref().unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
        assert!(!e.to_string().contains("not sent"), "{e}");
    }
    for r in &results[20..] {
        let e = r.as_ref().unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
        assert!(e.to_string().contains("not sent"), "{e}");
    }
    assert_eq!(sqs.requests().len(), 2, "nothing sent after the failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_goes_on_after_a_transient_failure() {
    let sqs = FakeSqs::start(Box::new(|n, body| {
        if n == 1 {
            (
                503,
                vec![],
                json!({"__type": "ServiceUnavailable"}).to_string(),
            )
        } else {
            batch_answer(body)
        }
    }));
    let bodies = texts(&["a"; 23]);
    let results = sqs.queue().send_batch(&bodies).await.unwrap();
    assert!(results[..10].iter().all(Result::is_ok));
    assert!(results[10..20]
        .iter()
        .all(|r| matches!(r, Err(StoreError::Transient(_)))));
    assert!(results[20..].iter().all(Result::is_ok));
    assert_eq!(sqs.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_batch_is_an_error_and_a_missing_queue_is_permanent() {
    let sqs = FakeSqs::start(Box::new(|_, _| missing_queue()));
    let e = sqs
        .queue()
        .send_batch(&texts(&["a"; 15]))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    assert_eq!(sqs.requests().len(), 1);
    let e = sqs.queue().send("a").await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    assert!(e.is_permanent());
}
