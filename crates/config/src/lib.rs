//! Parses mediaflow's TOML configuration (`mediaflow.toml`) into a validated
//! engine [`Plan`] (`[limits]`, `[output]`, `[[variant]]`) and a video
//! [`VideoPlan`] (`[[video]]`, `[video_limits]`, `[video_options]`), together
//! a [`Config`].
//!
//! The engine's types carry no serde; this crate owns the file format. Parsing
//! happens in two stages so that every error names where it happened:
//!
//! 1. the text is parsed as TOML into the top-level sections (syntax errors and
//!    unknown top-level keys are reported by `toml`, with line and column);
//! 2. each section is checked key by key, and errors name the key path, e.g.
//!    `variant[2] ("w800").fit: unknown value "strech", expected one of inside,
//!    cover, contain, fill`.
//!
//! Finally [`Plan::new`] checks the plan as a whole (e.g. duplicate variant
//! names) and its message is passed through.
//!
//! ```
//! let plan = mediaflow_config::parse(r#"
//!     [[variant]]
//!     name = "thumb"
//!     width = 256
//!     height = 256
//!     fit = "cover"
//!     formats = ["webp", "jpeg"]
//! "#).unwrap();
//! assert_eq!(plan.variants()[0].name, "thumb");
//! ```

use mediaflow_engine::keys::{KeyTemplate, DEFAULT_CACHE_CONTROL};
use mediaflow_engine::{
    Color, EncodeOptions, Filter, Fit, FormatChoice, Gravity, Limits, MediaError, OutputFormat,
    Plan, Variant, MAX_OUTPUT_SIDE,
};
use mediaflow_video::{PosterAt, Preset, Rendition, VideoLimits, VideoPlan};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The built-in configuration as TOML text: four widths (w2048, w1024, w512,
/// w256), JPEG and WebP, `fit = "inside"`. Parses to [`builtin()`].
pub const BUILTIN_TOML: &str = include_str!("builtin.toml");

/// The default file name looked up in the current directory.
pub const DEFAULT_FILE_NAME: &str = "mediaflow.toml";

/// Why a configuration was rejected. The `Display` form is one human-readable
/// reason that names the offending key (TOML syntax errors span a few lines:
/// toml's own report with line, column and the offending line).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not valid TOML, or an unknown or mistyped top-level key.
    #[error("{}", .0.to_string().trim_end())]
    Toml(toml::de::Error),
    /// A key is missing, unknown, of the wrong type or out of range.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A key that the section does not have (typically a typo).
    #[error("unknown field {field:?} in {section}{hint}")]
    UnknownField {
        field: String,
        section: String,
        /// ", expected one of ..." as serde words it.
        hint: String,
    },
    /// The engine rejected the plan as a whole (e.g. a variant name used twice).
    #[error("{}", .0.message())]
    Plan(MediaError),
    /// The video settings were rejected as a whole (e.g. a rendition name
    /// used twice).
    #[error("{}", .0.message())]
    Video(mediaflow_video::MediaError),
    /// The file could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// An error in the named file.
    #[error("{}: {error}", path.display())]
    File {
        path: PathBuf,
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A whole configuration: the image plan (photos and video posters) and
/// the video settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub image: Plan,
    /// `[[video]]`, `[video_limits]` and `[video_options]`; the built-in
    /// video plan when the file has none of them.
    pub video: VideoPlan,
}

/// The built-in plan ([`Plan::builtin`]), which [`BUILTIN_TOML`] describes.
pub fn builtin() -> Plan {
    Plan::builtin()
}

/// The built-in configuration: [`builtin()`] and [`VideoPlan::builtin`].
pub fn builtin_config() -> Config {
    Config {
        image: Plan::builtin(),
        video: VideoPlan::builtin(),
    }
}

/// Reads and parses a configuration file's image plan; errors start with
/// the file's path.
pub fn load(path: &Path) -> Result<Plan> {
    load_config(path).map(|c| c.image)
}

/// Reads and parses a whole configuration file; errors start with its path.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_config(&text).map_err(|error| ConfigError::File {
        path: path.to_path_buf(),
        error: Box::new(error),
    })
}

/// Parses configuration text into a validated image plan (the video
/// sections are checked too).
pub fn parse(text: &str) -> Result<Plan> {
    parse_config(text).map(|c| c.image)
}

/// Parses configuration text into a validated [`Config`].
pub fn parse_config(text: &str) -> Result<Config> {
    let raw: RawConfig = toml::from_str(text).map_err(ConfigError::Toml)?;
    let limits = match raw.limits {
        Some(t) => parse_limits(t)?,
        None => Limits::default(),
    };
    let output = match raw.output {
        Some(t) => parse_output(t)?,
        None => OutputSettings::default(),
    };
    let tables = raw.variant.unwrap_or_default();
    if tables.is_empty() {
        return Err(ConfigError::invalid(
            "variant",
            "at least one [[variant]] table is required",
        ));
    }
    let variants = tables
        .into_iter()
        .enumerate()
        .map(|(i, t)| parse_variant(i, t))
        .collect::<Result<Vec<_>>>()?;
    let image = Plan::new(limits, variants, output.encode)
        .map_err(ConfigError::Plan)?
        .with_placeholder(output.placeholder)
        .with_fast_shrink_on_load(output.fast_shrink_on_load)
        .with_output_keys(output.keys, &output.cache_control)
        .map_err(ConfigError::Plan)?;
    let video = parse_video(raw.video, raw.video_limits, raw.video_options, &image)?;
    Ok(Config { image, video })
}

// ---------------------------------------------------------------------------
// Serde DTOs (private). Sections are first read as plain tables so that the
// second stage knows which section (and which variant) it is looking at; every
// field is then read as a raw TOML value and checked by hand, so that each
// message names its key path and lists the accepted values.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    limits: Option<Table>,
    output: Option<Table>,
    variant: Option<Vec<Table>>,
    video: Option<Vec<Table>>,
    video_limits: Option<Table>,
    video_options: Option<Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoDto {
    name: Option<Value>,
    max_width: Option<Value>,
    max_height: Option<Value>,
    crf: Option<Value>,
    preset: Option<Value>,
    max_bitrate_kbps: Option<Value>,
    audio_bitrate_kbps: Option<Value>,
    audio: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoLimitsDto {
    max_input_bytes: Option<Value>,
    max_duration_seconds: Option<Value>,
    max_pixels: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoOptionsDto {
    poster_at: Option<Value>,
    animated_gif: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDto {
    max_input_bytes: Option<Value>,
    max_pixels: Option<Value>,
    max_frames: Option<Value>,
    max_animation_pixels: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputDto {
    jpeg_progressive: Option<Value>,
    avif_speed: Option<Value>,
    webp_method: Option<Value>,
    png_compression: Option<Value>,
    placeholder: Option<Value>,
    fast_shrink_on_load: Option<Value>,
    keys: Option<Value>,
    cache_control: Option<Value>,
}

/// The `[output]` section, checked.
struct OutputSettings {
    encode: EncodeOptions,
    placeholder: bool,
    fast_shrink_on_load: bool,
    keys: KeyTemplate,
    cache_control: String,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            encode: EncodeOptions::default(),
            placeholder: true,
            fast_shrink_on_load: true,
            keys: KeyTemplate::default(),
            cache_control: DEFAULT_CACHE_CONTROL.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantDto {
    name: Option<Value>,
    width: Option<Value>,
    height: Option<Value>,
    fit: Option<Value>,
    gravity: Option<Value>,
    focal: Option<Value>,
    formats: Option<Value>,
    quality: Option<Value>,
    upscale: Option<Value>,
    background: Option<Value>,
    filter: Option<Value>,
    lossless: Option<Value>,
    animated: Option<Value>,
}

/// Deserialises a section's table into its DTO; unknown keys are reported
/// with the section's path.
fn section<T: for<'de> Deserialize<'de>>(table: Table, path: &str) -> Result<T> {
    Value::Table(table).try_into::<T>().map_err(|e| {
        let message = e.message().trim_end();
        // serde's wording: "unknown field `widht`, expected one of `name`, ...".
        match message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((field, hint)) => ConfigError::UnknownField {
                field: field.to_string(),
                section: path.to_string(),
                hint: hint.replace('`', ""),
            },
            None => ConfigError::invalid(path, message),
        }
    })
}

fn parse_limits(table: Table) -> Result<Limits> {
    let dto: LimitsDto = section(table, "limits")?;
    let d = Limits::default();
    Ok(Limits {
        max_input_bytes: opt(dto.max_input_bytes, "limits.max_input_bytes", |v, p| {
            int(v, p, 1, i64::MAX).map(|n| n as u64)
        })?
        .unwrap_or(d.max_input_bytes),
        max_pixels: opt(dto.max_pixels, "limits.max_pixels", |v, p| {
            int(v, p, 1, i64::MAX).map(|n| n as u64)
        })?
        .unwrap_or(d.max_pixels),
        max_frames: opt(dto.max_frames, "limits.max_frames", |v, p| {
            int(v, p, 1, u32::MAX.into()).map(|n| n as u32)
        })?
        .unwrap_or(d.max_frames),
        max_animation_pixels: opt(
            dto.max_animation_pixels,
            "limits.max_animation_pixels",
            |v, p| int(v, p, 1, i64::MAX).map(|n| n as u64),
        )?
        .unwrap_or(d.max_animation_pixels),
    })
}

fn parse_output(table: Table) -> Result<OutputSettings> {
    let dto: OutputDto = section(table, "output")?;
    let d = EncodeOptions::default();
    let small = |lo: i64, hi: i64| move |v: &Value, p: &str| int(v, p, lo, hi).map(|n| n as u8);
    let encode = EncodeOptions {
        jpeg_progressive: opt(dto.jpeg_progressive, "output.jpeg_progressive", boolean)?
            .unwrap_or(d.jpeg_progressive),
        avif_speed: opt(dto.avif_speed, "output.avif_speed", small(1, 10))?.unwrap_or(d.avif_speed),
        webp_method: opt(dto.webp_method, "output.webp_method", small(0, 6))?
            .unwrap_or(d.webp_method),
        png_compression: opt(dto.png_compression, "output.png_compression", small(0, 9))?
            .unwrap_or(d.png_compression),
    };
    let placeholder = opt(dto.placeholder, "output.placeholder", boolean)?.unwrap_or(true);
    let fast_shrink_on_load = opt(
        dto.fast_shrink_on_load,
        "output.fast_shrink_on_load",
        boolean,
    )?
    .unwrap_or(true);
    let keys = match opt(dto.keys, "output.keys", string)? {
        Some(text) => KeyTemplate::parse(&text).map_err(ConfigError::Plan)?,
        None => KeyTemplate::default(),
    };
    let cache_control = opt(dto.cache_control, "output.cache_control", string)?
        .unwrap_or_else(|| DEFAULT_CACHE_CONTROL.to_string());
    Ok(OutputSettings {
        encode,
        placeholder,
        fast_shrink_on_load,
        keys,
        cache_control,
    })
}

fn parse_video(
    tables: Option<Vec<Table>>,
    limits: Option<Table>,
    options: Option<Table>,
    image: &Plan,
) -> Result<VideoPlan> {
    let builtin = VideoPlan::builtin();
    let renditions = match tables {
        None => builtin.renditions().to_vec(),
        Some(t) if t.is_empty() => {
            return Err(ConfigError::invalid(
                "video",
                "at least one [[video]] table is required when the key is given",
            ))
        }
        Some(t) => t
            .into_iter()
            .enumerate()
            .map(|(i, t)| parse_rendition(i, t, image))
            .collect::<Result<Vec<_>>>()?,
    };
    let limits = match limits {
        None => VideoLimits::default(),
        Some(t) => {
            let dto: VideoLimitsDto = section(t, "video_limits")?;
            let d = VideoLimits::default();
            let positive = |v: &Value, p: &str| int(v, p, 1, i64::MAX).map(|n| n as u64);
            VideoLimits {
                max_input_bytes: opt(
                    dto.max_input_bytes,
                    "video_limits.max_input_bytes",
                    positive,
                )?
                .unwrap_or(d.max_input_bytes),
                max_duration_seconds: opt(
                    dto.max_duration_seconds,
                    "video_limits.max_duration_seconds",
                    |v, p| seconds(v, p, false),
                )?
                .unwrap_or(d.max_duration_seconds),
                max_pixels: opt(dto.max_pixels, "video_limits.max_pixels", positive)?
                    .unwrap_or(d.max_pixels),
            }
        }
    };
    let (poster_at, animated_gif) = match options {
        None => (builtin.poster_at(), builtin.animated_gif()),
        Some(t) => {
            let dto: VideoOptionsDto = section(t, "video_options")?;
            (
                opt(dto.poster_at, "video_options.poster_at", poster_at)?
                    .unwrap_or(builtin.poster_at()),
                opt(dto.animated_gif, "video_options.animated_gif", boolean)?
                    .unwrap_or(builtin.animated_gif()),
            )
        }
    };
    VideoPlan::new(renditions, poster_at, limits, animated_gif).map_err(ConfigError::Video)
}

/// A number of seconds (integer or float); `zero_ok` allows 0.
fn seconds(v: &Value, path: &str, zero_ok: bool) -> Result<f64> {
    let f = match v {
        Value::Integer(i) => *i as f64,
        Value::Float(f) => *f,
        other => {
            return Err(ConfigError::invalid(
                path,
                format!("expected a number of seconds, got {}", describe(other)),
            ))
        }
    };
    if !f.is_finite() || f < 0.0 || (f == 0.0 && !zero_ok) {
        return Err(ConfigError::invalid(
            path,
            format!("{f} is out of range, expected a positive number of seconds"),
        ));
    }
    Ok(f)
}

/// `"10%"` (of the duration), `"2.5s"` or a number of seconds.
fn poster_at(v: &Value, path: &str) -> Result<PosterAt> {
    let bad = |got: &str| {
        ConfigError::invalid(
            path,
            format!("expected a percentage of the duration such as \"10%\", or seconds such as \"2.5s\" or 2.5, got {got}"),
        )
    };
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Some(pct) = t.strip_suffix('%') {
                match pct.trim().parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => Ok(PosterAt::Fraction(p / 100.0)),
                    _ => Err(bad(&describe(v))),
                }
            } else if let Some(secs) = t.strip_suffix('s') {
                match secs.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && x >= 0.0 => Ok(PosterAt::Seconds(x)),
                    _ => Err(bad(&describe(v))),
                }
            } else {
                Err(bad(&describe(v)))
            }
        }
        Value::Integer(_) | Value::Float(_) => seconds(v, path, true).map(PosterAt::Seconds),
        other => Err(bad(&describe(other))),
    }
}

fn parse_rendition(index: usize, table: Table, image: &Plan) -> Result<Rendition> {
    let base = match table.get("name") {
        Some(Value::String(name)) => format!("video[{index}] ({name:?})"),
        _ => format!("video[{index}]"),
    };
    let dto: VideoDto = section(table, &base)?;
    let key = |k: &str| format!("{base}.{k}");
    let name = match dto.name {
        Some(v) => string(&v, &format!("video[{index}].name"))?,
        None => return Err(ConfigError::invalid(base, "missing required key \"name\"")),
    };
    check_name(&name, &key("name"))?;
    if image.variants().iter().any(|v| v.name == name) {
        return Err(ConfigError::invalid(
            key("name"),
            format!("{name:?} is already the name of a [[variant]]; give the rendition its own folder name"),
        ));
    }
    let mut r = Rendition::new(name);
    let side = |v: &Value, p: &str| int(v, p, 2, 8192).map(|n| n as u32);
    let max_width = opt(dto.max_width, &key("max_width"), side)?;
    let max_height = opt(dto.max_height, &key("max_height"), side)?;
    if max_width.is_some() || max_height.is_some() {
        r.max_width = max_width;
        r.max_height = max_height;
    }
    if let Some(crf) = opt(dto.crf, &key("crf"), |v, p| int(v, p, 0, 51))? {
        r.crf = crf as u8;
    }
    if let Some(preset) = opt(dto.preset, &key("preset"), |v, p| {
        let s = string(v, p)?;
        Preset::parse(&s).ok_or_else(|| {
            let names: Vec<_> = Preset::ALL.iter().map(|p| p.as_str()).collect();
            unknown_value(p, &s, &names)
        })
    })? {
        r.preset = preset;
    }
    r.max_bitrate_kbps = opt(dto.max_bitrate_kbps, &key("max_bitrate_kbps"), |v, p| {
        int(v, p, 64, 1_000_000).map(|n| n as u32)
    })?;
    if let Some(b) = opt(
        dto.audio_bitrate_kbps,
        &key("audio_bitrate_kbps"),
        |v, p| int(v, p, 16, 1024).map(|n| n as u32),
    )? {
        r.audio_bitrate_kbps = b;
    }
    if let Some(a) = opt(dto.audio, &key("audio"), boolean)? {
        r.audio = a;
    }
    Ok(r)
}

/// A variant's or rendition's name: the engine's one name rule
/// ([`mediaflow_engine::check_name`]), reported at `path`.
fn check_name(name: &str, path: &str) -> Result<()> {
    mediaflow_engine::check_name(name).map_err(|e| {
        ConfigError::invalid(
            path,
            format!("{e} (lowercase letters, digits, '_' and '-')"),
        )
    })
}

const FITS: [(&str, Fit); 4] = [
    ("inside", Fit::Inside),
    ("cover", Fit::Cover),
    ("contain", Fit::Contain),
    ("fill", Fit::Fill),
];

const GRAVITIES: [(&str, Gravity); 12] = [
    ("center", Gravity::Center),
    ("centre", Gravity::Center),
    ("north", Gravity::North),
    ("northeast", Gravity::NorthEast),
    ("east", Gravity::East),
    ("southeast", Gravity::SouthEast),
    ("south", Gravity::South),
    ("southwest", Gravity::SouthWest),
    ("west", Gravity::West),
    ("northwest", Gravity::NorthWest),
    ("attention", Gravity::Attention),
    ("entropy", Gravity::Entropy),
];

fn parse_variant(index: usize, table: Table) -> Result<Variant> {
    // Name the variant in every path once its name is known to be a string.
    let base = match table.get("name") {
        Some(Value::String(name)) => format!("variant[{index}] ({name:?})"),
        _ => format!("variant[{index}]"),
    };
    let dto: VariantDto = section(table, &base)?;
    let key = |k: &str| format!("{base}.{k}");

    let name = match dto.name {
        Some(v) => string(&v, &format!("variant[{index}].name"))?,
        None => return Err(ConfigError::invalid(base, "missing required key \"name\"")),
    };
    check_name(&name, &key("name"))?;

    let side = |v: &Value, p: &str| int(v, p, 1, MAX_OUTPUT_SIDE.into()).map(|n| n as u32);
    let width = opt(dto.width, &key("width"), side)?;
    let height = opt(dto.height, &key("height"), side)?;
    if width.is_none() && height.is_none() {
        return Err(ConfigError::invalid(
            base,
            "set at least one of width and height",
        ));
    }

    let mut variant = Variant::new(name, width, height);
    if let Some(fit) = opt(dto.fit, &key("fit"), |v, p| one_of(v, p, &FITS))? {
        variant.fit = fit;
    }
    let gravity_given = dto.gravity.is_some();
    if let Some(gravity) = opt(dto.gravity, &key("gravity"), |v, p| {
        one_of(v, p, &GRAVITIES)
    })? {
        variant.gravity = gravity;
    }
    if let Some(focal) = dto.focal {
        let path = key("focal");
        if gravity_given {
            return Err(ConfigError::invalid(
                path,
                "set either gravity or focal, not both",
            ));
        }
        variant.gravity = parse_focal(&focal, &path)?;
    }
    if let Some(v) = dto.formats {
        variant.formats = parse_formats(&v, &key("formats"))?;
    }
    if let Some(q) = opt(dto.quality, &key("quality"), |v, p| int(v, p, 1, 100))? {
        variant.quality = Some(q as u8);
    }
    if let Some(b) = opt(dto.upscale, &key("upscale"), boolean)? {
        variant.upscale = b;
    }
    variant.background = opt(dto.background, &key("background"), |v, p| {
        let s = string(v, p)?;
        Color::parse_hex(&s).ok_or_else(|| {
            ConfigError::invalid(
                p,
                format!("invalid colour {s:?}, expected \"#rgb\", \"#rrggbb\" or \"#rrggbbaa\""),
            )
        })
    })?;
    if let Some(filter) = opt(dto.filter, &key("filter"), |v, p| {
        let s = string(v, p)?;
        Filter::parse(&s).ok_or_else(|| {
            let names: Vec<_> = Filter::ALL.iter().map(|f| f.as_str()).collect();
            unknown_value(p, &s, &names)
        })
    })? {
        variant.filter = filter;
    }
    if let Some(b) = opt(dto.lossless, &key("lossless"), boolean)? {
        variant.lossless = b;
    }
    if let Some(b) = opt(dto.animated, &key("animated"), boolean)? {
        variant.animated = b;
    }
    Ok(variant)
}

fn parse_focal(v: &Value, path: &str) -> Result<Gravity> {
    let bad = || {
        ConfigError::invalid(
            path,
            format!(
                "expected [x, y] with fractions 0..1 of the width and height, got {}",
                describe(v)
            ),
        )
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    if items.len() != 2 {
        return Err(bad());
    }
    let mut xy = [0.0f64; 2];
    for (slot, item) in xy.iter_mut().zip(items) {
        let f = match item {
            Value::Float(f) => *f,
            Value::Integer(i) => *i as f64,
            _ => return Err(bad()),
        };
        if !(0.0..=1.0).contains(&f) {
            return Err(bad());
        }
        *slot = f;
    }
    Ok(Gravity::Focal(xy[0], xy[1]))
}

const FORMAT_NAMES: [&str; 5] = ["jpeg", "png", "webp", "avif", "source"];

fn parse_formats(v: &Value, path: &str) -> Result<Vec<FormatChoice>> {
    let Value::Array(items) = v else {
        return Err(ConfigError::invalid(
            path,
            format!(
                "expected an array of formats such as [\"jpeg\", \"webp\"], got {}",
                describe(v)
            ),
        ));
    };
    if items.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "must list at least one format (jpeg, png, webp, avif, source)",
        ));
    }
    let mut formats: Vec<FormatChoice> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let s = string(item, &item_path)?;
        let choice = if s == "source" {
            FormatChoice::Source
        } else {
            FormatChoice::Fixed(
                OutputFormat::parse(&s)
                    .ok_or_else(|| unknown_value(&item_path, &s, &FORMAT_NAMES))?,
            )
        };
        if let Some(first) = formats.iter().position(|f| *f == choice) {
            return Err(ConfigError::invalid(
                item_path,
                format!("{s:?} is listed twice (same as {path}[{first}])"),
            ));
        }
        formats.push(choice);
    }
    Ok(formats)
}

// ---------------------------------------------------------------------------
// Typed access to raw values, with messages naming the key path.

fn opt<T>(
    value: Option<Value>,
    path: &str,
    f: impl FnOnce(&Value, &str) -> Result<T>,
) -> Result<Option<T>> {
    value.map(|v| f(&v, path)).transpose()
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

fn int(v: &Value, path: &str, lo: i64, hi: i64) -> Result<i64> {
    let expected = if hi == i64::MAX {
        format!("an integer of at least {lo}")
    } else {
        format!("an integer in {lo}..={hi}")
    };
    match v {
        Value::Integer(i) if (lo..=hi).contains(i) => Ok(*i),
        Value::Integer(i) => Err(ConfigError::invalid(
            path,
            format!("{i} is out of range, expected {expected}"),
        )),
        other => Err(ConfigError::invalid(
            path,
            format!("expected {expected}, got {}", describe(other)),
        )),
    }
}

fn boolean(v: &Value, path: &str) -> Result<bool> {
    match v {
        Value::Boolean(b) => Ok(*b),
        other => Err(ConfigError::invalid(
            path,
            format!("expected true or false, got {}", describe(other)),
        )),
    }
}

fn string(v: &Value, path: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(ConfigError::invalid(
            path,
            format!("expected a string, got {}", describe(other)),
        )),
    }
}

fn unknown_value(path: &str, got: &str, names: &[&str]) -> ConfigError {
    let mut message = format!("unknown value {got:?}, expected one of ");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            message.push_str(", ");
        }
        let _ = write!(message, "{n}");
    }
    ConfigError::invalid(path, message)
}

fn one_of<T: Copy>(v: &Value, path: &str, table: &[(&str, T)]) -> Result<T> {
    let s = string(v, path)?;
    table
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            unknown_value(path, &s, &names)
        })
}

#[cfg(test)]
mod tests;
