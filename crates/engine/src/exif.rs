//! The one EXIF orientation reader, used for every format.
//!
//! Each format only extracts its raw EXIF (TIFF-structured) bytes — JPEG's
//! APP1, PNG's `eXIf`, WebP's `EXIF` chunk, the AVIF `Exif` item, a TIFF file
//! itself — and this reads the orientation from them. Like browsers, only the
//! first IFD (IFD0) is read: its `Orientation` entry is the image's, and links
//! to further IFDs (which a hostile file can make loop) are never followed,
//! so every format gives the same answer for the same payload.

/// EXIF orientation (1..=8) in the TIFF-structured `exif` payload, or 1 when
/// there is none or it is not a valid orientation. An optional `Exif\0\0`
/// prefix (some WebP writers keep it) is skipped.
pub fn orientation(exif: &[u8]) -> u8 {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    ifd0_orientation(tiff)
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8)
}

fn ifd0_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..4)? {
        b"II*\0" => false,
        b"MM\0*" => true,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(i..i.checked_add(2)?)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(i..i.checked_add(4)?)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd)?);
    (0..entries).find_map(|n| {
        let e = ifd + 2 + n * 12;
        // Tag 0x0112 Orientation, type SHORT (3), count 1, value inline.
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3 && u32_at(e + 4)? >= 1)
            .then(|| u16_at(e + 8))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TIFF with IFD0 holding one Orientation entry and `next` as the
    /// next-IFD offset.
    fn tiff(big: bool, orientation: u16, next: u32) -> Vec<u8> {
        let mut t: Vec<u8> = Vec::new();
        let w16 = |t: &mut Vec<u8>, v: u16| {
            t.extend_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let w32 = |t: &mut Vec<u8>, v: u32| {
            t.extend_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        t.extend_from_slice(if big { b"MM\0*" } else { b"II*\0" });
        w32(&mut t, 8);
        w16(&mut t, 1);
        w16(&mut t, 0x0112);
        w16(&mut t, 3);
        w32(&mut t, 1);
        w16(&mut t, orientation);
        w16(&mut t, 0);
        w32(&mut t, next);
        t
    }

    #[test]
    fn reads_ifd0_in_both_byte_orders() {
        assert_eq!(orientation(&tiff(false, 6, 0)), 6);
        assert_eq!(orientation(&tiff(true, 8, 0)), 8);
        let mut prefixed = b"Exif\0\0".to_vec();
        prefixed.extend(tiff(true, 3, 0));
        assert_eq!(orientation(&prefixed), 3);
    }

    #[test]
    fn looping_ifds_and_junk_are_harmless() {
        // IFD0's next pointer points back at IFD0.
        assert_eq!(orientation(&tiff(false, 6, 8)), 6);
        assert_eq!(orientation(&tiff(false, 9, 0)), 1);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), 1);
        assert_eq!(orientation(b""), 1);
        let t = tiff(false, 6, 0);
        for cut in 0..t.len() {
            assert!((1..=8).contains(&orientation(&t[..cut])));
        }
    }
}
