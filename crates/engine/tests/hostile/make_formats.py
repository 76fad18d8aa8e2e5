#!/usr/bin/env python3
"""Hostile HEIC / JPEG XL / animation inputs (the "newer formats" section of README.md).

    /tmp/fixvenv/bin/python crates/engine/tests/hostile/make_formats.py          # write + verify
    /tmp/fixvenv/bin/python crates/engine/tests/hostile/make_formats.py --check  # verify only

Kept apart from make.py because it needs external tools (heif-enc/heif-info from libheif,
cjxl/jxlinfo from libjxl, gifsicle, webpmux) and the real-photo fixtures made by
sample-media/fixtures/make_formats.py (it reads ../../../../sample-media/fixtures/formats/).
README.md is still written by make.py's template (its "Newer formats" section lists these
files); this script re-renders it with make.write_readme() after writing.
Deterministic: no timestamps, fixed inputs.
"""

import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
FORMATS = os.path.join(ROOT, "sample-media", "fixtures", "formats")
sys.path.insert(0, HERE)

import importlib.util  # noqa: E402

import make  # noqa: E402  (hostile/make.py: README template)

_spec = importlib.util.spec_from_file_location(
    "fixtures_make_formats", os.path.join(ROOT, "sample-media", "fixtures", "make_formats.py"))
mf = importlib.util.module_from_spec(_spec)  # sample-media/fixtures/make_formats.py: HEIF rewriter
_spec.loader.exec_module(mf)

GIF_FRAMES = 5000
GIF_CANVAS = 2000
WEBP_FRAMES = 3000
WEBP_CANVAS = 2000
BOMB = 60000
JXL_BOMB = 100000


def p(name):
    return os.path.join(HERE, name)


def write(name, data):
    with open(p(name), "wb") as f:
        f.write(data)


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


# ---------------------------------------------------------------- HEIC

def make_heic():
    single = open(os.path.join(FORMATS, "heic-single.heic"), "rb").read()
    write("heic-truncated.heic", single[: len(single) * 60 // 100])

    # single image whose ispe claims 60000x60000 (the HEVC SPS inside still says 640x480)
    h = mf.parse_heif(single)
    for i, (idx, ess) in enumerate(h["assoc"][h["primary"]]):
        if h["props"][idx - 1][4:8] == b"ispe":
            h["props"][idx - 1] = mf.fullbox(b"ispe", 0, 0, struct.pack(">II", BOMB, BOMB))
    write("heic-bomb.heic", mf.build_heif(h["ftyp"], h["hdlr"], h["primary"], h["items"], h["order"], h["props"],
                                          h["assoc"], h["irefs"]))

    # grid whose output (and ispe) is 60000x60000: 118x118 cells (>= 60000/512) that all reference the
    # SAME 512x512 tile item (the dimg list repeats one item id 13924 times) -> small file, 3.6 G pixels
    g = mf.parse_heif(open(os.path.join(FORMATS, "heic-grid.heic"), "rb").read())
    gid = g["primary"]
    tile = [to for t, f, to in g["irefs"] if t == b"dimg" and f == gid][0][0]
    n = -(-BOMB // mf.TILE)
    items = {gid: dict(g["items"][gid]), tile: g["items"][tile]}
    items[gid]["data"] = struct.pack(">BBBBHH", 0, 0, n - 1, n - 1, BOMB, BOMB)
    props = list(g["props"])
    assoc = {gid: [], tile: g["assoc"][tile]}
    for idx, ess in g["assoc"][gid]:
        if props[idx - 1][4:8] == b"ispe":
            props.append(mf.fullbox(b"ispe", 0, 0, struct.pack(">II", BOMB, BOMB)))
            assoc[gid].append((len(props), ess))
        else:
            assoc[gid].append((idx, ess))
    write("heic-grid-bomb.heic", mf.build_heif(g["ftyp"], g["hdlr"], gid, items, [gid, tile], props, assoc,
                                               [(b"dimg", gid, [tile] * (n * n))]))


# ---------------------------------------------------------------- JPEG XL

class Bits:
    """JPEG XL bit reader/writer: bits are packed LSB first within each byte."""

    def __init__(self, data=b""):
        self.bits = [(b >> i) & 1 for b in data for i in range(8)]

    def put(self, value, n):
        self.bits += [(value >> i) & 1 for i in range(n)]

    def get(self, pos, n):
        return sum(self.bits[pos + i] << i for i in range(n))

    def tobytes(self):
        assert len(self.bits) % 8 == 0
        return bytes(sum(self.bits[i + j] << j for j in range(8)) for i in range(0, len(self.bits), 8))


def size_header_len(b, pos):
    """Length in bits of the SizeHeader at bit pos (spec 18181-1 D.2)."""
    small = b.get(pos, 1)
    q = pos + 1
    if small:
        q += 5
    else:
        sel = b.get(q, 2)
        q += 2 + (9, 13, 18, 30)[sel]
    ratio = b.get(q, 3)
    q += 3
    if ratio == 0:
        if small:
            q += 5
        else:
            sel = b.get(q, 2)
            q += 2 + (9, 13, 18, 30)[sel]
    return q - pos


def size_header_44(w, h):
    """SizeHeader with small=0, height and width as U32 selector 2 = BitsOffset(18, 1), ratio 0:
    small(1)=0, h_sel(2)=2, h-1 (18), ratio(3)=0, w_sel(2)=2, w-1 (18) -> 44 bits (LSB first)."""
    b = Bits()
    b.put(0, 1)
    b.put(2, 2)
    b.put(h - 1, 18)
    b.put(0, 3)
    b.put(2, 2)
    b.put(w - 1, 18)
    return b.bits


def splice(src, old, meta_end, header_bits):
    """FF 0A + header_bits + src's ImageMetadata bits [16+old, meta_end) + ZeroPadToByte + src's bytes from
    the first frame (byte ceil(meta_end/8)) on."""
    out = Bits(src[:2])
    out.bits += header_bits + Bits(src).bits[16 + old:meta_end]
    while len(out.bits) % 8:
        out.bits.append(0)
    return out.tobytes() + src[(meta_end + 7) // 8:]


def find_metadata_end(src, old, w, h):
    """The bit where ImageMetadata ends (then ZeroPadToByte, then the first frame header): the smallest
    position for which re-coding the SizeHeader with the same 320x240 in the 44-bit form still decodes
    (djxl) to exactly the same pixels."""
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        ref = os.path.join(td, "ref.ppm")
        subprocess.run(["djxl", "--num_threads=1", os.path.join(FORMATS, "jxl-lossy.jxl"), ref], check=True,
                       capture_output=True)
        want = open(ref, "rb").read()
        for m in range(16 + old, 16 + old + 400):
            cand = os.path.join(td, "c.jxl")
            open(cand, "wb").write(splice(src, old, m, size_header_44(w, h)))
            r = subprocess.run(["djxl", "--num_threads=1", cand, os.path.join(td, "c.ppm")], capture_output=True)
            if r.returncode == 0 and open(os.path.join(td, "c.ppm"), "rb").read() == want:
                return m
    raise AssertionError("ImageMetadata end not found")


JXL_LAYOUT = {}


def make_jxl():
    lossy = open(os.path.join(FORMATS, "jxl-lossy.jxl"), "rb").read()
    write("jxl-truncated.jxl", lossy[: len(lossy) * 60 // 100])

    # jxl-lossy.jxl is a bare codestream: FF 0A, SizeHeader (320x240: small=1, (240/8)-1 in 5 bits,
    # ratio 3 = 4:3 -> 9 bits), ImageMetadata, ZeroPadToByte, frames. The bomb keeps ImageMetadata
    # and the frame bytes and replaces the SizeHeader by a 44-bit one saying 100000x100000.
    assert lossy[:2] == b"\xff\x0a"
    old = size_header_len(Bits(lossy), 16)
    m = find_metadata_end(lossy, old, 320, 240)
    write("jxl-bomb.jxl", splice(lossy, old, m, size_header_44(JXL_BOMB, JXL_BOMB)))
    JXL_LAYOUT.update(old=old, meta_end=m, frame_byte=(m + 7) // 8)
    return old, m


# ---------------------------------------------------------------- animations

def make_gif_bomb():
    """GIF89a, 2000x2000 logical screen, NETSCAPE loop 0, then 5000 frames of 1x1 pixel each with a
    graphic control extension (delay 2 = 20 ms, disposal 1) at varying positions."""
    g = b"GIF89a" + struct.pack("<HH", GIF_CANVAS, GIF_CANVAS) + bytes([0x80, 0, 0]) + bytes([0, 0, 0, 255, 255, 255])
    g += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00"
    for i in range(GIF_FRAMES):
        g += b"\x21\xf9\x04" + bytes([0x04]) + struct.pack("<H", 2) + b"\x00\x00"
        x, y = (i * 37) % GIF_CANVAS, (i * 91) % GIF_CANVAS
        g += b"\x2c" + struct.pack("<HHHH", x, y, 1, 1) + b"\x00"
        g += b"\x02\x02" + (b"\x4c\x01" if i % 2 else b"\x44\x01") + b"\x00"  # CLEAR, colour i%2, EOI
    g += b"\x3b"
    write("anim-many-frames.gif", g)


def make_webp_bomb():
    """Animated WebP (VP8X + ANIM + ANMF*), 2000x2000 canvas, 3000 frames of one 1x1 lossless VP8L
    bitstream (copied from a Pillow-written 1x1 WebP) at varying offsets, 20 ms each."""
    from PIL import Image
    import io
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(buf, "WEBP", lossless=True)
    w = buf.getvalue()
    assert w[12:16] == b"VP8L", w[12:16]
    (n,) = struct.unpack("<I", w[16:20])
    vp8l = w[12:20 + n + (n & 1)]

    def chunk(t, data):
        return t + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")

    def u24(v):
        return struct.pack("<I", v)[:3]

    body = b"WEBP" + chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(WEBP_CANVAS - 1) + u24(WEBP_CANVAS - 1))
    body += chunk(b"ANIM", struct.pack("<IH", 0xFFFFFFFF, 0))
    for i in range(WEBP_FRAMES):
        x, y = (i * 37) % (WEBP_CANVAS // 2), (i * 91) % (WEBP_CANVAS // 2)  # offsets are stored /2
        body += chunk(b"ANMF", u24(x) + u24(y) + u24(0) + u24(0) + u24(20) + bytes([0]) + vp8l)
    write("anim-many-frames.webp", b"RIFF" + struct.pack("<I", len(body)) + body)


# ---------------------------------------------------------------- checks

def verify():
    out = run("heif-info", p("heic-truncated.heic"))
    assert out.returncode != 0 or "error" in (out.stdout + out.stderr).lower(), out
    r = subprocess.run(["heif-convert", "--quiet", p("heic-truncated.heic"), "/tmp/hostile-trunc.png"],
                       capture_output=True)
    assert r.returncode != 0, "heif-convert decoded heic-truncated.heic"

    for name in ("heic-bomb.heic", "heic-grid-bomb.heic"):
        h = mf.parse_heif(open(p(name), "rb").read())
        assert mf.ispe(h, h["primary"]) == (BOMB, BOMB), name
        info = run("heif-info", p(name))
        print(f"{name}: heif-info rc={info.returncode}: "
              + (info.stdout + info.stderr).strip().replace("\n", " | ")[:300], file=sys.stderr)
    g = mf.parse_heif(open(p("heic-grid-bomb.heic"), "rb").read())
    assert g["items"][g["primary"]]["type"] == b"grid"
    assert struct.unpack(">BBBBHH", g["items"][g["primary"]]["data"]) == (0, 0, 117, 117, BOMB, BOMB)

    tr = run("jxlinfo", p("jxl-truncated.jxl"))
    info = run("jxlinfo", p("jxl-bomb.jxl"))
    assert f"{JXL_BOMB}x{JXL_BOMB}" in info.stdout, info
    b = open(p("jxl-bomb.jxl"), "rb").read()
    assert b[:2] == b"\xff\x0a"
    print("jxl-truncated.jxl: jxlinfo rc=%d %s" % (tr.returncode, (tr.stdout + tr.stderr).strip()[:200]),
          file=sys.stderr)

    gi = run("gifsicle", "--info", p("anim-many-frames.gif")).stdout
    assert f"{GIF_FRAMES} images" in gi and f"logical screen {GIF_CANVAS}x{GIF_CANVAS}" in gi, gi[:300]
    wi = run("webpmux", "-info", p("anim-many-frames.webp")).stdout
    assert f"Canvas size: {WEBP_CANVAS} x {WEBP_CANVAS}" in wi and f"Number of frames: {WEBP_FRAMES}" in wi, wi[:300]
    for f in ("heic-truncated.heic", "heic-bomb.heic", "heic-grid-bomb.heic", "jxl-truncated.jxl", "jxl-bomb.jxl",
              "anim-many-frames.gif", "anim-many-frames.webp"):
        assert os.path.getsize(p(f)) < 160_000, f
    print("verify: newer-format hostile files OK", file=sys.stderr)


def main():
    if "--check" not in sys.argv[1:]:
        make_heic()
        old, m = make_jxl()
        print(f"jxl-bomb: old SizeHeader {old} bits, ImageMetadata ends at bit {m}", file=sys.stderr)
        make_gif_bomb()
        make_webp_bomb()
        make.write_readme()
    verify()
    for f in ("heic-truncated.heic", "heic-bomb.heic", "heic-grid-bomb.heic", "jxl-truncated.jxl", "jxl-bomb.jxl",
              "anim-many-frames.gif", "anim-many-frames.webp"):
        print(f"{os.path.getsize(p(f)):8d}  {f}")


if __name__ == "__main__":
    main()
