//! The manifest of a video source: the clip's facts, every rendition with
//! its key and size, and the poster's image variants in the same shape as
//! an image manifest's.

use crate::job::VideoOutput;
use mediaflow_engine::delivery::{escape_attr as attr, responsive, Responsive};
use mediaflow_engine::manifest::{
    set_urls, ManifestPlaceholder, ManifestVariant, MANIFEST_VERSION,
};
use mediaflow_engine::{OutputNames, Plan, PublicBase, SourceRef};
use serde::Serialize;

/// The extension of renditions.
pub const RENDITION_EXT: &str = "mp4";

/// A rendition's key: the plan's key template with the rendition's name
/// for `{variant}` and `mp4` for `{ext}`.
pub fn rendition_key(names: &OutputNames<'_>, rendition: &str) -> String {
    names.key(rendition, RENDITION_EXT)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VideoManifest {
    pub manifest_version: u32,
    /// `"video"` (image manifests have no `kind`).
    pub kind: &'static str,
    pub engine_version: String,
    pub plan_fingerprint: String,
    pub source: VideoSource,
    pub renditions: Vec<ManifestRendition>,
    pub poster: ManifestPoster,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<ManifestPlaceholder>,
    /// The poster's image variants.
    pub variants: Vec<ManifestVariant>,
    /// With a public base URL: the poster's responsive markup
    /// ([`mediaflow_engine::delivery`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsive: Vec<Responsive>,
    /// With a public base URL: a `<video>` with the poster and one
    /// `<source>` per rendition, smallest first, each but the largest for
    /// viewports no wider than it (`media`), so a phone loads the small one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    pub timings_ms: VideoManifestTimings,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VideoSource {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub format: String,
    pub content_type: String,
    pub bytes: u64,
    pub duration_seconds: f64,
    /// Bit/s over the whole file.
    pub bitrate: u64,
    /// Displayed (upright) size.
    pub width: u32,
    pub height: u32,
    pub stored_width: u32,
    pub stored_height: u32,
    /// Clockwise degrees players turn the stored picture.
    pub rotation: u16,
    pub frame_rate: f64,
    pub video_codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestRendition {
    pub name: String,
    pub key: String,
    /// With a public base URL: where the rendition is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
    pub video_codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    pub bitrate: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestPoster {
    /// Seconds into the clip.
    pub at_seconds: f64,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VideoManifestTimings {
    pub probe: f64,
    pub transcode: f64,
    pub poster: f64,
    pub total: f64,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl VideoManifest {
    /// The manifest for `out`, its outputs named by `names`. `fingerprint`
    /// is the video plan's (see [`crate::VideoPlan::fingerprint`]).
    pub fn build(
        names: &OutputNames<'_>,
        source: &SourceRef<'_>,
        out: &VideoOutput,
        fingerprint: &str,
    ) -> VideoManifest {
        let p = &out.probe;
        let (width, height) = p.display_size();
        let poster = &out.poster;
        VideoManifest {
            manifest_version: MANIFEST_VERSION,
            kind: "video",
            engine_version: crate::VIDEO_VERSION.to_string(),
            plan_fingerprint: fingerprint.to_string(),
            source: VideoSource {
                key: source.key.to_string(),
                etag: source.etag.map(str::to_string),
                version_id: source.version_id.map(str::to_string),
                format: out.container.as_str().to_string(),
                content_type: out.container.mime_type().to_string(),
                bytes: p.bytes,
                duration_seconds: round(p.duration_seconds, 3),
                bitrate: p.bitrate,
                width,
                height,
                stored_width: p.video.width,
                stored_height: p.video.height,
                rotation: p.video.rotation,
                frame_rate: round(p.video.frame_rate, 3),
                video_codec: p.video.codec.clone(),
                audio_codec: p.audio.as_ref().map(|a| a.codec.clone()),
            },
            renditions: out
                .renditions
                .iter()
                .map(|r| ManifestRendition {
                    name: r.name.clone(),
                    key: rendition_key(names, &r.name),
                    url: None,
                    content_type: "video/mp4",
                    width: r.width,
                    height: r.height,
                    duration_seconds: round(r.duration_seconds, 3),
                    video_codec: r.video_codec.clone(),
                    audio_codec: r.audio_codec.clone(),
                    bitrate: r.bitrate,
                    bytes: r.bytes,
                })
                .collect(),
            poster: ManifestPoster {
                at_seconds: round(out.poster_at, 3),
                width: poster.source.width,
                height: poster.source.height,
            },
            placeholder: ManifestPlaceholder::of(poster),
            variants: ManifestVariant::list(names, poster),
            responsive: Vec::new(),
            html: None,
            timings_ms: VideoManifestTimings {
                probe: round(out.timings.probe_ms, 2),
                transcode: round(out.timings.transcode_ms, 2),
                poster: round(out.timings.poster_ms, 2),
                total: round(out.timings.total_ms, 2),
            },
        }
    }

    /// Adds each output's URL under `base`, the poster's responsive
    /// markup (its variants follow `plan`) and the `<video>` snippet.
    pub fn publish(&mut self, plan: &Plan, base: &PublicBase) {
        for r in &mut self.renditions {
            r.url = Some(base.url(&r.key));
        }
        set_urls(&mut self.variants, base);
        self.responsive = responsive(plan, &self.variants, self.placeholder.as_ref(), true);
        let mut renditions: Vec<&ManifestRendition> = self.renditions.iter().collect();
        renditions.sort_by_key(|r| r.width);
        let Some(largest) = renditions.last() else {
            return;
        };
        let mut html = format!(
            "<video controls playsinline preload=\"metadata\" width=\"{}\" height=\"{}\"",
            largest.width, largest.height
        );
        if let Some(poster) = self.responsive.first() {
            html.push_str(&format!(" poster=\"{}\"", attr(&poster.src)));
        }
        let background = self
            .placeholder
            .as_ref()
            .map(|p| format!(";background-color:{}", p.dominant_color))
            .unwrap_or_default();
        html.push_str(&format!(
            " style=\"max-width:100%;height:auto{}\">\n",
            attr(&background)
        ));
        for (i, r) in renditions.iter().enumerate() {
            let media = if i + 1 < renditions.len() {
                format!(" media=\"(max-width: {}px)\"", r.width)
            } else {
                String::new()
            };
            html.push_str(&format!(
                "  <source src=\"{}\" type=\"{}\"{media}>\n",
                attr(r.url.as_deref().unwrap_or_default()),
                r.content_type
            ));
        }
        html.push_str("</video>");
        self.html = Some(html);
    }

    /// Pretty JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_keys() {
        let template = mediaflow_engine::KeyTemplate::default();
        let names = OutputNames {
            template: &template,
            prefix: "media/",
            source_key: "clips/my clip (1).MOV",
            hash: "0123456789abcdef",
        };
        assert_eq!(
            rendition_key(&names, "720p"),
            "media/720p/clips/my clip (1).MOV.0123456789abcdef.mp4"
        );
    }
}
