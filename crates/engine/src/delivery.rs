//! Serving the outputs: the public URL of an output key, and the responsive
//! markup (`srcset`, `sizes`, a `<picture>`) the manifest carries when a
//! public base URL is configured (`MEDIAFLOW_PUBLIC_BASE_URL` for the
//! functions, set by the templates to the CloudFront distribution's URL;
//! `--public-base-url` for `mediaflow process` and `mediaflow dev`).
//!
//! A URL is the base, `/`, and the output's full key percent-encoded as a
//! path: ASCII letters and digits, `-`, `.`, `_`, `~` and `/` stay, every
//! other byte of the UTF-8 key becomes `%XX` (a space is `%20`, `+` is
//! `%2B`, `%` is `%25`), which S3 and CloudFront decode back to the key.
//! One exception: a browser removes `.` and `..` path segments (also when
//! percent-encoded) before it sends a request, so a key with such a
//! segment (S3 keeps `a/../b.jpg` as its own object) has its slashes
//! encoded too (`a%2F..%2Fb.jpg`), which S3 decodes to the same key.
//!
//! Variants belong to one *family* when they show the same picture at
//! different sizes: the same fit, gravity and box shape (every `inside`
//! variant keeps the source's aspect ratio, so they are one family;
//! `cover 256x256` is another). Each family gets a `srcset` per format
//! (widths ascending, one candidate per width: variants that were not
//! enlarged can come out the same width) and an `html` snippet: a
//! `<picture>` with a `<source type srcset sizes>` per modern format (AVIF,
//! then WebP) and an `<img>` in the fallback format (JPEG, else PNG, else
//! the only format) with `src`, `srcset`, `sizes`, the largest variant's
//! `width` and `height` (the browser reserves the box before the image
//! arrives), `alt=""` (the page fills in the text), `loading="lazy"`,
//! `decoding="async"`, and a style that scales the image to its container
//! and paints the dominant colour until the image arrives (left out for
//! sources with transparency, whose transparent parts would show it).

use crate::manifest::{ManifestPlaceholder, ManifestVariant};
use crate::plan::{Fit, OutputFormat, Plan, Variant};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use std::collections::BTreeMap;

/// Bytes of a key written as they are in a URL path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// The same with `/` encoded (keys with dot segments).
const SEGMENT: &AsciiSet = &PATH.add(b'/');

/// The `<img>`'s `src` is the largest fallback variant at most this wide
/// (the smallest when every one is wider): what a browser without
/// `srcset` support loads.
const SRC_MAX_WIDTH: u32 = 1024;

/// A validated public base URL: `http` or `https`, a host, no user
/// information, query or fragment; kept without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase(String);

impl PublicBase {
    /// Parses `text`; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<PublicBase, String> {
        let url =
            url::Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?} is not an http or https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{text:?} has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?} carries user information"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} has a query or fragment; give the base only"
            ));
        }
        Ok(PublicBase(url.as_str().trim_end_matches('/').to_string()))
    }

    /// The base, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The public URL of the output stored under `key`.
    pub fn url(&self, key: &str) -> String {
        let dot_segment = key.split('/').any(|s| s == "." || s == "..");
        let set = if dot_segment { SEGMENT } else { PATH };
        format!("{}/{}", self.0, utf8_percent_encode(key, set))
    }
}

impl std::fmt::Display for PublicBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The responsive markup of one family of variants.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Responsive {
    /// The variants of this family, in plan order.
    pub variants: Vec<String>,
    /// The largest variant's size: the `<img>`'s `width` and `height`.
    pub width: u32,
    pub height: u32,
    /// Full width up to the largest variant's width; replace it to match
    /// the page's layout.
    pub sizes: String,
    /// `URL 256w, URL 512w, …` per format (`avif`, `jpeg`, `png`, `webp`).
    pub srcset: BTreeMap<String, String>,
    /// The `<img>`'s `src`.
    pub src: String,
    /// The `<picture>` element, ready to paste.
    pub html: String,
}

/// Which variants show the same picture at different sizes.
fn family_key(v: &Variant) -> String {
    match (v.fit, v.width, v.height) {
        (Fit::Inside, _, _) | (_, None, _) | (_, _, None) => "source".to_string(),
        (fit, Some(w), Some(h)) => {
            let g = gcd(w, h).max(1);
            format!(
                "{}:{}:{}x{}",
                fit.as_str(),
                v.gravity.canonical(),
                w / g,
                h / g
            )
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `&`, `"`, `<` and `>` escaped, for an attribute value in double quotes.
pub fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The families of `variants` (each with its `url` set), in plan order.
/// `placeholder`'s dominant colour paints the box of opaque sources.
pub fn responsive(
    plan: &Plan,
    variants: &[ManifestVariant],
    placeholder: Option<&ManifestPlaceholder>,
    opaque: bool,
) -> Vec<Responsive> {
    let mut families: Vec<(String, Vec<&str>)> = Vec::new();
    for v in plan.variants() {
        let key = family_key(v);
        match families.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(&v.name),
            None => families.push((key, vec![&v.name])),
        }
    }
    let background = placeholder
        .filter(|_| opaque)
        .map(|p| format!(";background-color:{}", p.dominant_color))
        .unwrap_or_default();
    families
        .into_iter()
        .filter_map(|(_, names)| family(&names, variants, &background))
        .collect()
}

fn family(names: &[&str], variants: &[ManifestVariant], background: &str) -> Option<Responsive> {
    let members: Vec<&ManifestVariant> = variants
        .iter()
        .filter(|v| names.contains(&v.name.as_str()) && v.url.is_some())
        .collect();
    let largest = members.iter().max_by_key(|v| v.width)?;
    let (width, height) = (largest.width, largest.height);
    // Per format, one (width, url) per width, ascending.
    let mut by_format: Vec<(OutputFormat, Vec<(u32, &str)>)> = Vec::new();
    for f in [
        OutputFormat::Avif,
        OutputFormat::Webp,
        OutputFormat::Jpeg,
        OutputFormat::Png,
    ] {
        let mut candidates: Vec<(u32, &str)> = members
            .iter()
            .filter(|v| v.format == f.as_str())
            .filter_map(|v| Some((v.width, v.url.as_deref()?)))
            .collect();
        candidates.sort_by_key(|&(w, _)| w);
        candidates.dedup_by_key(|&mut (w, _)| w);
        if !candidates.is_empty() {
            by_format.push((f, candidates));
        }
    }
    let srcset_of = |c: &[(u32, &str)]| {
        c.iter()
            .map(|(w, url)| format!("{url} {w}w"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fallback = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp]
        .into_iter()
        .chain([OutputFormat::Avif])
        .find_map(|f| by_format.iter().find(|(g, _)| *g == f))?;
    let src = fallback
        .1
        .iter()
        .rev()
        .find(|(w, _)| *w <= SRC_MAX_WIDTH)
        .unwrap_or(&fallback.1[0])
        .1
        .to_string();
    let sizes = format!("(min-width: {width}px) {width}px, 100vw");
    let mut html = String::from("<picture>\n");
    for (f, c) in &by_format {
        if *f == fallback.0 || !matches!(f, OutputFormat::Avif | OutputFormat::Webp) {
            continue;
        }
        html.push_str(&format!(
            "  <source type=\"{}\" srcset=\"{}\" sizes=\"{}\">\n",
            f.mime_type(),
            escape_attr(&srcset_of(c)),
            escape_attr(&sizes)
        ));
    }
    html.push_str(&format!(
        "  <img src=\"{}\" srcset=\"{}\" sizes=\"{}\" width=\"{width}\" height=\"{height}\" alt=\"\" loading=\"lazy\" decoding=\"async\" style=\"max-width:100%;height:auto{}\">\n</picture>",
        escape_attr(&src),
        escape_attr(&srcset_of(&fallback.1)),
        escape_attr(&sizes),
        escape_attr(background),
    ));
    Some(Responsive {
        variants: names
            .iter()
            .filter(|n| members.iter().any(|v| v.name == **n))
            .map(|n| n.to_string())
            .collect(),
        width,
        height,
        sizes,
        srcset: by_format
            .iter()
            .map(|(f, c)| (f.as_str().to_string(), srcset_of(c)))
            .collect(),
        src,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{EncodeOptions, FormatChoice, Gravity, Limits};

    fn base() -> PublicBase {
        PublicBase::parse("https://d111111abcdef8.cloudfront.net/").unwrap()
    }

    #[test]
    fn bases_are_checked() {
        assert_eq!(base().as_str(), "https://d111111abcdef8.cloudfront.net");
        assert_eq!(
            PublicBase::parse("http://127.0.0.1:9000/_media")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/_media"
        );
        for bad in [
            "",
            "d111.cloudfront.net",
            "ftp://host/",
            "https://user:pw@host/",
            "https://host/?a=1",
            "https://host/#x",
            "javascript:alert(1)",
        ] {
            assert!(PublicBase::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keys_are_percent_encoded_as_paths() {
        let b = base();
        let u = |k: &str| b.url(k).trim_start_matches(b.as_str()).to_string();
        assert_eq!(u("w256/a b+c.jpg"), "/w256/a%20b%2Bc.jpg");
        assert_eq!(u("w256/фото.jpg"), "/w256/%D1%84%D0%BE%D1%82%D0%BE.jpg");
        assert_eq!(u("w256/100%.jpg"), "/w256/100%25.jpg");
        assert_eq!(
            u("w256/a?b#c&d\"<>.jpg"),
            "/w256/a%3Fb%23c%26d%22%3C%3E.jpg"
        );
        assert_eq!(u("w256/a~b_c-d.e/f.jpg"), "/w256/a~b_c-d.e/f.jpg");
        // A browser would resolve the dot segments: the slashes go too.
        assert_eq!(u("w256/a/../b.jpg"), "/w256%2Fa%2F..%2Fb.jpg");
        assert_eq!(u("w256/./b.jpg"), "/w256%2F.%2Fb.jpg");
        assert_eq!(u("w256/a..b/.c"), "/w256/a..b/.c");
    }

    fn mv(name: &str, format: OutputFormat, width: u32, height: u32) -> ManifestVariant {
        let key = format!("{name}/k.{}", format.extension());
        ManifestVariant {
            name: name.to_string(),
            format: format.as_str().to_string(),
            url: Some(base().url(&key)),
            key,
            content_type: format.mime_type().to_string(),
            width,
            height,
            bytes: 1,
            frames: None,
            duration_ms: None,
        }
    }

    #[test]
    fn families_get_srcsets_and_a_picture() {
        let fmt = |fs: &[OutputFormat]| {
            fs.iter()
                .map(|&f| FormatChoice::Fixed(f))
                .collect::<Vec<_>>()
        };
        let all = [OutputFormat::Avif, OutputFormat::Webp, OutputFormat::Jpeg];
        let mut thumb =
            Variant::new("thumb", Some(200), Some(200)).with_formats(fmt(&[OutputFormat::Webp]));
        thumb.fit = Fit::Cover;
        thumb.gravity = Gravity::North;
        let plan = Plan::new(
            Limits::default(),
            vec![
                Variant::new("w2048", Some(2048), None).with_formats(fmt(&all)),
                thumb,
                Variant::new("w1024", Some(1024), None).with_formats(fmt(&all)),
                Variant::new("w512", Some(512), None).with_formats(fmt(&all)),
            ],
            EncodeOptions::default(),
        )
        .unwrap();
        // A 1600 px source: w2048 is not enlarged, so it is 1600 wide.
        let mut variants = Vec::new();
        for (name, w, h) in [
            ("w2048", 1600, 1200),
            ("w1024", 1024, 768),
            ("w512", 512, 384),
        ] {
            for f in all {
                variants.push(mv(name, f, w, h));
            }
        }
        variants.push(mv("thumb", OutputFormat::Webp, 200, 200));
        let placeholder = ManifestPlaceholder {
            blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj".to_string(),
            dominant_color: "#a0b1c2".to_string(),
        };
        let fams = responsive(&plan, &variants, Some(&placeholder), true);
        assert_eq!(fams.len(), 2);
        let main = &fams[0];
        assert_eq!(main.variants, ["w2048", "w1024", "w512"]);
        assert_eq!((main.width, main.height), (1600, 1200));
        let b = base();
        assert_eq!(
            main.srcset["webp"],
            format!(
                "{} 512w, {} 1024w, {} 1600w",
                b.url("w512/k.webp"),
                b.url("w1024/k.webp"),
                b.url("w2048/k.webp")
            )
        );
        assert_eq!(main.src, b.url("w1024/k.jpg"));
        assert_eq!(main.sizes, "(min-width: 1600px) 1600px, 100vw");
        let html = &main.html;
        let avif = html.find("type=\"image/avif\"").unwrap();
        let webp = html.find("type=\"image/webp\"").unwrap();
        let img = html.find("<img ").unwrap();
        assert!(avif < webp && webp < img, "{html}");
        assert!(!html.contains("type=\"image/jpeg\""), "{html}");
        for needle in [
            "width=\"1600\" height=\"1200\"",
            "alt=\"\"",
            "loading=\"lazy\"",
            "decoding=\"async\"",
            "background-color:#a0b1c2",
        ] {
            assert!(html.contains(needle), "{needle} missing from {html}");
        }
        let thumb = &fams[1];
        assert_eq!(thumb.variants, ["thumb"]);
        assert_eq!(thumb.srcset.keys().collect::<Vec<_>>(), ["webp"]);
        // WebP only: the <img> carries it, and there is no <source>.
        assert!(!thumb.html.contains("<source"), "{}", thumb.html);
        assert_eq!(thumb.src, b.url("thumb/k.webp"));
        // Transparency: no background under the image.
        let clear = responsive(&plan, &variants, Some(&placeholder), false);
        assert!(!clear[0].html.contains("background-color"));
    }

    #[test]
    fn attribute_values_cannot_break_out() {
        let b = PublicBase::parse("https://cdn.example/a&b").unwrap();
        let plan = Plan::new(
            Limits::default(),
            vec![Variant::new("w1", Some(100), None)],
            EncodeOptions::default(),
        )
        .unwrap();
        let mut v = mv("w1", OutputFormat::Jpeg, 100, 50);
        v.url = Some(b.url("w1/\"><script>.jpg"));
        let fams = responsive(&plan, &[v], None, true);
        let html = &fams[0].html;
        assert!(
            !html.contains("<script>") && !html.contains("\"><"),
            "{html}"
        );
        assert!(html.contains("a&amp;b"), "{html}");
    }
}
