//! The pipeline's video path: in-memory stores, real clips, Debian's ffmpeg.

use bytes::Bytes;
use mediaflow_engine::Plan;
use mediaflow_pipeline::{
    Outcome, Pipeline, PipelineConfig, Retry, Skip, SourceObject, VideoSettings, META_OUTPUT,
    META_PLAN,
};
use mediaflow_store::{md5_etag, MemoryStore, ObjectStore, PutOptions};
use mediaflow_testkit::sample;
use mediaflow_video::{Tools, VideoPlan};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn upload(store: &dyn ObjectStore, key: &str, body: Bytes) -> SourceObject {
    let etag = md5_etag(&body);
    let size = body.len() as u64;
    store
        .put("uploads", key, body, &PutOptions::default())
        .await
        .unwrap();
    SourceObject {
        bucket: "uploads".into(),
        key: key.into(),
        size: Some(size),
        etag: Some(etag),
        version_id: None,
        event_name: "ObjectCreated:Put".into(),
        sequencer: None,
    }
}

fn with_video(store: Arc<MemoryStore>, plan: VideoPlan, work_root: &Path) -> Pipeline {
    let tools = Tools::new("ffmpeg", None);
    tools.check().expect("ffmpeg on the PATH (scripts/deps)");
    let config = PipelineConfig::new("media", "out/").with_video(VideoSettings {
        plan,
        tools,
        work_root: work_root.to_path_buf(),
    });
    Pipeline::new(store, Plan::builtin(), config)
}

async fn manifest(store: &MemoryStore, key: &str) -> Value {
    let m = store.get("media", key, 1 << 20).await.unwrap();
    serde_json::from_slice(&m.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
async fn a_phone_clip_gives_an_upright_mp4_a_poster_and_a_video_manifest() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let work = tempfile::tempdir().unwrap();
    let p = with_video(store.clone(), VideoPlan::builtin(), work.path());
    let src = upload(
        &*store,
        "clips/my clip (1).mp4",
        sample("fixtures/video/phone-rotated.mp4"),
    )
    .await;
    let report = p.process(&src, None).await;
    let Outcome::Processed {
        manifest_key,
        variants,
        bytes_out,
    } = &report.outcome
    else {
        panic!("{:?}", report.outcome)
    };
    assert_eq!(manifest_key, "out/manifest/clips/my clip (1).mp4.json");
    // One MP4 plus the poster's variants (the built-in plan: 4 widths x
    // JPEG and WebP, none enlarged beyond the 360x640 poster).
    let m = manifest(&store, manifest_key).await;
    assert_eq!(m["kind"], "video");
    assert_eq!(m["source"]["format"], "mp4");
    assert_eq!(m["source"]["rotation"], 90);
    assert_eq!(
        (
            m["source"]["width"].as_u64(),
            m["source"]["height"].as_u64()
        ),
        (Some(360), Some(640))
    );
    assert_eq!(m["source"]["video_codec"], "h264");
    assert_eq!(m["source"]["audio_codec"], "aac");
    assert!((m["source"]["duration_seconds"].as_f64().unwrap() - 2.0).abs() < 0.1);
    assert!(m["source"]["bitrate"].as_u64().unwrap() > 0);
    let r = &m["renditions"][0];
    // The default key template: the whole source key, the content hash.
    let key = r["key"].as_str().unwrap().to_string();
    let hash = mediaflow_engine::content_hash(
        m["source"]["etag"].as_str().unwrap(),
        m["plan_fingerprint"].as_str().unwrap(),
    );
    assert_eq!(key, format!("out/mp4/clips/my clip (1).mp4.{hash}.mp4"));
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(360), Some(640))
    );
    assert_eq!(
        (r["video_codec"].as_str(), r["audio_codec"].as_str()),
        (Some("h264"), Some("aac"))
    );
    let mp4 = store.get("media", &key, 1 << 24).await.unwrap();
    assert_eq!(r["bytes"].as_u64(), Some(mp4.body.len() as u64));
    assert_eq!(mp4.info.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(
        mp4.info.cache_control.as_deref(),
        Some(mediaflow_engine::keys::IMMUTABLE_CACHE_CONTROL)
    );
    assert_eq!(
        mp4.info.metadata.get(META_OUTPUT).map(String::as_str),
        Some("1")
    );
    let plan_fp = mp4.info.metadata.get(META_PLAN).cloned().unwrap();
    assert_eq!(m["plan_fingerprint"], plan_fp.as_str());
    assert_ne!(
        plan_fp,
        Plan::builtin().fingerprint(),
        "the video plan's own fingerprint"
    );
    let poster = &m["variants"];
    assert_eq!(*variants, 1 + poster.as_array().unwrap().len());
    let mut total = mp4.body.len() as u64;
    for v in poster.as_array().unwrap() {
        let o = store
            .get("media", v["key"].as_str().unwrap(), 1 << 24)
            .await
            .unwrap();
        assert_eq!(v["bytes"].as_u64(), Some(o.body.len() as u64));
        assert_eq!(o.info.content_type.as_deref(), v["content_type"].as_str());
        assert!(
            v["height"].as_u64() > v["width"].as_u64(),
            "upright poster {v}"
        );
        total += o.body.len() as u64;
    }
    assert_eq!(*bytes_out, total);
    assert!(poster[0]["key"]
        .as_str()
        .unwrap()
        .starts_with("out/w2048/clips/my clip (1)."));
    assert!((m["poster"]["at_seconds"].as_f64().unwrap() - 0.2).abs() < 0.01);
    assert!(m["placeholder"]["blurhash"].is_string());
    // The work directory is gone.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);

    // At-least-once delivery: the same event again does nothing.
    let again = p.process(&src, None).await;
    assert_eq!(again.outcome, Outcome::Skipped(Skip::AlreadyDone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
async fn images_still_work_in_a_video_pipeline_and_gifs_follow_the_switch() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let work = tempfile::tempdir().unwrap();
    let p = with_video(store.clone(), VideoPlan::builtin(), work.path());
    let photo = upload(&*store, "a/rocket.jpg", sample("rocket.jpg")).await;
    let gif = upload(&*store, "a/anim.gif", sample("fixtures/animated.gif")).await;
    let reports = p.process_all(&[photo, gif.clone()], None).await;
    for r in &reports {
        assert!(matches!(r.outcome, Outcome::Processed { .. }), "{r:?}");
    }
    let m = manifest(&store, "out/manifest/a/rocket.jpg.json").await;
    assert!(m.get("kind").is_none(), "an image manifest");
    let m = manifest(&store, "out/manifest/a/anim.gif.json").await;
    assert!(m.get("kind").is_none(), "a GIF stays an image by default");

    let gifs = with_video(
        store.clone(),
        VideoPlan::builtin().with_animated_gif(true),
        work.path(),
    );
    let r = gifs.process(&gif, None).await;
    assert!(matches!(r.outcome, Outcome::Processed { .. }), "{r:?}");
    let m = manifest(&store, "out/manifest/a/anim.gif.json").await;
    assert_eq!(m["kind"], "video");
    assert_eq!(m["source"]["format"], "gif");
    assert!(m["renditions"][0]["audio_codec"].is_null());
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
async fn bad_clips_fail_alone_and_write_nothing() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let work = tempfile::tempdir().unwrap();
    let p = with_video(store.clone(), VideoPlan::builtin(), work.path());
    let bad = upload(
        &*store,
        "v/broken.mp4",
        sample("fixtures/video/truncated.mp4"),
    )
    .await;
    let silent = upload(
        &*store,
        "v/voice.mp4",
        sample("fixtures/video/no-video.mp4"),
    )
    .await;
    let good = upload(&*store, "v/tiny.mp4", sample("fixtures/video/tiny.mp4")).await;
    let reports = p.process_all(&[bad, silent, good], None).await;
    let e = reports[0].failure().expect("truncated fails");
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("corrupt", Retry::Permanent)
    );
    assert!(
        e.to_string()
            .starts_with("s3://uploads/v/broken.mp4: corrupt: ffprobe: "),
        "{e}"
    );
    assert!(e.reason.contains("moov atom not found"), "{e}");
    let e = reports[1].failure().expect("audio only fails");
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("unsupported", Retry::Permanent)
    );
    assert!(
        matches!(reports[2].outcome, Outcome::Processed { .. }),
        "{:?}",
        reports[2]
    );
    let keys = store.list("media", "", None, 1000).await.unwrap();
    // Besides tiny's outputs, only the two failure records.
    assert!(
        keys.entries
            .iter()
            .all(|e| e.key.contains("tiny") || e.key.starts_with("out/failed/")),
        "{keys:?}"
    );
    assert_eq!(
        keys.entries
            .iter()
            .filter(|e| e.key.starts_with("out/failed/"))
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        [
            "out/failed/v/broken.mp4.json",
            "out/failed/v/voice.mp4.json"
        ]
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
async fn a_clip_that_cannot_finish_before_the_deadline_is_retryable() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let work = tempfile::tempdir().unwrap();
    let p = with_video(store.clone(), VideoPlan::builtin(), work.path());
    let src = upload(&*store, "big.mp4", sample("bigbuckbunny.mp4")).await;
    // Enough to start (over twice the reserve) but not for the estimate.
    let report = p
        .process(&src, Some(Instant::now() + Duration::from_millis(1500)))
        .await;
    let e = report.failure().expect("fails");
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("timeout", Retry::Retryable)
    );
    assert!(e.reason.contains("needs about"), "{e}");
    assert!(store
        .head("media", "out/manifest/big.mp4.json")
        .await
        .unwrap()
        .is_none());
    // The blocking task owns the work directory; give it a moment to end.
    let until = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(work.path()).unwrap().count() > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_only_pipeline_says_where_videos_belong() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let p = Pipeline::new(
        store.clone(),
        Plan::builtin(),
        PipelineConfig::new("media", "out/"),
    );
    let src = upload(
        &*store,
        "clip.mov",
        sample("fixtures/video/phone-rotated.mov"),
    )
    .await;
    let e = p
        .process(&src, None)
        .await
        .failure()
        .cloned()
        .expect("fails");
    assert_eq!(
        (e.category.as_str(), e.retry),
        ("unsupported", Retry::Permanent)
    );
    assert!(
        e.reason
            .contains("a video (mov), and no video function is deployed"),
        "{e}"
    );
}

/// With a public base URL (`MEDIAFLOW_PUBLIC_BASE_URL`), every output of a
/// photo and of a clip gets its URL (the key percent-encoded), the photo
/// its `srcset` and `<picture>`, the clip its `<video>` with the poster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg: ./scripts/test runs it"]
async fn a_public_base_url_gives_every_output_its_url_and_markup() {
    let store = Arc::new(MemoryStore::new(&["uploads", "media"]));
    let work = tempfile::tempdir().unwrap();
    let base = "https://d111111abcdef8.cloudfront.net";
    let tools = Tools::new("ffmpeg", None);
    let config = PipelineConfig {
        public_base: Some(mediaflow_engine::PublicBase::parse(&format!("{base}/")).unwrap()),
        ..PipelineConfig::new("media", "out/")
    }
    .with_video(VideoSettings {
        plan: VideoPlan::builtin(),
        tools,
        work_root: work.path().to_path_buf(),
    });
    let p = Pipeline::new(store.clone(), Plan::builtin(), config);

    let photo = upload(&*store, "photos/a b+c é.jpg", sample("rocket.jpg")).await;
    let report = p.process(&photo, None).await;
    let Outcome::Processed { manifest_key, .. } = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    let m = manifest(&store, manifest_key).await;
    for v in m["variants"].as_array().unwrap() {
        let key = v["key"].as_str().unwrap();
        let url = v["url"].as_str().unwrap();
        let tail = key.strip_prefix("out/").unwrap().split_once('/').unwrap();
        assert_eq!(
            url,
            format!(
                "{base}/out/{}/photos/a%20b%2Bc%20%C3%A9.jpg.{}",
                tail.0,
                tail.1.rsplit_once(".jpg.").unwrap().1
            )
        );
    }
    let families = m["responsive"].as_array().unwrap();
    assert_eq!(families.len(), 1, "the built-in widths are one family");
    let f = &families[0];
    assert_eq!(
        f["variants"],
        serde_json::json!(["w2048", "w1024", "w512", "w256"])
    );
    let html = f["html"].as_str().unwrap();
    assert!(html.contains("<source type=\"image/webp\""), "{html}");
    assert!(
        html.contains(&format!("<img src=\"{}\"", f["src"].as_str().unwrap())),
        "{html}"
    );
    assert!(html.contains(&format!(
        "background-color:{}",
        m["placeholder"]["dominant_color"].as_str().unwrap()
    )));
    // Every srcset candidate is a variant's URL with its width.
    for (format, srcset) in f["srcset"].as_object().unwrap() {
        for candidate in srcset.as_str().unwrap().split(", ") {
            let (url, w) = candidate.split_once(' ').unwrap();
            let v = m["variants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["url"] == url)
                .unwrap_or_else(|| panic!("{url} is no variant's"));
            assert_eq!(v["format"], format.as_str());
            assert_eq!(format!("{}w", v["width"]), w);
        }
    }

    let clip = upload(
        &*store,
        "clips/my clip (1).mp4",
        sample("fixtures/video/phone-rotated.mp4"),
    )
    .await;
    let report = p.process(&clip, None).await;
    let Outcome::Processed { manifest_key, .. } = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    let m = manifest(&store, manifest_key).await;
    let r = &m["renditions"][0];
    let url = r["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{base}/out/mp4/clips/my%20clip%20%281%29.mp4.")),
        "{url}"
    );
    let html = m["html"].as_str().unwrap();
    assert!(html.starts_with("<video controls"), "{html}");
    assert!(
        html.contains(&format!("<source src=\"{url}\" type=\"video/mp4\">")),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "poster=\"{}\"",
            m["responsive"][0]["src"].as_str().unwrap()
        )),
        "{html}"
    );
    assert!(m["variants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["url"].is_string()));
}
