//! One EXIF reader for every format: the same payload gives the same
//! orientation in JPEG, PNG, WebP and AVIF (issue 13, finding 8).

mod common;
use common::*;
use mediaflow_engine::{probe, process, Limits, Plan};

/// Little-endian TIFF whose IFD0 holds Orientation = `o` and whose
/// next-IFD pointer points back at IFD0 (a loop).
fn looping_exif(o: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&o.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&8u32.to_le_bytes()); // next IFD: IFD0 again
    t
}

fn jpeg_with_exif(exif: &[u8]) -> Vec<u8> {
    let j = fixture("upright.jpg");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(exif);
    let mut out = j[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&j[2..]);
    out
}

fn png_with_exif(exif: &[u8]) -> Vec<u8> {
    let mut info = png::Info::with_size(16, 8);
    info.color_type = png::ColorType::Rgb;
    info.bit_depth = png::BitDepth::Eight;
    info.exif_metadata = Some(exif.to_vec().into());
    let mut out = Vec::new();
    let mut w = png::Encoder::with_info(&mut out, info)
        .unwrap()
        .write_header()
        .unwrap();
    w.write_image_data(&[90u8; 16 * 8 * 3]).unwrap();
    w.finish().unwrap();
    out
}

fn push_chunk(out: &mut Vec<u8>, fourcc: &[u8], data: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// The lossy WebP fixture rewritten in the extended format with an EXIF chunk.
fn webp_with_exif(exif: &[u8]) -> Vec<u8> {
    let simple = fixture("lossy.webp");
    let p = probe(&simple, &Limits::default()).unwrap();
    let mut vp8x = vec![0x08, 0, 0, 0]; // EXIF flag
    vp8x.extend_from_slice(&(p.width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(p.height - 1).to_le_bytes()[..3]);
    let mut chunks = Vec::new();
    push_chunk(&mut chunks, b"VP8X", &vp8x);
    chunks.extend_from_slice(&simple[12..]);
    push_chunk(&mut chunks, b"EXIF", exif);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    out
}

#[test]
fn looping_ifd_gives_every_format_the_same_orientation() {
    let exif = looping_exif(6);
    let plan = Plan::builtin();
    for (name, bytes) in [
        ("jpeg", jpeg_with_exif(&exif)),
        ("png", png_with_exif(&exif)),
        ("webp", webp_with_exif(&exif)),
        // avifenc --exif with the same payload (see tests/hostile/README.md).
        ("avif", hostile("exif-loop.avif")),
    ] {
        let out = process(&bytes, &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.source.orientation, 6, "{name}");
        assert_eq!(
            (out.source.width, out.source.height),
            (out.source.stored_height, out.source.stored_width),
            "{name}: displayed dims are the rotated stored dims"
        );
    }
}

#[test]
fn invalid_orientation_is_ignored_everywhere() {
    let exif = looping_exif(9);
    let plan = Plan::builtin();
    for (name, bytes) in [
        ("jpeg", jpeg_with_exif(&exif)),
        ("png", png_with_exif(&exif)),
        ("webp", webp_with_exif(&exif)),
    ] {
        let out = process(&bytes, &plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.source.orientation, 1, "{name}");
    }
}
