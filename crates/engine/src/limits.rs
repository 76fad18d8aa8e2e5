//! Limits checked before any pixel buffer is allocated.

use crate::error::{MediaError, Result};
use crate::plan::Limits;
use crate::sniff::SourceFormat;

pub fn check_bytes(len: usize, limits: &Limits) -> Result<()> {
    if len as u64 > limits.max_input_bytes {
        return Err(MediaError::limits(format!(
            "input is {len} bytes, over the limit of {} bytes",
            limits.max_input_bytes
        )));
    }
    Ok(())
}

/// Stored dimensions from the header alone (no pixel decoding).
pub fn header_dims(bytes: &[u8], format: SourceFormat) -> Result<(u32, u32)> {
    match format {
        SourceFormat::Jpeg => {
            let h = crate::jpeg::read_header(bytes)?;
            return Ok((h.width, h.height));
        }
        SourceFormat::Jxl => {
            let h = crate::jxl::header(bytes)?;
            return Ok((h.width, h.height));
        }
        SourceFormat::Heic => {
            let h = crate::heic::header(bytes)?;
            return Ok((h.width, h.height));
        }
        _ => {}
    }
    let size = imagesize::blob_size(bytes)
        .map_err(|e| MediaError::corrupt(format!("cannot read the {format} header: {e}")))?;
    let (w, h) = (size.width, size.height);
    if w == 0 || h == 0 {
        return Err(MediaError::corrupt(format!(
            "{format} header declares an empty image ({w}x{h})"
        )));
    }
    let w = u32::try_from(w)
        .map_err(|_| MediaError::limits(format!("{format} width {w} is too large")))?;
    let h = u32::try_from(h)
        .map_err(|_| MediaError::limits(format!("{format} height {h} is too large")))?;
    Ok((w, h))
}

pub fn check_pixels(w: u32, h: u32, limits: &Limits) -> Result<()> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(MediaError::limits(format!(
            "image is {w}x{h} = {pixels} pixels, over the limit of {} pixels",
            limits.max_pixels
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_numbers() {
        let l = Limits::default();
        let e = check_pixels(40_000, 40_000, &l).unwrap_err();
        assert!(e.message().contains("40000x40000"), "{e}");
        assert!(check_pixels(10_000, 10_000, &l).is_ok());
        assert!(check_bytes(usize::MAX, &l).is_err());
    }
}
