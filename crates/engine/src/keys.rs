//! Where outputs are written: the `[output] keys` template.
//!
//! A template is text with placeholders, rendered once per output of one
//! version of one source:
//!
//! | placeholder  | for `photos/a.b.JPG`, variant `w800`, WebP |
//! |--------------|---------------------------------------------|
//! | `{variant}`  | `w800` (a video rendition's name for renditions) |
//! | `{key}`      | `photos/a.b.JPG` (the whole source key)     |
//! | `{dir}`      | `photos/` (empty at the top level)          |
//! | `{name}`     | `a.b.JPG`                                   |
//! | `{stem}`     | `a.b`                                       |
//! | `{source_ext}` | `JPG` (empty without an extension)        |
//! | `{hash}`     | 16 hex digits: [`content_hash`] of the source's ETag and the plan |
//! | `{ext}`      | `webp` (the output format's extension)      |
//!
//! Every template names `{variant}` (two variants of one source must not
//! meet), one of `{key}`, `{name}` or `{stem}` (two sources must not all
//! meet), and ends with `.{ext}`: output keys then never end in `.json`,
//! so they can never be a manifest's or a failure record's key.
//!
//! The default, [`KeyTemplate::DEFAULT`], is `{variant}/{key}.{hash}.{ext}`.
//! Two different source keys can never render to the same output key under
//! it (see [`KeyTemplate::distinct_by_construction`]), and because the key
//! holds the content hash, an output key is never written with other bytes:
//! it may be cached forever ([`IMMUTABLE_CACHE_CONTROL`]). Templates
//! without `{hash}` name overwritable keys (a re-upload writes new bytes
//! under the same key), which get the plan's short `cache_control`.
//!
//! Keys are data, not paths: the source key is used verbatim (nothing
//! resolves `..`).

use crate::error::MediaError;

/// Length of `{hash}`, in hex digits.
pub const HASH_LEN: usize = 16;

/// `Cache-Control` of outputs whose key holds the content hash: the bytes
/// under such a key never change, so caches may keep them for a year and
/// need not revalidate.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The default `[output] cache_control`, for outputs whose key a re-upload
/// overwrites: short, so a CDN or browser shows a replaced picture within
/// minutes.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=300";

/// The content hash of one version of a source under one plan: SHA-256 of
/// the source's ETag (its bytes' identity, as the store reports it), `|`
/// and the plan fingerprint, its first [`HASH_LEN`] hex digits. A re-upload
/// with other bytes, or a plan change, gives other keys. A cryptographic
/// hash, not the fingerprint's FNV: an uploader must not be able to make
/// two uploads share "immutable" keys (a CDN would keep serving the first
/// while the origin holds the second).
pub fn content_hash(etag: &str, plan_fingerprint: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{etag}|{plan_fingerprint}").as_bytes());
    hex::encode(digest)[..HASH_LEN].to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Variant,
    Key,
    Dir,
    Name,
    Stem,
    SourceExt,
    Hash,
    Ext,
}

const PLACEHOLDERS: &[(&str, Part)] = &[
    ("variant", Part::Variant),
    ("key", Part::Key),
    ("dir", Part::Dir),
    ("name", Part::Name),
    ("stem", Part::Stem),
    ("source_ext", Part::SourceExt),
    ("hash", Part::Hash),
    ("ext", Part::Ext),
];

/// A parsed `[output] keys` template (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
    parts: Vec<Part>,
}

impl Default for KeyTemplate {
    fn default() -> Self {
        KeyTemplate::parse(KeyTemplate::DEFAULT).expect("the default template is valid")
    }
}

impl KeyTemplate {
    /// The default: distinct for every source key, content-addressed.
    pub const DEFAULT: &'static str = "{variant}/{key}.{hash}.{ext}";

    /// Parses and checks a template; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<KeyTemplate, MediaError> {
        let bad = |why: String| MediaError::invalid_plan(format!("output.keys {text:?}: {why}"));
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('{') => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| bad("a '{' is not closed".into()))?;
                    let name = &rest[1..end];
                    let part = PLACEHOLDERS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, p)| p.clone())
                        .ok_or_else(|| {
                            let known: Vec<String> = PLACEHOLDERS
                                .iter()
                                .map(|(n, _)| format!("{{{n}}}"))
                                .collect();
                            bad(format!(
                                "unknown placeholder {{{name}}}; the placeholders are {}",
                                known.join(", ")
                            ))
                        })?;
                    parts.push(part);
                    rest = &rest[end + 1..];
                }
                Some(0) => return Err(bad("a '}' without its '{'".into())),
                Some(i) => {
                    parts.push(Part::Lit(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Lit(rest.to_string()));
                    rest = "";
                }
            }
        }
        let has = |p: Part| parts.contains(&p);
        if !has(Part::Variant) {
            return Err(bad(
                "it must contain {variant}, or a source's variants would share one key".into(),
            ));
        }
        if !(has(Part::Key) || has(Part::Name) || has(Part::Stem)) {
            return Err(bad(
                "it must contain {key}, {name} or {stem}, or every source would share its keys"
                    .into(),
            ));
        }
        let n = parts.len();
        let ends_with_ext = n >= 2
            && parts[n - 1] == Part::Ext
            && matches!(&parts[n - 2], Part::Lit(l) if l.ends_with('.'));
        if !ends_with_ext {
            return Err(bad(
                "it must end with \".{ext}\" (the output format's extension)".into(),
            ));
        }
        if let Some(Part::Lit(first)) = parts.first() {
            if first.starts_with('/') {
                return Err(bad("it must not start with '/'".into()));
            }
        }
        if parts.iter().any(
            |p| matches!(p, Part::Lit(l) if l.contains("//") || l.chars().any(char::is_control)),
        ) {
            return Err(bad("it must not contain '//' or control characters".into()));
        }
        Ok(KeyTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether keys hold `{hash}`: then the bytes under a key never change.
    pub fn has_hash(&self) -> bool {
        self.parts.contains(&Part::Hash)
    }

    /// True when two different source keys can never render to the same
    /// output key, whatever the keys: templates of the shape
    /// `{variant}/` + text + `{key}` + (text and `{hash}`)* + `.{ext}`.
    ///
    /// Why: variant names hold no `/`, so the text up to the first `/` is
    /// the variant; the output format's extension is the text after the
    /// last `.` (no extension ends with another's); what lies between the
    /// key and the extension has a fixed length (`{hash}` is always
    /// [`HASH_LEN`] digits), so the key is what remains. Other templates
    /// may let two sources meet, and the pipeline checks each output key
    /// before writing it.
    pub fn distinct_by_construction(&self) -> bool {
        let p = &self.parts;
        if p.len() < 3 || p[0] != Part::Variant {
            return false;
        }
        let mut i = 1;
        match &p[i] {
            Part::Lit(l) if l.starts_with('/') => i += 1,
            _ => return false,
        }
        if p.get(i) != Some(&Part::Key) {
            return false;
        }
        p[i + 1..]
            .iter()
            .all(|q| matches!(q, Part::Lit(_) | Part::Hash | Part::Ext))
            && p.iter().filter(|q| **q == Part::Ext).count() == 1
    }

    /// For a template that is [distinct by construction](Self::distinct_by_construction)
    /// and holds `{hash}`: the text every output key of `variant` starts
    /// with, followed directly by the source key (`{prefix}{variant}/` for
    /// the default). The outputs of one variant then list in the order of
    /// their source keys (each is that text, the source key and a suffix),
    /// and whether the outputs of one version of a source under one plan
    /// exist shows in that listing: how a backfill tells current outputs
    /// from stale ones without reading a manifest. `None` for other
    /// templates.
    pub fn source_key_start(&self, prefix: &str, variant: &str) -> Option<String> {
        if !(self.distinct_by_construction() && self.has_hash()) {
            return None;
        }
        match &self.parts[1] {
            Part::Lit(l) => Some(format!("{prefix}{variant}{l}")),
            _ => None,
        }
    }

    /// The key of one output: `prefix` + the rendered template.
    pub fn render(
        &self,
        prefix: &str,
        variant: &str,
        source_key: &str,
        hash: &str,
        ext: &str,
    ) -> String {
        let (dir, name) = match source_key.rfind('/') {
            Some(i) => source_key.split_at(i + 1),
            None => ("", source_key),
        };
        let (stem, source_ext) = match name.rfind('.') {
            Some(dot) if dot > 0 => (&name[..dot], &name[dot + 1..]),
            _ => (name, ""),
        };
        let mut out = String::with_capacity(prefix.len() + source_key.len() + 48);
        out.push_str(prefix);
        for part in &self.parts {
            out.push_str(match part {
                Part::Lit(l) => l,
                Part::Variant => variant,
                Part::Key => source_key,
                Part::Dir => dir,
                Part::Name => name,
                Part::Stem => stem,
                Part::SourceExt => source_ext,
                Part::Hash => hash,
                Part::Ext => ext,
            });
        }
        out
    }

    /// The length of [`render`](Self::render)'s key with a hash of
    /// [`HASH_LEN`] digits, known before the source is read.
    pub fn rendered_len(&self, prefix: &str, variant: &str, source_key: &str, ext: &str) -> usize {
        self.render(prefix, variant, source_key, &"0".repeat(HASH_LEN), ext)
            .len()
    }
}

/// The names of one version of one source's outputs: the template, the
/// output prefix, the source key and its content hash.
#[derive(Debug, Clone, Copy)]
pub struct OutputNames<'a> {
    pub template: &'a KeyTemplate,
    pub prefix: &'a str,
    pub source_key: &'a str,
    pub hash: &'a str,
}

impl OutputNames<'_> {
    /// The key of `variant` (or rendition) in the format with extension `ext`.
    pub fn key(&self, variant: &str, ext: &str) -> String {
        self.template
            .render(self.prefix, variant, self.source_key, self.hash, ext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> KeyTemplate {
        KeyTemplate::parse(s).unwrap()
    }

    #[test]
    fn placeholders_render() {
        let k =
            |tpl: &str, key: &str| t(tpl).render("out/", "w800", key, "0123456789abcdef", "webp");
        assert_eq!(
            k(KeyTemplate::DEFAULT, "photos/a.b.JPG"),
            "out/w800/photos/a.b.JPG.0123456789abcdef.webp"
        );
        assert_eq!(
            k("{variant}/{dir}{stem}.{ext}", "photos/a.b.JPG"),
            "out/w800/photos/a.b.webp"
        );
        assert_eq!(
            k("{dir}{variant}-{name}-{source_ext}.{ext}", "photos/a.b.JPG"),
            "out/photos/w800-a.b.JPG-JPG.webp"
        );
        assert_eq!(
            k("{variant}/{stem}.{ext}", "IMG_0001"),
            "out/w800/IMG_0001.webp"
        );
        assert_eq!(
            k("{variant}/{stem}{source_ext}.{ext}", ".hidden"),
            "out/w800/.hidden.webp"
        );
        assert_eq!(
            k("{variant}/{key}.{ext}", "ünï/фото.jpg"),
            "out/w800/ünï/фото.jpg.webp"
        );
    }

    #[test]
    fn outputs_start_with_the_source_key_start() {
        let default = KeyTemplate::default();
        let start = default.source_key_start("out/", "w800").unwrap();
        assert_eq!(start, "out/w800/");
        for key in ["a", "a b/ü.jpg", "x+y%.png"] {
            let rendered = default.render("out/", "w800", key, "0123456789abcdef", "webp");
            assert_eq!(
                rendered.strip_prefix(&start).unwrap().get(..key.len()),
                Some(key)
            );
        }
        assert_eq!(
            t("{variant}/src/{key}/{hash}.{ext}").source_key_start("", "v"),
            Some("v/src/".to_string())
        );
        for no in ["{variant}/{key}.{ext}", "{variant}/{stem}.{hash}.{ext}"] {
            assert_eq!(t(no).source_key_start("", "v"), None, "{no}");
        }
    }

    #[test]
    fn bad_templates_are_named() {
        for (tpl, says) in [
            ("{key}.{ext}", "{variant}"),
            ("{variant}/{hash}.{ext}", "{key}, {name} or {stem}"),
            ("{variant}/{key}", "end with"),
            ("{variant}/{key}.{ext}.json", "end with"),
            ("{variant}/{key}{ext}", "end with"),
            ("{variant}/{kee}.{ext}", "unknown placeholder {kee}"),
            ("{variant}/{key.{ext}", "unknown placeholder"),
            ("{variant}/{key}}.{ext}", "without its"),
            ("{variant}/{key}.{ext", "not closed"),
            ("/{variant}/{key}.{ext}", "start with '/'"),
            ("{variant}//{key}.{ext}", "'//'"),
        ] {
            let e = KeyTemplate::parse(tpl).unwrap_err();
            assert!(e.to_string().contains(says), "{tpl}: {e}");
            assert!(e.to_string().contains(tpl), "{tpl}: {e}");
        }
    }

    #[test]
    fn which_templates_are_distinct_by_construction() {
        for tpl in [
            KeyTemplate::DEFAULT,
            "{variant}/{key}.{ext}",
            "{variant}/src/{key}/{hash}.{ext}",
            "{variant}/{key}-{hash}.{ext}",
        ] {
            assert!(t(tpl).distinct_by_construction(), "{tpl}");
        }
        for tpl in [
            "{variant}/{dir}{stem}.{ext}",
            "{variant}{key}.{ext}",
            "{variant}/{stem}.{hash}.{ext}",
            "{variant}/{key}{source_ext}.{ext}",
            "{dir}{variant}/{name}.{ext}",
            "{variant}/{key}.{ext}.{ext}",
        ] {
            assert!(!t(tpl).distinct_by_construction(), "{tpl}");
        }
    }

    /// The claim behind the default: adversarial keys (suffixes that look
    /// like hashes and extensions, dots, slashes, empty segments) never
    /// meet, in any variant and format, with or without the same bytes.
    #[test]
    fn the_default_never_lets_two_sources_meet() {
        let keys = [
            "a.jpg",
            "a.png",
            "a",
            "a.jpg.0123456789abcdef.webp",
            "a.jpg.0123456789abcdef",
            "w800/a.jpg",
            "x/a.jpg",
            "x//a.jpg",
            "x/../a.jpg",
            "a.jpg.webp",
            "a.jpg/",
            ".jpg",
            "A.JPG",
        ];
        let hashes = ["0123456789abcdef", "fedcba9876543210"];
        let variants = ["w800", "w80", "0"];
        let exts = ["jpg", "png", "webp", "avif", "mp4"];
        let tpl = KeyTemplate::default();
        let mut seen = std::collections::HashMap::new();
        for key in keys {
            for hash in hashes {
                for variant in variants {
                    for ext in exts {
                        let out = tpl.render("", variant, key, hash, ext);
                        if let Some(other) = seen.insert(out.clone(), (key, variant, ext)) {
                            assert_eq!(other, (key, variant, ext), "{out} twice");
                        }
                    }
                }
            }
        }
        // And a template without the key does let them meet.
        let stem = t("{variant}/{dir}{stem}.{ext}");
        assert_eq!(
            stem.render("", "w", "a.jpg", "", "webp"),
            stem.render("", "w", "a.png", "", "webp")
        );
    }

    #[test]
    fn hashes_follow_bytes_and_plan() {
        let h = content_hash("etag-1", "plan-a");
        assert_eq!(h.len(), HASH_LEN);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(h, content_hash("etag-1", "plan-a"));
        assert_ne!(h, content_hash("etag-2", "plan-a"));
        assert_ne!(h, content_hash("etag-1", "plan-b"));
        assert_eq!(
            t(KeyTemplate::DEFAULT).rendered_len("m/", "w1", "k.jpg", "webp"),
            "m/w1/k.jpg.0123456789abcdef.webp".len()
        );
    }
}
