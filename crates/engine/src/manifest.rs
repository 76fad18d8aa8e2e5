//! The JSON manifest written beside the outputs, and the keys of manifests
//! and failure records.
//!
//! Outputs go where the plan's key template says ([`crate::keys`]); the
//! manifest, the stable pointer readers start from, always goes to
//! `{prefix}manifest/{key}.json` (`{prefix}failed/{key}.json` records a
//! source that failed permanently). Output keys end with an image or video
//! extension, so no output key is ever a manifest's or a failure record's.
//!
//! Keys are data, not paths: the source key is used verbatim (S3 keeps
//! `a/../b.jpg`, `a//b.jpg` and keys with control characters as distinct
//! objects, so their outputs are distinct too; nothing here resolves `..`).
//! The one thing a source key can make invalid is the length: S3 refuses
//! keys over [`MAX_KEY_BYTES`], so a source whose longest output key
//! ([`longest_output_key`]) would be longer cannot be processed at all
//! (the pipeline fails it permanently, as `limits`, before reading it).

use crate::delivery::{responsive, PublicBase, Responsive};
use crate::keys::OutputNames;
use crate::output::Output;
use crate::plan::{OutputFormat, Plan};
use serde::Serialize;

/// Version of the manifest's JSON shape.
pub const MANIFEST_VERSION: u32 = 1;

/// `{prefix}manifest/{key}.json`.
pub fn manifest_key(prefix: &str, source_key: &str) -> String {
    format!("{prefix}manifest/{source_key}.json")
}

/// `{prefix}failed/{key}.json`: the record of a permanent failure, in its
/// own folder so no source key's manifest can ever share its key.
pub fn failure_key(prefix: &str, source_key: &str) -> String {
    format!("{prefix}failed/{source_key}.json")
}

/// The longest key S3 accepts, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The length in bytes of the longest key `plan` can write for
/// `source_key` under `prefix`: its manifest's, or a variant's with the
/// longest extension any output format has (a variant's format can depend
/// on the source, so this is known before the source is read).
pub fn longest_output_key(prefix: &str, source_key: &str, plan: &Plan) -> usize {
    let ext = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ]
    .iter()
    .map(|f| f.extension())
    .max_by_key(|e| e.len())
    .unwrap_or("");
    plan.variants()
        .iter()
        .map(|v| plan.keys().rendered_len(prefix, &v.name, source_key, ext))
        .chain([manifest_key(prefix, source_key).len()])
        .max()
        .unwrap_or(0)
}

/// Why the outputs of `source_key` cannot be written when the longest of
/// them is `longest` bytes, or `None` when they fit S3's limit.
pub fn output_key_limit(source_key: &str, longest: usize) -> Option<String> {
    (longest > MAX_KEY_BYTES).then(|| {
        format!(
            "key is {} bytes; outputs would be {longest} bytes, over S3's {MAX_KEY_BYTES}",
            source_key.len()
        )
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Manifest {
    pub manifest_version: u32,
    pub engine_version: String,
    /// Fingerprint of the plan (config + engine version) that made these outputs.
    pub plan_fingerprint: String,
    pub source: ManifestSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<ManifestPlaceholder>,
    pub variants: Vec<ManifestVariant>,
    /// With a public base URL: per family of variants, `srcset` strings
    /// and a `<picture>` snippet ([`crate::delivery`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsive: Vec<Responsive>,
    pub timings_ms: ManifestTimings,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestSource {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub format: String,
    pub content_type: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub stored_width: u32,
    pub stored_height: u32,
    pub orientation: u8,
    pub has_alpha: bool,
    pub color_model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icc_profile: Option<String>,
    pub converted_to_srgb: bool,
    pub decoded_width: u32,
    pub decoded_height: u32,
    /// An animated source: frames, duration, loop count (0 = forever).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub animation: Option<ManifestAnimation>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestAnimation {
    pub frames: u32,
    pub duration_ms: u64,
    pub loop_count: u32,
    /// Why the `animated` variants are stills (a limit), when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_still: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestPlaceholder {
    pub blurhash: String,
    pub dominant_color: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestVariant {
    pub name: String,
    pub format: String,
    pub key: String,
    /// With a public base URL: where the output is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// An animated output: its frames and total display time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl ManifestPlaceholder {
    /// The placeholder of `output`, if it has one.
    pub fn of(output: &Output) -> Option<ManifestPlaceholder> {
        output.placeholder.as_ref().map(|p| ManifestPlaceholder {
            blurhash: p.blurhash.clone(),
            dominant_color: p.dominant.to_hex(),
        })
    }
}

impl ManifestVariant {
    /// Every variant of `output`, with its key.
    pub fn list(names: &OutputNames<'_>, output: &Output) -> Vec<ManifestVariant> {
        output
            .variants
            .iter()
            .map(|v| ManifestVariant {
                name: v.name.clone(),
                format: v.format.as_str().to_string(),
                key: names.key(&v.name, v.format.extension()),
                url: None,
                content_type: v.format.mime_type().to_string(),
                width: v.width,
                height: v.height,
                bytes: v.data.len() as u64,
                frames: (v.frames > 1).then_some(v.frames),
                duration_ms: (v.frames > 1).then_some(v.duration_ms),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestTimings {
    pub sniff: f64,
    pub decode: f64,
    pub color: f64,
    pub orient: f64,
    pub resize: f64,
    pub encode: f64,
    pub placeholder: f64,
    pub total: f64,
}

/// Where the source came from, as the manifest records it.
#[derive(Debug, Clone, Default)]
pub struct SourceRef<'a> {
    pub key: &'a str,
    pub etag: Option<&'a str>,
    pub version_id: Option<&'a str>,
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

impl Manifest {
    /// Builds the manifest for `output`, its outputs named by `names`.
    pub fn build(names: &OutputNames<'_>, source: &SourceRef<'_>, output: &Output) -> Manifest {
        let s = &output.source;
        let t = &output.timings;
        Manifest {
            manifest_version: MANIFEST_VERSION,
            engine_version: crate::ENGINE_VERSION.to_string(),
            plan_fingerprint: output.plan_fingerprint.clone(),
            source: ManifestSource {
                key: source.key.to_string(),
                etag: source.etag.map(str::to_string),
                version_id: source.version_id.map(str::to_string),
                format: s.format.as_str().to_string(),
                content_type: s.format.mime_type().to_string(),
                bytes: s.bytes,
                width: s.width,
                height: s.height,
                stored_width: s.stored_width,
                stored_height: s.stored_height,
                orientation: s.orientation,
                has_alpha: s.has_alpha,
                color_model: s.color_model.to_string(),
                icc_profile: s.icc_profile.clone(),
                converted_to_srgb: s.converted_to_srgb,
                decoded_width: s.decoded_width,
                decoded_height: s.decoded_height,
                animation: s.animation.as_ref().map(|a| ManifestAnimation {
                    frames: a.frames,
                    duration_ms: a.duration_ms,
                    loop_count: a.loop_count,
                    kept_still: a.kept_still.clone(),
                }),
            },
            placeholder: ManifestPlaceholder::of(output),
            variants: ManifestVariant::list(names, output),
            responsive: Vec::new(),
            timings_ms: ManifestTimings {
                sniff: round(t.sniff_ms),
                decode: round(t.decode_ms),
                color: round(t.color_ms),
                orient: round(t.orient_ms),
                resize: round(t.resize_ms),
                encode: round(t.encode_ms),
                placeholder: round(t.placeholder_ms),
                total: round(t.total_ms),
            },
        }
    }

    /// Adds each output's URL under `base` and the responsive markup of
    /// `plan`'s variant families.
    pub fn publish(&mut self, plan: &Plan, base: &PublicBase) {
        set_urls(&mut self.variants, base);
        self.responsive = responsive(
            plan,
            &self.variants,
            self.placeholder.as_ref(),
            !self.source.has_alpha,
        );
    }

    /// Pretty JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }
}

/// Sets each variant's `url` under `base`.
pub fn set_urls(variants: &mut [ManifestVariant], base: &PublicBase) {
    for v in variants {
        v.url = Some(base.url(&v.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(manifest_key("", "a+b.jpg"), "manifest/a+b.jpg.json");
        assert_eq!(failure_key("m/", "a/../b"), "m/failed/a/../b.json");
    }

    #[test]
    fn output_keys_are_measured_against_s3s_limit() {
        let plan = Plan::builtin();
        // With the built-in variants (names of 5 bytes) and the default
        // template, a variant's key is the longest output of a key: it adds
        // "w2048/", ".{16 hex}" and ".webp" (28 bytes; the manifest adds 14).
        let key = |len: usize| format!("{}.jpg", "k".repeat(len - 4));
        let fits = key(MAX_KEY_BYTES - 28);
        assert_eq!(longest_output_key("", &fits, &plan), MAX_KEY_BYTES);
        assert_eq!(output_key_limit(&fits, MAX_KEY_BYTES), None);
        let over = key(MAX_KEY_BYTES - 27);
        let longest = longest_output_key("", &over, &plan);
        assert_eq!(longest, MAX_KEY_BYTES + 1);
        assert_eq!(
            output_key_limit(&over, longest).unwrap(),
            "key is 997 bytes; outputs would be 1025 bytes, over S3's 1024"
        );
        // The prefix counts, and characters count in UTF-8 bytes.
        assert_eq!(
            longest_output_key("media/", "фото.jpg", &plan),
            "media/w2048/фото.jpg.0123456789abcdef.webp".len()
        );
        // A key of 1,000+ bytes without an extension: same rule.
        let long = "я".repeat(600);
        assert_eq!(longest_output_key("", &long, &plan), 1200 + 28);
    }
}
