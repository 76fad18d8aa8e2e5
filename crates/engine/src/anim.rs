//! Animated GIF and WebP: what the header says (frames, timing, loop),
//! read without decoding a pixel, the composited frames one at a time, and
//! the animated WebP encoder (libwebp's `WebPAnimEncoder`, fed frame by
//! frame, so only one source canvas is held at a time).

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use crate::sniff::SourceFormat;
use image::AnimationDecoder;
use std::io::Cursor;

/// An animation as its container describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnimInfo {
    /// Frames in the file (1 for a still).
    pub frames: u32,
    /// Sum of the frames' display times, in milliseconds.
    pub duration_ms: u64,
    /// Times the animation plays; 0 is forever (GIF's NETSCAPE2.0
    /// extension, WebP's ANIM chunk). A GIF without the extension plays
    /// once.
    pub loop_count: u32,
    /// Every frame lies within the canvas (a GIF frame may claim more: the
    /// decoder would allocate it whole, so the canvas-based pixel budget
    /// would not hold).
    pub frames_fit: bool,
}

impl AnimInfo {
    pub fn is_animated(&self) -> bool {
        self.frames > 1
    }
}

/// Reads frame count, timing and loop count of a GIF or WebP from its
/// block or chunk structure (no LZW or VP8 data is decoded). Other formats
/// are one frame. A structure that ends early counts the frames seen.
pub fn info(bytes: &[u8], format: SourceFormat) -> AnimInfo {
    match format {
        SourceFormat::Gif => gif_info(bytes),
        SourceFormat::Webp => webp_info(bytes),
        _ => AnimInfo {
            frames: 1,
            duration_ms: 0,
            loop_count: 0,
            frames_fit: true,
        },
    }
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        0,
    ]))
}

/// Skips GIF data sub-blocks starting at `at`; returns the index after the
/// terminator.
fn skip_sub_blocks(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = usize::from(*b.get(at)?);
        at += 1;
        if len == 0 {
            return Some(at);
        }
        at += len;
    }
}

fn gif_info(b: &[u8]) -> AnimInfo {
    let mut info = AnimInfo {
        frames: 0,
        duration_ms: 0,
        loop_count: 1,
        frames_fit: true,
    };
    let _ = gif_walk(b, &mut info);
    info.frames = info.frames.max(1);
    info
}

fn gif_walk(b: &[u8], info: &mut AnimInfo) -> Option<()> {
    let (canvas_w, canvas_h) = (le16(b, 6)?, le16(b, 8)?);
    let flags = *b.get(10)?;
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 7) + 1);
    }
    let mut delay_cs = 0u32;
    loop {
        match *b.get(at)? {
            0x21 => {
                let label = *b.get(at + 1)?;
                let first = at + 2;
                if label == 0xF9 && *b.get(first)? >= 4 {
                    delay_cs = le16(b, first + 2)?;
                } else if label == 0xFF
                    && b.get(first + 1..first + 12) == Some(b"NETSCAPE2.0")
                    && b.get(first + 12) == Some(&3)
                    && b.get(first + 13) == Some(&1)
                {
                    // Repetitions after the first play; 0 is forever.
                    let repeat = le16(b, first + 14)?;
                    info.loop_count = if repeat == 0 { 0 } else { repeat + 1 };
                }
                at = skip_sub_blocks(b, first)?;
            }
            0x2C => {
                let (left, top) = (le16(b, at + 1)?, le16(b, at + 3)?);
                let (w, h) = (le16(b, at + 5)?, le16(b, at + 7)?);
                if left + w > canvas_w || top + h > canvas_h {
                    info.frames_fit = false;
                }
                let flags = *b.get(at + 9)?;
                at += 10;
                if flags & 0x80 != 0 {
                    at += 3 << ((flags & 7) + 1);
                }
                at = skip_sub_blocks(b, at + 1)?;
                info.frames += 1;
                info.duration_ms += u64::from(delay_cs) * 10;
                delay_cs = 0;
            }
            _ => return Some(()),
        }
    }
}

fn webp_info(b: &[u8]) -> AnimInfo {
    let mut info = AnimInfo {
        frames: 0,
        duration_ms: 0,
        loop_count: 0,
        // The WebP decoder refuses frames outside the canvas.
        frames_fit: true,
    };
    let mut at = 12;
    while let (Some(kind), Some(size)) = (b.get(at..at + 4), b.get(at + 4..at + 8)) {
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let body = at + 8;
        match kind {
            b"ANIM" => info.loop_count = le16(b, body + 4).unwrap_or(0),
            b"ANMF" => {
                info.frames += 1;
                info.duration_ms += u64::from(le24(b, body + 12).unwrap_or(0));
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    info.frames = info.frames.max(1);
    info
}

/// One composited frame: the whole canvas, RGBA, and how long it shows.
pub struct AnimFrame {
    pub bitmap: Bitmap,
    pub delay_ms: u32,
}

/// The composited frames of an animated GIF or WebP, decoded one at a time
/// by the `image` crate (disposal and blending applied), at most `max`.
pub fn frames<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    max: u32,
) -> Result<impl Iterator<Item = Result<AnimFrame>> + 'a> {
    let err = move |e: image::ImageError| {
        MediaError::corrupt(format!("{format} animation frame failed to decode: {e}"))
    };
    let frames = match format {
        SourceFormat::Gif => image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
            .map_err(err)?
            .into_frames(),
        SourceFormat::Webp => image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
            .map_err(err)?
            .into_frames(),
        other => {
            return Err(MediaError::internal(format!(
                "{other} is not an animation format"
            )))
        }
    };
    Ok(frames.take(max as usize).map(move |f| {
        let f = f.map_err(err)?;
        let (num, den) = f.delay().numer_denom_ms();
        let delay_ms = num.checked_div(den).unwrap_or(0);
        let rgba = f.into_buffer();
        let (w, h) = rgba.dimensions();
        Ok(AnimFrame {
            bitmap: Bitmap::new(w, h, 4, rgba.into_raw()),
            delay_ms,
        })
    }))
}

/// An animated WebP being encoded, frame by frame: libwebp copies each
/// frame into its own state, so the caller's frame can go at once.
pub struct WebpAnimation {
    encoder: *mut libwebp_sys::WebPAnimEncoder,
    config: libwebp_sys::WebPConfig,
    width: u32,
    height: u32,
    timestamp_ms: i32,
    frames: u32,
}

impl WebpAnimation {
    /// An encoder for `width x height` frames with `config`, looping
    /// `loop_count` times (0: forever).
    pub fn new(
        width: u32,
        height: u32,
        config: libwebp_sys::WebPConfig,
        loop_count: u32,
    ) -> Result<Self> {
        let side = |v: u32| i32::try_from(v).ok().filter(|&v| v > 0 && v <= 16383);
        let (Some(w), Some(h)) = (side(width), side(height)) else {
            return Err(MediaError::encode(format!(
                "animated WebP: {width}x{height} is outside 1..=16383"
            )));
        };
        // SAFETY: the options struct is initialised by libwebp before use,
        // and the encoder pointer is checked for null.
        let encoder = unsafe {
            let mut options =
                std::mem::MaybeUninit::<libwebp_sys::WebPAnimEncoderOptions>::uninit();
            let abi = libwebp_sys::WebPGetMuxABIVersion();
            if libwebp_sys::WebPAnimEncoderOptionsInitInternal(options.as_mut_ptr(), abi) == 0 {
                return Err(MediaError::encode("animated WebP: bad libwebp version"));
            }
            let mut options = options.assume_init();
            options.anim_params.loop_count = i32::try_from(loop_count.min(65535)).unwrap_or(0);
            options.anim_params.bgcolor = 0;
            libwebp_sys::WebPAnimEncoderNewInternal(w, h, &options, abi)
        };
        if encoder.is_null() {
            return Err(MediaError::encode("animated WebP: encoder could not start"));
        }
        Ok(WebpAnimation {
            encoder,
            config,
            width,
            height,
            timestamp_ms: 0,
            frames: 0,
        })
    }

    /// Adds one frame (RGB or RGBA, the encoder's size) shown for `delay_ms`.
    pub fn add(&mut self, frame: &Bitmap, delay_ms: u32) -> Result<()> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(MediaError::internal(format!(
                "animated WebP frame is {}x{}, the animation {}x{}",
                frame.width, frame.height, self.width, self.height
            )));
        }
        let rgba;
        let data = if frame.channels == 4 {
            &frame.data
        } else {
            rgba = frame.with_alpha();
            &rgba.data
        };
        // SAFETY: the picture is initialised by libwebp, imports `data`
        // (width * height * 4 bytes, checked by the Bitmap invariant) into
        // its own buffer, and is freed on every path.
        unsafe {
            let mut pic = std::mem::MaybeUninit::<libwebp_sys::WebPPicture>::zeroed();
            if !libwebp_sys::WebPPictureInit(pic.as_mut_ptr()) {
                return Err(MediaError::encode("animated WebP: bad libwebp version"));
            }
            let mut pic = pic.assume_init();
            pic.use_argb = 1;
            pic.width = self.width as i32;
            pic.height = self.height as i32;
            let imported =
                libwebp_sys::WebPPictureImportRGBA(&mut pic, data.as_ptr(), self.width as i32 * 4)
                    != 0;
            let added = imported
                && libwebp_sys::WebPAnimEncoderAdd(
                    self.encoder,
                    &mut pic,
                    self.timestamp_ms,
                    &self.config,
                ) != 0;
            let code = pic.error_code;
            libwebp_sys::WebPPictureFree(&mut pic);
            if !added {
                return Err(MediaError::encode(format!(
                    "animated WebP: frame {} failed ({code:?})",
                    self.frames + 1
                )));
            }
        }
        self.frames += 1;
        self.timestamp_ms = self
            .timestamp_ms
            .saturating_add(i32::try_from(delay_ms).unwrap_or(i32::MAX));
        Ok(())
    }

    /// The finished file.
    pub fn finish(self) -> Result<Vec<u8>> {
        // SAFETY: a null frame marks the end (its timestamp is the last
        // frame's end); the assembled data is copied out and freed.
        unsafe {
            libwebp_sys::WebPAnimEncoderAdd(
                self.encoder,
                std::ptr::null_mut(),
                self.timestamp_ms,
                std::ptr::null(),
            );
            let mut data = std::mem::MaybeUninit::<libwebp_sys::WebPData>::zeroed().assume_init();
            if libwebp_sys::WebPAnimEncoderAssemble(self.encoder, &mut data) == 0 {
                let msg = libwebp_sys::WebPAnimEncoderGetError(self.encoder);
                let msg = if msg.is_null() {
                    "unknown error".to_string()
                } else {
                    std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned()
                };
                return Err(MediaError::encode(format!("animated WebP: {msg}")));
            }
            let out = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
            libwebp_sys::WebPDataClear(&mut data);
            Ok(out)
        }
    }
}

impl Drop for WebpAnimation {
    fn drop(&mut self) {
        // SAFETY: the encoder was created by WebPAnimEncoderNew and is
        // deleted once.
        unsafe { libwebp_sys::WebPAnimEncoderDelete(self.encoder) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF with `n` 1x1 frames of `delay_cs`, optionally looping.
    pub(crate) fn tiny_gif(n: usize, delay_cs: u16, netscape: Option<u16>) -> Vec<u8> {
        let mut g = b"GIF89a\x04\x00\x04\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff".to_vec();
        if let Some(r) = netscape {
            g.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01");
            g.extend_from_slice(&r.to_le_bytes());
            g.push(0);
        }
        for _ in 0..n {
            g.extend_from_slice(b"\x21\xF9\x04\x00");
            g.extend_from_slice(&delay_cs.to_le_bytes());
            g.extend_from_slice(b"\x00\x00");
            g.extend_from_slice(b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00");
        }
        g.push(0x3B);
        g
    }

    #[test]
    fn reads_gif_frames_timing_and_loops() {
        let i = info(&tiny_gif(5, 20, Some(0)), SourceFormat::Gif);
        assert_eq!((i.frames, i.duration_ms, i.loop_count), (5, 1000, 0));
        let i = info(&tiny_gif(2, 7, Some(2)), SourceFormat::Gif);
        assert_eq!((i.frames, i.duration_ms, i.loop_count), (2, 140, 3));
        let i = info(&tiny_gif(1, 0, None), SourceFormat::Gif);
        assert!(!i.is_animated());
        assert!(i.frames_fit);
        // A 1x1 frame on a 1x1 canvas fits; on a 0x0 canvas it does not.
        let mut g = tiny_gif(2, 10, None);
        g[6..10].copy_from_slice(&[0, 0, 0, 0]);
        assert!(!info(&g, SourceFormat::Gif).frames_fit);
        // Cut short: the frames before the cut count.
        let g = tiny_gif(4, 10, None);
        let i = info(&g[..g.len() - 20], SourceFormat::Gif);
        assert_eq!(i.frames, 3);
    }

    #[test]
    fn encodes_and_decodes_an_animation() {
        let mut enc = WebpAnimation::new(8, 6, webp_test_config(), 2).unwrap();
        for (i, d) in [100u32, 250, 400].into_iter().enumerate() {
            let v = (i * 100) as u8;
            let frame = Bitmap::new(8, 6, 3, vec![v; 8 * 6 * 3]);
            enc.add(&frame, d).unwrap();
        }
        let webp = enc.finish().unwrap();
        let i = info(&webp, SourceFormat::Webp);
        assert_eq!((i.frames, i.duration_ms, i.loop_count), (3, 750, 2));
        let frames: Vec<AnimFrame> = frames(&webp, SourceFormat::Webp, 10)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].delay_ms, 250);
        assert!(frames[2].bitmap.data[0].abs_diff(200) < 8);
    }

    fn webp_test_config() -> libwebp_sys::WebPConfig {
        crate::encode::webp_config(
            crate::encode::EncodeParams {
                quality: 90,
                lossless: false,
            },
            4,
        )
        .unwrap()
    }
}
