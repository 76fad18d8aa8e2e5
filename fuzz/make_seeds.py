#!/usr/bin/env python3
"""Writes the starting inputs of every fuzz target into fuzz/seeds/<target>/
from the repository's own files: the fixtures, the sample photos (shrunk
with ImageMagick's /usr/bin/convert, keeping their metadata), the hostile
files, the pipeline's fixture events, mediaflow.toml and the configuration
test strings. Every seed stays under 100 KB, as AFL wants. Seeds are
generated, not committed: the committed corpus is fuzz/corpus/."""

import glob
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")
MAX = 100 * 1024
CONVERT = "/usr/bin/convert"


def put(target, data, max_size=MAX):
    if not data or len(data) > max_size:
        return
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def jpeg_segments(data):
    """(marker, payload) of each segment before the first scan."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xDA, 0xD9):
            return
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            return
        yield marker, data[i + 4 : i + 2 + length]
        i += 2 + length


def jpeg_exif_icc(data):
    exif, chunks = None, []
    for marker, payload in jpeg_segments(data):
        if marker == 0xE1 and payload.startswith(b"Exif\0\0") and exif is None:
            exif = payload[6:]
        if marker == 0xE2 and payload.startswith(b"ICC_PROFILE\0") and len(payload) > 14:
            chunks.append((payload[12], payload[14:]))
    icc = b"".join(c for _, c in sorted(chunks, key=lambda c: c[0])) if chunks else None
    return exif, icc


def png_chunks(data):
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        yield kind, data[i + 8 : i + 8 + length]
        i += 12 + length


def riff_chunks(data):
    i = 12
    while i + 8 <= len(data):
        kind = data[i : i + 4]
        (length,) = struct.unpack("<I", data[i + 4 : i + 8])
        yield kind, data[i + 8 : i + 8 + length]
        i += 8 + length + (length & 1)


def metadata(path, data):
    """EXIF (TIFF-structured) and ICC payloads embedded in an image."""
    exif, icc = None, None
    if data.startswith(b"\xff\xd8\xff"):
        exif, icc = jpeg_exif_icc(data)
    elif data.startswith(b"\x89PNG"):
        for kind, body in png_chunks(data):
            if kind == b"eXIf":
                exif = body
            elif kind == b"iCCP":
                name_end = body.find(b"\0")
                try:
                    icc = zlib.decompress(body[name_end + 2 :])
                except zlib.error:
                    pass
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        for kind, body in riff_chunks(data):
            if kind == b"EXIF":
                exif = body[6:] if body.startswith(b"Exif\0\0") else body
            elif kind == b"ICCP":
                icc = body
    elif data.startswith(b"II*\0") or data.startswith(b"MM\0*"):
        exif = data
    return exif, icc


def shrunk(path, side, fmt):
    """`path` resized to fit side x side with ImageMagick, metadata kept."""
    if not os.path.exists(CONVERT):
        sys.exit(f"{CONVERT} is missing: apt-get install imagemagick")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out." + fmt)
        subprocess.run(
            [CONVERT, path + "[0]", "-resize", f"{side}x{side}>", "-quality", "80", out],
            check=True,
        )
        return read(out)


def rust_strings(text):
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text):
        s = m.group(1)
        s = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda u: chr(int(u.group(1), 16)), s)
        s = (
            s.replace("\\n", "\n")
            .replace("\\t", "\t")
            .replace('\\"', '"')
            .replace("\\0", "\0")
            .replace("\\\\", "\\")
        )
        yield s


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    fixtures = os.path.join(ROOT, "sample-media", "fixtures")
    hostile = os.path.join(ROOT, "crates", "engine", "tests", "hostile")
    media = [
        p
        for p in sorted(glob.glob(os.path.join(fixtures, "*")) + glob.glob(os.path.join(hostile, "*")))
        if os.path.isfile(p) and not p.endswith((".md", ".py", ".sh"))
    ]
    photos = sorted(
        p for p in glob.glob(os.path.join(ROOT, "sample-media", "*")) if p.endswith((".jpg", ".png"))
    )
    for p in photos:
        for side, fmt in [(48, "jpg"), (48, "png"), (40, "webp"), (32, "gif"), (32, "tiff")]:
            media.append((p, shrunk(p, side, fmt)))
    images = []
    for item in media:
        path, data = item if isinstance(item, tuple) else (item, read(item))
        images.append((path, data))
        put("sniff", data[:512])
        put("decode", data)
        if data.startswith(b"\xff\xd8\xff"):
            put("jpeg_meta", data)
        exif, icc = metadata(path, data)
        if exif:
            put("exif", exif)
        if icc:
            put("icc", icc)
    # More profiles (RGB, gray, CMYK, Lab): Ghostscript's, which Debian's
    # ImageMagick brings along.
    for p in sorted(glob.glob("/usr/share/color/icc/**/*.ic[cm]", recursive=True)):
        put("icc", read(p))
    for p in sorted(glob.glob(os.path.join(fixtures, "video", "*"))):
        if not p.endswith((".md", ".sh")):
            put("sniff", read(p)[:512])
    events = os.path.join(ROOT, "crates", "pipeline", "tests", "events")
    for p in sorted(glob.glob(os.path.join(events, "*.json")) + glob.glob(os.path.join(events, "moto-raw", "*.json"))):
        put("event", read(p))
    configs = [
        os.path.join(ROOT, "mediaflow.toml"),
        os.path.join(ROOT, "crates", "config", "src", "builtin.toml"),
    ]
    for p in configs:
        put("config", read(p))
    tests = read(os.path.join(ROOT, "crates", "config", "src", "tests.rs")).decode()
    for s in rust_strings(tests):
        if "=" not in s and "[" not in s:
            continue
        if "[[variant]]" not in s and "[" not in s.split("\n")[0]:
            s = f'[[variant]]\nname = "w800"\nwidth = 800\n{s}\n'
        put("config", s.encode())
    for target in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, target))
        size = sum(os.path.getsize(os.path.join(OUT, target, f)) for f in files)
        print(f"seeds/{target}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
