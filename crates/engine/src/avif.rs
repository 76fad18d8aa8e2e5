//! AVIF: container parsed by `avif-parse`, AV1 decoded by libaom on one
//! thread (parallelism comes from the caller running several images).
//!
//! Before libaom sees a byte, every AV1 sequence header in the colour and
//! alpha items is read: its maximum frame size must be within the pixel limit
//! and equal the container's `ispe` size, which is what the header-stage
//! pixel check read. libaom itself refuses frames larger than the sequence
//! header's maximum, so the pixel limit holds for the real frame. Pixels go
//! straight from libaom's planes into the 8-bit output bitmap (no
//! intermediate 16-bit or per-channel images).

use crate::bitmap::Bitmap;
use crate::error::{MediaError, Result};
use crate::limits;
use crate::plan::Limits;
use aom_decode::chroma::{yuv_420, yuv_422, yuv_444};
use aom_decode::color::{ChromaSampling, MatrixCoefficients};
use aom_decode::{FrameTempRef, RowsIter, RowsIters};
use std::io::Cursor;
use yuv::convert::RGBConvert;
use yuv::YUV;

/// The decoded image before orientation: pixels and `"rgb"` or `"gray"`.
pub struct AvifPixels {
    pub bitmap: Bitmap,
    pub color_model: &'static str,
    /// Raw EXIF (TIFF-structured) from the `Exif` item, if any.
    pub exif: Option<Vec<u8>>,
}

fn corrupt(what: impl std::fmt::Display) -> MediaError {
    MediaError::corrupt(format!("avif: {what}"))
}

/// The container, with the AV1 items copied out.
pub fn parse(bytes: &[u8]) -> Result<avif_parse::AvifData> {
    avif_parse::read_avif(&mut Cursor::new(bytes)).map_err(|e| match e {
        avif_parse::Error::Unsupported(what) => MediaError::unsupported(format!("avif: {what}")),
        e => corrupt(e),
    })
}

/// Largest frame size allowed by any AV1 sequence header in `obus` (an AV1
/// item: a sequence of OBUs, each normally with its size field).
pub fn av1_max_frame(obus: &[u8]) -> Result<(u32, u32)> {
    let mut rest = obus;
    let mut max: Option<(u32, u32)> = None;
    while !rest.is_empty() {
        let header = rest[0];
        if header & 0x80 != 0 {
            return Err(corrupt("AV1 data is not a sequence of OBUs"));
        }
        let obu_type = (header >> 3) & 0x0F;
        let mut pos = 1 + usize::from(header & 0x04 != 0);
        let size = if header & 0x02 != 0 {
            let mut value: u64 = 0;
            let mut i = 0;
            loop {
                let b = *rest
                    .get(pos + i)
                    .ok_or_else(|| corrupt("AV1 OBU size is truncated"))?;
                value |= u64::from(b & 0x7F) << (7 * i);
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if i == 8 {
                    return Err(corrupt("AV1 OBU size is not a valid leb128"));
                }
            }
            pos += i;
            usize::try_from(value).map_err(|_| corrupt("AV1 OBU size overflows"))?
        } else {
            rest.len().saturating_sub(pos)
        };
        let end = pos
            .checked_add(size)
            .filter(|&e| e <= rest.len())
            .ok_or_else(|| corrupt("AV1 OBU runs past the end of its item"))?;
        if obu_type == 1 {
            let m = avif_parse::AV1Metadata::parse_av1_bitstream(&rest[..end])
                .map_err(|e| corrupt(format!("bad AV1 sequence header: {e}")))?;
            let (w, h) = (m.max_frame_width.get(), m.max_frame_height.get());
            max = Some(max.map_or((w, h), |(mw, mh)| (mw.max(w), mh.max(h))));
        }
        rest = &rest[end..];
    }
    max.ok_or_else(|| corrupt("AV1 item has no sequence header"))
}

/// Checks an item's AV1 frame size against the pixel limit and the `ispe`
/// size the header stage read (either way round: `ispe` is reported rotated
/// when the file carries an `irot`; the pixel count is the same).
fn check_frame(item: &str, frame: (u32, u32), ispe: (u32, u32), lim: &Limits) -> Result<()> {
    let (w, h) = frame;
    limits::check_pixels(w, h, lim)
        .map_err(|e| MediaError::limits(format!("avif {item} AV1 frame: {}", e.message())))?;
    if frame != ispe && frame != (ispe.1, ispe.0) {
        return Err(corrupt(format!(
            "{item} AV1 frame is {w}x{h} but the container (ispe) says {}x{}",
            ispe.0, ispe.1
        )));
    }
    Ok(())
}

/// Decodes an AVIF whose header (`ispe`) size is `ispe`.
pub fn decode(bytes: &[u8], ispe: (u32, u32), lim: &Limits) -> Result<AvifPixels> {
    let avif = parse(bytes)?;
    let frame = av1_max_frame(&avif.primary_item)?;
    check_frame("image", frame, ispe, lim)?;
    if let Some(alpha) = &avif.alpha_item {
        check_frame("alpha", av1_max_frame(alpha)?, ispe, lim)?;
    }
    let mut decoder = aom_decode::Decoder::new(&aom_decode::Config { threads: 1 }).map_err(aom)?;
    // Alpha first: the colour frame borrows the decoder until it is converted.
    let alpha = match &avif.alpha_item {
        Some(item) => Some(alpha_plane(decode_frame(&mut decoder, item)?)?),
        None => None,
    };
    let (bitmap, color_model) = {
        let color = decode_frame(&mut decoder, &avif.primary_item)?;
        to_bitmap(&color, alpha.as_ref(), avif.premultiplied_alpha)?
    };
    // Free libaom's frame buffers and the alpha plane before the engine goes on.
    drop(decoder);
    drop(alpha);
    let (w, h) = (bitmap.width, bitmap.height);
    if w > frame.0 || h > frame.1 {
        return Err(corrupt(format!(
            "decoded frame {w}x{h} exceeds its sequence header's {}x{}",
            frame.0, frame.1
        )));
    }
    Ok(AvifPixels {
        bitmap,
        color_model,
        exif: exif_item(bytes),
    })
}

fn aom(e: aom_decode::Error) -> MediaError {
    corrupt(format!("decode failed: {e}"))
}

/// One AV1 frame from libaom, with the AVX state it may leave behind
/// cleared before Rust's conversions run (`simd_state`).
fn decode_frame<'a>(decoder: &'a mut aom_decode::Decoder, av1: &[u8]) -> Result<FrameTempRef<'a>> {
    let frame = decoder.decode_frame(av1).map_err(aom);
    crate::simd_state::clear_upper();
    frame
}

/// The raw EXIF of the `Exif` item (kamadak-exif finds the item; the
/// orientation is read by the engine's one reader, so a damaged IFD chain is
/// kept as a partial result rather than dropping the payload).
pub fn exif_item(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut reader = ::exif::Reader::new();
    reader.continue_on_error(true);
    match reader.read_from_container(&mut Cursor::new(bytes)) {
        Ok(e) => Some(e.buf().to_vec()),
        Err(e) => e
            .distill_partial_result(|_| {})
            .ok()
            .map(|e| e.buf().to_vec()),
    }
}

fn unsupported(e: yuv::Error) -> MediaError {
    MediaError::unsupported(format!("avif: colour encoding not supported ({e})"))
}

/// One 8-bit plane (the alpha item).
struct Plane {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

/// An alpha item as one 8-bit plane.
fn alpha_plane(frame: FrameTempRef<'_>) -> Result<Plane> {
    let range = frame.range();
    let mc = frame
        .matrix_coefficients()
        .unwrap_or(MatrixCoefficients::Identity);
    let rows = frame.rows_iter().map_err(corrupt)?;
    let (y8, y16) = match rows {
        RowsIters::YuvPlanes8 { y, .. } | RowsIters::Mono8(y) => (Some(y), None),
        RowsIters::YuvPlanes16 { y, depth, .. } | RowsIters::Mono16(y, depth) => {
            (None, Some((y, depth)))
        }
    };
    if let Some(y) = y8 {
        let conv = RGBConvert::<u8>::new(range, mc).map_err(unsupported)?;
        let (w, h) = (y.width(), y.height());
        let mut data = Vec::with_capacity(w * h);
        for row in y {
            data.extend(row.iter().map(|&v| conv.to_luma(v)));
        }
        return Ok(Plane {
            width: w,
            height: h,
            data,
        });
    }
    let (y, depth) = y16.expect("one of the two");
    let conv = RGBConvert::<u16>::new(range, mc, depth).map_err(unsupported)?;
    let (w, h) = (y.width(), y.height());
    let mut data = Vec::with_capacity(w * h);
    for row in y {
        data.extend(
            row.iter()
                .map(|&v| (conv.to_luma(u16::from_ne_bytes(v)) >> 8) as u8),
        );
    }
    Ok(Plane {
        width: w,
        height: h,
        data,
    })
}

/// Writes RGB pixels (and alpha, when given) into one 8-bit buffer.
fn fill(
    out: &mut Vec<u8>,
    pixels: impl Iterator<Item = [u8; 3]>,
    alpha: Option<&[u8]>,
    premultiplied: bool,
) {
    match alpha {
        None => pixels.for_each(|p| out.extend_from_slice(&p)),
        Some(a) => pixels.zip(a.iter().copied()).for_each(|(p, a)| {
            let p = if premultiplied && a > 0 && a < 255 {
                p.map(|c| ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8)
            } else {
                p
            };
            out.extend_from_slice(&[p[0], p[1], p[2], a]);
        }),
    }
}

/// The colour frame as an 8-bit RGB(A) bitmap (alpha from `alpha`), and
/// its colour model: convert each plane layout, then check the size.
fn to_bitmap(
    frame: &FrameTempRef<'_>,
    alpha: Option<&Plane>,
    premultiplied: bool,
) -> Result<(Bitmap, &'static str)> {
    let rows = frame.rows_iter().map_err(corrupt)?;
    let (w, h) = match &rows {
        RowsIters::YuvPlanes8 { y, .. } | RowsIters::Mono8(y) => (y.width(), y.height()),
        RowsIters::YuvPlanes16 { y, .. } | RowsIters::Mono16(y, _) => (y.width(), y.height()),
    };
    let alpha = match alpha {
        Some(a) if (a.width, a.height) != (w, h) => {
            return Err(corrupt(format!(
                "alpha is {}x{} but the image is {w}x{h}",
                a.width, a.height
            )))
        }
        Some(a) => Some(a.data.as_slice()),
        None => None,
    };
    let channels = if alpha.is_some() { 4 } else { 3 };
    let mut out = Pixels {
        data: Vec::with_capacity(w * h * channels),
        alpha,
        premultiplied,
    };
    let model = out.convert(frame, rows)?;
    if out.data.len() != w * h * channels {
        return Err(corrupt(format!("decoded planes do not cover {w}x{h}")));
    }
    Ok((
        Bitmap::new(w as u32, h as u32, channels as u8, out.data),
        model,
    ))
}

/// The output bitmap's bytes being written, with the alpha plane to add.
struct Pixels<'a> {
    data: Vec<u8>,
    alpha: Option<&'a [u8]>,
    premultiplied: bool,
}

impl Pixels<'_> {
    /// Converts every pixel of `rows` (planes of `frame`) to 8-bit RGB(A);
    /// returns the colour model, `"rgb"` or `"gray"`.
    fn convert(&mut self, frame: &FrameTempRef<'_>, rows: RowsIters<'_>) -> Result<&'static str> {
        let range = frame.range();
        let yuv_matrix = || {
            frame
                .matrix_coefficients()
                .unwrap_or(MatrixCoefficients::BT709)
        };
        let mono_matrix = || {
            frame
                .matrix_coefficients()
                .unwrap_or(MatrixCoefficients::Identity)
        };
        match rows {
            RowsIters::YuvPlanes8 {
                y,
                u,
                v,
                chroma_sampling,
            } => {
                let conv = RGBConvert::<u8>::new(range, yuv_matrix()).map_err(unsupported)?;
                let rgb = |p: YUV<u8>| {
                    let c = conv.to_rgb(p);
                    [c.r, c.g, c.b]
                };
                self.yuv(y, u, v, chroma_sampling, rgb)?;
                Ok("rgb")
            }
            RowsIters::YuvPlanes16 {
                y,
                u,
                v,
                chroma_sampling,
                depth,
            } => {
                let conv =
                    RGBConvert::<u16>::new(range, yuv_matrix(), depth).map_err(unsupported)?;
                let rgb = |p: YUV<[u8; 2]>| {
                    let c = conv.to_rgb(YUV {
                        y: u16::from_ne_bytes(p.y),
                        u: u16::from_ne_bytes(p.u),
                        v: u16::from_ne_bytes(p.v),
                    });
                    [(c.r >> 8) as u8, (c.g >> 8) as u8, (c.b >> 8) as u8]
                };
                self.yuv(y, u, v, chroma_sampling, rgb)?;
                Ok("rgb")
            }
            RowsIters::Mono8(y) => {
                let conv = RGBConvert::<u8>::new(range, mono_matrix()).map_err(unsupported)?;
                let px = y.flat_map(|row| row.iter().map(|&v| [conv.to_luma(v); 3]));
                self.fill(px);
                Ok("gray")
            }
            RowsIters::Mono16(y, depth) => {
                let conv =
                    RGBConvert::<u16>::new(range, mono_matrix(), depth).map_err(unsupported)?;
                let px = y.flat_map(|row| {
                    row.iter()
                        .map(|&v| [(conv.to_luma(u16::from_ne_bytes(v)) >> 8) as u8; 3])
                });
                self.fill(px);
                Ok("gray")
            }
        }
    }

    /// YUV planes subsampled as `sampling`, each pixel through `rgb`.
    fn yuv<'r, T: Copy + 'r>(
        &mut self,
        y: RowsIter<'r, T>,
        u: RowsIter<'r, T>,
        v: RowsIter<'r, T>,
        sampling: ChromaSampling,
        rgb: impl Fn(YUV<T>) -> [u8; 3],
    ) -> Result<()> {
        match sampling {
            ChromaSampling::Cs444 => self.fill(yuv_444(y, u, v).map(rgb)),
            ChromaSampling::Cs422 => self.fill(yuv_422(y, u, v).map(rgb)),
            ChromaSampling::Cs420 => self.fill(yuv_420(y, u, v).map(rgb)),
            ChromaSampling::Monochrome => {
                return Err(corrupt("monochrome frame with chroma planes"))
            }
        }
        Ok(())
    }

    fn fill(&mut self, pixels: impl Iterator<Item = [u8; 3]>) {
        fill(&mut self.data, pixels, self.alpha, self.premultiplied);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_obus() {
        assert!(av1_max_frame(&[0x12, 0x00]).is_err(), "no sequence header");
        assert!(
            av1_max_frame(&[0x0A, 0x05, 0x00]).is_err(),
            "runs past the end"
        );
        assert!(av1_max_frame(&[0x80]).is_err(), "forbidden bit");
        assert!(av1_max_frame(&[0x0A, 0xFF]).is_err(), "truncated size");
    }
}
