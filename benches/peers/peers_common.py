"""Shared job handling and timing harness for the Python peer runners.

Protocol (see README.md): `<runner> <job.json>` prints exactly one JSON object
on stdout; logs go to stderr. Exit codes: 0 ok, 1 unexpected error,
2 bad job/usage, 3 skipped (this peer cannot do the job faithfully).

A runner supplies:
  prepare(job) -> state        (untimed; e.g. read the input bytes)
  image(state) -> [Out, ...]   (one "image": decode once, produce all outputs)
where Out = (data: bytes, width: int, height: int).
"""

import json
import os
import sys
import time

EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}


class Skip(Exception):
    """The peer cannot do this job faithfully: exit 3 with a 'skipped' object."""


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(peer, msg):
    sys.stderr.write(f"{peer}: {msg}\n")
    sys.stderr.flush()


def skip(peer, reason, code=3):
    log(peer, f"skipped: {reason}")
    emit({"peer": peer, "skipped": reason})
    sys.exit(code)


def load_job(peer):
    if len(sys.argv) != 2:
        skip(peer, f"usage: {os.path.basename(sys.argv[0])} <job.json>", 2)
    try:
        with open(sys.argv[1]) as f:
            job = json.load(f)
    except Exception as e:  # noqa: BLE001
        skip(peer, f"cannot read job: {e}", 2)
    job.setdefault("filter", "lanczos3")
    job["threads"] = max(1, int(job.get("threads") or 1))
    job["iterations"] = max(1, int(job.get("iterations") or 1))
    job["warmup"] = max(0, int(job.get("warmup") or 0))
    outs = job.get("outputs") or []
    if not outs:
        skip(peer, "job has no outputs", 2)
    for o in outs:
        if o.get("format") not in EXT:
            skip(peer, f"unsupported output format {o.get('format')!r}")
        o.setdefault("quality", 80)
    if not job.get("out_dir"):
        skip(peer, "job has no out_dir", 2)
    return job


def target_size(src_w, src_h, width):
    """Fit to `width`, keep aspect ratio, never enlarge (round half up)."""
    if width >= src_w:
        return src_w, src_h
    return width, max(1, int(src_h * width / src_w + 0.5))


def geometry(src_w, src_h, o):
    """Output `o`'s size and the source region it is made from:
    (tw, th, (left, top, right, bottom)). Width-fit keeping the aspect ratio,
    or, when `o` has a "height", exactly width x height from the largest
    centred region of that aspect ratio (cover). Never enlarges."""
    if not o.get("height"):
        tw, th = target_size(src_w, src_h, o["width"])
        return tw, th, (0.0, 0.0, float(src_w), float(src_h))
    tw, th = min(int(o["width"]), src_w), min(int(o["height"]), src_h)
    scale = max(tw / src_w, th / src_h)
    cw, ch = tw / scale, th / scale
    left, top = (src_w - cw) / 2, (src_h - ch) / 2
    return tw, th, (left, top, left + cw, top + ch)


def needed_scale(src_w, src_h, outputs):
    """The largest scale (output pixels per source pixel) any output needs."""
    s = 0.0
    for o in outputs:
        tw, th, (left, top, right, bottom) = geometry(src_w, src_h, o)
        s = max(s, tw / (right - left), th / (bottom - top))
    return s


def jpeg_shrink(src_w, src_h, outputs):
    """libvips' shrink-on-load rule: the largest JPEG DCT scale 1/s (s<=8)
    that still leaves at least 2x for the resampler."""
    factor = 1.0 / needed_scale(src_w, src_h, outputs)
    for s in (8, 4, 2):
        if factor >= 2 * s:
            return s
    return 1


def thumbnail_args(o, big=10_000_000):
    """libvips thumbnail's width and options for output `o`: width-fit
    (height unconstrained), or a centre crop to width x height."""
    if o.get("height"):
        return int(o["width"]), {"height": int(o["height"]), "crop": "centre", "size": "down"}
    return int(o["width"]), {"height": big, "size": "down"}


def _time_images(image, state, indices, last_index):
    per, last = [], None
    ends = []
    for i in indices:
        s = time.perf_counter()
        r = image(state)
        e = time.perf_counter()
        per.append((i, (e - s) * 1000.0))
        ends.append(e)
        if i == last_index:
            last = r
    return per, last, ends


def _cpu():
    """CPU seconds (user+sys, in ms) of this process's threads plus its
    waited-for children (the CLI peers' processes)."""
    import resource

    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.process_time() + c.ru_utime + c.ru_stime) * 1000.0


def run_threads(job, image, state):
    """Warmup in the calling thread, then `threads` OS threads pull image
    indices from a shared counter (for libraries that release the GIL)."""
    import threading

    n, it = job["threads"], job["iterations"]
    for _ in range(job["warmup"]):
        image(state)
    lock = threading.Lock()
    counter = [0]
    per = [None] * it
    last = [None]
    errors = []

    def worker():
        try:
            while True:
                with lock:
                    i = counter[0]
                    counter[0] += 1
                if i >= it:
                    return
                s = time.perf_counter()
                r = image(state)
                per[i] = (time.perf_counter() - s) * 1000.0
                if i == it - 1:
                    last[0] = r
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    c0 = _cpu()
    t0 = time.perf_counter()
    if n == 1:
        worker()
    else:
        ts = [threading.Thread(target=worker) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    wall = (time.perf_counter() - t0) * 1000.0
    cpu = _cpu() - c0
    if errors:
        raise errors[0]
    return wall, per, last[0], cpu


def _proc_worker(job, image, state, counter, ready, go, results):
    try:
        for _ in range(job["warmup"]):
            image(state)
        ready.put(os.getpid())
        go.wait()
        c0 = time.process_time()
        it = job["iterations"]
        per, last, end = [], None, 0.0
        while True:
            with counter.get_lock():
                i = counter.value
                counter.value += 1
            if i >= it:
                break
            s = time.perf_counter()
            r = image(state)
            end = time.perf_counter()
            per.append((i, (end - s) * 1000.0))
            if i == it - 1:
                last = r
        results.put(("ok", per, last, end, (time.process_time() - c0) * 1000.0))
    except BaseException as e:  # noqa: BLE001
        ready.put(os.getpid())
        results.put(("err", f"{type(e).__name__}: {e}", None, 0.0, 0.0))


def run_processes(job, image, state):
    """threads == 1: in-process. Otherwise `threads` forked worker processes,
    each warmed up with `warmup` images, released together; they pull image
    indices from a shared counter. perf_counter is CLOCK_MONOTONIC, so the
    parent's start time and the workers' end times are comparable."""
    n = job["threads"]
    if n == 1:
        return run_threads(job, image, state)
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    counter = ctx.Value("i", 0)
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_proc_worker, args=(job, image, state, counter, ready, go, results))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    t0 = time.perf_counter()
    go.set()
    got = [results.get() for _ in procs]
    for p in procs:
        p.join()
    errs = [g[1] for g in got if g[0] == "err"]
    if errs:
        raise RuntimeError(errs[0])
    wall = (max(g[3] for g in got) - t0) * 1000.0
    per = [None] * job["iterations"]
    last = None
    cpu = sum(g[4] for g in got)
    for _, p_per, p_last, _, _ in got:
        for i, ms in p_per:
            per[i] = ms
        if p_last is not None:
            last = p_last
    return wall, per, last, cpu


def loadavg():
    """1/5/15-minute load average at the end of the run: a busy machine
    (e.g. a concurrent cargo build) makes latencies meaningless."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def finish(peer, version, job, wall, per, last, notes, extra=None, cpu_ms=None):
    os.makedirs(job["out_dir"], exist_ok=True)
    outs = []
    for i, (data, w, h) in enumerate(last):
        ext = EXT[job["outputs"][i]["format"]]
        path = os.path.join(job["out_dir"], f"{peer}-{i}.{ext}")
        with open(path, "wb") as f:
            f.write(data)
        outs.append({"path": path, "bytes": len(data), "width": w, "height": h})
    obj = {
        "peer": peer,
        "version": version,
        "threads": job["threads"],
        "iterations": job["iterations"],
        "warmup": job["warmup"],
        "wall_ms": wall,
        "cpu_ms": cpu_ms,
        "per_image_ms": per,
        "outputs": outs,
        "notes": notes,
        "loadavg": loadavg(),
    }
    if extra:
        obj.update(extra)
    emit(obj)


def main(peer, body):
    """Run body(job) with uniform error reporting."""
    job = load_job(peer)
    try:
        body(job)
    except Skip as e:
        skip(peer, str(e))
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        log(peer, f"error: {msg}")
        emit({"peer": peer, "error": msg})
        sys.exit(1)
