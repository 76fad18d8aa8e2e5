//! What to produce: limits and variants, as validated engine types.
//!
//! These types carry no serde: the configuration file is parsed elsewhere
//! (`mediaflow-config`) and turned into a [`Plan`] through [`Plan::new`],
//! which is the only way to build one and which checks every invariant.

use crate::error::{MediaError, Result};
use crate::keys::{KeyTemplate, DEFAULT_CACHE_CONTROL, IMMUTABLE_CACHE_CONTROL};
use std::fmt;

/// Hard ceiling on any output side, whatever the configuration says.
pub const MAX_OUTPUT_SIDE: u32 = 16_384;

/// Input limits, checked before anything large is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_input_bytes: u64,
    /// Largest accepted `width * height` of the source, read from its header.
    pub max_pixels: u64,
    /// Frames of an animated source (GIF, WebP) that an `animated` variant
    /// may decode. With 1 (the default) every output is a still of the
    /// first frame. A source declaring more frames, or more than
    /// [`Limits::max_animation_pixels`], is still processed: its animated
    /// variants become stills of the first frame.
    pub max_frames: u32,
    /// Total pixels of all frames (canvas size x frames, from the header)
    /// an `animated` variant may decode.
    pub max_animation_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_frames: 1,
            max_animation_pixels: 100_000_000,
        }
    }
}

/// How the image is fitted to a variant's box (the semantics of sharp's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Keep the aspect ratio, fit within the box (the default).
    #[default]
    Inside,
    /// Fill the box exactly, cropping the overflow according to the gravity.
    Cover,
    /// Fit within the box, then pad to the exact box with the background.
    Contain,
    /// Stretch to the exact box, ignoring the aspect ratio.
    Fill,
}

impl Fit {
    /// Configuration name (`inside`, `cover`, `contain`, `fill`).
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Inside => "inside",
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Fill => "fill",
        }
    }
}

/// Which part of the image a `cover` crop keeps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Gravity {
    #[default]
    Center,
    North,
    NorthEast,
    East,
    SouthEast,
    South,
    SouthWest,
    West,
    NorthWest,
    /// A focal point in fractions of the displayed image (0..=1, 0..=1).
    Focal(f64, f64),
    /// The most salient region (edges, skin tones, saturated colour), as
    /// libvips's `attention` strategy; found from the pixels.
    Attention,
    /// The region with the most detail (luminance entropy), as libvips's
    /// `entropy` strategy; found from the pixels.
    Entropy,
}

impl Gravity {
    /// The canonical name (`center`, `north`, …, `northwest`), or
    /// `focal:X,Y` for a focal point (shortest round-trip decimals).
    pub fn canonical(self) -> String {
        let name = match self {
            Gravity::Center => "center",
            Gravity::North => "north",
            Gravity::NorthEast => "northeast",
            Gravity::East => "east",
            Gravity::SouthEast => "southeast",
            Gravity::South => "south",
            Gravity::SouthWest => "southwest",
            Gravity::West => "west",
            Gravity::NorthWest => "northwest",
            Gravity::Attention => "attention",
            Gravity::Entropy => "entropy",
            Gravity::Focal(x, y) => return format!("focal:{x},{y}"),
        };
        name.to_string()
    }

    /// Whether the crop is found from the pixels (`attention`, `entropy`).
    pub fn is_smart(self) -> bool {
        matches!(self, Gravity::Attention | Gravity::Entropy)
    }

    /// Fractions (x, y) of the overflow to cut from the left and the top
    /// (the centre for the smart strategies, until the pixels decide).
    pub fn centering(self) -> (f64, f64) {
        match self {
            Gravity::Center => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::NorthEast => (1.0, 0.0),
            Gravity::East => (1.0, 0.5),
            Gravity::SouthEast => (1.0, 1.0),
            Gravity::South => (0.5, 1.0),
            Gravity::SouthWest => (0.0, 1.0),
            Gravity::West => (0.0, 0.5),
            Gravity::NorthWest => (0.0, 0.0),
            Gravity::Focal(x, y) => (x, y),
            Gravity::Attention | Gravity::Entropy => (0.5, 0.5),
        }
    }
}

/// Resampling filter (convolution kernels of `fast_image_resize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    Nearest,
    Box,
    Bilinear,
    Hamming,
    CatmullRom,
    Mitchell,
    #[default]
    Lanczos3,
}

impl Filter {
    pub const ALL: [Filter; 7] = [
        Filter::Nearest,
        Filter::Box,
        Filter::Bilinear,
        Filter::Hamming,
        Filter::CatmullRom,
        Filter::Mitchell,
        Filter::Lanczos3,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Filter::Nearest => "nearest",
            Filter::Box => "box",
            Filter::Bilinear => "bilinear",
            Filter::Hamming => "hamming",
            Filter::CatmullRom => "catmullrom",
            Filter::Mitchell => "mitchell",
            Filter::Lanczos3 => "lanczos3",
        }
    }
    pub fn parse(s: &str) -> Option<Filter> {
        Filter::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// An output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ];
    /// Configuration name (`jpeg`, `png`, `webp`, `avif`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }
    /// File extension of outputs (`jpg`, `png`, `webp`, `avif`).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }
    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
        }
    }
    pub fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }
    /// Quality used when a variant does not set one (sharp's defaults; AVIF
    /// 50 maps to libaom's quantizer 32 as in libavif and sharp).
    pub fn default_quality(self) -> u8 {
        match self {
            OutputFormat::Jpeg => 80,
            OutputFormat::Png => 100,
            OutputFormat::Webp => 80,
            OutputFormat::Avif => 50,
        }
    }
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "jpeg" | "jpg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "webp" => Some(OutputFormat::Webp),
            "avif" => Some(OutputFormat::Avif),
            _ => None,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format requested by a variant: a fixed one, or "the same as the source".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatChoice {
    Fixed(OutputFormat),
    /// The source's format when it is a web format (JPEG, PNG, WebP, AVIF);
    /// PNG for GIF (outputs are stills and keep transparency); JPEG otherwise.
    Source,
}

impl FormatChoice {
    /// Configuration name: the format's (`jpeg`, …) or `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            FormatChoice::Fixed(f) => f.as_str(),
            FormatChoice::Source => "source",
        }
    }
}

/// An sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Color {
    pub const WHITE: Color = Color::rgb(255, 255, 255);
    pub const TRANSPARENT: Color = Color {
        r: 0,
        g: 0,
        b: 0,
        a: 0,
    };
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color { r, g, b, a: 255 }
    }
    /// Parses `#rgb`, `#rrggbb` or `#rrggbbaa`.
    pub fn parse_hex(s: &str) -> Option<Color> {
        let hex = s.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        match hex.len() {
            3 => {
                let nib = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok().map(|v| v * 17);
                Some(Color::rgb(nib(0)?, nib(1)?, nib(2)?))
            }
            6 => Some(Color::rgb(byte(0)?, byte(2)?, byte(4)?)),
            8 => Some(Color {
                r: byte(0)?,
                g: byte(2)?,
                b: byte(4)?,
                a: byte(6)?,
            }),
            _ => None,
        }
    }
    pub fn to_hex(self) -> String {
        if self.a == 255 {
            format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
        } else {
            format!("#{:02x}{:02x}{:02x}{:02x}", self.r, self.g, self.b, self.a)
        }
    }
}

/// The rule every output folder name (image variants, video renditions)
/// follows: it becomes a key segment, so only `[a-z0-9_-]`, at least one.
pub const NAME_RULE: &str = "[a-z0-9_-]+";

/// A variant or rendition name that breaks [`NAME_RULE`]. `Display` reads
/// `"W800" must match [a-z0-9_-]+`; callers prefix what was being named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} must match {NAME_RULE}")]
pub struct InvalidName {
    pub name: String,
}

/// Checks `name` against [`NAME_RULE`]: the one place the rule is written.
pub fn check_name(name: &str) -> std::result::Result<(), InvalidName> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if !name.is_empty() && name.bytes().all(allowed) {
        Ok(())
    } else {
        Err(InvalidName {
            name: name.to_string(),
        })
    }
}

/// One requested output size, in one or more formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `[a-z0-9_-]+`, unique in a plan; used as the output folder.
    pub name: String,
    /// Box width in displayed (upright) pixels; `None` means "from the height".
    pub width: Option<u32>,
    /// Box height in displayed pixels; `None` means "from the width".
    pub height: Option<u32>,
    pub fit: Fit,
    pub gravity: Gravity,
    pub formats: Vec<FormatChoice>,
    /// 1..=100; `None` uses each format's default.
    pub quality: Option<u8>,
    /// Allow enlarging sources smaller than the box (default false).
    pub upscale: bool,
    /// Padding for `contain` and the flattening colour for alpha into JPEG.
    /// `None`: transparent padding where the format has alpha, white otherwise.
    pub background: Option<Color>,
    pub filter: Filter,
    /// WebP only: lossless instead of lossy.
    pub lossless: bool,
    /// An animated GIF or WebP source keeps its animation in this variant's
    /// WebP output (every frame resized, timing and loop count kept), within
    /// [`Limits::max_frames`] and [`Limits::max_animation_pixels`]. Other
    /// formats, and stills, are made from the first frame.
    pub animated: bool,
}

impl Variant {
    /// A variant with the defaults: `inside`, centre, Lanczos3, JPEG.
    pub fn new(name: impl Into<String>, width: Option<u32>, height: Option<u32>) -> Variant {
        Variant {
            name: name.into(),
            width,
            height,
            fit: Fit::Inside,
            gravity: Gravity::Center,
            formats: vec![FormatChoice::Fixed(OutputFormat::Jpeg)],
            quality: None,
            upscale: false,
            background: None,
            filter: Filter::Lanczos3,
            lossless: false,
            animated: false,
        }
    }

    pub fn with_formats(mut self, formats: impl IntoIterator<Item = FormatChoice>) -> Variant {
        self.formats = formats.into_iter().collect();
        self
    }
    pub fn with_fit(mut self, fit: Fit) -> Variant {
        self.fit = fit;
        self
    }

    fn validate(&self) -> Result<()> {
        let name = &self.name;
        check_name(name).map_err(|e| MediaError::invalid_plan(format!("variant name {e}")))?;
        if self.width.is_none() && self.height.is_none() {
            return Err(MediaError::invalid_plan(format!(
                "variant {name:?}: set at least one of width and height"
            )));
        }
        for (label, side) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = side {
                if v == 0 || v > MAX_OUTPUT_SIDE {
                    return Err(MediaError::invalid_plan(format!(
                        "variant {name:?}: {label} must be 1..={MAX_OUTPUT_SIDE}, got {v}"
                    )));
                }
            }
        }
        // A cover/contain/fill variant with one side missing derives the other
        // from the aspect ratio, as sharp does, and so behaves like `inside`.
        if self.formats.is_empty() {
            return Err(MediaError::invalid_plan(format!(
                "variant {name:?}: formats must not be empty"
            )));
        }
        for (i, f) in self.formats.iter().enumerate() {
            if self.formats[..i].contains(f) {
                return Err(MediaError::invalid_plan(format!(
                    "variant {name:?}: format listed twice"
                )));
            }
        }
        if let Some(q) = self.quality {
            if !(1..=100).contains(&q) {
                return Err(MediaError::invalid_plan(format!(
                    "variant {name:?}: quality must be 1..=100, got {q}"
                )));
            }
        }
        if self.animated
            && !self
                .formats
                .contains(&FormatChoice::Fixed(OutputFormat::Webp))
        {
            return Err(MediaError::invalid_plan(format!(
                "variant {name:?}: animated = true needs \"webp\" in formats (animations are written as animated WebP)"
            )));
        }
        if let Gravity::Focal(x, y) = self.gravity {
            if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) {
                return Err(MediaError::invalid_plan(format!(
                    "variant {name:?}: focal point must be within 0..=1"
                )));
            }
        }
        Ok(())
    }
}

/// Encoder settings shared by all variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Progressive JPEG (smaller above ~10 KB, renders early); default true.
    pub jpeg_progressive: bool,
    /// AVIF speed 1 (slow, small) ..= 10 (fast), libaom's cpu-used 0..=9;
    /// default 7 (cpu-used 6).
    pub avif_speed: u8,
    /// libwebp method 0 (fast) ..= 6 (slow, small); default 4 (sharp's).
    pub webp_method: u8,
    /// PNG zlib effort 0..=9 mapped to the png crate's levels; default 6.
    pub png_compression: u8,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            jpeg_progressive: true,
            avif_speed: 7,
            webp_method: 4,
            png_compression: 6,
        }
    }
}

/// Everything the engine needs to turn one source into its outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    limits: Limits,
    variants: Vec<Variant>,
    encode: EncodeOptions,
    placeholder: bool,
    fast_shrink_on_load: bool,
    keys: KeyTemplate,
    cache_control: String,
}

impl Plan {
    /// Validates and builds a plan. Errors name the offending variant and field.
    pub fn new(limits: Limits, variants: Vec<Variant>, encode: EncodeOptions) -> Result<Plan> {
        if variants.is_empty() {
            return Err(MediaError::invalid_plan("at least one variant is required"));
        }
        if limits.max_input_bytes == 0
            || limits.max_pixels == 0
            || limits.max_frames == 0
            || limits.max_animation_pixels == 0
        {
            return Err(MediaError::invalid_plan("limits must be greater than zero"));
        }
        if let Some(v) = variants.iter().find(|v| v.animated) {
            if limits.max_frames < 2 {
                return Err(MediaError::invalid_plan(format!(
                    "variant {:?}: animated = true needs limits.max_frames of 2 or more \
                     (it is {}, which keeps only the first frame)",
                    v.name, limits.max_frames
                )));
            }
        }
        for (i, v) in variants.iter().enumerate() {
            v.validate()?;
            if variants[..i].iter().any(|o| o.name == v.name) {
                return Err(MediaError::invalid_plan(format!(
                    "variant name {:?} is used twice",
                    v.name
                )));
            }
        }
        if !(1..=10).contains(&encode.avif_speed) {
            return Err(MediaError::invalid_plan("avif_speed must be 1..=10"));
        }
        if encode.webp_method > 6 {
            return Err(MediaError::invalid_plan("webp_method must be 0..=6"));
        }
        if encode.png_compression > 9 {
            return Err(MediaError::invalid_plan("png_compression must be 0..=9"));
        }
        Ok(Plan {
            limits,
            variants,
            encode,
            placeholder: true,
            fast_shrink_on_load: true,
            keys: KeyTemplate::default(),
            cache_control: DEFAULT_CACHE_CONTROL.to_string(),
        })
    }

    /// The built-in plan used when no configuration is given: four widths in
    /// JPEG and WebP, as a typical responsive-images setup wants.
    pub fn builtin() -> Plan {
        let both = [
            FormatChoice::Fixed(OutputFormat::Jpeg),
            FormatChoice::Fixed(OutputFormat::Webp),
        ];
        let variants = [
            ("w2048", 2048),
            ("w1024", 1024),
            ("w512", 512),
            ("w256", 256),
        ]
        .into_iter()
        .map(|(n, w)| Variant::new(n, Some(w), None).with_formats(both))
        .collect();
        Plan::new(Limits::default(), variants, EncodeOptions::default())
            .expect("built-in plan is valid")
    }

    /// Turns placeholder (BlurHash, dominant colour) computation on or off.
    pub fn with_placeholder(mut self, on: bool) -> Plan {
        self.placeholder = on;
        self
    }

    /// Turns sharp's `fastShrinkOnLoad` on (the default) or off. On, a JPEG
    /// is DCT-scaled down to the smallest scale that is still at least as
    /// large as every output ([`crate::FAST_DECODE_MARGIN`]); off, the
    /// decode keeps [`crate::DECODE_MARGIN`] times the outputs' size, which
    /// costs up to one DCT scale step of decode time (about 2.5x on a
    /// progressive 16 MP photo at 1/4 instead of 1/8) for slightly sharper
    /// small outputs.
    pub fn with_fast_shrink_on_load(mut self, on: bool) -> Plan {
        self.fast_shrink_on_load = on;
        self
    }

    /// Where outputs go (`[output] keys`) and the `Cache-Control` of
    /// outputs whose keys can be overwritten (`[output] cache_control`,
    /// printable ASCII).
    pub fn with_output_keys(mut self, keys: KeyTemplate, cache_control: &str) -> Result<Plan> {
        if cache_control.is_empty() || !cache_control.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(MediaError::invalid_plan(format!(
                "output.cache_control {cache_control:?} must be non-empty printable ASCII (an HTTP header value)"
            )));
        }
        self.keys = keys;
        self.cache_control = cache_control.to_string();
        Ok(self)
    }

    /// The output key template.
    pub fn keys(&self) -> &KeyTemplate {
        &self.keys
    }

    /// The `Cache-Control` of every output (not the manifest): immutable
    /// when the keys hold the content hash, the configured short value when
    /// a re-upload overwrites them.
    pub fn output_cache_control(&self) -> &str {
        if self.keys.has_hash() {
            IMMUTABLE_CACHE_CONTROL
        } else {
            &self.cache_control
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }
    pub fn encode_options(&self) -> &EncodeOptions {
        &self.encode
    }
    pub fn placeholder(&self) -> bool {
        self.placeholder
    }
    pub fn fast_shrink_on_load(&self) -> bool {
        self.fast_shrink_on_load
    }

    /// A stable fingerprint of everything that affects the outputs (engine
    /// version included), for idempotency checks: same source + same
    /// fingerprint = same outputs. It is FNV-1a ([`fingerprint_of`]) of
    /// [`crate::ENGINE_VERSION`], `|` and [`Plan::canonical`], so it does not
    /// move when a Rust type is renamed or reordered; it moves when a
    /// setting, the canonical text's format or the engine version changes.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&format!("{}|{}", crate::ENGINE_VERSION, self.canonical()))
    }

    /// The canonical text of this plan: one `key=value` line per setting
    /// that decides what [`crate::process`] returns for a source, with
    /// explicit names (the configuration's, never `Debug`), in a fixed
    /// order, variants in plan order (it is the order of the outputs).
    ///
    /// Everything in a plan is in it, on purpose:
    /// - the variants and encoder options decide the output bytes, their
    ///   keys (the variant name) and order;
    /// - `placeholder` decides the manifest's placeholder;
    /// - the limits decide no byte of an accepted source, but whether a
    ///   source is accepted at all. The fingerprint also marks permanent
    ///   failure records, so a raised limit must change it, or a source
    ///   rejected by the old limit would stay skipped.
    ///
    /// Optional settings are written as given (`default`/`auto`/`none` when
    /// unset), not resolved: a plan that spells out a default has another
    /// fingerprint than one that leaves it out, which only costs one
    /// reprocessing. Floats are written in Rust's shortest round-trip form.
    ///
    /// When a field that affects outputs is added to [`Plan`], [`Variant`],
    /// [`Limits`] or [`EncodeOptions`], add its line here (the exhaustive
    /// destructuring below does not compile until it is handled).
    pub fn canonical(&self) -> String {
        use std::fmt::Write as _;
        let Plan {
            limits,
            variants,
            encode,
            placeholder,
            fast_shrink_on_load,
            keys,
            cache_control,
        } = self;
        let Limits {
            max_input_bytes,
            max_pixels,
            max_frames,
            max_animation_pixels,
        } = limits;
        // Settings added after outputs were first stored are written only
        // when they can change an output, so existing plans keep their
        // fingerprint (and their stored outputs stay current).
        let any_animated = variants.iter().any(|v| v.animated);
        let EncodeOptions {
            jpeg_progressive,
            avif_speed,
            webp_method,
            png_compression,
        } = encode;
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn fmt::Display| {
            writeln!(out, "{key}={value}").expect("writing to a String");
        };
        line("limits.max_input_bytes", max_input_bytes);
        line("limits.max_pixels", max_pixels);
        line("limits.max_frames", max_frames);
        if any_animated {
            line("limits.max_animation_pixels", max_animation_pixels);
        }
        line("output.jpeg_progressive", jpeg_progressive);
        line("output.avif_speed", avif_speed);
        line("output.webp_method", webp_method);
        line("output.png_compression", png_compression);
        line("output.placeholder", placeholder);
        line("output.fast_shrink_on_load", fast_shrink_on_load);
        line("output.keys", &keys.as_str());
        line("output.cache_control", cache_control);
        for (i, v) in variants.iter().enumerate() {
            let Variant {
                name,
                width,
                height,
                fit,
                gravity,
                formats,
                quality,
                upscale,
                background,
                filter,
                lossless,
                animated,
            } = v;
            let or = |value: Option<String>, unset: &str| value.unwrap_or_else(|| unset.into());
            let formats: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
            line(&format!("variant.{i}.name"), name);
            line(
                &format!("variant.{i}.width"),
                &or(width.map(|w| w.to_string()), "auto"),
            );
            line(
                &format!("variant.{i}.height"),
                &or(height.map(|h| h.to_string()), "auto"),
            );
            line(&format!("variant.{i}.fit"), &fit.as_str());
            line(&format!("variant.{i}.gravity"), &gravity.canonical());
            line(&format!("variant.{i}.formats"), &formats.join(","));
            line(
                &format!("variant.{i}.quality"),
                &or(quality.map(|q| q.to_string()), "default"),
            );
            line(&format!("variant.{i}.upscale"), upscale);
            line(
                &format!("variant.{i}.background"),
                &or(background.map(Color::to_hex), "none"),
            );
            line(&format!("variant.{i}.filter"), &filter.as_str());
            line(&format!("variant.{i}.lossless"), lossless);
            if *animated {
                line(&format!("variant.{i}.animated"), animated);
            }
        }
        out
    }
}

/// FNV-1a of `text` as 16 hex digits: the fingerprint of a settings'
/// canonical text (deterministic for a given build).
pub fn fingerprint_of(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plan_is_valid() {
        let p = Plan::builtin();
        assert_eq!(p.variants().len(), 4);
        assert_eq!(p.fingerprint(), Plan::builtin().fingerprint());
    }

    #[test]
    fn rejects_bad_variants() {
        let bad = |v: Variant| Plan::new(Limits::default(), vec![v], EncodeOptions::default());
        assert!(bad(Variant::new("Big", Some(10), None)).is_err());
        assert!(bad(Variant::new("a", None, None)).is_err());
        assert!(bad(Variant::new("a", Some(0), None)).is_err());
        assert!(bad(Variant::new("a", Some(MAX_OUTPUT_SIDE + 1), None)).is_err());
        assert!(bad(Variant::new("a", Some(10), None).with_formats([])).is_err());
        let mut q = Variant::new("a", Some(10), None);
        q.quality = Some(0);
        assert!(bad(q).is_err());
        let dup = Plan::new(
            Limits::default(),
            vec![
                Variant::new("a", Some(1), None),
                Variant::new("a", Some(2), None),
            ],
            EncodeOptions::default(),
        )
        .unwrap_err();
        assert!(dup.message().contains("used twice"), "{dup}");
    }

    #[test]
    fn fingerprint_changes_with_settings() {
        let a = Plan::builtin();
        let b = Plan::new(
            Limits::default(),
            vec![Variant::new("w1", Some(1), None)],
            EncodeOptions::default(),
        )
        .unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    /// The built-in plan's fingerprint, pinned: stored outputs are marked
    /// with it, so a change here reprocesses every stored object. Update the
    /// literal only on purpose (a setting of the built-in plan, the
    /// canonical text's format or [`crate::ENGINE_VERSION`] changed).
    #[test]
    fn builtin_fingerprint_is_pinned() {
        assert_eq!(crate::ENGINE_VERSION, "0.5.0", "pinned for this version");
        assert_eq!(Plan::builtin().fingerprint(), "8d7addefb776cd28");
        let canonical = Plan::builtin().canonical();
        assert!(canonical.starts_with(
            "limits.max_input_bytes=52428800\n\
             limits.max_pixels=100000000\n\
             limits.max_frames=1\n\
             output.jpeg_progressive=true\n\
             output.avif_speed=7\n\
             output.webp_method=4\n\
             output.png_compression=6\n\
             output.placeholder=true\n\
             output.fast_shrink_on_load=true\n\
             output.keys={variant}/{key}.{hash}.{ext}\n\
             output.cache_control=public, max-age=300\n\
             variant.0.name=w2048\n\
             variant.0.width=2048\n\
             variant.0.height=auto\n\
             variant.0.fit=inside\n\
             variant.0.gravity=center\n\
             variant.0.formats=jpeg,webp\n\
             variant.0.quality=default\n\
             variant.0.upscale=false\n\
             variant.0.background=none\n\
             variant.0.filter=lanczos3\n\
             variant.0.lossless=false\n\
             variant.1.name=w1024\n"
        ));
        assert!(canonical.ends_with("variant.3.lossless=false\n"));
    }

    #[test]
    fn every_output_setting_moves_the_fingerprint() {
        let plan = |limits: Limits, variant: Variant, encode: EncodeOptions| {
            Plan::new(limits, vec![variant], encode).unwrap()
        };
        let base_variant = Variant::new("a", Some(100), Some(80));
        let base = plan(
            Limits::default(),
            base_variant.clone(),
            EncodeOptions::default(),
        );
        let variant = |change: fn(&mut Variant)| {
            let mut v = base_variant.clone();
            change(&mut v);
            plan(Limits::default(), v, EncodeOptions::default())
        };
        let limits = |change: fn(&mut Limits)| {
            let mut l = Limits::default();
            change(&mut l);
            plan(l, base_variant.clone(), EncodeOptions::default())
        };
        let encode = |change: fn(&mut EncodeOptions)| {
            let mut e = EncodeOptions::default();
            change(&mut e);
            plan(Limits::default(), base_variant.clone(), e)
        };
        let changed = [
            ("name", variant(|v| v.name = "b".into())),
            ("width", variant(|v| v.width = Some(101))),
            ("width unset", variant(|v| v.width = None)),
            ("height", variant(|v| v.height = Some(81))),
            ("height unset", variant(|v| v.height = None)),
            ("fit", variant(|v| v.fit = Fit::Cover)),
            ("gravity", variant(|v| v.gravity = Gravity::North)),
            ("focal", variant(|v| v.gravity = Gravity::Focal(0.5, 0.25))),
            (
                "focal x",
                variant(|v| v.gravity = Gravity::Focal(0.75, 0.25)),
            ),
            (
                "formats",
                variant(|v| v.formats = vec![FormatChoice::Source]),
            ),
            (
                "format order",
                variant(|v| {
                    v.formats = vec![
                        FormatChoice::Fixed(OutputFormat::Webp),
                        FormatChoice::Fixed(OutputFormat::Jpeg),
                    ]
                }),
            ),
            ("quality", variant(|v| v.quality = Some(80))),
            ("upscale", variant(|v| v.upscale = true)),
            ("background", variant(|v| v.background = Some(Color::WHITE))),
            ("filter", variant(|v| v.filter = Filter::Mitchell)),
            ("lossless", variant(|v| v.lossless = true)),
            (
                "gravity attention",
                variant(|v| v.gravity = Gravity::Attention),
            ),
            ("gravity entropy", variant(|v| v.gravity = Gravity::Entropy)),
            ("max_input_bytes", limits(|l| l.max_input_bytes += 1)),
            ("max_pixels", limits(|l| l.max_pixels += 1)),
            ("max_frames", limits(|l| l.max_frames += 1)),
            ("jpeg_progressive", encode(|e| e.jpeg_progressive = false)),
            ("avif_speed", encode(|e| e.avif_speed = 8)),
            ("webp_method", encode(|e| e.webp_method = 5)),
            ("png_compression", encode(|e| e.png_compression = 7)),
            ("placeholder", base.clone().with_placeholder(false)),
            (
                "fast_shrink_on_load",
                base.clone().with_fast_shrink_on_load(false),
            ),
        ];
        let mut seen = vec![("base", base.fingerprint())];
        for (what, p) in changed {
            let fp = p.fingerprint();
            if let Some((other, _)) = seen.iter().find(|(_, f)| *f == fp) {
                panic!("changing {what} gives the fingerprint of {other}");
            }
            seen.push((what, fp));
        }
    }

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "w800", "thumb_2x", "a-b", "0"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "W800", "a b", "a/b", "a.b", "é"] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.to_string(), format!("{bad:?} must match [a-z0-9_-]+"));
        }
    }

    #[test]
    fn colours_parse() {
        assert_eq!(Color::parse_hex("#fff"), Some(Color::WHITE));
        assert_eq!(Color::parse_hex("#102030"), Some(Color::rgb(16, 32, 48)));
        assert_eq!(Color::parse_hex("#10203040").unwrap().a, 0x40);
        assert_eq!(Color::parse_hex("102030"), None);
        assert_eq!(Color::parse_hex("#10203"), None);
        assert_eq!(Color::parse_hex("#gg0000"), None);
        assert_eq!(Color::rgb(1, 2, 3).to_hex(), "#010203");
    }
}
