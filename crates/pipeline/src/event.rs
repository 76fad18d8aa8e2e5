//! S3 event notifications and EventBridge "Object Created" events, parsed
//! leniently into [`SourceObject`]s.
//!
//! The Lambda envelope (an SQS batch, say) is the function's business; this
//! module reads what is inside: a payload that is an S3 notification
//! (`{"Records":[{"s3":…}]}`), an S3 test event (`{"Event":"s3:TestEvent"}`),
//! or an EventBridge event from `aws.s3`. Only the fields mediaflow uses are
//! required; everything else is optional (moto's records, for one, lack
//! `userIdentity`, `requestParameters`, `responseElements`, `versionId` and
//! `sequencer`) and unknown fields are ignored.
//!
//! Keys in S3 notifications are form-encoded (`+` is a space, `%2B` a plus):
//! [`decode_s3_key`] undoes that. EventBridge keys are taken as they are:
//! AWS documents no encoding for them and its examples are plain.

use mediaflow_store::unquote_etag;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object to process: where it is and what the event said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    pub size: Option<u64>,
    /// The ETag from the event, without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// `ObjectCreated:Put`, `Object Created`, …
    pub event_name: String,
    pub sequencer: Option<String>,
}

impl SourceObject {
    /// Whether the event says the object was removed (`ObjectRemoved:*`,
    /// `LifecycleExpiration:*`, EventBridge's `Object Deleted`) rather than
    /// created.
    pub fn is_removal(&self) -> bool {
        let e = self.event_name.as_str();
        e.starts_with("ObjectRemoved:")
            || e.starts_with("LifecycleExpiration:")
            || e == "Object Deleted"
    }
}

impl std::fmt::Display for SourceObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Escaped: this is how a key appears in logs and error lines, and a
        // key with a newline must not forge a line.
        f.write_str(&mediaflow_store::object_url(&self.bucket, &self.key))
    }
}

/// What a payload asked for: objects to process, and records deliberately
/// ignored (with why, for the logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    pub objects: Vec<SourceObject>,
    pub ignored: Vec<String>,
}

/// A payload that is not an event mediaflow understands. Permanent: the
/// same bytes will never parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    #[error(
        "the event is not an S3 notification, an S3 test event or an EventBridge S3 event ({0})"
    )]
    Unrecognised(String),
    #[error("malformed S3 notification record {index}: {reason}")]
    BadRecord { index: usize, reason: String },
    #[error("malformed EventBridge event: {0}")]
    BadEventBridge(String),
}

/// `{"Records": [...]}` as S3 sends it to Lambda, SQS, SNS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Notification {
    #[serde(rename = "Records")]
    pub records: Vec<S3Record>,
}

/// One notification record. Optional fields are skipped when absent, so a
/// record built by `mediaflow dev` serialises with exactly what it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_elements: Option<Value>,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_schema_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_id: Option<String>,
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Bucket {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_identity: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Object {
    /// Form-encoded, as S3 sends it.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

/// Form-encodes a key the way S3 does in notifications: unreserved bytes
/// and `/` stay, a space becomes `+`, everything else `%XX` (see
/// [`mediaflow_store::form_encode_key`]).
pub fn encode_s3_key(key: &str) -> String {
    mediaflow_store::form_encode_key(key)
}

/// Decodes a form-encoded key from an S3 notification: `+` becomes a space
/// first, then `%XX` sequences are decoded (so `%2B` is a literal `+`).
pub fn decode_s3_key(raw: &str) -> Result<String, String> {
    mediaflow_store::form_decode_key(raw)
}

fn is_folder_marker(key: &str, size: Option<u64>) -> bool {
    key.ends_with('/') && size.unwrap_or(0) == 0
}

fn from_s3_notification(v: &Value) -> Result<Notification, EventError> {
    let records = v["Records"]
        .as_array()
        .ok_or_else(|| EventError::BadRecord {
            index: 0,
            reason: "Records is not an array".into(),
        })?;
    let mut out = Notification::default();
    for (index, raw) in records.iter().enumerate() {
        let rec: S3Record =
            serde_json::from_value(raw.clone()).map_err(|e| EventError::BadRecord {
                index,
                reason: e.to_string(),
            })?;
        let key = decode_s3_key(&rec.s3.object.key)
            .map_err(|reason| EventError::BadRecord { index, reason })?;
        let bucket = rec.s3.bucket.name;
        let handled = ["ObjectCreated:", "ObjectRemoved:", "LifecycleExpiration:"]
            .iter()
            .any(|p| rec.event_name.starts_with(p));
        if !handled {
            out.ignored.push(format!(
                "{}: {} is not an object-created or object-removed event",
                mediaflow_store::object_url(&bucket, &key),
                rec.event_name
            ));
        } else if is_folder_marker(&key, rec.s3.object.size) {
            out.ignored.push(format!(
                "{}: zero-byte folder marker",
                mediaflow_store::object_url(&bucket, &key)
            ));
        } else {
            out.objects.push(SourceObject {
                bucket,
                key,
                size: rec.s3.object.size,
                etag: unquote_etag(rec.s3.object.e_tag),
                version_id: rec.s3.object.version_id,
                event_name: rec.event_name,
                sequencer: rec.s3.object.sequencer,
            });
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct EbDetail {
    bucket: EbBucket,
    object: EbObject,
}

#[derive(Deserialize)]
struct EbBucket {
    name: String,
}

#[derive(Deserialize)]
struct EbObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default, rename = "version-id")]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

fn from_eventbridge(v: &Value, detail_type: &str) -> Result<Notification, EventError> {
    let detail: EbDetail = serde_json::from_value(v["detail"].clone())
        .map_err(|e| EventError::BadEventBridge(e.to_string()))?;
    let (bucket, key) = (detail.bucket.name, detail.object.key);
    let mut out = Notification::default();
    if detail_type != "Object Created" && detail_type != "Object Deleted" {
        out.ignored.push(format!(
            "{}: {detail_type:?} is not an object-created or object-deleted event",
            mediaflow_store::object_url(&bucket, &key)
        ));
    } else if is_folder_marker(&key, detail.object.size) {
        out.ignored.push(format!(
            "{}: zero-byte folder marker",
            mediaflow_store::object_url(&bucket, &key)
        ));
    } else {
        out.objects.push(SourceObject {
            bucket,
            key,
            size: detail.object.size,
            etag: unquote_etag(detail.object.etag),
            version_id: detail.object.version_id,
            event_name: detail_type.to_string(),
            sequencer: detail.object.sequencer,
        });
    }
    Ok(out)
}

/// Reads one payload: an S3 notification, an S3 test event, or an
/// EventBridge event from `aws.s3`.
pub fn parse_payload(v: &Value) -> Result<Notification, EventError> {
    if v.get("Records").is_some() {
        return from_s3_notification(v);
    }
    if v["Event"].as_str() == Some("s3:TestEvent") {
        let bucket = v["Bucket"].as_str().unwrap_or("?");
        return Ok(Notification {
            objects: vec![],
            ignored: vec![format!("s3:TestEvent for bucket {bucket}")],
        });
    }
    if v["source"].as_str() == Some("aws.s3") {
        if let Some(detail_type) = v["detail-type"].as_str() {
            return from_eventbridge(v, detail_type);
        }
    }
    let shape = match v {
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).take(6).collect();
            format!("an object with keys {keys:?}")
        }
        other => format!("a JSON {}", json_type(other)),
    };
    Err(EventError::Unrecognised(shape))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads one message body (an SQS message, say) as a payload.
pub fn parse_body(body: &str) -> Result<Notification, EventError> {
    let v: Value = serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    parse_payload(&v)
}

impl S3Notification {
    /// One record for `object` as the pipeline knows it, key form-encoded:
    /// what on-upload sends to the video queue when it forwards a video
    /// (the configuration id says so).
    pub fn forwarded(object: &SourceObject) -> S3Notification {
        S3Notification::created(object, "mediaflow-forwarded-video")
    }

    /// What `mediaflow backfill` sends to the functions' queue for an
    /// object that needs work: the record the functions read for an
    /// upload, with the configuration id `mediaflow-backfill`.
    pub fn backfill(object: &SourceObject) -> S3Notification {
        S3Notification::created(object, "mediaflow-backfill")
    }

    fn created(object: &SourceObject, configuration_id: &str) -> S3Notification {
        S3Notification {
            records: vec![S3Record {
                event_version: Some("2.1".into()),
                event_source: Some("aws:s3".into()),
                aws_region: None,
                event_time: None,
                // Whatever delivered the original event (an EventBridge
                // "Object Created", a removal event whose key exists again),
                // a forwarded or backfilled object exists: the name every
                // parser reads as such.
                event_name: "ObjectCreated:Put".into(),
                user_identity: None,
                request_parameters: None,
                response_elements: None,
                s3: S3Entity {
                    s3_schema_version: Some("1.0".into()),
                    configuration_id: Some(configuration_id.into()),
                    bucket: S3Bucket {
                        name: object.bucket.clone(),
                        owner_identity: None,
                        arn: None,
                    },
                    object: S3Object {
                        key: encode_s3_key(&object.key),
                        size: object.size,
                        e_tag: object.etag.clone(),
                        version_id: object.version_id.clone(),
                        sequencer: object.sequencer.clone(),
                    },
                },
            }],
        }
    }

    /// One `ObjectCreated:*` record as S3 would send it for an upload, with
    /// the key form-encoded. Used by `mediaflow dev` and tests.
    #[allow(clippy::too_many_arguments)]
    pub fn object_created(
        event_name: &str,
        region: &str,
        event_time: &str,
        bucket: &str,
        key: &str,
        size: u64,
        etag: &str,
        sequencer: &str,
    ) -> S3Notification {
        S3Notification {
            records: vec![S3Record {
                event_version: Some("2.1".into()),
                event_source: Some("aws:s3".into()),
                aws_region: Some(region.into()),
                event_time: Some(event_time.into()),
                event_name: event_name.into(),
                user_identity: Some(serde_json::json!({"principalId": "mediaflow-local"})),
                request_parameters: Some(serde_json::json!({"sourceIPAddress": "127.0.0.1"})),
                response_elements: Some(serde_json::json!({
                    "x-amz-request-id": sequencer,
                    "x-amz-id-2": "mediaflow-local"
                })),
                s3: S3Entity {
                    s3_schema_version: Some("1.0".into()),
                    configuration_id: Some("mediaflow-uploads".into()),
                    bucket: S3Bucket {
                        name: bucket.into(),
                        owner_identity: Some(serde_json::json!({"principalId": "mediaflow-local"})),
                        arn: Some(format!("arn:aws:s3:::{bucket}")),
                    },
                    object: S3Object {
                        key: encode_s3_key(key),
                        size: Some(size),
                        e_tag: Some(etag.into()),
                        version_id: None,
                        sequencer: Some(sequencer.into()),
                    },
                },
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_form_encoding() {
        for key in [
            "my photo (1).jpg",
            "ünï/фото.jpg",
            "a+b.jpg",
            "100% real;=&?.png",
            "x/y z/",
        ] {
            let enc = encode_s3_key(key);
            assert!(!enc.contains(' '), "{enc}");
            assert_eq!(decode_s3_key(&enc).unwrap(), key, "{enc}");
        }
        assert_eq!(encode_s3_key("my photo (1).jpg"), "my+photo+%281%29.jpg");
        assert_eq!(encode_s3_key("a+b.jpg"), "a%2Bb.jpg");
        assert_eq!(decode_s3_key("a%2Bb.jpg").unwrap(), "a+b.jpg");
        assert_eq!(decode_s3_key("a+b.jpg").unwrap(), "a b.jpg");
        assert!(decode_s3_key("%FF.jpg").is_err());
    }

    /// A video forwarded from an EventBridge delivery (event name "Object
    /// Created") or a removal event must still read as a created object.
    #[test]
    fn forwards_read_as_created_objects() {
        for event_name in [
            "Object Created",
            "ObjectRemoved:Delete",
            "ObjectCreated:Copy",
        ] {
            let object = SourceObject {
                bucket: "uploads".into(),
                key: "clips/a+b c.Mp4".into(),
                size: Some(9),
                etag: Some("e".into()),
                version_id: None,
                event_name: event_name.into(),
                sequencer: None,
            };
            let body = serde_json::to_string(&S3Notification::forwarded(&object)).unwrap();
            let n = parse_body(&body).unwrap();
            assert!(n.ignored.is_empty(), "{event_name}: {:?}", n.ignored);
            assert_eq!(n.objects.len(), 1);
            assert!(!n.objects[0].is_removal(), "{event_name}");
            assert_eq!(n.objects[0].key, object.key);
        }
    }

    #[test]
    fn unknown_payloads_are_named() {
        let e = parse_body(r#"{"hello": 1}"#).unwrap_err();
        assert!(e.to_string().contains("\"hello\""), "{e}");
        assert!(matches!(
            parse_body("not json"),
            Err(EventError::NotJson(_))
        ));
        assert!(matches!(
            parse_body("[1]"),
            Err(EventError::Unrecognised(_))
        ));
        let e = parse_body(r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#).unwrap_err();
        assert!(matches!(e, EventError::BadRecord { index: 0, .. }), "{e}");
    }
}
