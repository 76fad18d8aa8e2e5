//! The one HTTPS client every SDK client here uses: hyper with rustls on
//! `ring`, chosen here rather than through the SDK's `default-https-client`
//! (rustls on aws-lc-rs). Both are rustls with the same protocol versions,
//! cipher suites and the system's trust store; `ring` is a fraction of
//! aws-lc's code in the Lambda bootstrap and of its C build in every build
//! (ARCHITECTURE.md, Decisions: "The Lambda bootstraps are the release
//! profile").

use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::Builder;
use std::sync::OnceLock;

/// The shared client (one connection pool per process). An SDK client built
/// outside this crate (for [`SqsQueue::new`](crate::SqsQueue::new)) must be
/// given it: the SDK has no HTTP client of its own here.
pub fn https_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https()
        })
        .clone()
}
