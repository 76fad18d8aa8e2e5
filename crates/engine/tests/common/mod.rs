//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use mediaflow_engine::{decode_upright, Limits, RgbImage};
use mediaflow_testkit::sample;
use std::path::PathBuf;

/// `sample-media/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    sample(&format!("fixtures/{name}")).into()
}

pub fn hostile(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Decodes any output or source to an upright sRGB image.
pub fn decode(bytes: &[u8]) -> RgbImage {
    decode_upright(bytes, &Limits::default()).expect("decodes")
}

pub fn px(img: &RgbImage, x: u32, y: u32) -> Vec<u8> {
    let ch = img.channels as usize;
    let i = (y as usize * img.width as usize + x as usize) * ch;
    img.data[i..i + ch].to_vec()
}

/// Asserts the RGB of pixel (x, y) is within `tol` of `want` on every channel.
pub fn assert_rgb(img: &RgbImage, x: u32, y: u32, want: [u8; 3], tol: u8, what: &str) {
    let p = px(img, x, y);
    let ok = (0..3).all(|c| p[c].abs_diff(want[c]) <= tol);
    assert!(ok, "{what}: pixel ({x},{y}) is {p:?}, want {want:?} ±{tol}");
}

/// Mean colour over a `n x n` grid of cells (RGB, alpha ignored).
pub fn grid(img: &RgbImage, n: u32) -> Vec<f64> {
    let ch = img.channels as usize;
    let mut out = Vec::new();
    for gy in 0..n {
        for gx in 0..n {
            let (x0, x1) = (
                gx * img.width / n,
                ((gx + 1) * img.width / n).max(gx * img.width / n + 1),
            );
            let (y0, y1) = (
                gy * img.height / n,
                ((gy + 1) * img.height / n).max(gy * img.height / n + 1),
            );
            let mut sum = [0f64; 3];
            let mut count = 0f64;
            for y in y0..y1.min(img.height) {
                for x in x0..x1.min(img.width) {
                    let i = (y as usize * img.width as usize + x as usize) * ch;
                    for (acc, &v) in sum.iter_mut().zip(&img.data[i..i + 3]) {
                        *acc += f64::from(v);
                    }
                    count += 1.0;
                }
            }
            out.extend(sum.iter().map(|s| s / count.max(1.0)));
        }
    }
    out
}

/// Mean absolute difference between two grids (0..255).
pub fn grid_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
}
