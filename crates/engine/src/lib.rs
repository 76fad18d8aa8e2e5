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

mod bitmap;
mod color;
mod decode;
mod encode;
mod engine;
mod error;
mod geometry;
mod jpeg;
mod limits;
pub mod manifest;
mod orient;
mod output;
mod placeholder;
mod plan;
mod resize;
mod sniff;

pub use engine::{decode_upright, probe, process, Probe, RgbImage};
pub use error::{EngineError, ErrorKind, Result};
pub use geometry::{DECODE_MARGIN, JPEG_SCALES};
pub use manifest::{key_stem, manifest_key, output_key, Manifest, SourceRef};
pub use output::{EncodedVariant, Output, Placeholder, SourceFacts, Timings};
pub use plan::{
    Color, EncodeOptions, Filter, Fit, FormatChoice, Gravity, Limits, OutputFormat, Plan, Variant,
    MAX_OUTPUT_SIDE,
};
pub use resize::{available_cpu_extensions, cpu_extension_name, force_cpu_extension, CpuExtension};
pub use sniff::{sniff, SourceFormat};

/// The engine's version, recorded in manifests and plan fingerprints.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
