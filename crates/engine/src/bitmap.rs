//! An 8-bit interleaved RGB or RGBA raster, the engine's working image.

use crate::plan::Color;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    /// 3 (RGB) or 4 (RGBA, straight alpha).
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Bitmap {
    pub fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Bitmap {
        debug_assert!(channels == 3 || channels == 4);
        debug_assert_eq!(
            data.len(),
            width as usize * height as usize * channels as usize
        );
        Bitmap {
            width,
            height,
            channels,
            data,
        }
    }

    pub fn filled(width: u32, height: u32, channels: u8, color: Color) -> Bitmap {
        let px: &[u8] = if channels == 4 {
            &[color.r, color.g, color.b, color.a]
        } else {
            &[color.r, color.g, color.b]
        };
        let data = px.repeat(width as usize * height as usize);
        Bitmap::new(width, height, channels, data)
    }

    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }

    pub fn stride(&self) -> usize {
        self.width as usize * self.channels as usize
    }

    /// True when there is no alpha channel or every pixel is fully opaque.
    pub fn is_opaque(&self) -> bool {
        self.channels == 3 || self.data.chunks_exact(4).all(|p| p[3] == 255)
    }

    /// Drops the alpha channel (callers check [`Bitmap::is_opaque`] first).
    pub fn without_alpha(&self) -> Bitmap {
        if self.channels == 3 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for p in self.data.chunks_exact(4) {
            data.extend_from_slice(&p[..3]);
        }
        Bitmap::new(self.width, self.height, 3, data)
    }

    /// Adds an opaque alpha channel.
    pub fn with_alpha(&self) -> Bitmap {
        if self.channels == 4 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.width as usize * self.height as usize * 4);
        for p in self.data.chunks_exact(3) {
            data.extend_from_slice(&[p[0], p[1], p[2], 255]);
        }
        Bitmap::new(self.width, self.height, 4, data)
    }

    /// Composites onto an opaque background colour (alpha into JPEG), giving RGB.
    pub fn flattened(&self, bg: Color) -> Bitmap {
        if self.channels == 3 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for p in self.data.chunks_exact(4) {
            let a = u32::from(p[3]);
            let blend =
                |c: u8, b: u8| ((u32::from(c) * a + u32::from(b) * (255 - a) + 127) / 255) as u8;
            data.extend_from_slice(&[blend(p[0], bg.r), blend(p[1], bg.g), blend(p[2], bg.b)]);
        }
        Bitmap::new(self.width, self.height, 3, data)
    }

    /// Copies `src` (same channel count) into `self` with its top-left at (x, y).
    pub fn paste(&mut self, src: &Bitmap, x: u32, y: u32) {
        debug_assert_eq!(self.channels, src.channels);
        let ch = self.channels as usize;
        let w = (src.width.min(self.width.saturating_sub(x))) as usize * ch;
        for row in 0..src.height.min(self.height.saturating_sub(y)) as usize {
            let s = row * src.stride();
            let d = (y as usize + row) * self.stride() + x as usize * ch;
            self.data[d..d + w].copy_from_slice(&src.data[s..s + w]);
        }
    }

    /// A test image: red across, green down, blue 128; with 4 channels the
    /// left half opaque and the right half transparent.
    #[cfg(test)]
    pub fn gradient(w: u32, h: u32, ch: u8) -> Bitmap {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
                if ch == 4 {
                    data.push(if x < w / 2 { 255 } else { 0 });
                }
            }
        }
        Bitmap::new(w, h, ch, data)
    }

    /// The channels of the pixel at (x, y).
    #[cfg(test)]
    pub fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let ch = self.channels as usize;
        let i = y as usize * self.stride() + x as usize * ch;
        &self.data[i..i + ch]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_blends_on_background() {
        let b = Bitmap::new(2, 1, 4, vec![255, 0, 0, 255, 255, 0, 0, 0]);
        let f = b.flattened(Color::rgb(0, 0, 255));
        assert_eq!(f.data, vec![255, 0, 0, 0, 0, 255]);
        assert!(!b.is_opaque());
        assert!(f.is_opaque());
    }

    #[test]
    fn paste_places_rows() {
        let mut canvas = Bitmap::filled(3, 3, 3, Color::rgb(0, 0, 0));
        let dot = Bitmap::filled(1, 2, 3, Color::rgb(9, 9, 9));
        canvas.paste(&dot, 1, 1);
        assert_eq!(canvas.pixel(1, 1), &[9, 9, 9]);
        assert_eq!(canvas.pixel(1, 2), &[9, 9, 9]);
        assert_eq!(canvas.pixel(0, 1), &[0, 0, 0]);
        assert_eq!(canvas.pixel(1, 0), &[0, 0, 0]);
    }
}
