//! What the engine returns: encoded variants plus facts about the source.

use crate::plan::{Color, OutputFormat};
use crate::sniff::SourceFormat;

/// Facts about the source, measured while processing it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFacts {
    pub format: SourceFormat,
    /// Displayed (upright) dimensions: what the variant boxes apply to.
    pub width: u32,
    pub height: u32,
    /// Dimensions as stored in the file, before EXIF orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    pub bytes: u64,
    /// EXIF orientation 1..=8 found in the source (1 when absent).
    pub orientation: u8,
    /// True when the source has an alpha channel that is not fully opaque.
    pub has_alpha: bool,
    /// Colour model of the stored pixels: `rgb`, `gray` or `cmyk`.
    pub color_model: &'static str,
    /// Description of the embedded ICC profile, if any.
    pub icc_profile: Option<String>,
    /// True when pixels were converted from an embedded profile (or CMYK) to sRGB.
    pub converted_to_srgb: bool,
    /// Dimensions the source was decoded at (JPEG shrink-on-load makes them smaller).
    pub decoded_width: u32,
    pub decoded_height: u32,
    /// Frames, duration and loop count of an animated GIF or WebP (from
    /// its header); `None` for a still.
    pub animation: Option<AnimationFacts>,
}

/// An animated source, and what became of its animation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnimationFacts {
    pub frames: u32,
    pub duration_ms: u64,
    /// Times it plays; 0 is forever.
    pub loop_count: u32,
    /// Why `animated` variants were made as stills of the first frame (a
    /// limit), if they were.
    pub kept_still: Option<String>,
}

/// One encoded output.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedVariant {
    /// The variant's name (its output folder).
    pub name: String,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// Frames of an animated output, and their total display time.
    pub frames: u32,
    pub duration_ms: u64,
}

/// A tiny stand-in shown while the real image loads.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholder {
    /// BlurHash with 4x3 components (aspect-matched), about 20-30 characters.
    pub blurhash: String,
    /// The most common colour (coarse histogram over a small thumbnail).
    pub dominant: Color,
}

/// Wall-clock time spent in each stage, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub sniff_ms: f64,
    pub decode_ms: f64,
    pub color_ms: f64,
    pub orient_ms: f64,
    pub resize_ms: f64,
    pub encode_ms: f64,
    pub placeholder_ms: f64,
    pub total_ms: f64,
}

impl Timings {
    /// The three stages the pipeline's metrics and the benchmark report:
    /// decode (sniff, decode and colour conversion), resize (orientation
    /// and resampling) and encode (the variants and the placeholder), in
    /// milliseconds.
    pub fn stages(&self) -> [f64; 3] {
        [
            self.sniff_ms + self.decode_ms + self.color_ms,
            self.orient_ms + self.resize_ms,
            self.encode_ms + self.placeholder_ms,
        ]
    }
}

/// Everything produced from one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub source: SourceFacts,
    /// Variants in plan order, each variant's formats in its listed order.
    pub variants: Vec<EncodedVariant>,
    pub placeholder: Option<Placeholder>,
    pub timings: Timings,
    /// The plan's fingerprint (see [`crate::Plan::fingerprint`]).
    pub plan_fingerprint: String,
}
