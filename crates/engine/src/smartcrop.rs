//! Smart crop: where a `cover` crop goes when the gravity is `attention`
//! or `entropy`.
//!
//! The upright source is reduced (box filter, SIMD) to at most
//! [`ANALYSIS_SIDE`] pixels on its long side, and every pixel gets a score:
//! - `attention`, after libvips's strategy of the same name: edges (the
//!   luminance gradient), skin tones and saturated colour, each of which
//!   draws the eye;
//! - `entropy`: the window whose luminance histogram has the most
//!   information (detail rather than sky or wall).
//!
//! The crop keeps its size (the geometry decided it from the box); only
//! its position moves: for `attention`, centred on the peak of the
//! blurred scores (clamped to the image), as libvips does; for `entropy`,
//! to the candidate window with the most information. Ties go to the
//! position nearest the centre, so a flat image crops like `center`. All of it is integer or f64 arithmetic
//! on the reduced image: deterministic, and a few milliseconds whatever the
//! source size.

use crate::bitmap::Bitmap;
use crate::error::Result;
use crate::geometry::Region;
use crate::plan::Gravity;
use crate::resize;

/// Long side of the reduced image the scores are computed on.
pub const ANALYSIS_SIDE: u32 = 192;
/// Candidate positions per free axis.
const CANDIDATES: usize = 48;
/// Luminance histogram bins for `entropy`.
const BINS: usize = 32;

/// Scores of one source, reused by every smart variant of the same
/// strategy.
pub struct Analysis {
    strategy: Gravity,
    width: usize,
    height: usize,
    /// attention: the most salient point, in fractions of the image (none
    /// when nothing scores).
    peak: Option<(f64, f64)>,
    /// entropy: the luminance bin of every pixel.
    bins: Vec<u8>,
}

impl Analysis {
    /// Reduces `frame` (the whole upright source at any scale) and scores it.
    pub fn new(frame: &Bitmap, strategy: Gravity) -> Result<Analysis> {
        let small = resize::thumbnail(frame, ANALYSIS_SIDE)?;
        let (width, height) = (small.width as usize, small.height as usize);
        let ch = small.channels as usize;
        let rgb = |x: usize, y: usize| {
            let i = (y * width + x) * ch;
            let p = &small.data[i..i + 3];
            let alpha = if ch == 4 { small.data[i + 3] } else { 255 };
            (p[0], p[1], p[2], alpha)
        };
        let luma: Vec<f64> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| {
                let (r, g, b, a) = rgb(x, y);
                (0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)) * f64::from(a)
                    / 255.0
            })
            .collect();
        let mut analysis = Analysis {
            strategy,
            width,
            height,
            peak: None,
            bins: Vec::new(),
        };
        if strategy == Gravity::Entropy {
            analysis.bins = luma
                .iter()
                .map(|&l| ((l * BINS as f64 / 256.0) as usize).min(BINS - 1) as u8)
                .collect();
            return Ok(analysis);
        }
        let mut score = vec![0.0f64; width * height];
        for y in 0..height {
            for x in 0..width {
                let l = |dx: isize, dy: isize| {
                    let xx = (x as isize + dx).clamp(0, width as isize - 1) as usize;
                    let yy = (y as isize + dy).clamp(0, height as isize - 1) as usize;
                    luma[yy * width + xx]
                };
                // Sobel gradient magnitude of the luminance.
                let gx =
                    (l(1, -1) + 2.0 * l(1, 0) + l(1, 1)) - (l(-1, -1) + 2.0 * l(-1, 0) + l(-1, 1));
                let gy =
                    (l(-1, 1) + 2.0 * l(0, 1) + l(1, 1)) - (l(-1, -1) + 2.0 * l(0, -1) + l(1, -1));
                let edge = (gx * gx + gy * gy).sqrt() / 4.0;
                let (r, g, b, a) = rgb(x, y);
                let weight = f64::from(a) / 255.0;
                score[y * width + x] =
                    weight * (edge + 60.0 * skin(r, g, b) + 40.0 * saturation(r, g, b));
            }
        }
        // The eye goes to the strongest region, not to the most
        // scattered detail: blur the scores over about an eighth of the
        // image, then centre the crop on the peak (libvips's way).
        let radius = (width.min(height) / 8).max(2);
        let blurred = box_blur(
            &box_blur(&score, width, height, radius, true),
            width,
            height,
            radius,
            false,
        );
        let centre = ((width - 1) as f64 / 2.0, (height - 1) as f64 / 2.0);
        let mut best = (f64::MIN, f64::MAX, 0usize, 0usize);
        for y in 0..height {
            for x in 0..width {
                let v = blurred[y * width + x];
                let d = (x as f64 - centre.0).abs() + (y as f64 - centre.1).abs();
                if v > best.0 * (1.0 + 1e-9) + 1e-12 || (v >= best.0 * (1.0 - 1e-9) && d < best.1) {
                    best = (v, d, x, y);
                }
            }
        }
        analysis.peak = Some((
            (best.2 as f64 + 0.5) / width as f64,
            (best.3 as f64 + 0.5) / height as f64,
        ));
        Ok(analysis)
    }

    /// The strategy the scores are for.
    pub fn strategy(&self) -> Gravity {
        self.strategy
    }

    /// Moves `region` (same size, in the coordinates of a source displayed
    /// at `displayed`) to the best window; returns it unchanged when it
    /// covers the whole source.
    pub fn place(&self, region: Region, displayed: (u32, u32)) -> Region {
        let (dw, dh) = (f64::from(displayed.0), f64::from(displayed.1));
        if self.strategy == Gravity::Attention {
            let Some((px, py)) = self.peak else {
                return region;
            };
            let max_left = (dw - region.width).max(0.0);
            let max_top = (dh - region.height).max(0.0);
            return Region {
                left: (px * dw - region.width / 2.0).clamp(0.0, max_left),
                top: (py * dh - region.height / 2.0).clamp(0.0, max_top),
                ..region
            };
        }
        let (sx, sy) = (self.width as f64 / dw, self.height as f64 / dh);
        // Window size in analysis pixels (at least one).
        let ww = ((region.width * sx).round() as usize).clamp(1, self.width);
        let wh = ((region.height * sy).round() as usize).clamp(1, self.height);
        let xs = positions(self.width - ww);
        let ys = positions(self.height - wh);
        if xs.len() == 1 && ys.len() == 1 {
            return region;
        }
        let centre = (
            (self.width - ww) as f64 / 2.0,
            (self.height - wh) as f64 / 2.0,
        );
        let mut best: Option<(f64, f64, usize, usize)> = None;
        for &y in &ys {
            for &x in &xs {
                let value = self.value(x, y, ww, wh);
                let distance = (x as f64 - centre.0).abs() + (y as f64 - centre.1).abs();
                let better = match best {
                    None => true,
                    Some((v, d, _, _)) => {
                        value > v * (1.0 + 1e-9) || (value >= v * (1.0 - 1e-9) && distance < d)
                    }
                };
                if better {
                    best = Some((value, distance, x, y));
                }
            }
        }
        let (_, _, x, y) = best.expect("at least one candidate");
        let max_left = (dw - region.width).max(0.0);
        let max_top = (dh - region.height).max(0.0);
        Region {
            left: if self.width > ww {
                (x as f64 / (self.width - ww) as f64 * max_left).clamp(0.0, max_left)
            } else {
                region.left
            },
            top: if self.height > wh {
                (y as f64 / (self.height - wh) as f64 * max_top).clamp(0.0, max_top)
            } else {
                region.top
            },
            ..region
        }
    }

    /// The entropy of the window at (x, y), `w x h` analysis pixels.
    fn value(&self, x: usize, y: usize, w: usize, h: usize) -> f64 {
        let mut hist = [0u32; BINS];
        for row in y..y + h {
            for &b in &self.bins[row * self.width + x..row * self.width + x + w] {
                hist[usize::from(b)] += 1;
            }
        }
        let n = (w * h) as f64;
        hist.iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.log2()
            })
            .sum()
    }
}

/// A box blur of radius `r` along rows (`horizontal`) or columns, edges
/// clamped: two passes make a smooth, cheap approximation of a Gaussian.
fn box_blur(v: &[f64], w: usize, h: usize, r: usize, horizontal: bool) -> Vec<f64> {
    let (len, lines) = if horizontal { (w, h) } else { (h, w) };
    let at = |line: usize, i: usize| {
        if horizontal {
            line * w + i
        } else {
            i * w + line
        }
    };
    let mut out = vec![0.0; v.len()];
    for line in 0..lines {
        let mut prefix = vec![0.0f64; len + 1];
        for i in 0..len {
            prefix[i + 1] = prefix[i] + v[at(line, i)];
        }
        for i in 0..len {
            let (a, b) = (i.saturating_sub(r), (i + r + 1).min(len));
            out[at(line, i)] = (prefix[b] - prefix[a]) / (b - a) as f64;
        }
    }
    out
}

/// Candidate offsets 0..=free, at most [`CANDIDATES`], evenly spread, ends
/// included.
fn positions(free: usize) -> Vec<usize> {
    if free == 0 {
        return vec![0];
    }
    let n = CANDIDATES.min(free + 1);
    (0..n).map(|i| i * free / (n - 1)).collect()
}

/// 1 for a skin tone (Kovač et al.'s RGB rule, daylight), else 0.
fn skin(r: u8, g: u8, b: u8) -> f64 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let spread = r.max(g).max(b) - r.min(g).min(b);
    let is_skin = r > 95 && g > 40 && b > 20 && spread > 15 && (r - g).abs() > 15 && r > g && r > b;
    f64::from(u8::from(is_skin))
}

/// HSV saturation, counted only for colours bright enough to be seen.
fn saturation(r: u8, g: u8, b: u8) -> f64 {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    if max < 48 {
        return 0.0;
    }
    let s = f64::from(max - min) / f64::from(max);
    if s > 0.35 {
        s
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 400x200 image with a textured, skin-toned 60x60 patch whose
    /// left edge is at `x`.
    fn scene(x: u32) -> Bitmap {
        let (w, h) = (400u32, 200u32);
        let mut data = vec![120u8; (w * h * 3) as usize];
        for yy in 70..130 {
            for xx in x..x + 60 {
                let i = ((yy * w + xx) * 3) as usize;
                let t = if (xx + yy) % 4 < 2 { 0 } else { 40 };
                data[i..i + 3].copy_from_slice(&[200 + t / 2, 140 + t / 4, 110]);
            }
        }
        Bitmap::new(w, h, 3, data)
    }

    fn square() -> Region {
        Region {
            left: 100.0,
            top: 0.0,
            width: 200.0,
            height: 200.0,
        }
    }

    #[test]
    fn keeps_an_off_centre_subject() {
        for strategy in [Gravity::Attention, Gravity::Entropy] {
            for subject in [10u32, 320] {
                let a = Analysis::new(&scene(subject), strategy).unwrap();
                let r = a.place(square(), (400, 200));
                let (l, s) = (r.left, f64::from(subject));
                assert!(
                    l <= s && l + r.width >= s + 60.0,
                    "{strategy:?}: crop {l}..{} misses the subject at {s}..{}",
                    l + r.width,
                    s + 60.0
                );
                assert_eq!((r.width, r.height, r.top), (200.0, 200.0, 0.0));
            }
        }
    }

    #[test]
    fn a_flat_image_crops_at_the_centre() {
        let flat = Bitmap::new(400, 200, 3, vec![90; 400 * 200 * 3]);
        for strategy in [Gravity::Attention, Gravity::Entropy] {
            let r = Analysis::new(&flat, strategy)
                .unwrap()
                .place(square(), (400, 200));
            assert!((r.left - 100.0).abs() < 5.0, "{strategy:?}: {}", r.left);
        }
    }

    #[test]
    fn a_whole_frame_region_is_kept() {
        let a = Analysis::new(&scene(10), Gravity::Attention).unwrap();
        let whole = Region {
            left: 0.0,
            top: 0.0,
            width: 400.0,
            height: 200.0,
        };
        assert_eq!(a.place(whole, (400, 200)), whole);
    }
}

/// Real photos with the subject off the centre: the crop must contain the
/// subject's box, marked by hand on the photo (full-resolution pixels).
#[cfg(test)]
mod photos {
    use super::*;
    use crate::plan::Limits;

    fn photo(name: &str) -> Bitmap {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../sample-media")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let img = crate::engine::decode_upright(&bytes, &Limits::default()).unwrap();
        Bitmap::new(img.width, img.height, img.channels, img.data)
    }

    /// Columns `x0..x1` of `b`.
    fn columns(b: &Bitmap, x0: u32, x1: u32) -> Bitmap {
        let ch = b.channels as usize;
        let mut data = Vec::new();
        for y in 0..b.height as usize {
            let row = &b.data[y * b.stride()..(y + 1) * b.stride()];
            data.extend_from_slice(&row[x0 as usize * ch..x1 as usize * ch]);
        }
        Bitmap::new(x1 - x0, b.height, b.channels, data)
    }

    fn crop(frame: &Bitmap, strategy: Gravity, w: f64, h: f64) -> Region {
        let (fw, fh) = (f64::from(frame.width), f64::from(frame.height));
        let centred = Region {
            left: (fw - w) / 2.0,
            top: (fh - h) / 2.0,
            width: w,
            height: h,
        };
        Analysis::new(frame, strategy)
            .unwrap()
            .place(centred, (frame.width, frame.height))
    }

    /// Whether `crop` holds the box `[x0, x1) x [y0, y1)` whole.
    fn holds(crop: &Region, (x0, y0, x1, y1): (f64, f64, f64, f64)) -> bool {
        crop.left <= x0
            && crop.top <= y0
            && crop.left + crop.width >= x1
            && crop.top + crop.height >= y1
    }

    #[test]
    fn crops_keep_the_hand_marked_subject() {
        let rocket = photo("rocket.jpg");
        let both = [Gravity::Attention, Gravity::Entropy];
        // (photo, what, crop size, the subject's box marked by hand, the
        // strategies that must keep it)
        let cases = [
            // The rocket (nose cone to pad), in the left part of the frame
            // once the photo's left 200 columns are cut.
            (
                columns(&rocket, 200, 640),
                "rocket left of centre",
                (160.0, 427.0),
                (105.0, 125.0, 142.0, 405.0),
                &both[..],
            ),
            // The same rocket right of centre (the right 220 columns cut).
            (
                columns(&rocket, 0, 420),
                "rocket right of centre",
                (160.0, 427.0),
                (305.0, 125.0, 342.0, 405.0),
                &both[..],
            ),
            // The cat's nose and mouth, right of centre in a narrow crop:
            // attention finds it (skin-like tones and edges); entropy
            // prefers the fur's detail 10 px to its left, which is what
            // "entropy" means, so it is not held to this box.
            (
                photo("chelsea.png"),
                "cat's nose",
                (120.0, 300.0),
                (238.0, 222.0, 292.0, 268.0),
                &both[..1],
            ),
        ];
        for (frame, what, (w, h), subject, strategies) in &cases {
            let centred = Region {
                left: (f64::from(frame.width) - w) / 2.0,
                top: (f64::from(frame.height) - h) / 2.0,
                width: *w,
                height: *h,
            };
            assert!(
                !holds(&centred, *subject),
                "{what}: the centre crop already holds it"
            );
            for &strategy in *strategies {
                let c = crop(frame, strategy, *w, *h);
                assert!(
                    holds(&c, *subject),
                    "{what}, {strategy:?}: crop {c:?} misses {subject:?}"
                );
            }
        }
    }
}
