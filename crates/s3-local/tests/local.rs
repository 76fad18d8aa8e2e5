//! The local server as a browser and a client would reach it: form POST
//! uploads (signed as a web page would sign them) from its own origin, from
//! another origin and from no browser at all; keys a file path cannot hold;
//! the secret file; what the upload observer hears of puts and deletes.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use mediaflow_s3_local::{Credentials, LocalS3, Upload, UploadObserver, REGION};
use sha2::Digest as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A browser form upload to `bucket` of `key`, signed with `credentials`
/// (SigV4 POST policy), as a page would send it: multipart/form-data.
fn form_post(credentials: &Credentials, key: &str, body: &[u8]) -> (String, Vec<u8>) {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
    let date = now[..10].replace('-', "");
    let amz_date = format!("{date}T{}Z", now[11..19].replace(':', ""));
    let credential = format!("{}/{date}/{REGION}/s3/aws4_request", credentials.access_key);
    let policy = format!(
        r#"{{"expiration":"{expires}","conditions":[{{"bucket":"uploads"}},["starts-with","$key",""],{{"x-amz-algorithm":"AWS4-HMAC-SHA256"}},{{"x-amz-credential":"{credential}"}},{{"x-amz-date":"{amz_date}"}}]}}"#
    );
    let policy = base64::engine::general_purpose::STANDARD.encode(policy);
    let mut k = hmac(format!("AWS4{}", credentials.secret_key).as_bytes(), &date);
    for part in [REGION, "s3", "aws4_request"] {
        k = hmac(&k, part);
    }
    let signature = hex::encode(hmac(&k, &policy));
    let boundary = "----mediaflowtestboundary";
    let mut form = Vec::new();
    for (name, value) in [
        ("key", key),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", &credential),
        ("x-amz-date", &amz_date),
        ("policy", &policy),
        ("x-amz-signature", &signature),
    ] {
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    form.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            .as_bytes(),
    );
    form.extend_from_slice(body);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), form)
}

async fn start(dir: &std::path::Path) -> LocalS3 {
    LocalS3::start(dir, "127.0.0.1:0".parse().unwrap(), &["uploads"])
        .await
        .unwrap()
}

/// Finding 6 of issue 13: a page on another site could upload through the
/// user's browser with a form POST signed with the (then fixed) secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_uploads_from_other_origins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let creds = server.credentials().clone();

    // From another site: refused before the body is read, nothing stored.
    let form = form_post(&creds, "evil.jpg", b"\xFF\xD8 not really");
    let (status, body) = post_blocking(&server, Some("https://evil.example"), form).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("<Code>AccessDenied</Code>")
            && body.contains("cross-origin request from https://evil.example refused"),
        "{body}"
    );
    assert!(!dir.path().join("uploads/evil.jpg").exists());
    // `null` (a sandboxed frame, a file:// page) and a look-alike port too.
    let other_port = format!("http://127.0.0.1:{}", server.addr().port() + 1);
    for origin in ["null", other_port.as_str()] {
        let form = form_post(&creds, "evil.jpg", b"x");
        let (status, body) = post_blocking(&server, Some(origin), form).await;
        assert_eq!(status, 403, "{origin}: {body}");
    }
    assert!(!dir.path().join("uploads/evil.jpg").exists());

    // No Origin (curl, the SDKs) and the server's own origin: accepted.
    let form = form_post(&creds, "plain.jpg", b"no origin");
    let (status, body) = post_blocking(&server, None, form).await;
    assert!((200..300).contains(&status), "{status}: {body}");
    assert_eq!(
        std::fs::read(dir.path().join("uploads/plain.jpg")).unwrap(),
        b"no origin"
    );
    let own = format!("http://localhost:{}", server.addr().port());
    let form = form_post(&creds, "same.jpg", b"same origin");
    let (status, body) = post_blocking(&server, Some(&own), form).await;
    assert!((200..300).contains(&status), "{status}: {body}");
    assert!(dir.path().join("uploads/same.jpg").is_file());

    // Signed with the secret that used to be documented: refused.
    let old = Credentials {
        access_key: creds.access_key.clone(),
        secret_key: "mediaflow-local-secret".into(),
    };
    let (status, body) = post_blocking(&server, None, form_post(&old, "old.jpg", b"x")).await;
    assert_eq!(status, 403, "{body}");
    assert!(!dir.path().join("uploads/old.jpg").exists());

    // Keys from a form are checked like any other.
    let (status, body) =
        post_blocking(&server, None, form_post(&creds, "../escape.jpg", b"x")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidArgument"), "{body}");
    assert!(!dir.path().join("escape.jpg").exists());
    server.stop().await;
}

async fn post_blocking(
    server: &LocalS3,
    origin: Option<&str>,
    form: (String, Vec<u8>),
) -> (u16, String) {
    let endpoint = server.endpoint();
    let origin = origin.map(str::to_string);
    tokio::task::spawn_blocking(move || post_to(&endpoint, origin.as_deref(), form))
        .await
        .unwrap()
}

/// POSTs `form` to the bucket URL, with `origin` if given: status and body.
fn post_to(
    endpoint: &str,
    origin: Option<&str>,
    (content_type, form): (String, Vec<u8>),
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = agent
        .post(format!("{endpoint}/uploads"))
        .header("content-type", content_type);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let mut resp = req.send(&form[..]).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn the_secret_file_is_made_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local-secret");
    let first = Credentials::load_or_create(&path).unwrap();
    assert_eq!(first.secret_key.len(), 40);
    assert!(first.secret_key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(Credentials::load_or_create(&path).unwrap(), first);
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // Copied in with wider permissions: narrowed.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Credentials::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let other = Credentials::load_or_create(&dir.path().join("other")).unwrap();
    assert_ne!(other.secret_key, first.secret_key);
    assert!(!format!("{first:?}").contains(&first.secret_key));
    std::fs::write(&path, "short\n").unwrap();
    let err = Credentials::load_or_create(&path).unwrap_err().to_string();
    assert!(
        err.contains("local-secret") && err.contains("delete it"),
        "{err}"
    );
}

/// Every event the server told, in order.
#[derive(Default)]
struct Heard(Mutex<Vec<Upload>>);

impl UploadObserver for Heard {
    fn uploaded(&self, upload: Upload) {
        self.0.lock().unwrap().push(upload);
    }
}

/// A request signed with SigV4 in its headers, as the SDKs sign them
/// (`path` needs no percent-encoding; `query` is one `name=` or empty):
/// status and body.
fn signed(server: &LocalS3, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, String) {
    let creds = server.credentials();
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let date = now[..10].replace('-', "");
    let amz_date = format!("{date}T{}Z", now[11..19].replace(':', ""));
    let host = server.addr().to_string();
    let payload = hex::encode(sha2::Sha256::digest(body));
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{payload}"
    );
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{}", creds.secret_key).as_bytes(), &date);
    for part in [REGION, "s3", "aws4_request"] {
        k = hmac(&k, part);
    }
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        creds.access_key,
        hex::encode(hmac(&k, &to_sign))
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = if query.is_empty() {
        format!("{}{path}", server.endpoint())
    } else {
        format!("{}{path}?{query}", server.endpoint())
    };
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-amz-content-sha256", &payload)
        .header("x-amz-date", &amz_date)
        .header("authorization", authorization)
        .body(body.to_vec())
        .unwrap();
    let mut resp = agent.run(request).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

fn batch(keys: &[&str]) -> Vec<u8> {
    let objects: String = keys
        .iter()
        .map(|k| format!("<Object><Key>{k}</Key></Object>"))
        .collect();
    format!("<Delete>{objects}</Delete>").into_bytes()
}

/// Puts, a DeleteObject and a DeleteObjects batch reach the observer in
/// the order the server finished them, deletes as `ObjectRemoved:Delete`
/// (size 0, no ETag) with fresh sequencers; refused deletes tell nothing.
#[test]
fn the_observer_hears_puts_then_deletes_in_order() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let heard = Arc::new(Heard::default());
    let server = rt
        .block_on(LocalS3::start_observed(
            dir.path(),
            "127.0.0.1:0".parse().unwrap(),
            &["uploads"],
            Some(heard.clone()),
            Credentials::random().unwrap(),
        ))
        .unwrap();

    for key in ["one.jpg", "two.jpg", "three.jpg"] {
        let (status, body) = signed(
            &server,
            "PUT",
            &format!("/uploads/{key}"),
            "",
            key.as_bytes(),
        );
        assert_eq!(status, 200, "PUT {key}: {body}");
    }
    let (status, body) = signed(&server, "DELETE", "/uploads/one.jpg", "", b"");
    assert_eq!(status, 204, "DELETE: {body}");
    let (status, body) = signed(
        &server,
        "POST",
        "/uploads",
        "delete=",
        &batch(&["three.jpg", "two.jpg"]),
    );
    assert_eq!(status, 200, "DeleteObjects: {body}");
    assert!(
        body.contains("<Deleted><Key>three.jpg</Key></Deleted>"),
        "{body}"
    );
    assert!(!dir.path().join("uploads/two.jpg").exists());

    // Refused before anything is deleted: a bad key in the batch, a
    // bucket that does not exist.
    let (status, body) = signed(
        &server,
        "POST",
        "/uploads",
        "delete=",
        &batch(&["fine.jpg", "a/../b.jpg"]),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = signed(&server, "DELETE", "/nowhere/one.jpg", "", b"");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NoSuchBucket"), "{body}");
    let (status, body) = signed(&server, "POST", "/nowhere", "delete=", &batch(&["a.jpg"]));
    assert_eq!(status, 404, "{body}");

    let heard = heard.0.lock().unwrap().clone();
    let seen: Vec<(&str, &str, u64, &str)> = heard
        .iter()
        .map(|u| (u.event_name, u.key.as_str(), u.size, u.etag.as_str()))
        .collect();
    let etag = |k: &str| mediaflow_store::md5_etag(k.as_bytes());
    let (e1, e2, e3) = (etag("one.jpg"), etag("two.jpg"), etag("three.jpg"));
    assert_eq!(
        seen,
        [
            ("ObjectCreated:Put", "one.jpg", 7, e1.as_str()),
            ("ObjectCreated:Put", "two.jpg", 7, e2.as_str()),
            ("ObjectCreated:Put", "three.jpg", 9, e3.as_str()),
            ("ObjectRemoved:Delete", "one.jpg", 0, ""),
            ("ObjectRemoved:Delete", "three.jpg", 0, ""),
            ("ObjectRemoved:Delete", "two.jpg", 0, ""),
        ]
    );
    assert!(heard.iter().all(|u| u.bucket == "uploads"));
    assert_eq!(
        mediaflow_s3_local::OBJECT_REMOVED_DELETE,
        "ObjectRemoved:Delete"
    );
    let sequencers: Vec<&str> = heard.iter().map(|u| u.sequencer.as_str()).collect();
    assert!(sequencers.windows(2).all(|w| w[0] < w[1]), "{sequencers:?}");
    rt.block_on(server.stop());
}
