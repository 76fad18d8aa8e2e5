#!/usr/bin/env python3
"""pyvips peer runner (libvips from the pyvips-binary wheel).

    benches/peers/pyvips_runner.py job.json   -> one JSON object on stdout

Re-executes itself with benches/peers/.venv/bin/python (made by ./setup).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")
if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(HERE, ".venv")):
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
sys.path.insert(0, HERE)

import peers_common as pc  # noqa: E402

PEER = "pyvips"


def body(job):
    threads = job["threads"]
    # Read by libvips at init: must be set before pyvips is imported.
    os.environ["VIPS_CONCURRENCY"] = str(threads)
    try:
        import pyvips
    except Exception as e:  # noqa: BLE001
        raise pc.Skip(f"pyvips not importable (run benches/peers/setup): {e}")
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    if hasattr(pyvips, "concurrency_set"):
        pyvips.concurrency_set(threads)
    vips_ver = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    version = f"{pyvips.__version__} (libvips {vips_ver}, {'pyvips-binary' if pyvips.API_mode else 'ABI mode'})"

    if job["filter"] != "lanczos3":
        raise pc.Skip(f"filter {job['filter']} not supported by this runner (libvips thumbnail is lanczos3)")
    outputs = job["outputs"]
    suffixes = pyvips.base.get_suffixes()
    if any(o["format"] == "avif" for o in outputs) and ".avif" not in suffixes:
        raise pc.Skip("this libvips has no AVIF (heif) saver")

    with open(job["input"], "rb") as f:
        buf = f.read()
    head = pyvips.Image.new_from_buffer(buf, "")
    loader = head.get("vips-loader")
    src_w, src_h = head.width, head.height

    def encode(img, o):
        q = int(o["quality"])
        fmt = o["format"]
        if fmt == "jpeg":
            if img.hasalpha():
                img = img.flatten(background=255)
            sub = {"4:2:0": "on", "4:4:4": "off"}.get(o.get("subsampling", "4:2:0"), "on")
            return img.jpegsave_buffer(
                Q=q,
                subsample_mode=sub,
                optimize_coding=bool(o.get("optimize_coding", True)),
                interlace=bool(o.get("progressive", False)),
                keep="none",
            )
        if fmt == "webp":
            return img.webpsave_buffer(Q=q, effort=int(o.get("effort", 4)), keep="none")
        kw = {"Q": q, "compression": "av1", "keep": "none"}
        if "effort" in o:
            kw["effort"] = int(o["effort"])
        if "subsampling" in o:
            kw["subsample_mode"] = {"4:2:0": "on", "4:4:4": "off"}[o["subsampling"]]
        return img.heifsave_buffer(**kw)

    if len(outputs) == 1:
        # The canonical libvips path: thumbnail_buffer picks shrink-on-load
        # itself; the whole pipeline streams and the input is decoded once.
        o = outputs[0]

        def image(_state):
            width, opts = pc.thumbnail_args(o)
            t = pyvips.Image.thumbnail_buffer(buf, width, **opts)
            return [(encode(t, o), t.width, t.height)]

        mode = "thumbnail_buffer (streams; decodes once)"
    else:
        # Decode once into memory with the same shrink-on-load rule libvips
        # thumbnail uses for the largest target, then thumbnail_image per output.
        shrink = pc.jpeg_shrink(src_w, src_h, outputs) if loader.startswith("jpegload") else 1

        def image(_state):
            opts = {"shrink": shrink} if shrink > 1 else {}
            base = pyvips.Image.new_from_buffer(buf, "", access="sequential", **opts).autorot().copy_memory()
            res = []
            for o in outputs:
                width, opts = pc.thumbnail_args(o)
                t = base.thumbnail_image(width, **opts)
                res.append((encode(t, o), t.width, t.height))
            return res

        mode = f"decode once (jpeg shrink {shrink}) to memory, then thumbnail_image per output"

    wall, per, last, cpu = pc.run_threads(job, image, None)
    avif = ""
    if any(o["format"] == "avif" for o in outputs):
        avif = (" AVIF: heifsave compression=av1 (libheif+aom), effort 4 default (aom cpu-used 5), 8-bit,"
                " subsample_mode auto (4:2:0 below Q90) unless 'subsampling' set.")
    notes = (
        f"{mode}; libvips thumbnail: JPEG shrink-on-load leaving >=2x, then integer box shrink + lanczos3 "
        f"(crop=centre for cover outputs) "
        f"reduce (gap 2), alpha premultiplied, EXIF auto-rotate, embedded ICC -> sRGB. Input decoded from memory. "
        f"VIPS_CONCURRENCY={threads}, {threads} Python threads (GIL released in libvips), cache off. "
        f"JPEG: subsample_mode on (4:2:0), optimize_coding, baseline unless progressive, keep=none. "
        f"WebP: effort 4, keep=none." + avif
    )
    pc.finish(PEER, version, job, wall, per, last, notes,
              {"input": {"width": src_w, "height": src_h, "loader": loader}}, cpu_ms=cpu)


if __name__ == "__main__":
    pc.main(PEER, body)
