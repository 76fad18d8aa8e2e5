//! Fault injection as a client sees it on the wire: S3's 503 error
//! documents, connections closed with no response, and counts that match.

use mediaflow_s3_local::{Credentials, FaultInjector, Faults, LocalS3};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(faults: Faults) -> (tempfile::TempDir, LocalS3, Arc<FaultInjector>) {
    let dir = tempfile::tempdir().unwrap();
    let injector = Arc::new(FaultInjector::new(faults).unwrap());
    let server = LocalS3::start_with_faults(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        &["uploads"],
        None,
        Credentials::random().unwrap(),
        Some(Arc::clone(&injector)),
        None,
    )
    .await
    .unwrap();
    (dir, server, injector)
}

/// Sends one raw HTTP/1.1 request and reads until the server closes.
async fn exchange(server: &LocalS3, request: &str) -> String {
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the server answers or closes within 20 s")
        .unwrap_or_default();
    String::from_utf8_lossy(&out).into_owned()
}

const GET: &str = "GET /uploads/a.jpg HTTP/1.1\r\nhost: x\r\namz-sdk-request: attempt=2; max=3\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn slowdown_is_s3s_throttling_error() {
    let (_dir, server, injector) = server(Faults {
        slowdown: 1.0,
        ..Faults::default()
    })
    .await;
    let reply = exchange(&server, GET).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("<Code>SlowDown</Code>"), "{reply}");
    assert!(
        reply.contains("<Resource>/uploads/a.jpg</Resource>"),
        "{reply}"
    );
    let c = injector.counts();
    assert_eq!((c.requests, c.slowdown, c.sdk_retries), (1, 1, 1));
    server.stop().await;
}

#[tokio::test]
async fn service_unavailable_has_its_own_code() {
    let (_dir, server, injector) = server(Faults {
        error_503: 1.0,
        ..Faults::default()
    })
    .await;
    let reply = exchange(&server, GET).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("<Code>ServiceUnavailable</Code>"), "{reply}");
    assert_eq!(injector.counts().error_503, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_request_gets_no_response_and_has_no_effect() {
    let (_dir, server, injector) = server(Faults {
        drop: 1.0,
        ..Faults::default()
    })
    .await;
    let put = "PUT /uploads/dropped.txt HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
    let reply = exchange(&server, put).await;
    assert_eq!(reply, "", "the connection closes with no bytes");
    let c = injector.counts();
    assert_eq!((c.requests, c.dropped, c.sdk_retries), (1, 1, 0));
    assert!(!server.root().join("uploads/dropped.txt").exists());
    server.stop().await;
}

#[tokio::test]
async fn without_faults_requests_reach_the_store() {
    let (_dir, server, injector) = server(Faults {
        delay: 1.0,
        delay_by: Duration::from_millis(10),
        ..Faults::default()
    })
    .await;
    // Unsigned, so S3's answer is an authentication error, not a fault.
    let reply = exchange(&server, GET).await;
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    let c = injector.counts();
    assert_eq!(
        (c.requests, c.delayed, c.slowdown + c.error_503 + c.dropped),
        (1, 1, 0)
    );
    server.stop().await;
}
