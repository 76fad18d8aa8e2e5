//! CloudWatch Embedded Metric Format: one JSON line per object, which
//! CloudWatch Logs turns into metrics without any API call.
//!
//! Format: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.
//! Namespace `mediaflow`, one dimension `Function`. The object's bucket, key,
//! outcome and error are properties: searchable in Logs Insights, not
//! dimensions (keys would explode metric cardinality).

use crate::run::{ObjectReport, Outcome};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The metric namespace.
pub const NAMESPACE: &str = "mediaflow";

const METRICS: &[(&str, &str)] = &[
    ("FetchMs", "Milliseconds"),
    ("DecodeMs", "Milliseconds"),
    ("ResizeMs", "Milliseconds"),
    ("EncodeMs", "Milliseconds"),
    ("WriteMs", "Milliseconds"),
    ("TotalMs", "Milliseconds"),
    ("BytesIn", "Bytes"),
    ("BytesOut", "Bytes"),
    ("Variants", "Count"),
    ("Processed", "Count"),
    ("Skipped", "Count"),
    ("Failed", "Count"),
];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The EMF line for one object report, for the function named `function`.
pub fn emf_line(function: &str, report: &ObjectReport) -> String {
    emf_line_at(function, report, now_ms())
}

fn emf_line_at(function: &str, report: &ObjectReport, timestamp_ms: u64) -> String {
    let t = &report.times;
    let (variants, bytes_out, outcome, processed, skipped, failed) = match &report.outcome {
        Outcome::Processed {
            variants,
            bytes_out,
            ..
        } => (*variants, *bytes_out, "processed", 1, 0, 0),
        Outcome::Skipped(_) => (0, 0, "skipped", 0, 1, 0),
        Outcome::Removed { .. } => (0, 0, "removed", 0, 0, 0),
        Outcome::Forwarded { .. } => (0, 0, "forwarded", 0, 0, 0),
        Outcome::Failed(_) => (0, 0, "failed", 0, 0, 1),
    };
    let definitions: Vec<Value> = METRICS
        .iter()
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }]
        }),
    );
    line.insert("Function".into(), json!(function));
    for (name, value) in [
        ("FetchMs", round2(t.fetch_ms)),
        ("DecodeMs", round2(t.decode_ms)),
        ("ResizeMs", round2(t.resize_ms)),
        ("EncodeMs", round2(t.encode_ms)),
        ("WriteMs", round2(t.write_ms)),
        ("TotalMs", round2(t.total_ms)),
    ] {
        line.insert(name.into(), json!(value));
    }
    line.insert("BytesIn".into(), json!(report.bytes_in));
    line.insert("BytesOut".into(), json!(bytes_out));
    line.insert("Variants".into(), json!(variants));
    line.insert("Processed".into(), json!(processed));
    line.insert("Skipped".into(), json!(skipped));
    line.insert("Failed".into(), json!(failed));
    line.insert("bucket".into(), json!(report.bucket));
    line.insert("key".into(), json!(report.key));
    line.insert("outcome".into(), json!(outcome));
    match &report.outcome {
        Outcome::Skipped(why) => {
            line.insert("reason".into(), json!(why.as_str()));
        }
        Outcome::Failed(e) => {
            line.insert("error".into(), json!(e.to_string()));
            line.insert("category".into(), json!(e.category.as_str()));
            line.insert("retryable".into(), json!(!e.is_permanent()));
        }
        Outcome::Removed { outputs, .. } => {
            line.insert("removed_outputs".into(), json!(outputs));
        }
        Outcome::Forwarded { queue } => {
            line.insert("queue".into(), json!(queue));
        }
        Outcome::Processed { .. } => {}
    }
    Value::Object(line).to_string()
}

/// The EMF line reporting a cold start: from process start to the first
/// event handled.
pub fn cold_start_line(function: &str, init_ms: f64) -> String {
    json!({
        "_aws": {
            "Timestamp": now_ms(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": "ColdStartMs", "Unit": "Milliseconds"}],
            }]
        },
        "Function": function,
        "ColdStartMs": round2(init_ms),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::StageTimes;
    use crate::{ErrorKind, ObjectError, Retry};

    fn report(outcome: Outcome) -> ObjectReport {
        ObjectReport {
            bucket: "uploads".into(),
            key: "ünï/фото.jpg".into(),
            outcome,
            times: StageTimes {
                fetch_ms: 1.234,
                decode_ms: 20.0,
                resize_ms: 5.0,
                encode_ms: 30.0,
                write_ms: 4.0,
                total_ms: 61.5,
            },
            bytes_in: 1000,
        }
    }

    #[test]
    fn every_declared_metric_has_a_value() {
        let line = emf_line_at(
            "on-upload",
            &report(Outcome::Processed {
                manifest_key: "manifest/x.json".into(),
                variants: 8,
                bytes_out: 500,
            }),
            1,
        );
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        let defs = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        assert_eq!(defs.len(), METRICS.len());
        for d in defs {
            let name = d["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name} has no number");
        }
        assert_eq!(v["FetchMs"], json!(1.23));
        assert_eq!(v["Variants"], json!(8));
        assert_eq!(v["Processed"], json!(1));
        assert_eq!(v["key"], json!("ünï/фото.jpg"));
        assert_eq!(v["_aws"]["Timestamp"], json!(1));
        assert_eq!(v["Function"], json!("on-upload"));
    }

    #[test]
    fn failures_carry_the_reason() {
        let line = emf_line_at(
            "on-upload",
            &report(Outcome::Failed(ObjectError {
                object: "s3://uploads/x.jpg".into(),
                category: ErrorKind::Corrupt,
                reason: "truncated".into(),
                retry: Retry::Permanent,
            })),
            1,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Failed"], json!(1));
        assert_eq!(v["error"], json!("s3://uploads/x.jpg: corrupt: truncated"));
        assert_eq!(v["retryable"], json!(false));
    }
}
