//! Fault injection for load and fault tests: the local server answers a
//! configurable share of requests as an overloaded S3 would.
//!
//! Each request gets a number in arrival order; a counter-based hash of that
//! number and the seed decides what happens to it, so a given seed always
//! gives the same sequence of decisions (which request gets which decision
//! depends on arrival order, which concurrent clients do not fix):
//!
//! - **SlowDown**: HTTP 503 with S3's XML error `SlowDown` (throttling);
//! - **503**: HTTP 503 with `ServiceUnavailable`;
//! - **drop**: the connection is closed with no response;
//! - **delay** (independently of the others): the request waits before it
//!   is handled (or refused).
//!
//! A refused or dropped request never reaches the store: it has no effect,
//! like S3 refusing it at the front door, so a client's retry is the only
//! copy that counts. [`FaultInjector::counts`] tells how many of each were
//! injected, and how many requests were SDK retries (their
//! `amz-sdk-request: attempt=N` header has N > 1).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use s3s::{Body, HttpError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What share of requests is answered badly. All shares are in `0.0..=1.0`;
/// `slowdown + error_503 + drop` must not exceed 1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Share answered `503 SlowDown`.
    pub slowdown: f64,
    /// Share answered `503 ServiceUnavailable`.
    pub error_503: f64,
    /// Share whose connection is closed without a response.
    pub drop: f64,
    /// Share delayed by [`Faults::delay_by`] first (independent of the above).
    pub delay: f64,
    /// How long a delayed request waits.
    pub delay_by: Duration,
    /// Seeds the decisions.
    pub seed: u64,
}

/// A fault configuration that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    #[error("fault share {name} = {value} is not between 0 and 1")]
    Share { name: &'static str, value: f64 },
    #[error("fault shares slowdown + 503 + drop add up to {0}, more than 1")]
    Sum(f64),
}

impl Faults {
    /// Whether any fault can be injected.
    pub fn any(&self) -> bool {
        self.slowdown > 0.0 || self.error_503 > 0.0 || self.drop > 0.0 || self.delay > 0.0
    }

    pub fn validate(&self) -> Result<(), FaultsError> {
        for (name, value) in [
            ("slowdown", self.slowdown),
            ("503", self.error_503),
            ("drop", self.drop),
            ("delay", self.delay),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::Share { name, value });
            }
        }
        let sum = self.slowdown + self.error_503 + self.drop;
        if sum > 1.0 + 1e-9 {
            return Err(FaultsError::Sum(sum));
        }
        Ok(())
    }

    /// The decision for request number `n` (0-based, in arrival order).
    pub fn decide(&self, n: u64) -> Decision {
        let h1 = splitmix64(self.seed ^ splitmix64(n));
        let h2 = splitmix64(h1);
        let (u, v) = (unit(h1), unit(h2));
        let action = if u < self.slowdown {
            Action::SlowDown
        } else if u < self.slowdown + self.error_503 {
            Action::Unavailable
        } else if u < self.slowdown + self.error_503 + self.drop {
            Action::Drop
        } else {
            Action::Serve
        };
        Decision {
            delay: v < self.delay && !self.delay_by.is_zero(),
            action,
        }
    }
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.any() {
            return f.write_str("none");
        }
        write!(
            f,
            "SlowDown {}%, 503 {}%, dropped {}%, delayed {}% by {} ms (seed {})",
            self.slowdown * 100.0,
            self.error_503 * 100.0,
            self.drop * 100.0,
            self.delay * 100.0,
            self.delay_by.as_millis(),
            self.seed
        )
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Wait [`Faults::delay_by`] first.
    pub delay: bool,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Serve,
    SlowDown,
    Unavailable,
    Drop,
}

/// The SplitMix64 finaliser: a well-mixed 64-bit hash of a counter.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash as a uniform number in `[0, 1)`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// How many requests were seen and what was done to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: u64,
    pub slowdown: u64,
    pub error_503: u64,
    pub dropped: u64,
    pub delayed: u64,
    /// Requests an AWS SDK marked as a retry (`amz-sdk-request: attempt=N`, N > 1).
    pub sdk_retries: u64,
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: {} SlowDown, {} 503, {} dropped, {} delayed; {} SDK retries",
            self.requests,
            self.slowdown,
            self.error_503,
            self.dropped,
            self.delayed,
            self.sdk_retries
        )
    }
}

/// Decides and counts; shared by every connection of one server.
#[derive(Debug)]
pub struct FaultInjector {
    faults: Faults,
    next: AtomicU64,
    slowdown: AtomicU64,
    error_503: AtomicU64,
    dropped: AtomicU64,
    delayed: AtomicU64,
    sdk_retries: AtomicU64,
}

impl FaultInjector {
    pub fn new(faults: Faults) -> Result<FaultInjector, FaultsError> {
        faults.validate()?;
        Ok(FaultInjector {
            faults,
            next: AtomicU64::new(0),
            slowdown: AtomicU64::new(0),
            error_503: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            sdk_retries: AtomicU64::new(0),
        })
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn counts(&self) -> FaultCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FaultCounts {
            requests: get(&self.next),
            slowdown: get(&self.slowdown),
            error_503: get(&self.error_503),
            dropped: get(&self.dropped),
            delayed: get(&self.delayed),
            sdk_retries: get(&self.sdk_retries),
        }
    }

    /// Numbers the request, decides its fate and counts it.
    fn admit<B>(&self, req: &Request<B>) -> (u64, Decision) {
        if sdk_attempt(req) > 1 {
            self.sdk_retries.fetch_add(1, Ordering::Relaxed);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let d = self.faults.decide(n);
        if d.delay {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
        let counter = match d.action {
            Action::Serve => None,
            Action::SlowDown => Some(&self.slowdown),
            Action::Unavailable => Some(&self.error_503),
            Action::Drop => Some(&self.dropped),
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        (n, d)
    }
}

/// The attempt number from `amz-sdk-request: attempt=2; max=3` (1 without it).
fn sdk_attempt<B>(req: &Request<B>) -> u32 {
    req.headers()
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .filter_map(|p| p.trim().strip_prefix("attempt="))
                .find_map(|n| n.parse().ok())
        })
        .unwrap_or(1)
}

/// S3's XML error document.
fn error_response(code: &str, message: &str, resource: &str, n: u64) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Resource>{}</Resource><RequestId>fault-{n:016X}</RequestId></Error>",
        xml_escape(resource)
    );
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    if let Ok(id) = hyper::header::HeaderValue::from_str(&format!("fault-{n:016X}")) {
        h.insert("x-amz-request-id", id);
    }
    resp
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Why a dropped request's connection ended (hyper closes the connection
/// without writing anything when the service fails).
#[derive(Debug, thiserror::Error)]
#[error("fault injection: connection dropped without a response")]
struct Dropped;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Wraps the hyper service `inner`: requests pass straight through without
/// an injector, and through [`FaultInjector`]'s decisions with one.
#[derive(Clone)]
pub struct FaultService<S> {
    inner: S,
    injector: Option<Arc<FaultInjector>>,
}

impl<S> FaultService<S> {
    pub fn new(inner: S, injector: Option<Arc<FaultInjector>>) -> FaultService<S> {
        FaultService { inner, injector }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for FaultService<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = HttpError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = BoxFuture<Result<Response<Body>, HttpError>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let Some(injector) = self.injector.clone() else {
            return Box::pin(self.inner.call(req));
        };
        let (n, decision) = injector.admit(&req);
        let inner = self.inner.clone();
        Box::pin(async move {
            if decision.delay {
                tokio::time::sleep(injector.faults.delay_by).await;
            }
            let resource = req.uri().path().to_string();
            match decision.action {
                Action::Serve => inner.call(req).await,
                Action::SlowDown => Ok(error_response(
                    "SlowDown",
                    "Please reduce your request rate.",
                    &resource,
                    n,
                )),
                Action::Unavailable => Ok(error_response(
                    "ServiceUnavailable",
                    "Service is unable to handle request.",
                    &resource,
                    n,
                )),
                Action::Drop => Err(HttpError::new(Box::new(Dropped))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(seed: u64) -> Faults {
        Faults {
            slowdown: 0.05,
            error_503: 0.05,
            drop: 0.02,
            delay: 0.1,
            delay_by: Duration::from_millis(200),
            seed,
        }
    }

    #[test]
    fn decisions_follow_the_seed_and_the_shares() {
        let f = faults(7);
        let a: Vec<_> = (0..1000).map(|n| f.decide(n)).collect();
        let b: Vec<_> = (0..1000).map(|n| f.decide(n)).collect();
        assert_eq!(a, b);
        let c: Vec<_> = (0..1000).map(|n| faults(8).decide(n)).collect();
        assert_ne!(a, c, "another seed, another sequence");

        let n = 200_000;
        let mut counts = [0u32; 4];
        let mut delayed = 0;
        for i in 0..n {
            let d = f.decide(i);
            counts[d.action as usize] += 1;
            delayed += u32::from(d.delay);
        }
        let share = |c: u32| f64::from(c) / n as f64;
        // Deterministic for this seed; the bounds only check the mapping.
        assert!((share(counts[Action::SlowDown as usize]) - 0.05).abs() < 0.005);
        assert!((share(counts[Action::Unavailable as usize]) - 0.05).abs() < 0.005);
        assert!((share(counts[Action::Drop as usize]) - 0.02).abs() < 0.003);
        assert!((share(delayed) - 0.1).abs() < 0.005);
    }

    #[test]
    fn no_faults_serve_everything() {
        let f = Faults::default();
        assert!(!f.any());
        assert!((0..10_000).all(|n| f.decide(n)
            == Decision {
                delay: false,
                action: Action::Serve
            }));
        assert_eq!(f.to_string(), "none");
    }

    #[test]
    fn invalid_shares_are_refused() {
        let mut f = faults(1);
        f.drop = 1.5;
        assert!(matches!(
            FaultInjector::new(f),
            Err(FaultsError::Share { name: "drop", .. })
        ));
        f.drop = f64::NAN;
        assert!(FaultInjector::new(f).is_err());
        f.drop = 0.5;
        f.slowdown = 0.6;
        let e = FaultInjector::new(f).unwrap_err();
        assert!(matches!(e, FaultsError::Sum(_)));
        assert!(e.to_string().contains("more than 1"), "{e}");
    }

    #[test]
    fn sdk_attempts_are_read_from_the_header() {
        let req = |v: &str| {
            Request::builder()
                .header("amz-sdk-request", v)
                .body(())
                .unwrap()
        };
        assert_eq!(sdk_attempt(&req("attempt=2; max=3")), 2);
        assert_eq!(sdk_attempt(&req("ttl=x; attempt=3; max=3")), 3);
        assert_eq!(sdk_attempt(&req("garbage")), 1);
        assert_eq!(sdk_attempt(&Request::new(())), 1);
    }
}
