#!/usr/bin/env bash
# Example / smoke run: every peer on the three sample workloads, threads 1 and 2.
#   benches/peers/run-all-example.sh [iterations] [warmup]
# Writes jobs, results (one JSON per run) and outputs under benches/peers/out/
# (gitignored) and prints a table of median per-image latency.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
IT="${1:-10}"; WU="${2:-2}"
OUT="$HERE/out"; mkdir -p "$OUT/jobs" "$OUT/results"
JPG="$ROOT/sample-media/seeding_by_Clements_Engelhardt.jpg"
PNG="$ROOT/sample-media/horse.png"

job() { # name input width format quality threads
  cat > "$OUT/jobs/$1-t$6.json" <<J
{"workload": "$1", "input": "$2", "outputs": [{"width": $3, "format": "$4", "quality": $5}],
 "filter": "lanczos3", "threads": $6, "iterations": $IT, "warmup": $WU, "out_dir": "$OUT/img/$1-t$6"}
J
}
for t in 1 2; do
  job thumb-jpeg "$JPG" 720 jpeg 80 $t
  job webp-alpha "$PNG" 512 webp 80 $t
  job avif-1024 "$JPG" 1024 avif 60 $t
done

RUNNERS=("node $HERE/sharp.mjs" "$HERE/pyvips_runner.py" "$HERE/pillow_runner.py"
         "$HERE/vipsthumbnail_runner.py" "$HERE/oximg_runner.py")
for j in "$OUT"/jobs/*.json; do
  for r in "${RUNNERS[@]}"; do
    name=$(basename "${r##* }"); name=${name%%[._]*}
    res="$OUT/results/$(basename "$j" .json)-$name.json"
    echo "== $name $(basename "$j")" >&2
    $r "$j" > "$res" 2> "$res.stderr"; echo "   exit $?" >&2
  done
done

python3 - "$OUT/results" <<'PY'
import glob, json, os, statistics, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    try:
        d = json.load(open(f))
    except Exception as e:
        rows.append((os.path.basename(f), "-", "-", f"bad output: {e}")); continue
    job = os.path.basename(f).rsplit("-", 1)[0]
    if "per_image_ms" in d:
        p = d["per_image_ms"]; o = d["outputs"][0]
        ips = len(p) / d["wall_ms"] * 1000
        cpu = d.get("cpu_ms")
        cpu = f"{cpu / len(p):8.1f}" if cpu is not None else "-"
        rows.append((job, d["peer"], f"{statistics.median(p):8.1f}", f"{cpu:>8}  {ips:6.2f} img/s  {o['width']}x{o['height']} {o['bytes']} B  load {d.get('loadavg', ['?'])[0]}"))
    else:
        rows.append((job, d.get("peer"), "-", "       -  skipped: " + str(d.get("skipped") or d.get("error"))))
print(f"{'job':22} {'peer':14} {'median ms':>9}  {'cpu ms/img':>8}  throughput / output / loadavg-1m")
for r in rows:
    print(f"{r[0]:22} {r[1]:14} {r[2]:>9}  {r[3]}")
PY
