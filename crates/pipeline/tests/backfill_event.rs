//! The message body the backfill state machine (infra: `BackfillAtScale`)
//! sends to the uploads queue for one S3 Inventory row, as
//! `infra/cdk/test/backfill.test.ts` renders it from the synthesized
//! definition's `States.Format` template: `tests/events/backfill-distributed-map.json`
//! (see `tests/events/README.md`). The functions must read it as the upload
//! of the inventoried object, with the key decoded from the report's
//! URL encoding.

use mediaflow_pipeline::{parse_body, S3Notification};

fn fixture() -> String {
    let path = format!(
        "{}/tests/events/backfill-distributed-map.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn distributed_map_message_is_one_upload_with_the_decoded_key() {
    let n = parse_body(&fixture()).unwrap();
    assert!(n.ignored.is_empty(), "{:?}", n.ignored);
    assert_eq!(n.objects.len(), 1, "{:?}", n.objects);
    let o = &n.objects[0];
    assert_eq!(o.bucket, "uploads");
    // `+` is a space, `%28`/`%29` parentheses, `%C3%A9` an é (UTF-8).
    assert_eq!(o.key, "photos/my photo (1) é.jpg");
    assert_eq!(o.etag.as_deref(), Some("fbc768f7e4814d35ac47c24765218529"));
    // The state machine leaves the size out; it is an upload all the same.
    assert_eq!(o.size, None);
    assert_eq!(o.version_id, None);
    assert_eq!(o.event_name, "ObjectCreated:Put");
    assert!(!o.is_removal());
}

#[test]
fn distributed_map_message_is_what_the_cli_backfill_sends_less_the_size() {
    // `mediaflow backfill --queue` sends S3Notification::backfill; the state
    // machine's message must read back as the same object.
    let from_map = parse_body(&fixture()).unwrap().objects.remove(0);
    let mut object = from_map.clone();
    object.size = Some(245_761);
    let from_cli = serde_json::to_string(&S3Notification::backfill(&object)).unwrap();
    let mut back = parse_body(&from_cli).unwrap().objects.remove(0);
    back.size = None;
    assert_eq!(back, from_map);
}
