#!/usr/bin/env python3
"""Pillow peer runner.

    benches/peers/pillow_runner.py job.json   -> one JSON object on stdout

Re-executes itself with benches/peers/.venv/bin/python (made by ./setup).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")
if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(HERE, ".venv")):
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
sys.path.insert(0, HERE)

import io  # noqa: E402
import math  # noqa: E402

import peers_common as pc  # noqa: E402

PEER = "pillow"


def body(job):
    try:
        import PIL
        from PIL import Image, ImageCms, ImageOps, features
    except Exception as e:  # noqa: BLE001
        raise pc.Skip(f"Pillow not importable (run benches/peers/setup): {e}")
    threads = job["threads"]
    outputs = job["outputs"]
    filters = {"lanczos3": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
               "bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}
    if job["filter"] not in filters:
        raise pc.Skip(f"filter {job['filter']} not available in Pillow")
    resample = filters[job["filter"]]
    need = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
    for o in outputs:
        if o["format"] != "jpeg" and not features.check(need[o["format"]]):
            raise pc.Skip(f"this Pillow build has no {o['format']} encoder")
    version = f"{PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}, " \
              f"libwebp {features.version('webp')}, libavif {features.version('avif')})"

    with open(job["input"], "rb") as f:
        buf = f.read()
    with Image.open(io.BytesIO(buf)) as head:
        src_w, src_h, src_fmt = head.width, head.height, head.format
    scale = pc.needed_scale(src_w, src_h, outputs)
    srgb = ImageCms.createProfile("sRGB")

    def encode(im, o):
        q = int(o["quality"])
        out = io.BytesIO()
        if o["format"] == "jpeg":
            if im.mode == "RGBA":
                bg = Image.new("RGB", im.size, (255, 255, 255))
                bg.paste(im, mask=im.getchannel("A"))
                im = bg
            im.save(out, "JPEG", quality=q, subsampling=o.get("subsampling", "4:2:0"),
                    optimize=bool(o.get("optimize_coding", True)), progressive=bool(o.get("progressive", False)))
        elif o["format"] == "webp":
            im.save(out, "WEBP", quality=q, method=int(o.get("effort", 4)))
        else:
            kw = {"quality": q, "max_threads": threads}
            if "effort" in o:
                kw["speed"] = int(o["effort"])
            if "subsampling" in o:
                kw["subsampling"] = o["subsampling"]
            im.save(out, "AVIF", **kw)
        return out.getvalue()

    def image(_state):
        im = Image.open(io.BytesIO(buf))
        if im.format == "JPEG":
            # Shrink-on-load: DCT scaling to the smallest size holding >= 2x
            # what the largest output needs.
            want = (min(src_w, math.ceil(2 * scale * src_w)), min(src_h, math.ceil(2 * scale * src_h)))
            im.draft("RGB" if im.mode not in ("L", "CMYK") else im.mode, want)
        im = ImageOps.exif_transpose(im)  # loads; applies EXIF orientation
        icc = im.info.get("icc_profile")
        if im.mode not in ("RGB", "RGBA"):
            has_alpha = im.mode in ("LA", "PA", "La") or (im.mode == "P" and "transparency" in im.info)
            im = im.convert("RGBA" if has_alpha else "RGB")
        if icc:
            prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, prof, srgb, outputMode=im.mode)
        res = []
        for o in outputs:
            tw, th, (left, top, right, bottom) = pc.geometry(src_w, src_h, o)
            # The region in the (possibly drafted) image's pixels.
            sx, sy = im.width / src_w, im.height / src_h
            box = (left * sx, top * sy, right * sx, bottom * sy)
            # Pillow resizes RGBA in premultiplied form (RGBa) internally.
            whole = box == (0.0, 0.0, float(im.width), float(im.height))
            r = im if whole and im.size == (tw, th) else im.resize((tw, th), resample, box=box)
            res.append((encode(r, o), tw, th))
        return res

    wall, per, last, cpu = pc.run_processes(job, image, None)
    avif = ""
    if any(o["format"] == "avif" for o in outputs):
        avif = (f" AVIF: libavif (codec auto = aom) speed 6 default, 4:2:0 default, 8-bit, max_threads={threads}.")
    notes = (
        f"JPEG inputs: Image.draft() DCT scaling to >=2x the largest target (= libvips' shrink rule), "
        f"then Image.resize {job['filter']} (Pillow LANCZOS, a=3; reducing_gap=None, i.e. no box pre-shrink) "
        f"on the drafted image (box= the centre region for cover outputs); EXIF transpose; embedded ICC -> sRGB via ImageCms; one decode per image. "
        f"Input decoded from memory. threads={threads}: "
        + ("in-process, single-threaded" if threads == 1 else
           f"{threads} forked worker processes (each warmed up with `warmup` images)")
        + f". JPEG: 4:2:0, optimize=True, baseline unless progressive, no EXIF/ICC. WebP: method 4." + avif
    )
    pc.finish(PEER, version, job, wall, per, last, notes,
              {"input": {"width": src_w, "height": src_h, "format": src_fmt}}, cpu_ms=cpu)


if __name__ == "__main__":
    pc.main(PEER, body)
