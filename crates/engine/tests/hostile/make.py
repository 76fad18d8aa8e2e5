#!/usr/bin/env python3
"""Generate the hostile (invalid / malicious) inputs in this directory.

    /tmp/fixvenv/bin/python crates/engine/tests/hostile/make.py          # write + verify
    /tmp/fixvenv/bin/python crates/engine/tests/hostile/make.py --check  # verify only

Needs Pillow + numpy (only for the JPEG/WebP sources and the checks).
Deterministic: fixed content and seeds, no timestamps; a re-run reproduces
the files byte for byte with the same Pillow/libjpeg-turbo/libwebp/zlib.
README.md is written by this script.
"""

import hashlib
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def p(name):
    return os.path.join(HERE, name)


def write(name, data):
    with open(p(name), "wb") as f:
        f.write(data)


def det_bytes(n, seed=b"hostile-random-v1"):
    """n deterministic pseudo-random bytes (SHA-256 in counter mode; stable across Python versions)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:n])


def photo_like(w, h, seed=1):
    """A textured RGB picture (smooth gradients + fixed-seed noise) that does not compress to nothing."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 255.0 * x / max(w - 1, 1)
    b = 255.0 * y / max(h - 1, 1)
    a = np.dstack([r, g, b]) + rng.normal(0, 18, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def chunk(ctype, data):
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


# ---------------------------------------------------------------- files

BOMB_PNG = (40000, 40000, 1)  # width, height, bit depth (greyscale)


def make_bomb_png():
    """Valid greyscale PNG, 40000x40000, all pixels 0, streamed row by row through zlib.

    Bit depth 1 keeps the file at ~0.2 MB: deflate cannot compress better than
    ~1032:1, so the 8-bit version (1.6 GB of scanlines) would be ~1.5 MB.
    Decoded it is still 1.6 G pixels (1.6 GB as 8-bit grey, 6.4 GB as RGBA).
    """
    w, h, depth = BOMB_PNG
    row = b"\x00" * (1 + (w * depth + 7) // 8)  # filter type 0 + packed zero samples
    comp = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
    parts = []
    for _ in range(h):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    data = b"".join(parts)
    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0))]
    step = 1 << 16  # several IDAT chunks of 64 KiB, as encoders usually do
    for i in range(0, len(data), step):
        out.append(chunk(b"IDAT", data[i:i + step]))
    out.append(chunk(b"IEND", b""))
    write("bomb.png", b"".join(out))


def make_bomb_jpg():
    """A small valid baseline JPEG whose SOF0 frame header is patched to claim 60000x60000."""
    buf = io.BytesIO()
    photo_like(16, 16, seed=3).save(buf, "JPEG", quality=75)
    b = bytearray(buf.getvalue())
    i = b.index(b"\xff\xc0")  # SOF0: FFC0, length(2), precision(1), height(2), width(2)
    struct.pack_into(">HH", b, i + 5, 60000, 60000)
    write("bomb.jpg", bytes(b))


def make_bomb_gif():
    """GIF89a with a 65535x65535 logical screen and a single 1x1 frame (valid structure)."""
    g = b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes([0x80, 0, 0])  # global colour table, 2 entries
    g += bytes([0, 0, 0, 255, 255, 255])
    g += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00"  # image descriptor, no local table
    g += b"\x02" + b"\x02\x44\x01\x00"  # LZW min code size 2: CLEAR, 0, EOI
    g += b"\x3b"
    write("bomb.gif", g)


def make_truncated():
    buf = io.BytesIO()
    photo_like(256, 192, seed=1).save(buf, "JPEG", quality=85)
    jpg = buf.getvalue()
    write("truncated.jpg", jpg[: len(jpg) * 40 // 100])

    buf = io.BytesIO()
    photo_like(128, 96, seed=2).save(buf, "PNG")
    png = buf.getvalue()
    i = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[i:i + 4])
    write("truncated.png", png[: i + 8 + length // 2])  # cut in the middle of the first IDAT's data

    buf = io.BytesIO()
    photo_like(64, 48, seed=4).save(buf, "WEBP", quality=80)
    write("truncated-header.webp", buf.getvalue()[:20])


def make_misc():
    write("empty.bin", b"")
    write("random.bin", det_bytes(4096))
    write("text.jpg", b"This is not a JPEG image.\nJust plain UTF-8 text with a .jpg name.\n")
    write("html.png", b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
                      b"<body><h1>Not Found</h1><p>The requested image was not found.</p></body></html>\n")


README = """# Hostile inputs

Invalid or malicious image files for "hostile input" tests: decoding each must
fail cleanly (an error, no panic, no huge allocation, no hang) or, for the
bombs, be refused by a size/pixel limit before any pixel buffer is allocated.
Written by `make.py` in this directory (deterministic; `make.py --check` only
verifies). All content is synthetic.

- `empty.bin` ({empty.bin} B): zero bytes.
- `random.bin` ({random.bin} B): 4096 deterministic pseudo-random bytes (SHA-256 counter mode), no valid signature.
- `text.jpg` ({text.jpg} B): plain text with a .jpg name.
- `html.png` ({html.png} B): an HTML error page with a .png name (what a broken download often is).
- `truncated.jpg` ({truncated.jpg} B): a valid 256x192 baseline JPEG cut at 40 % of its bytes (headers intact, entropy-coded data ends early, no EOI).
- `truncated.png` ({truncated.png} B): a valid 128x96 RGB PNG cut in the middle of its first IDAT chunk's data (no CRC, no IEND).
- `truncated-header.webp` ({truncated-header.webp} B): the first 20 bytes of a valid lossy WebP (RIFF header, then the `VP8 ` chunk tag and size; no payload).
- `bomb.png` ({bomb.png} B): a VALID greyscale PNG (bit depth 1) of 40000x40000 pixels, all 0, in several IDAT chunks; 1.6 G pixels (1.6 GB as 8-bit grey, 6.4 GB as RGBA) from a ~0.2 MB file. Bit depth 1 because deflate tops out near 1032:1, so an 8-bit version would be ~1.5 MB.
- `bomb.jpg` ({bomb.jpg} B): a 16x16 baseline JPEG whose SOF0 header was patched to claim 60000x60000 (3.6 G pixels); the scan data is far too short for that size, so it is both huge and corrupt.
- `bomb.gif` ({bomb.gif} B): a structurally valid GIF89a whose logical screen is 65535x65535 (4.3 G pixels) with a single 1x1 frame at (0,0).

Not written by `make.py` (it needs an AV1 encoder):

- `exif-loop.avif` ({exif-loop.avif} B): a 16x8 AVIF whose `Exif` item is the 26-byte
  little-endian TIFF `II*\\0`, IFD0 at 8 with one entry (Orientation = 6,
  SHORT) and a next-IFD pointer of 8 (IFD0 again, a loop). Made with
  `avifenc -s 10 --exif loop-exif.bin small16x8.png exif-loop.avif`
  (libavif 0.11); `tests/exif_orientation.rs` builds the same payload into
  JPEG, PNG and WebP and expects orientation 6 from all four.

## Newer formats (HEIC, JPEG XL, animations)

Written by `make_formats.py` in this directory (needs heif-enc/heif-info,
cjxl/djxl/jxlinfo, gifsicle, webpmux and the fixtures made by
`sample-media/fixtures/make_formats.py`; `make_formats.py --check` verifies;
it re-renders this README through `make.write_readme()`).

- `heic-truncated.heic` ({heic-truncated.heic} B): `sample-media/fixtures/formats/heic-single.heic` (640x480) cut at 60 % of its bytes: ftyp/meta intact, the mdat (HEVC data) ends early. heif-convert fails on it.
- `heic-bomb.heic` ({heic-bomb.heic} B): heic-single.heic re-written (meta box only) with the primary item's `ispe` saying 60000x60000 (3.6 G pixels); the hvcC/SPS and the coded data still describe 640x480. libheif 1.15 refuses it in `heif-info` ("Security limit exceeded: Image size 60000x60000 exceeds the maximum image size 32768x32768").
- `heic-grid-bomb.heic` ({heic-grid-bomb.heic} B): a valid-structure grid HEIC: primary `grid` item, grid descriptor rows 118, columns 118, output 60000x60000, grid `ispe` 60000x60000, and an iref `dimg` that lists the SAME hidden 512x512 hvc1 tile (tile 1 of heic-grid.heic) 13924 times. Decoding it for real would be 3.6 G pixels (14.4 GB RGBA) and 13924 tile decodes. libheif 1.15 refuses it with the same security-limit error.
- `jxl-truncated.jxl` ({jxl-truncated.jxl} B): `sample-media/fixtures/formats/jxl-lossy.jxl` (bare codestream, 320x240) cut at 60 %: headers parse (jxlinfo prints 320x240), the frame data ends early.
- `jxl-bomb.jxl` ({jxl-bomb.jxl} B): jxl-lossy.jxl with its SizeHeader replaced: bytes `FF 0A`, then (bits LSB first) `small`=0 (1 bit), height selector 2 (2 bits, U32 BitsOffset(18,1)), height-1 = 99999 (18 bits), `ratio`=0 (3 bits), width selector 2 (2 bits), width-1 = 99999 (18 bits) = 44 bits, then the original ImageMetadata bits (bits 25..53 of jxl-lossy.jxl, 29 bits), zero padding to the byte boundary (byte 12), then the original frame bytes from byte 7 of jxl-lossy.jxl on. The original SizeHeader was 9 bits (`small`=1, 240/8-1 = 29 in 5 bits, ratio 3 = 4:3). The end of ImageMetadata (bit 54) was found by re-coding the original 320x240 in the same 44-bit form and checking that djxl still decodes the same pixels. jxlinfo reports "100000x100000, lossy, 8-bit RGB"; the frame (TOC sized for 320x240) is then invalid ("too many toc entries"), so it is both huge and corrupt.
- `anim-many-frames.gif` ({anim-many-frames.gif} B): GIF89a, logical screen 2000x2000, 2-colour global table, NETSCAPE2.0 loop 0 (forever), then 5000 frames of 1x1 pixel (graphic control extension: disposal 1, delay 20 ms; image at ((37*i) mod 2000, (91*i) mod 2000)). Compositing every frame onto a full canvas copy is 5000 x 4 M pixels (80 GB of RGBA); 100 s of animation.
- `anim-many-frames.webp` ({anim-many-frames.webp} B): RIFF WebP, VP8X (animation flag) canvas 2000x2000, ANIM (background 0xFFFFFFFF, loop 0), then 3000 ANMF frames (20 ms each, flags byte 0 = alpha-blend and no dispose, offsets ((37*i) mod 1000, (91*i) mod 1000) in units of 2 px), each holding the same 1x1 lossless VP8L bitstream (written by Pillow). 3000 frames rather than 5000 to stay near 150 KB (a 1x1 ANMF costs ~50 B).
"""


def write_readme():
    sizes = {f: os.path.getsize(p(f)) for f in os.listdir(HERE) if not f.endswith((".md", ".py"))}
    text = README
    for f, s in sizes.items():
        text = text.replace("{" + f + "}", str(s))
    with open(p("README.md"), "w", encoding="utf-8") as fh:
        fh.write(text)


# ---------------------------------------------------------------- checks

def verify():
    assert os.path.getsize(p("empty.bin")) == 0
    assert os.path.getsize(p("random.bin")) == 4096

    # bomb.png: IHDR says 40000x40000; Pillow refuses it as a decompression bomb
    b = open(p("bomb.png"), "rb").read()
    w, h, depth, ctype = struct.unpack(">IIBB", b[16:26])
    assert (w, h, depth, ctype) == BOMB_PNG + (0,)
    assert len(b) < 300_000, len(b)
    try:
        Image.open(p("bomb.png"))
        raise AssertionError("Pillow opened bomb.png")
    except Image.DecompressionBombError:
        pass
    # ... and it is valid: every chunk CRC is right and the zlib stream inflates to exactly h rows
    pos, idat = 8, b""
    while pos < len(b):
        (n,) = struct.unpack(">I", b[pos:pos + 4])
        t = b[pos + 4:pos + 8]
        data = b[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", b[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(t + data) & 0xFFFFFFFF
        if t == b"IDAT":
            idat += data
        pos += 12 + n
    d = zlib.decompressobj()
    total, rowlen = 0, 1 + (w * depth + 7) // 8
    for i in range(0, len(idat), 4096):
        out = d.decompress(idat[i:i + 4096], 1 << 20)
        while True:
            assert out.count(0) == len(out)
            total += len(out)
            if not d.unconsumed_tail:
                break
            out = d.decompress(d.unconsumed_tail, 1 << 20)
    assert d.eof and total == rowlen * h, (total, rowlen * h)

    for name, size in (("bomb.jpg", (60000, 60000)), ("bomb.gif", (65535, 65535))):
        try:
            Image.open(p(name))
            raise AssertionError("Pillow opened " + name)
        except Image.DecompressionBombError:
            pass
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            assert Image.open(p(name)).size == size  # header only, no decode
        finally:
            Image.MAX_IMAGE_PIXELS = old

    for name in ("truncated.jpg", "truncated.png"):
        im = Image.open(p(name))  # header parses ...
        try:
            im.load()  # ... but decoding fails
            raise AssertionError("Pillow decoded " + name)
        except OSError:
            pass
    for name in ("empty.bin", "random.bin", "text.jpg", "html.png", "truncated-header.webp"):
        try:
            Image.open(p(name)).load()
            raise AssertionError("Pillow decoded " + name)
        except (OSError, SyntaxError, ValueError):  # UnidentifiedImageError is an OSError
            pass
    print("verify: all hostile files behave as expected", file=sys.stderr)


def main():
    if "--check" not in sys.argv[1:]:
        make_misc()
        make_truncated()
        make_bomb_png()
        make_bomb_jpg()
        make_bomb_gif()
        write_readme()
    verify()
    for f in sorted(os.listdir(HERE)):
        if not f.endswith(".py"):
            h = hashlib.sha256(open(p(f), "rb").read()).hexdigest()[:16]
            print(f"{h}  {os.path.getsize(p(f)):7d}  {f}")


if __name__ == "__main__":
    main()
