//! The event parser against the fixture payloads in `tests/events/` (see its
//! README for where each came from and the expected table this follows).

use mediaflow_pipeline::{parse_body, parse_payload, Notification, SourceObject};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The SQS message bodies of a Lambda SQS event fixture, each parsed.
fn sqs_bodies(name: &str) -> Vec<Notification> {
    fixture(name)["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["eventSource"], "aws:sqs");
            parse_body(m["body"].as_str().unwrap()).unwrap()
        })
        .collect()
}

type Row<'a> = (&'a str, &'a str, u64, &'a str, Option<&'a str>, &'a str);

fn row(o: &SourceObject) -> Row<'_> {
    (
        &o.bucket,
        &o.key,
        o.size.unwrap(),
        o.etag.as_deref().unwrap(),
        o.version_id.as_deref(),
        &o.event_name,
    )
}

#[test]
fn moto_sqs_bodies_decode_awkward_keys() {
    let n = sqs_bodies("moto-sqs-keys.json");
    assert_eq!(n.len(), 6);
    assert!(n[0].objects.is_empty());
    assert!(
        n[0].ignored[0].contains("s3:TestEvent"),
        "{:?}",
        n[0].ignored
    );
    let rows: Vec<Row> = n[1..]
        .iter()
        .flat_map(|x| x.objects.iter().map(row))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "uploads",
                "my photo (1).jpg",
                64,
                "78107e6296c6c1e302d05ed6aa4f3cc8",
                None,
                "ObjectCreated:Put"
            ),
            (
                "uploads",
                "ünï/фото.jpg",
                44,
                "c251a3aebfd2e5f735a902868fb7929e",
                None,
                "ObjectCreated:Put"
            ),
            (
                "uploads",
                "a+b.jpg",
                24,
                "07ada8326cd1f6a03c77d2244db3e494",
                None,
                "ObjectCreated:Put"
            ),
            (
                "uploads",
                "plain.jpg",
                100,
                "57b97d99a899b45a0285566f566ded19",
                None,
                "ObjectCreated:Put"
            ),
        ]
    );
    assert!(n[4].objects.is_empty());
    assert_eq!(
        n[4].ignored,
        vec!["s3://uploads/folder/: zero-byte folder marker"]
    );
}

#[test]
fn direct_s3_put_event() {
    let n = parse_payload(&fixture("s3-put.json")).unwrap();
    assert!(n.ignored.is_empty());
    let rows: Vec<Row> = n.objects.iter().map(row).collect();
    assert_eq!(
        rows,
        vec![
            (
                "uploads",
                "my photo (1).jpg",
                245761,
                "fbc768f7e4814d35ac47c24765218529",
                Some("_UWLwxXDJM2iOGkr7pFHiG8eZ9Op0zv1"),
                "ObjectCreated:Put"
            ),
            (
                "uploads",
                "ünï/фото.jpg",
                1048576,
                "d0a6893297014752dd3cdaa866561ab1",
                Some("wFM0KoQPqYp1oLfDYkHLib3OPx3akCl1"),
                "ObjectCreated:Put"
            ),
            (
                "uploads",
                "a+b.jpg",
                83214,
                "b9c2a3faa2e2c53feb4ae1a2567e1011",
                Some("Urt_l_k4KXEGM7lkHGIxwNHIiD2bjkko"),
                "ObjectCreated:Put"
            ),
        ]
    );
}

#[test]
fn mixed_event_keeps_deletes_and_ignores_folders() {
    let n = parse_payload(&fixture("s3-mixed.json")).unwrap();
    assert_eq!(n.ignored.len(), 1, "{:?}", n.ignored);
    assert!(n.ignored[0].contains("photos/2024/: zero-byte folder marker"));
    let removed: Vec<&SourceObject> = n.objects.iter().filter(|o| o.is_removal()).collect();
    assert_eq!(removed.len(), 1, "{:?}", n.objects);
    assert_eq!(removed[0].event_name, "ObjectRemoved:Delete");
    let rows: Vec<Row> = n
        .objects
        .iter()
        .filter(|o| !o.is_removal())
        .map(row)
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "uploads",
                "big/pano.jpg",
                50331648,
                "a0fdfd53e9344a86b7472544f7c68a51-6",
                Some("4kbE1bdGmhXhKT2nUMgdBNEU7z.gYMLO"),
                "ObjectCreated:CompleteMultipartUpload"
            ),
            (
                "uploads",
                "photos/2024/copy of sunset.jpg",
                512000,
                "495dc4060e4b14c1167030fa33c6fba8",
                Some("L6vS4bC5v_SweQ582e7Pq2Zh2iGrcFfV"),
                "ObjectCreated:Copy"
            ),
        ]
    );
}

#[test]
fn sqs_test_event_is_ignored() {
    let n = sqs_bodies("sqs-s3-test-event.json");
    assert_eq!(n.len(), 1);
    assert!(n[0].objects.is_empty());
    assert_eq!(n[0].ignored, vec!["s3:TestEvent for bucket uploads"]);
}

#[test]
fn sqs_wrapped_puts() {
    let n = sqs_bodies("sqs-s3-put.json");
    let rows: Vec<Row> = n.iter().flat_map(|x| x.objects.iter().map(row)).collect();
    assert_eq!(
        rows,
        vec![
            (
                "uploads",
                "my photo (1).jpg",
                245761,
                "fbc768f7e4814d35ac47c24765218529",
                Some("wHpbirbJwPNy9BWZwdtrviGhT5QzyunX"),
                "ObjectCreated:Put"
            ),
            (
                "uploads",
                "a+b.jpg",
                83214,
                "b9c2a3faa2e2c53feb4ae1a2567e1011",
                Some("7Bf.Vbcl_9.AJ7tqUcH4esM7xU37yzE2"),
                "ObjectCreated:Put"
            ),
        ]
    );
    assert_eq!(
        n[0].objects[0].sequencer.as_deref(),
        Some("00674DF33655A0C2E1")
    );
}

#[test]
fn eventbridge_object_created() {
    let n = parse_payload(&fixture("eventbridge-object-created.json")).unwrap();
    let rows: Vec<Row> = n.objects.iter().map(row).collect();
    assert_eq!(
        rows,
        vec![(
            "uploads",
            "ünï/фото.jpg",
            1048576,
            "d0a6893297014752dd3cdaa866561ab1",
            Some("GSNAJa3bjkS3eNxz6ogNqC9_ekBYockR"),
            "Object Created"
        )]
    );
    // EventBridge keys are not form-decoded: a '+' stays a '+'.
    let mut v = fixture("eventbridge-object-created.json");
    v["detail"]["object"]["key"] = "a+b c.jpg".into();
    assert_eq!(parse_payload(&v).unwrap().objects[0].key, "a+b c.jpg");
}

#[test]
fn eventbridge_object_deleted_is_a_removal() {
    let n = parse_payload(&fixture("eventbridge-object-deleted.json")).unwrap();
    assert!(n.ignored.is_empty(), "{:?}", n.ignored);
    assert_eq!(n.objects.len(), 1);
    assert!(n.objects[0].is_removal());
    assert_eq!(n.objects[0].event_name, "Object Deleted");
}

#[test]
fn generated_notifications_parse_back() {
    let ev = mediaflow_pipeline::S3Notification::object_created(
        "ObjectCreated:Put",
        "us-east-1",
        "2026-11-23T00:00:00.000Z",
        "uploads",
        "ünï/my photo+1.jpg",
        10,
        "abc",
        "0000000000000001",
    );
    let json = serde_json::to_string(&ev).unwrap();
    assert!(
        json.contains(r#""key":"%C3%BCn%C3%AF/my+photo%2B1.jpg""#),
        "{json}"
    );
    let n = parse_body(&json).unwrap();
    assert_eq!(n.objects[0].key, "ünï/my photo+1.jpg");
    assert_eq!(n.objects[0].etag.as_deref(), Some("abc"));
}
