//! EXIF orientation: turn stored pixels into the displayed (upright) image.

use crate::bitmap::Bitmap;

/// True for orientations 5..=8, whose displayed width is the stored height.
pub fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

/// Displayed dimensions of a stored `w x h` image with this orientation.
pub fn displayed_dims(w: u32, h: u32, orientation: u8) -> (u32, u32) {
    if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    }
}

/// Whether the displayed x and y axes run against the stored axes they come
/// from (the formulas at [`apply`]): the stored image's right or bottom edge
/// becomes the displayed left or top one. Read from [`EXIF_MATRICES`]: a
/// displayed axis is reversed when its row of the matrix sums to -1
/// (orientations outside 1..=8 reverse nothing, as [`apply`] treats them).
pub fn reverses_axes(orientation: u8) -> (bool, bool) {
    EXIF_MATRICES
        .iter()
        .find(|(o, _)| *o == orientation)
        .map_or((false, false), |(_, m)| (m[0] + m[1] < 0, m[2] + m[3] < 0))
}

/// A transformative property of a HEIF/AVIF item, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemTransform {
    /// `irot`: quarter turns anti-clockwise (0..=3).
    RotateCcw(u8),
    /// `imir` mode 1 (ISO/IEC 23008-12:2022): left and right exchanged.
    MirrorLeftRight,
    /// `imir` mode 0: top and bottom exchanged.
    MirrorTopBottom,
}

/// Each EXIF orientation as the matrix (x' = a x + b y, y' = c x + d y,
/// y pointing down) taking stored pixels to displayed ones.
const EXIF_MATRICES: [(u8, [i8; 4]); 8] = [
    (1, [1, 0, 0, 1]),
    (2, [-1, 0, 0, 1]),
    (3, [-1, 0, 0, -1]),
    (4, [1, 0, 0, -1]),
    (5, [0, 1, 1, 0]),
    (6, [0, -1, 1, 0]),
    (7, [0, -1, -1, 0]),
    (8, [0, 1, -1, 0]),
];

/// The EXIF orientation equal to applying `transforms` in order (HEIF
/// applies `irot` and `imir` in the order the item lists them).
pub fn from_item_transforms(transforms: impl IntoIterator<Item = ItemTransform>) -> u8 {
    let mul = |m: [i8; 4], n: [i8; 4]| {
        [
            m[0] * n[0] + m[1] * n[2],
            m[0] * n[1] + m[1] * n[3],
            m[2] * n[0] + m[3] * n[2],
            m[2] * n[1] + m[3] * n[3],
        ]
    };
    let mut total = [1, 0, 0, 1];
    for t in transforms {
        let step = match t {
            ItemTransform::RotateCcw(q) => {
                (0..q % 4).fold([1, 0, 0, 1], |m, _| mul([0, 1, -1, 0], m))
            }
            ItemTransform::MirrorLeftRight => [-1, 0, 0, 1],
            ItemTransform::MirrorTopBottom => [1, 0, 0, -1],
        };
        total = mul(step, total);
    }
    EXIF_MATRICES
        .iter()
        .find(|(_, m)| *m == total)
        .map_or(1, |(o, _)| *o)
}

/// Applies EXIF orientation 1..=8 (values outside are treated as 1).
///
/// For each displayed pixel (dx, dy) the stored pixel is, with stored size W x H:
/// 2 mirror: (W-1-dx, dy); 3 rotate 180: (W-1-dx, H-1-dy); 4 flip: (dx, H-1-dy);
/// 5 transpose: (dy, dx); 6 rotate 90 CW: (dy, H-1-dx);
/// 7 transverse: (W-1-dy, H-1-dx); 8 rotate 270 CW: (W-1-dy, dx).
pub fn apply(src: Bitmap, orientation: u8) -> Bitmap {
    if !(2..=8).contains(&orientation) {
        return src;
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let ch = src.channels as usize;
    let (dw, dh) = displayed_dims(src.width, src.height, orientation);
    let (dw, dh) = (dw as usize, dh as usize);
    let mut out = vec![0u8; src.data.len()];
    // Walk destination rows; the source index moves by a constant step along a row.
    for dy in 0..dh {
        let (sx0, sy0, step_x, step_y): (isize, isize, isize, isize) = match orientation {
            2 => ((w - 1) as isize, dy as isize, -1, 0),
            3 => ((w - 1) as isize, (h - 1 - dy) as isize, -1, 0),
            4 => (0, (h - 1 - dy) as isize, 1, 0),
            5 => (dy as isize, 0, 0, 1),
            6 => (dy as isize, (h - 1) as isize, 0, -1),
            7 => ((w - 1 - dy) as isize, (h - 1) as isize, 0, -1),
            _ => ((w - 1 - dy) as isize, 0, 0, 1), // 8
        };
        let step = (step_y * w as isize + step_x) * ch as isize;
        let mut s = (sy0 * w as isize + sx0) * ch as isize;
        let row = &mut out[dy * dw * ch..(dy + 1) * dw * ch];
        for px in row.chunks_exact_mut(ch) {
            let i = s as usize;
            px.copy_from_slice(&src.data[i..i + ch]);
            s += step;
        }
    }
    Bitmap::new(dw as u32, dh as u32, src.channels, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference implementation straight from the per-pixel formulas.
    fn reference(src: &Bitmap, o: u8) -> Bitmap {
        let (w, h) = (src.width, src.height);
        let (dw, dh) = displayed_dims(w, h, o);
        let mut data = Vec::new();
        for dy in 0..dh {
            for dx in 0..dw {
                let (sx, sy) = match o {
                    2 => (w - 1 - dx, dy),
                    3 => (w - 1 - dx, h - 1 - dy),
                    4 => (dx, h - 1 - dy),
                    5 => (dy, dx),
                    6 => (dy, h - 1 - dx),
                    7 => (w - 1 - dy, h - 1 - dx),
                    8 => (w - 1 - dy, dx),
                    _ => (dx, dy),
                };
                data.extend_from_slice(src.pixel(sx, sy));
            }
        }
        Bitmap::new(dw, dh, src.channels, data)
    }

    #[test]
    fn reverses_axes_says_where_the_stored_far_edges_go() {
        // A stored 5x3 image whose last column and last row are marked: the
        // marks are displayed on the left / top exactly when the axis they
        // lie across is reversed.
        let (w, h) = (5u32, 3u32);
        let data: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| u8::from(x == w - 1) | u8::from(y == h - 1) << 1))
            .flat_map(|v| [v; 3])
            .collect();
        let src = Bitmap::new(w, h, 3, data);
        for o in 1..=8u8 {
            let shown = apply(src.clone(), o);
            let (rev_x, rev_y) = reverses_axes(o);
            // The stored axis each displayed axis comes from.
            let (x_mark, y_mark) = if swaps_axes(o) { (2, 1) } else { (1, 2) };
            let first_column_marked = (0..shown.height).all(|y| shown.pixel(0, y)[0] & x_mark != 0);
            let first_row_marked = (0..shown.width).all(|x| shown.pixel(x, 0)[0] & y_mark != 0);
            assert_eq!(
                (first_column_marked, first_row_marked),
                (rev_x, rev_y),
                "orientation {o}"
            );
        }
    }

    #[test]
    fn matches_reference_for_all_orientations() {
        for ch in [3u8, 4] {
            let (w, h) = (5u32, 3u32);
            let data: Vec<u8> = (0..w * h * ch as u32).map(|i| i as u8).collect();
            let src = Bitmap::new(w, h, ch, data);
            for o in 1..=8 {
                assert_eq!(apply(src.clone(), o), reference(&src, o), "orientation {o}");
            }
        }
    }

    #[test]
    fn rotate_90_cw_moves_bottom_left_to_top_left() {
        // 2x1 stored: [A B]; orientation 6 displays a 1x2 column [A; B].
        let src = Bitmap::new(2, 1, 3, vec![1, 1, 1, 2, 2, 2]);
        let out = apply(src, 6);
        assert_eq!((out.width, out.height), (1, 2));
        assert_eq!(out.data, vec![1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn item_transforms_map_to_exif() {
        use ItemTransform::*;
        assert_eq!(from_item_transforms([]), 1);
        assert_eq!(from_item_transforms([RotateCcw(1)]), 8);
        assert_eq!(from_item_transforms([RotateCcw(2)]), 3);
        assert_eq!(from_item_transforms([RotateCcw(3)]), 6);
        assert_eq!(from_item_transforms([MirrorLeftRight]), 2);
        assert_eq!(from_item_transforms([MirrorTopBottom]), 4);
        // Rotate, then mirror: the order matters.
        assert_eq!(from_item_transforms([RotateCcw(1), MirrorLeftRight]), 7);
        assert_eq!(from_item_transforms([MirrorLeftRight, RotateCcw(1)]), 5);
        assert_eq!(from_item_transforms([RotateCcw(3), MirrorLeftRight]), 5);
    }
}
