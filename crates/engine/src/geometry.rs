//! Box arithmetic: where each variant comes from and how large it becomes.
//!
//! All coordinates are in the displayed (upright) source at full resolution,
//! so boxes apply to what a viewer sees, whatever the EXIF orientation.

use crate::plan::{Fit, Plan, Variant};

/// Resampling margin: an intermediate serves a smaller variant only while it
/// holds at least this many times the variant's pixels in each dimension,
/// and with [`Plan::fast_shrink_on_load`] off a JPEG is DCT-scaled only
/// while the decoded image keeps it too. The final resize then has enough
/// pixels to filter from, so a DCT-scaled decode followed by Lanczos3 is
/// indistinguishable from a full decode (the golden tests compare both).
pub const DECODE_MARGIN: f64 = 2.0;

/// Shrink-on-load margin with [`Plan::fast_shrink_on_load`] on (the
/// default, as sharp's `fastShrinkOnLoad`): the JPEG is DCT-scaled as far as
/// the decoded image stays at least as large as the largest output. The DCT
/// scaling itself is the low-pass filter (it keeps the frequencies the
/// smaller image can hold), and Lanczos3 finishes: a step of less than 2x,
/// or more when even 1/8 leaves the decode over twice the output.
pub const FAST_DECODE_MARGIN: f64 = 1.0;

/// The margin `plan`'s JPEG shrink-on-load keeps: one place for the choice.
pub fn shrink_on_load_margin(plan: &Plan) -> f64 {
    if plan.fast_shrink_on_load() {
        FAST_DECODE_MARGIN
    } else {
        DECODE_MARGIN
    }
}

/// libjpeg-turbo's DCT scaling factors used for shrink-on-load, smallest first.
pub const JPEG_SCALES: [(u32, u32); 4] = [(1, 8), (1, 4), (1, 2), (1, 1)];

/// A rectangle in source pixels (fractional: crops need not be whole pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// How one variant is made from a source of a given displayed size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariantGeometry {
    /// Part of the source to use.
    pub region: Region,
    /// Size the region is resized to.
    pub resize_w: u32,
    pub resize_h: u32,
    /// Final output size (larger than the resize only for `contain`).
    pub canvas_w: u32,
    pub canvas_h: u32,
    /// Where the resized image sits on the canvas.
    pub offset_x: u32,
    pub offset_y: u32,
}

impl VariantGeometry {
    /// True when the region is the whole source (the result can serve as an
    /// intermediate for smaller variants).
    pub fn is_full_frame(&self, src_w: u32, src_h: u32) -> bool {
        self.region.left == 0.0
            && self.region.top == 0.0
            && self.region.width == f64::from(src_w)
            && self.region.height == f64::from(src_h)
    }

    /// Scales (relative to full resolution, x and y) a frame must have at
    /// least, so that it holds `margin` times the output's pixels in each
    /// axis.
    pub fn needed_scales(&self, margin: f64) -> (f64, f64) {
        (
            f64::from(self.resize_w) * margin / self.region.width,
            f64::from(self.resize_h) * margin / self.region.height,
        )
    }

    /// The larger of [`VariantGeometry::needed_scales`]: what a decode at
    /// one scale for both axes must keep.
    pub fn needed_scale(&self, margin: f64) -> f64 {
        let (sx, sy) = self.needed_scales(margin);
        sx.max(sy)
    }
}

fn side(v: f64) -> u32 {
    (v.round() as u32).max(1)
}

/// Computes the geometry of `variant` for a displayed source of `w x h`.
pub fn plan_variant(variant: &Variant, w: u32, h: u32) -> VariantGeometry {
    let source = Source::new(w, h);
    match (variant.width, variant.height) {
        (Some(box_w), Some(box_h)) => match variant.fit {
            Fit::Inside => source.inside(variant),
            Fit::Fill => source.fill(variant, box_w, box_h),
            Fit::Cover => source.cover(variant, box_w, box_h),
            Fit::Contain => source.contain(variant, box_w, box_h),
        },
        // One side given: every fit behaves like `inside` (sharp does the same).
        _ => source.inside(variant),
    }
}

/// A displayed source size, and the steps of [`plan_variant`] per fit.
struct Source {
    w: u32,
    h: u32,
    wf: f64,
    hf: f64,
}

impl Source {
    fn new(w: u32, h: u32) -> Source {
        Source {
            w,
            h,
            wf: f64::from(w),
            hf: f64::from(h),
        }
    }

    fn full(&self) -> Region {
        Region {
            left: 0.0,
            top: 0.0,
            width: self.wf,
            height: self.hf,
        }
    }

    /// The whole source resized to `resize_w x resize_h`, nothing around it.
    fn whole(&self, resize_w: u32, resize_h: u32) -> VariantGeometry {
        VariantGeometry {
            region: self.full(),
            resize_w,
            resize_h,
            canvas_w: resize_w,
            canvas_h: resize_h,
            offset_x: 0,
            offset_y: 0,
        }
    }

    /// Scale that fits inside the box (missing sides do not constrain),
    /// at most 1 unless the variant may upscale.
    fn inside_scale(&self, variant: &Variant) -> f64 {
        let sx = variant
            .width
            .map_or(f64::INFINITY, |bw| f64::from(bw) / self.wf);
        let sy = variant
            .height
            .map_or(f64::INFINITY, |bh| f64::from(bh) / self.hf);
        let s = sx.min(sy);
        if variant.upscale {
            s
        } else {
            s.min(1.0)
        }
    }

    fn inside(&self, variant: &Variant) -> VariantGeometry {
        let s = self.inside_scale(variant);
        self.whole(side(self.wf * s), side(self.hf * s))
    }

    fn fill(&self, variant: &Variant, box_w: u32, box_h: u32) -> VariantGeometry {
        if variant.upscale {
            self.whole(box_w, box_h)
        } else {
            self.whole(box_w.min(self.w), box_h.min(self.h))
        }
    }

    /// The largest region of the box's aspect ratio, placed by the gravity.
    fn cover(&self, variant: &Variant, box_w: u32, box_h: u32) -> VariantGeometry {
        let (wf, hf) = (self.wf, self.hf);
        let (bwf, bhf) = (f64::from(box_w), f64::from(box_h));
        let (gx, gy) = variant.gravity.centering();
        let mut s = (bwf / wf).max(bhf / hf);
        let (mut ow, mut oh) = (bwf, bhf);
        if s > 1.0 && !variant.upscale {
            // Never enlarge: cut the box down to what the source covers.
            s = 1.0;
            ow = bwf.min(wf);
            oh = bhf.min(hf);
        }
        let rw = (ow / s).min(wf);
        let rh = (oh / s).min(hf);
        let region = Region {
            left: (wf - rw) * gx,
            top: (hf - rh) * gy,
            width: rw,
            height: rh,
        };
        let (ow, oh) = (side(ow), side(oh));
        VariantGeometry {
            region,
            resize_w: ow,
            resize_h: oh,
            canvas_w: ow,
            canvas_h: oh,
            offset_x: 0,
            offset_y: 0,
        }
    }

    /// `inside`, then placed on the whole box by the gravity.
    fn contain(&self, variant: &Variant, box_w: u32, box_h: u32) -> VariantGeometry {
        let (gx, gy) = variant.gravity.centering();
        let s = self.inside_scale(variant);
        let (rw, rh) = (side(self.wf * s).min(box_w), side(self.hf * s).min(box_h));
        VariantGeometry {
            region: self.full(),
            resize_w: rw,
            resize_h: rh,
            canvas_w: box_w,
            canvas_h: box_h,
            offset_x: ((box_w - rw) as f64 * gx).round() as u32,
            offset_y: ((box_h - rh) as f64 * gy).round() as u32,
        }
    }
}

/// The JPEG DCT scale [`crate::process`] decodes at for a source displayed
/// at `w x h`: the smallest that keeps every variant's shrink-on-load margin
/// ([`shrink_on_load_margin`]).
pub fn plan_jpeg_scale(plan: &Plan, w: u32, h: u32) -> (u32, u32) {
    let margin = shrink_on_load_margin(plan);
    let needed = plan
        .variants()
        .iter()
        .map(|v| plan_variant(v, w, h).needed_scale(margin))
        .fold(0.0_f64, f64::max);
    jpeg_scale(needed)
}

/// The JPEG DCT scale (num, denom) to decode at: the smallest one that keeps
/// `needed` (see [`VariantGeometry::needed_scale`]), or 1/1.
pub fn jpeg_scale(needed: f64) -> (u32, u32) {
    JPEG_SCALES
        .into_iter()
        .find(|&(n, d)| f64::from(n) / f64::from(d) >= needed)
        .unwrap_or((1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Gravity;

    fn v(w: Option<u32>, h: Option<u32>, fit: Fit) -> Variant {
        Variant::new("t", w, h).with_fit(fit)
    }

    #[test]
    fn inside_keeps_aspect_and_never_enlarges() {
        let g = plan_variant(&v(Some(800), Some(600), Fit::Inside), 4000, 2000);
        assert_eq!((g.resize_w, g.resize_h), (800, 400));
        let g = plan_variant(&v(Some(800), None, Fit::Inside), 100, 50);
        assert_eq!((g.canvas_w, g.canvas_h), (100, 50));
        let mut up = v(Some(800), None, Fit::Inside);
        up.upscale = true;
        let g = plan_variant(&up, 100, 50);
        assert_eq!((g.canvas_w, g.canvas_h), (800, 400));
        let g = plan_variant(&v(None, Some(300), Fit::Cover), 3000, 2000);
        assert_eq!((g.canvas_w, g.canvas_h), (450, 300));
    }

    #[test]
    fn cover_crops_with_gravity() {
        let g = plan_variant(&v(Some(200), Some(200), Fit::Cover), 400, 200);
        assert_eq!((g.canvas_w, g.canvas_h), (200, 200));
        assert_eq!(
            g.region,
            Region {
                left: 100.0,
                top: 0.0,
                width: 200.0,
                height: 200.0
            }
        );
        let mut west = v(Some(200), Some(200), Fit::Cover);
        west.gravity = Gravity::East;
        assert_eq!(plan_variant(&west, 400, 200).region.left, 200.0);
        // Smaller source, no upscale: cut the box down, never enlarge.
        let g = plan_variant(&v(Some(300), Some(100), Fit::Cover), 200, 200);
        assert_eq!((g.canvas_w, g.canvas_h), (200, 100));
        assert_eq!(g.region.top, 50.0);
    }

    #[test]
    fn contain_pads_to_box() {
        let g = plan_variant(&v(Some(200), Some(200), Fit::Contain), 400, 200);
        assert_eq!((g.resize_w, g.resize_h), (200, 100));
        assert_eq!((g.canvas_w, g.canvas_h), (200, 200));
        assert_eq!((g.offset_x, g.offset_y), (0, 50));
    }

    #[test]
    fn fill_stretches() {
        let g = plan_variant(&v(Some(300), Some(100), Fit::Fill), 400, 400);
        assert_eq!((g.canvas_w, g.canvas_h), (300, 100));
        assert!(g.is_full_frame(400, 400));
    }

    #[test]
    fn tiny_outputs_stay_at_least_one_pixel() {
        let g = plan_variant(&v(Some(10), None, Fit::Inside), 10000, 10);
        assert_eq!((g.canvas_w, g.canvas_h), (10, 1));
    }

    #[test]
    fn jpeg_scale_keeps_margin() {
        // 5312 wide to 720: needs 0.271 -> 1/2 (1/4 would leave 1328 < 1440).
        let g = plan_variant(&v(Some(720), None, Fit::Inside), 5312, 2988);
        assert_eq!(jpeg_scale(g.needed_scale(DECODE_MARGIN)), (1, 2));
        // Without the margin 1/4 (1328 >= 720) is enough.
        assert_eq!(jpeg_scale(g.needed_scale(FAST_DECODE_MARGIN)), (1, 4));
        // 5312 to 256: 0.096 -> 1/8 would leave 664 >= 512.
        let g = plan_variant(&v(Some(256), None, Fit::Inside), 5312, 2988);
        assert_eq!(jpeg_scale(g.needed_scale(DECODE_MARGIN)), (1, 8));
        assert_eq!(jpeg_scale(3.0), (1, 1));
    }

    #[test]
    fn fast_shrink_on_load_decides_the_plans_scale() {
        // The 256x256 centre crop of a 5312x2988 photo keeps 2988 rows:
        // 256 * 2 / 2988 = 0.171 -> 1/4 with the margin, 0.086 -> 1/8
        // without it (374 rows >= 256).
        let plan = Plan::new(
            crate::plan::Limits::default(),
            vec![v(Some(256), Some(256), Fit::Cover)],
            Default::default(),
        )
        .unwrap();
        assert!(plan.fast_shrink_on_load(), "on by default, as in sharp");
        assert_eq!(plan_jpeg_scale(&plan, 5312, 2988), (1, 8));
        let plan = plan.with_fast_shrink_on_load(false);
        assert_eq!(plan_jpeg_scale(&plan, 5312, 2988), (1, 4));
    }
}
