#!/usr/bin/env python3
"""oximg peer runner: drives the `oximg resize` one-shot CLI (crates.io
`oximg`, installed by ./setup into benches/peers/.cargo/bin).

    benches/peers/oximg_runner.py job.json   -> one JSON object on stdout

oximg's CLI does one output per process (`oximg resize in W 0 out`), so each
output of each image is one process: timings include process spawn and
reading the input file (page cache) and writing the output to /dev/shm.
Its library API (`oximg::pipeline::process`) would avoid that but needs a
Rust harness crate; see README.md.
Needs only the system python3 (no venv).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peers_common as pc  # noqa: E402

PEER = "oximg"


def find_exe():
    for c in (os.environ.get("OXIMG_BIN"), os.path.join(HERE, ".cargo", "bin", "oximg"), shutil.which("oximg")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def body(job):
    exe = find_exe()
    if not exe:
        raise pc.Skip("oximg not installed (run benches/peers/setup; cargo install oximg)")
    if job["filter"] != "lanczos3":
        raise pc.Skip(f"filter {job['filter']} not selectable in oximg (always lanczos3)")
    threads = job["threads"]
    outputs = job["outputs"]
    if any(o.get("height") for o in outputs):
        raise pc.Skip("oximg's CLI only fits inside a box (`oximg resize IN W H OUT`); it has no cover crop")
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    # JPEG parity (baseline, 4:2:0, optimized Huffman) is oximg's `--preset fast`
    # (mozjpeg fastest defaults + optimize_coding). oximg's default encoder,
    # jpegli, writes 4:4:4 (SOF1 sequential / progressive) with no knob for
    # 4:2:0; PEERS_OXIMG_JPEG_PRESET=jpegli measures it anyway.
    preset = os.environ.get("PEERS_OXIMG_JPEG_PRESET", "fast")
    if preset not in ("fast", "jpegli", "small"):
        raise pc.Skip(f"PEERS_OXIMG_JPEG_PRESET={preset!r} is not fast|jpegli|small")
    for o in outputs:
        if o["format"] == "jpeg" and preset == "fast":
            if o.get("subsampling", "4:2:0") != "4:2:0":
                raise pc.Skip("oximg preset fast is 4:2:0 only (jpegli is 4:4:4: PEERS_OXIMG_JPEG_PRESET=jpegli)")
            if o.get("progressive"):
                raise pc.Skip("oximg has no progressive 4:2:0 JPEG without trellis (preset small = trellis+progressive)")
    if any(o["format"] == "avif" for o in outputs):
        # Capability probe (untimed): the default-features build has no AVIF.
        probe_out = os.path.join(tempfile.gettempdir(), f"mf-oximg-probe-{os.getpid()}.avif")
        r = subprocess.run([exe, "resize", job["input"], "16", "0", probe_out, "-f", "avif"],
                           capture_output=True, text=True)
        if os.path.exists(probe_out):
            os.unlink(probe_out)
        if r.returncode != 0:
            why = "AVIF support is not enabled in this build" if "AVIF support is not enabled" in r.stderr \
                else r.stderr.strip().splitlines()[-1:]
            raise pc.Skip(f"oximg cannot encode AVIF: {why} (needs `cargo install oximg --features avif`)")

    base_env = dict(os.environ)
    # Shrink-on-load: libjpeg DCT scaling leaving >= 2x for the resampler
    # (libvips' rule); oximg's default is a full-size decode.
    base_env.setdefault("OXIMG_DCT_MARGIN", "2")
    base_env["OXIMG_ICC"] = "0"  # no metadata (inputs here carry no profile)
    if threads == 1:
        base_env["OXIMG_OVERLAP"] = "0"  # no fused decode thread: strictly 1 thread

    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    workdir = tempfile.mkdtemp(prefix="mf-oximg-", dir=shm)
    cmds = []
    for i, o in enumerate(outputs):
        env = dict(base_env)
        q = int(o["quality"])
        if o["format"] == "webp":
            env["OXIMG_WEBP_QUALITY"] = str(q)
            env["OXIMG_WEBP_EFFORT"] = str(int(o.get("effort", 4)))
        elif o["format"] == "avif":
            env["OXIMG_AVIF_QUALITY"] = str(q)
            if "effort" in o:
                env["OXIMG_AVIF_SPEED"] = str(int(o["effort"]))
        else:
            env["OXIMG_JPEG_PROGRESSIVE"] = "1" if o.get("progressive") else "0"
            env["OXIMG_JPEG_SEQUENTIAL_PIXELS"] = "0" if o.get("progressive") else "12000"
        path = os.path.join(workdir, f"{{w}}-{i}.{pc.EXT[o['format']]}")
        argv = [exe, "resize", job["input"], str(int(o["width"])), "0", path, "-f", o["format"],
                "-q", str(q), "--icc", "strip"]
        if o["format"] == "jpeg":
            argv += ["--preset", preset]
        cmds.append((path, argv, env))

    local = threading.local()

    def image(_state):
        w = getattr(local, "w", None)
        if w is None:
            w = local.w = threading.get_ident()
        res = []
        for path, argv, env in cmds:
            p = path.format(w=w)
            a = [x.format(w=w) for x in argv]
            r = subprocess.run(a, env=env, capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"oximg failed: {r.stderr.decode(errors='replace').strip()}")
            res.append(p)
        return res

    try:
        wall, per, paths, cpu = pc.run_threads(job, image, None)
        last = []
        for p in paths:
            with open(p, "rb") as f:
                data = f.read()
            pr = subprocess.run([exe, "probe", p], capture_output=True, text=True).stdout
            m = re.search(r"(\d+)\s*x\s*(\d+)", pr)
            last.append((data, int(m.group(1)) if m else 0, int(m.group(2)) if m else 0))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    avif = ""
    if any(o["format"] == "avif" for o in outputs):
        avif = " AVIF: SVT-AV1 preset 8 (OXIMG_AVIF_SPEED default), 10-bit 4:2:0, tune=ssim."
    notes = (
        f"one `oximg resize IN W 0 OUT` process per output per image (process spawn + file read timed; "
        f"outputs to tmpfs). Resize: Lanczos3 in LINEAR light on 16-bit samples (oximg default; others resize "
        f"in sRGB), alpha premultiplied. JPEG shrink-on-load via OXIMG_DCT_MARGIN={base_env['OXIMG_DCT_MARGIN']} "
        f"(libjpeg DCT scaling leaving >=2x; oximg's own default is a full-size decode + linear 2x luma shrink). "
        f"{'OXIMG_OVERLAP=0 (no fused decode thread)' if threads == 1 else 'OXIMG_OVERLAP auto (may fuse decode on a 2nd thread)'}; "
        f"resize single-threaded (Params.parallel=1); {threads} concurrent processes. "
        + (f"JPEG: --preset fast = mozjpeg fastest defaults + optimize_coding: baseline SOF0, 4:2:0 (oximg's "
           f"default jpegli is 4:4:4 and not used here); " if preset == "fast" else
           f"JPEG: --preset {preset} (NOT parity: jpegli is 4:4:4, SOF1/progressive); ")
        + "--icc strip. WebP: libwebp, OXIMG_WEBP_QUALITY=q, OXIMG_WEBP_EFFORT=4 (oximg default 2)." + avif
    )
    pc.finish(PEER, ver, job, wall, per, last, notes, cpu_ms=cpu)


if __name__ == "__main__":
    pc.main(PEER, body)
