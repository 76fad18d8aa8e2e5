//! The S3 service `LocalS3` serves: `s3s-fs` with real S3's bucket rules and
//! an upload observer.
//!
//! `s3s-fs` creates missing parent directories, so on its own a PUT to a
//! bucket that does not exist would create it; S3 answers `NoSuchBucket`,
//! and so does this wrapper. `s3s-fs` also turns keys into file paths, so
//! `uploads/../media/x.jpg` or `uploads/../../secret` would name files
//! outside the bucket: every key (in the path, a POST form, a copy source,
//! a batch delete) is checked first, and one that a file path cannot hold
//! faithfully (`.`/`..`/empty segments, control characters) is refused with
//! S3's `InvalidArgument`, one over 1,024 bytes with `KeyTooLongError`.
//! After each completed upload and each delete it tells the
//! [`UploadObserver`] (this is how `mediaflow dev` turns them into S3
//! notification events).
//!
//! Listings asked for with `encoding-type=url` (which boto3 and the AWS
//! CLI always ask for, then form-decode) come back form-encoded as S3
//! sends them (`encode_listing`, `encode_listing_v1`); `s3s-fs` echoes
//! the encoding type but returns the names plain, so a key `x+y.png` would
//! list as `x y.png`. `s3s-fs` does not serve ListObjectVersions (it keeps
//! no versions): that answers `NotImplemented`.

use mediaflow_store::{escape_key, form_encode_key, path_key_problem, MAX_KEY_BYTES};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One completed upload or delete, with what an S3 event notification
/// carries. (The name is older than the deletes.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub bucket: String,
    /// The plain (decoded) key.
    pub key: String,
    /// The object's size; 0 for a delete.
    pub size: u64,
    /// The ETag without quotes; empty for a delete.
    pub etag: String,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`,
    /// `ObjectCreated:Copy`, or [`OBJECT_REMOVED_DELETE`] for a DeleteObject
    /// or each key a DeleteObjects batch reports deleted.
    pub event_name: &'static str,
    /// Increases with every event, as S3's `sequencer` does per key (hex).
    pub sequencer: String,
}

/// The event name of a delete (S3's, for an unversioned bucket).
pub const OBJECT_REMOVED_DELETE: &str = "ObjectRemoved:Delete";

/// Told about every completed upload and delete, after its response is
/// ready, in the order the server finished them. Must not block: hand the
/// work to a channel or task.
pub trait UploadObserver: Send + Sync + 'static {
    fn uploaded(&self, upload: Upload);
}

/// `s3s-fs` with bucket checks, S3's listing encoding and an optional
/// upload (and delete) observer.
pub struct LocalService {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
    observer: Option<Arc<dyn UploadObserver>>,
    sequence: AtomicU64,
}

impl std::fmt::Debug for LocalService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalService")
            .field("root", &self.root)
            .finish()
    }
}

impl LocalService {
    pub fn new(
        root: &Path,
        observer: Option<Arc<dyn UploadObserver>>,
    ) -> Result<LocalService, crate::Error> {
        Ok(LocalService {
            inner: crate::file_store(root)?,
            root: root.to_path_buf(),
            observer,
            sequence: AtomicU64::new(0),
        })
    }

    fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        let ok = !bucket.is_empty()
            && !bucket.contains(['/', '\\'])
            && bucket != "."
            && bucket != ".."
            && self.root.join(bucket).is_dir();
        if ok {
            Ok(())
        } else {
            Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist"
            ))
        }
    }

    /// Tells the observer that `key` was created: its size from the file.
    fn notify(&self, bucket: &str, key: &str, etag: Option<&ETag>, event_name: &'static str) {
        if self.observer.is_none() {
            return;
        }
        let size = std::fs::metadata(self.root.join(bucket).join(key))
            .map(|m| m.len())
            .unwrap_or(0);
        let etag = etag.map(|e| e.value().to_string()).unwrap_or_default();
        self.tell(bucket, key, size, etag, event_name);
    }

    /// Tells the observer that `key` was deleted.
    fn notify_removed(&self, bucket: &str, key: &str) {
        self.tell(bucket, key, 0, String::new(), OBJECT_REMOVED_DELETE);
    }

    fn tell(&self, bucket: &str, key: &str, size: u64, etag: String, event_name: &'static str) {
        let Some(observer) = &self.observer else {
            return;
        };
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        observer.uploaded(Upload {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag,
            event_name,
            sequencer: format!("{n:018X}"),
        });
    }
}

/// Whether a listing was asked for with `encoding-type=url`.
fn url_encoded(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

fn encode_in_place(value: &mut Option<String>) {
    if let Some(v) = value {
        *v = form_encode_key(v);
    }
}

fn encode_entries(contents: Option<&mut Vec<Object>>, prefixes: Option<&mut Vec<CommonPrefix>>) {
    for object in contents.into_iter().flatten() {
        encode_in_place(&mut object.key);
    }
    for prefix in prefixes.into_iter().flatten() {
        encode_in_place(&mut prefix.prefix);
    }
}

/// A ListObjectsV2 answer as S3 sends it for `encoding-type=url` (and
/// unchanged otherwise): every `Key`, `Prefix`, `Delimiter`, `StartAfter`
/// and `CommonPrefixes/Prefix` form-encoded ([`form_encode_key`]; botocore
/// reverses it with `unquote_plus`). The continuation tokens are opaque
/// and stay as they are, as botocore expects.
fn encode_listing(out: &mut ListObjectsV2Output) {
    if !url_encoded(out.encoding_type.as_ref()) {
        return;
    }
    encode_in_place(&mut out.prefix);
    encode_in_place(&mut out.delimiter);
    encode_in_place(&mut out.start_after);
    encode_entries(out.contents.as_mut(), out.common_prefixes.as_mut());
}

/// A ListObjects (v1) answer as S3 sends it for `encoding-type=url`:
/// every `Key`, `Prefix`, `Delimiter`, `Marker`, `NextMarker` and
/// `CommonPrefixes/Prefix` form-encoded. (botocore decodes all of them
/// but the `Prefix`, so a boto3 caller sees that one encoded, as from S3.)
fn encode_listing_v1(out: &mut ListObjectsOutput) {
    if !url_encoded(out.encoding_type.as_ref()) {
        return;
    }
    encode_in_place(&mut out.prefix);
    encode_in_place(&mut out.delimiter);
    encode_in_place(&mut out.marker);
    encode_in_place(&mut out.next_marker);
    encode_entries(out.contents.as_mut(), out.common_prefixes.as_mut());
}

/// Refuses `key` if S3 would (over 1,024 bytes) or if `s3s-fs` would give
/// it another meaning as a file path.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(s3_error!(
            KeyTooLongError,
            "Your key is too long: {} bytes, over S3's {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    match path_key_problem(key) {
        None => Ok(()),
        Some(why) => Err(s3_error!(
            InvalidArgument,
            "Object key \"{}\" {why}; the local S3 server keeps objects as files and refuses such keys",
            escape_key(key)
        )),
    }
}

/// Writes the `S3` impl: the listed operations forwarded to `s3s-fs` as
/// they are (`keyed` ones after [`check_key`] on their `key`), then the
/// hand-written ones (`async_trait` must see them all in one impl block,
/// after this macro has expanded).
macro_rules! s3_impl {
    (
        delegate { $($name:ident: $input:ty => $output:ty;)* }
        keyed { $($kname:ident: $kinput:ty => $koutput:ty;)* }
        $($custom:tt)*
    ) => {
        #[async_trait::async_trait]
        impl S3 for LocalService {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.inner.$name(req).await
                }
            )*
            $(
                async fn $kname(&self, req: S3Request<$kinput>) -> S3Result<S3Response<$koutput>> {
                    check_key(&req.input.key)?;
                    self.inner.$kname(req).await
                }
            )*
            $($custom)*
        }
    };
}

/// The key of a copy source in this server (access points are not served).
fn check_copy_source(source: &CopySource) -> S3Result<()> {
    match source {
        CopySource::Bucket { key, .. } => check_key(key),
        _ => Err(s3_error!(
            NotImplemented,
            "the local S3 server copies only from bucket/key sources"
        )),
    }
}

s3_impl! {
    delegate {
        create_bucket: CreateBucketInput => CreateBucketOutput;
        delete_bucket: DeleteBucketInput => DeleteBucketOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
    }
    keyed {
        get_object: GetObjectInput => GetObjectOutput;
        head_object: HeadObjectInput => HeadObjectOutput;
        upload_part: UploadPartInput => UploadPartOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        check_key(&req.input.key)?;
        self.require_bucket(&req.input.bucket)?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.inner.delete_object(req).await?;
        self.notify_removed(&bucket, &key);
        Ok(resp)
    }

    /// One refused key refuses the whole batch, before anything is deleted.
    /// The observer hears of each key the answer reports deleted.
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        for object in &req.input.delete.objects {
            check_key(&object.key)?;
        }
        self.require_bucket(&req.input.bucket)?;
        let bucket = req.input.bucket.clone();
        let resp = self.inner.delete_objects(req).await?;
        for deleted in resp.output.deleted.iter().flatten() {
            if let Some(key) = &deleted.key {
                self.notify_removed(&bucket, key);
            }
        }
        Ok(resp)
    }

    /// `s3s-fs` lists v1 through its v2 and leaves the `Marker` out; S3
    /// echoes it.
    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let marker = req.input.marker.clone();
        let mut resp = self.inner.list_objects(req).await?;
        if resp.output.marker.is_none() {
            resp.output.marker = marker;
        }
        encode_listing_v1(&mut resp.output);
        Ok(resp)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        check_key(&req.input.key)?;
        check_copy_source(&req.input.copy_source)?;
        self.inner.upload_part_copy(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        check_key(&req.input.key)?;
        self.require_bucket(&req.input.bucket)?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.inner.put_object(req).await?;
        self.notify(&bucket, &key, resp.output.e_tag.as_ref(), "ObjectCreated:Put");
        Ok(resp)
    }

    /// `s3s-fs` leaves ETags out of listings; S3 always has them, and
    /// backfills rely on them, so fill them in from each object's HEAD
    /// (with the plain keys, before [`encode_listing`]).
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let bucket = req.input.bucket.clone();
        let template = req.clone().map_input(|_| ());
        let mut resp = self.inner.list_objects_v2(req).await?;
        for object in resp.output.contents.iter_mut().flatten() {
            if object.e_tag.is_some() {
                continue;
            }
            let Some(key) = object.key.clone() else { continue };
            let input = HeadObjectInput::builder()
                .bucket(bucket.clone())
                .key(key)
                .build()
                .map_err(|e| s3_error!(InternalError, "{e}"))?;
            let head = self.inner.head_object(template.clone().map_input(|()| input)).await?;
            object.e_tag = head.output.e_tag;
        }
        encode_listing(&mut resp.output);
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        check_key(&req.input.key)?;
        self.require_bucket(&req.input.bucket)?;
        self.inner.create_multipart_upload(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        check_key(&req.input.key)?;
        self.require_bucket(&req.input.bucket)?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.inner.complete_multipart_upload(req).await?;
        self.notify(
            &bucket,
            &key,
            resp.output.e_tag.as_ref(),
            "ObjectCreated:CompleteMultipartUpload",
        );
        Ok(resp)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        check_key(&req.input.key)?;
        check_copy_source(&req.input.copy_source)?;
        self.require_bucket(&req.input.bucket)?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.inner.copy_object(req).await?;
        let etag = resp
            .output
            .copy_object_result
            .as_ref()
            .and_then(|r| r.e_tag.as_ref());
        self.notify(&bucket, &key, etag, "ObjectCreated:Copy");
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    fn url() -> Option<EncodingType> {
        Some(EncodingType::from_static(EncodingType::URL))
    }

    fn object(key: &str) -> Object {
        Object {
            key: Some(key.to_string()),
            ..Default::default()
        }
    }

    fn prefix(p: &str) -> CommonPrefix {
        CommonPrefix {
            prefix: Some(p.to_string()),
        }
    }

    fn keys(contents: Option<&Vec<Object>>) -> Vec<&str> {
        contents
            .into_iter()
            .flatten()
            .filter_map(|o| o.key.as_deref())
            .collect()
    }

    fn prefixes(common: Option<&Vec<CommonPrefix>>) -> Vec<&str> {
        common
            .into_iter()
            .flatten()
            .filter_map(|p| p.prefix.as_deref())
            .collect()
    }

    #[test]
    fn listings_asked_for_url_encoding_are_form_encoded_as_s3_does() {
        let v2 = || ListObjectsV2Output {
            encoding_type: url(),
            prefix: Some("a b/".into()),
            delimiter: Some("/".into()),
            start_after: Some("x+y.png".into()),
            continuation_token: Some("100%.png".into()),
            next_continuation_token: Some("ünï/фото.png".into()),
            contents: Some(vec![object("a b/x+y.png"), object("a b/100%.png")]),
            common_prefixes: Some(vec![prefix("a b/ünï/"), prefix("a b/what?#/")]),
            ..Default::default()
        };
        let mut out = v2();
        encode_listing(&mut out);
        assert_eq!(
            keys(out.contents.as_ref()),
            ["a+b/x%2By.png", "a+b/100%25.png"]
        );
        assert_eq!(
            prefixes(out.common_prefixes.as_ref()),
            ["a+b/%C3%BCn%C3%AF/", "a+b/what%3F%23/"]
        );
        assert_eq!(out.prefix.as_deref(), Some("a+b/"));
        assert_eq!(out.delimiter.as_deref(), Some("/"));
        assert_eq!(out.start_after.as_deref(), Some("x%2By.png"));
        // Continuation tokens are opaque: botocore sends them back as given.
        assert_eq!(out.continuation_token.as_deref(), Some("100%.png"));
        assert_eq!(out.next_continuation_token.as_deref(), Some("ünï/фото.png"));

        // Not asked for (or another encoding): the names as they are.
        for encoding in [None, Some(EncodingType::from_static("base64"))] {
            let mut out = ListObjectsV2Output {
                encoding_type: encoding,
                ..v2()
            };
            encode_listing(&mut out);
            assert_eq!(keys(out.contents.as_ref()), ["a b/x+y.png", "a b/100%.png"]);
            assert_eq!(out.start_after.as_deref(), Some("x+y.png"));
        }

        let v1 = || ListObjectsOutput {
            encoding_type: url(),
            prefix: Some("x+".into()),
            delimiter: Some(" ".into()),
            marker: Some("hash#1.png".into()),
            next_marker: Some("x+y.png".into()),
            contents: Some(vec![object("x+y.png")]),
            common_prefixes: Some(vec![prefix("x+ ")]),
            ..Default::default()
        };
        let mut out = v1();
        encode_listing_v1(&mut out);
        assert_eq!(keys(out.contents.as_ref()), ["x%2By.png"]);
        assert_eq!(prefixes(out.common_prefixes.as_ref()), ["x%2B+"]);
        assert_eq!(out.prefix.as_deref(), Some("x%2B"));
        assert_eq!(out.delimiter.as_deref(), Some("+"));
        assert_eq!(out.marker.as_deref(), Some("hash%231.png"));
        assert_eq!(out.next_marker.as_deref(), Some("x%2By.png"));
        let mut out = ListObjectsOutput {
            encoding_type: None,
            ..v1()
        };
        encode_listing_v1(&mut out);
        assert_eq!(out.next_marker.as_deref(), Some("x+y.png"));
    }

    fn request<T>(input: T) -> S3Request<T> {
        S3Request {
            input,
            method: hyper::Method::GET,
            uri: hyper::Uri::from_static("/"),
            headers: Default::default(),
            extensions: Default::default(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        }
    }

    /// Through the service: what the client sent (a prefix, a marker, a
    /// start-after, all plain) selects as before, the answer is encoded,
    /// and the ETags are still filled in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_service_encodes_listings_and_reads_plain_requests() {
        let dir = tempfile::tempdir().unwrap();
        for key in ["x+y.png", "100%.png", "hash#1.png", "ünï/фото.png"] {
            let path = dir.path().join("uploads").join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, key).unwrap();
        }
        let service = LocalService::new(dir.path(), None).unwrap();

        let input = ListObjectsV2Input::builder()
            .bucket("uploads".into())
            .encoding_type(url())
            .start_after(Some("hash#1.png".into()))
            .build()
            .unwrap();
        let out = service
            .list_objects_v2(request(input))
            .await
            .unwrap()
            .output;
        assert_eq!(
            keys(out.contents.as_ref()),
            ["x%2By.png", "%C3%BCn%C3%AF/%D1%84%D0%BE%D1%82%D0%BE.png"]
        );
        assert_eq!(out.start_after.as_deref(), Some("hash%231.png"));
        assert_eq!(out.encoding_type, url());
        let etag = out.contents.unwrap()[0].e_tag.clone().unwrap();
        assert_eq!(etag.value(), mediaflow_store::md5_etag(b"x+y.png"));

        let input = ListObjectsV2Input::builder()
            .bucket("uploads".into())
            .prefix(Some("x+".into()))
            .build()
            .unwrap();
        let out = service
            .list_objects_v2(request(input))
            .await
            .unwrap()
            .output;
        assert_eq!(
            keys(out.contents.as_ref()),
            ["x+y.png"],
            "unencoded when not asked"
        );
        assert_eq!(out.prefix.as_deref(), Some("x+"));

        let input = ListObjectsInput::builder()
            .bucket("uploads".into())
            .encoding_type(url())
            .marker(Some("100%.png".into()))
            .max_keys(Some(2))
            .build()
            .unwrap();
        let out = service.list_objects(request(input)).await.unwrap().output;
        assert_eq!(keys(out.contents.as_ref()), ["hash%231.png", "x%2By.png"]);
        assert_eq!(out.marker.as_deref(), Some("100%25.png"));
        assert_eq!(out.next_marker.as_deref(), Some("x%2By.png"));
        assert_eq!(out.is_truncated, Some(true));
    }

    #[test]
    fn keys_a_file_path_cannot_hold_are_refused_as_s3_would_word_it() {
        for key in [
            "a.jpg",
            "a/b/c.jpg",
            "folder/",
            "ünï/фото (1).jpg",
            "..a/b..",
            ".hidden",
        ] {
            assert!(check_key(key).is_ok(), "{key}");
        }
        let e = check_key("a/../../dead-letter.jsonl").unwrap_err();
        assert_eq!(e.code(), &S3ErrorCode::InvalidArgument);
        assert_eq!(
            e.message(),
            Some("Object key \"a/../../dead-letter.jsonl\" has a '.' or '..' segment; the local S3 server keeps objects as files and refuses such keys")
        );
        let e = check_key("x\n\u{1b}[31m.jpg").unwrap_err();
        assert_eq!(e.code(), &S3ErrorCode::InvalidArgument);
        assert!(e
            .message()
            .unwrap()
            .contains("\"x\\n\\u{1b}[31m.jpg\" has a control character"));
        for key in ["./a", "a//b", "/a", ""] {
            assert_eq!(
                check_key(key).unwrap_err().code(),
                &S3ErrorCode::InvalidArgument,
                "{key:?}"
            );
        }
        let long = "k".repeat(1025);
        assert_eq!(
            check_key(&long).unwrap_err().code(),
            &S3ErrorCode::KeyTooLongError
        );
        assert!(check_key(&"k".repeat(1024)).is_ok());
    }
}
