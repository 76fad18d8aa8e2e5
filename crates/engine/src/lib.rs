//! mediaflow's pure image engine.
//!
//! Bytes and a [`Plan`] in, encoded variants and facts out: sniffing, limits,
//! decoding (JPEG shrink-on-load via libjpeg-turbo), EXIF orientation, colour
//! management to sRGB, SIMD resizing (`fast_image_resize`), encoding (JPEG,
//! PNG, WebP, AVIF), placeholders and the manifest. No async, no I/O.
//!
//! ```no_run
//! let plan = mediaflow_engine::Plan::builtin();
//! let bytes = std::fs::read("photo.jpg").unwrap();
//! let out = mediaflow_engine::process(&bytes, &plan).unwrap();
//! for v in &out.variants {
//!     println!("{} {} {}x{} {} bytes", v.name, v.format, v.width, v.height, v.data.len());
//! }
//! ```

// The engine turns a codec's panic into one upload's permanent failure
// (`engine::guard`, catch_unwind). Built with panic=abort, a hostile upload
// would kill the process and every other upload in its batch with it:
// cargo-lambda uses abort unless the profile names a strategy, so refuse it.
#[cfg(not(panic = "unwind"))]
compile_error!(
    "mediaflow-engine needs panic = \"unwind\": it turns a codec's panic into that upload's failure \
     (set it in the profile; Cargo.toml's [profile.release] does)"
);

pub mod allocator;
mod anim;
mod avif;
mod avif_encode;
mod bitmap;
mod color;
mod decode;
pub mod delivery;
mod encode;
mod engine;
mod error;
mod exif;
mod geometry;
mod heic;
mod jpeg;
mod jxl;
pub mod keys;
mod limits;
pub mod manifest;
mod memory;
mod orient;
mod output;
mod placeholder;
mod plan;
mod progressive;
mod resize;
mod simd_state;
mod smartcrop;
mod sniff;
mod stop;

pub use delivery::{PublicBase, Responsive};
pub use engine::{decode_upright, probe, process, process_with, Probe, RgbImage};
pub use error::{ErrorKind, MediaError, Result};
pub use geometry::{shrink_on_load_margin, DECODE_MARGIN, FAST_DECODE_MARGIN, JPEG_SCALES};
pub use keys::{content_hash, KeyTemplate, OutputNames};
pub use manifest::{
    failure_key, longest_output_key, manifest_key, output_key_limit, Manifest, SourceRef,
};
pub use memory::estimate_memory;
pub use output::{EncodedVariant, Output, Placeholder, SourceFacts, Timings};
pub use plan::{
    check_name, fingerprint_of, Color, EncodeOptions, Filter, Fit, FormatChoice, Gravity,
    InvalidName, Limits, OutputFormat, Plan, Variant, MAX_OUTPUT_SIDE, NAME_RULE,
};
pub use resize::{available_cpu_extensions, cpu_extension_name, force_cpu_extension, CpuExtension};
pub use sniff::{sniff, SourceFormat, AVIF_BRANDS, HEIF_BRANDS};
pub use stop::Stop;

/// The version of the engine's outputs, recorded in manifests and plan
/// fingerprints.
///
/// It is part of every [`Plan::fingerprint`], and stored outputs marked with
/// another fingerprint are made again, so a change of it reprocesses every
/// stored image (videos have their own version, `VIDEO_VERSION`, and are
/// not affected). Bump it when the same plan and the same source would give
/// different output bytes or manifest facts: a change to decoding, colour
/// handling, orientation, geometry, resizing, encoding or placeholders,
/// including an upgrade of a codec or resizer dependency (libjpeg-turbo,
/// libwebp, libaom, heifer, jxl-oxide, png,
/// `fast_image_resize`) that changes its output. Do not bump it for
/// refactors, for new settings (a setting gets its line in
/// [`Plan::canonical`], which moves the fingerprint by itself) or for
/// changes elsewhere in the workspace.
///
/// History: 0.1.0 was the workspace version of the first release. 0.2.0:
/// AVIF honours `irot`/`imir` and its `colr` profile; manifests of animated
/// GIF/WebP sources record the animation; HEIC and JPEG XL decode (their
/// failure records, "unsupported" under 0.1.0, no longer match, so replays
/// and backfill process them). 0.3.0: AVIF is encoded by libaom (all-intra,
/// 4:2:0, tuned for SSIM) instead of rav1e, and an AVIF variant without a
/// quality defaults to 50 instead of 60. 0.4.0: JPEG shrink-on-load keeps
/// no resampling margin by default (`fast_shrink_on_load`, as sharp's
/// `fastShrinkOnLoad`), so a JPEG decodes at the smallest DCT scale that is
/// still at least as large as its outputs. 0.5.0: a DCT-scaled JPEG decode
/// is resampled from the exact extent of the image in it (3837 rows at 1/4
/// are 959.25 of the 960 decoded), not stretched over its partial last
/// pixel.
pub const ENGINE_VERSION: &str = "0.5.0";

/// Stage entry points for the criterion benches (`benches/stages.rs`) and
/// the fuzz targets (`crates/fuzz-targets`): not a stable API.
#[doc(hidden)]
pub mod stages {
    pub use crate::bitmap::Bitmap;
    pub use crate::color::ColorFacts;
    pub use crate::jpeg::JpegMeta;
    use crate::{
        color, decode, encode, geometry::Region, jpeg, resize, EncodeOptions, Filter, OutputFormat,
        Result,
    };

    /// The JPEG marker scan (APP1 EXIF, APP2 ICC chunks, APP14 Adobe) up to
    /// the first scan.
    pub fn jpeg_meta(bytes: &[u8]) -> JpegMeta {
        jpeg::read_meta(bytes)
    }

    /// The EXIF orientation (1..=8; 1 when absent or invalid) of a
    /// TIFF-structured EXIF payload, as the JPEG path reads it.
    pub fn exif_orientation(tiff: &[u8]) -> u8 {
        decode::jpeg_orientation(&JpegMeta {
            exif: Some(tiff.to_vec()),
            ..JpegMeta::default()
        })
    }

    /// Converts an RGB(A) bitmap described by the ICC profile `icc` to sRGB
    /// in place.
    pub fn icc_to_srgb(bitmap: &mut Bitmap, icc: &[u8]) -> Result<ColorFacts> {
        color::rgb_to_srgb(bitmap, icc)
    }

    /// Converts CMYK samples (4 bytes per pixel) to sRGB, through `icc` when
    /// it is a CMYK profile.
    pub fn cmyk_to_srgb(
        width: u32,
        height: u32,
        data: Vec<u8>,
        adobe_inverted: bool,
        icc: Option<&[u8]>,
    ) -> Result<(Bitmap, ColorFacts)> {
        color::cmyk_to_srgb(width, height, data, adobe_inverted, icc)
    }

    /// Decodes a JPEG at DCT scale `num/den` (1/8, 1/4, 1/2 or 1/1), to sRGB.
    pub fn decode_jpeg(bytes: &[u8], num: u32, den: u32) -> Result<Bitmap> {
        let header = jpeg::read_header(bytes)?;
        let meta = jpeg::read_meta(bytes);
        decode::decode_jpeg(bytes, &header, &meta, (num, den)).map(|d| d.bitmap)
    }

    /// [`decode_jpeg`] entropy-decoding every scan of a progressive file
    /// (no scan selection): what the DCT-scaled decode cost before it.
    pub fn decode_jpeg_every_scan(bytes: &[u8], num: u32, den: u32) -> Result<Bitmap> {
        let header = jpeg::read_header(bytes)?;
        let meta = jpeg::read_meta(bytes);
        decode::decode_jpeg_scans(bytes, &header, &meta, (num, den), false).map(|d| d.bitmap)
    }

    /// The scans a decode at `num/den` keeps of a progressive JPEG: (kept,
    /// all, entropy-coded bytes kept, entropy-coded bytes); `None` when it
    /// decodes the file as it is.
    pub fn jpeg_scans_kept(bytes: &[u8], num: u32, den: u32) -> Option<(u32, u32, u64, u64)> {
        let scale = turbojpeg::ScalingFactor::new(num as usize, den as usize);
        crate::progressive::for_scale(bytes, scale)
            .map(|s| (s.kept, s.scans, s.kept_entropy_bytes, s.entropy_bytes))
    }

    /// Resizes the whole of `src` to `w x h`.
    pub fn resize(src: &Bitmap, w: u32, h: u32, filter: Filter) -> Result<Bitmap> {
        let region = Region {
            left: 0.0,
            top: 0.0,
            width: f64::from(src.width),
            height: f64::from(src.height),
        };
        resize::resize(src, region, w, h, filter)
    }

    /// Encodes with the default [`EncodeOptions`].
    pub fn encode(bitmap: &Bitmap, format: OutputFormat, quality: u8) -> Result<Vec<u8>> {
        let params = encode::EncodeParams {
            quality,
            lossless: false,
        };
        encode::encode(bitmap, format, params, &EncodeOptions::default())
    }
}
