#!/usr/bin/env python3
"""Animated GIF whose logical screen is tiny but whose frames are large (the gif crate accepts a
frame larger than the screen: check_frame_consistency is off by default in image's GifDecoder, and
the frame buffer is only bounded by gif's 50 MB memory limit). mediaflow's animation budget
(engine.rs `animate`: total = header_dims (logical screen) x info.frames) sees 1x1 x N pixels;
image's GifFrameIterator decodes and allocates frame.width*frame.height*4 for every frame.

    /tmp/fixvenv/bin/python make_gif_bigframes.py SIDE FRAMES SCREEN out.gif
(Pillow is only used to LZW-encode one SIDE x SIDE single-colour frame, which is then repeated.)
"""
import io, struct, sys
from PIL import Image

side, n, screen, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
im = Image.new("P", (side, side), 1)
im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
buf = io.BytesIO()
im.save(buf, "GIF")
g = buf.getvalue()
# walk Pillow's GIF to find the image descriptor (0x2C) and the LZW data after it
flags = g[10]
at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
while g[at] == 0x21:
    at += 2
    while g[at]:
        at += g[at] + 1
    at += 1
assert g[at] == 0x2C
desc_flags = g[at + 9]
lct = (3 << ((desc_flags & 7) + 1)) if desc_flags & 0x80 else 0
lzw_start = at + 10 + lct
end = lzw_start + 1
while g[end]:
    end += g[end] + 1
end += 1
image = g[at:end]                         # descriptor (+LCT) + min code size + sub-blocks + terminator
header = b"GIF89a" + struct.pack("<HH", screen, screen) + bytes([0x80, 0, 0]) + bytes([0, 0, 0, 255, 255, 255])
header += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
frame = b"\x21\xf9\x04\x00" + struct.pack("<H", 10) + b"\x00\x00" + image
data = header + frame * n + b"\x3b"
open(out, "wb").write(data)
print(f"{len(data)} bytes: screen {screen}x{screen}, {n} frames of {side}x{side} "
      f"({len(image)} bytes each), {n*side*side/1e9:.2f} G pixels decoded")
