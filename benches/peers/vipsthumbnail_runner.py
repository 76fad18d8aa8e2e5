#!/usr/bin/env python3
"""vipsthumbnail peer runner (Debian's libvips-tools, a separate libvips from pyvips').

    benches/peers/vipsthumbnail_runner.py job.json   -> one JSON object on stdout

Each output of each image is one `vipsthumbnail` process: the timings include
process spawn + libvips start-up (~10-20 ms) and reading the input file (page
cache) and writing the output to /dev/shm. That is the honest cost of the
CLI; compare against pyvips for the in-process libvips cost.
Needs only the system python3 (no venv).
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peers_common as pc  # noqa: E402

PEER = "vipsthumbnail"


def body(job):
    exe = shutil.which("vipsthumbnail")
    if not exe:
        raise pc.Skip("vipsthumbnail not installed (apt-get install libvips-tools; run benches/peers/setup)")
    if job["filter"] != "lanczos3":
        raise pc.Skip(f"filter {job['filter']} not selectable in vipsthumbnail (always lanczos3)")
    threads = job["threads"]
    outputs = job["outputs"]
    env = dict(os.environ, VIPS_CONCURRENCY=str(threads))
    ver = subprocess.run([exe, "--vips-version"], capture_output=True, text=True, env=env).stdout.strip()
    header = shutil.which("vipsheader")

    def opts(o):
        q = int(o["quality"])
        if o["format"] == "jpeg":
            sub = {"4:2:0": "on", "4:4:4": "off"}.get(o.get("subsampling", "4:2:0"), "on")
            s = f"Q={q},strip,subsample_mode={sub},background=255"
            s += ",optimize_coding" if o.get("optimize_coding", True) else ""
            s += ",interlace" if o.get("progressive", False) else ""
            return s
        if o["format"] == "webp":
            return f"Q={q},effort={int(o.get('effort', 4))},strip"
        s = f"Q={q},compression=av1,strip"
        if "effort" in o:
            s += f",effort={int(o['effort'])}"
        if "subsampling" in o:
            s += ",subsample_mode=" + {"4:2:0": "on", "4:4:4": "off"}[o["subsampling"]]
        return s

    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    workdir = tempfile.mkdtemp(prefix="mf-vipsthumb-", dir=shm)
    cmds = []
    for i, o in enumerate(outputs):
        path = os.path.join(workdir, f"{{w}}-{i}.{pc.EXT[o['format']]}")
        if o.get("height"):
            size = ["--size", f"{int(o['width'])}x{int(o['height'])}>", "--smartcrop", "centre"]
        else:
            size = ["--size", f"{int(o['width'])}x>"]
        cmds.append((path, [exe, job["input"], *size, "-o", f"{path}[{opts(o)}]"]))

    import threading

    local = threading.local()

    def image(_state):
        w = getattr(local, "w", None)
        if w is None:
            w = local.w = threading.get_ident()
        res = []
        for path, argv in cmds:
            p, a = path.format(w=w), [x.format(w=w) for x in argv]
            r = subprocess.run(a, env=env, capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"vipsthumbnail failed: {r.stderr.decode(errors='replace').strip()}")
            res.append(p)
        return res

    try:
        wall, per, paths, cpu = pc.run_threads(job, image, None)
        last = []
        for p in paths:
            with open(p, "rb") as f:
                data = f.read()
            dims = subprocess.run([header, "-f", "width", p], capture_output=True, text=True).stdout.strip(), \
                subprocess.run([header, "-f", "height", p], capture_output=True, text=True).stdout.strip()
            last.append((data, int(dims[0]), int(dims[1])))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    avif = ""
    if any(o["format"] == "avif" for o in outputs):
        avif = " AVIF: heifsave av1 via Debian libheif+libaom, effort 4 default (aom cpu-used 5), 8-bit, subsample auto."
    notes = (
        f"one vipsthumbnail process per output per image (process spawn + libvips init + file read timed; "
        f"outputs written to tmpfs); --size Wx> (width-fit, never enlarge; WxH> --smartcrop centre for cover), lanczos3 (fixed), JPEG shrink-on-load, "
        f"EXIF auto-rotate, strip. VIPS_CONCURRENCY={threads}, {threads} concurrent processes. "
        f"JPEG: subsample_mode on, optimize_coding, baseline unless progressive; alpha flattened on white. "
        f"WebP: effort 4." + avif
    )
    pc.finish(PEER, ver, job, wall, per, last, notes, cpu_ms=cpu)


if __name__ == "__main__":
    pc.main(PEER, body)
