import struct

def box(t, payload):
    return struct.pack(">I4s", 8 + len(payload), t) + payload


def fullbox(t, version, flags, payload):
    return box(t, struct.pack(">I", (version << 24) | flags) + payload)


def children(d, s, e):
    out = []
    while s < e:
        n, t = struct.unpack(">I4s", d[s:s + 8])
        assert n >= 8, "box size"
        out.append((t, s, s + n))
        s += n
    return out


def uint(b, n):
    return int.from_bytes(b[:n], "big") if n else 0


def parse_heif(d):
    """Return dict(ftyp, hdlr, primary, items{id: dict(type,name,hidden,data)}, order, props[raw boxes],
    assoc{id: [(prop_index_1based, essential)]}, irefs[(type, from, [to])])."""
    top = {t: (s, e) for t, s, e in children(d, 0, len(d))}
    ms, me = top[b"meta"]
    res = dict(ftyp=d[top[b"ftyp"][0]:top[b"ftyp"][1]], items={}, order=[], props=[], assoc={}, irefs=[])
    for t, s, e in children(d, ms + 12, me):
        v = d[s + 8]
        body = d[s + 12:e]
        if t == b"hdlr":
            res["hdlr"] = d[s:e]
        elif t == b"pitm":
            res["primary"] = uint(body, 2 if v == 0 else 4)
        elif t == b"iinf":
            n0 = 2 if v == 0 else 4
            for _, cs, ce in children(d, s + 12 + n0, e):
                cv, cf = d[cs + 8], uint(d[cs + 9:cs + 12], 3)
                q = cs + 12
                iid = uint(d[q:], 2 if cv == 2 else 4)
                q += 2 if cv == 2 else 4
                q += 2  # protection index
                itype = d[q:q + 4]
                q += 4
                name = d[q:d.index(b"\0", q)]
                res["items"][iid] = dict(type=itype, name=name, hidden=bool(cf & 1), data=b"")
                res["order"].append(iid)
        elif t == b"iref":
            idn = 2 if v == 0 else 4
            for rt, cs, ce in children(d, s + 12, e):
                q = cs + 8
                frm = uint(d[q:], idn)
                q += idn
                cnt = uint(d[q:], 2)
                q += 2
                res["irefs"].append((rt, frm, [uint(d[q + i * idn:], idn) for i in range(cnt)]))
        elif t == b"iprp":
            for ct, cs, ce in children(d, s + 8, e):
                if ct == b"ipco":
                    res["props"] = [d[a:b] for _, a, b in children(d, cs + 8, ce)]
                elif ct == b"ipma":
                    pv, pf = d[cs + 8], uint(d[cs + 9:cs + 12], 3)
                    q = cs + 12
                    cnt = uint(d[q:], 4)
                    q += 4
                    for _ in range(cnt):
                        iid = uint(d[q:], 2 if pv < 1 else 4)
                        q += 2 if pv < 1 else 4
                        na = d[q]
                        q += 1
                        lst = []
                        for _ in range(na):
                            if pf & 1:
                                x = uint(d[q:], 2)
                                q += 2
                                lst.append((x & 0x7FFF, bool(x >> 15)))
                            else:
                                x = d[q]
                                q += 1
                                lst.append((x & 0x7F, bool(x >> 7)))
                        res["assoc"][iid] = lst
        elif t == b"iloc":
            osz, lsz = d[s + 12] >> 4, d[s + 12] & 15
            bsz, isz = d[s + 13] >> 4, d[s + 13] & 15
            q = s + 14
            cnt = uint(d[q:], 2 if v < 2 else 4)
            q += 2 if v < 2 else 4
            locs = {}
            for _ in range(cnt):
                iid = uint(d[q:], 2 if v < 2 else 4)
                q += 2 if v < 2 else 4
                cm = 0
                if v in (1, 2):
                    cm = uint(d[q:], 2) & 15
                    q += 2
                q += 2  # data reference index
                base = uint(d[q:], bsz)
                q += bsz
                ne = uint(d[q:], 2)
                q += 2
                ext = []
                for _ in range(ne):
                    if v in (1, 2) and isz:
                        q += isz
                    eo = uint(d[q:], osz)
                    q += osz
                    el = uint(d[q:], lsz)
                    q += lsz
                    ext.append((base + eo, el))
                assert cm == 0, "only file-offset iloc supported"
                locs[iid] = ext
    for iid, ext in locs.items():
        res["items"][iid]["data"] = b"".join(d[a:a + n] for a, n in ext)
    return res


def build_heif(ftyp, hdlr, primary, items, order, props, assoc, irefs):
    """Write ftyp, meta(hdlr, pitm, iinf, iref, iprp, iloc), mdat. One iloc extent per item."""
    iinf = fullbox(b"iinf", 0, 0, struct.pack(">H", len(order)) + b"".join(
        fullbox(b"infe", 2, 1 if items[i]["hidden"] else 0,
                struct.pack(">HH", i, 0) + items[i]["type"] + items[i]["name"] + b"\0") for i in order))
    iref = b""
    if irefs:
        iref = fullbox(b"iref", 0, 0, b"".join(
            box(t, struct.pack(">HH", f, len(to)) + b"".join(struct.pack(">H", x) for x in to))
            for t, f, to in irefs))
    big = len(props) > 127
    ipma = struct.pack(">I", len([i for i in order if assoc.get(i)]))
    for i in order:
        if not assoc.get(i):
            continue
        ipma += struct.pack(">HB", i, len(assoc[i]))
        for idx, ess in assoc[i]:
            ipma += struct.pack(">H", idx | (ess << 15)) if big else bytes([idx | (ess << 7)])
    iprp = box(b"iprp", box(b"ipco", b"".join(props)) + fullbox(b"ipma", 0, 1 if big else 0, ipma))
    pitm = fullbox(b"pitm", 0, 0, struct.pack(">H", primary))

    def iloc(offsets):
        b = bytes([0x44, 0x00]) + struct.pack(">H", len(order))
        for i in order:
            b += struct.pack(">HHHII", i, 0, 1, offsets.get(i, 0), len(items[i]["data"]))
        return fullbox(b"iloc", 0, 0, b)

    def meta(offsets):
        return fullbox(b"meta", 0, 0, hdlr + pitm + iinf + iref + iprp + iloc(offsets))

    pos = len(ftyp) + len(meta({})) + 8
    offsets = {}
    for i in order:
        offsets[i] = pos
        pos += len(items[i]["data"])
    mdat = box(b"mdat", b"".join(items[i]["data"] for i in order))
    return ftyp + meta(offsets) + mdat


