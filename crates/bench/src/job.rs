//! The job protocol of `benches/peers/README.md`: every runner, mediaflow's
//! own included, reads a [`Job`] file and prints one [`RunResult`] as JSON.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One output of a job: `width` wide keeping the aspect ratio, or, with a
/// `height`, exactly `width` x `height` cropped from the centre (sharp's
/// `fit: 'cover'`). Never enlarged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOutput {
    pub width: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub format: String,
    pub quality: u8,
}

/// A job file, as every runner reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub workload: String,
    pub input: PathBuf,
    pub outputs: Vec<JobOutput>,
    pub filter: String,
    pub threads: usize,
    pub iterations: usize,
    pub warmup: usize,
    pub out_dir: PathBuf,
    /// mediaflow's `avif_speed` (1..=10) for its own rows; the peers ignore
    /// it and run at their default speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avif_speed: Option<u8>,
}

/// One output file a runner wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// The median time per image of each of the engine's stages
/// ([`mediaflow_engine::Timings::stages`]); only mediaflow's runner knows
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    pub decode_ms: f64,
    pub resize_ms: f64,
    pub encode_ms: f64,
}

/// A runner's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub peer: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub threads: usize,
    #[serde(default)]
    pub iterations: usize,
    #[serde(default)]
    pub wall_ms: f64,
    #[serde(default)]
    pub per_image_ms: Vec<f64>,
    #[serde(default)]
    pub outputs: Vec<OutFile>,
    #[serde(default)]
    pub notes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Stages>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
