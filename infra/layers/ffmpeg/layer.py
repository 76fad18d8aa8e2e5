#!/usr/bin/env python3
"""Makes the ffmpeg layer tree from a root of extracted Debian packages.

Called by ./build. From ROOT (the packages extracted with dpkg-deb, never
run) it copies usr/bin/ffmpeg and usr/bin/ffprobe to OUT/bin and exactly the
shared libraries they need, transitively (DT_NEEDED, resolved as glibc's
loader would on Debian: the object's own DT_RPATH/DT_RUNPATH, then the
multiarch and ld.so.conf.d directories), to OUT/ffmpeg/lib, the dynamic
loader included. Then, with patchelf:

- bin/ffmpeg, bin/ffprobe: PT_INTERP LIBDIR/<loader> (so the kernel starts
  them with the bundled loader, not the system's) and DT_RPATH LIBDIR.
- a bundled library that had its own DT_RPATH or DT_RUNPATH: DT_RPATH
  LIBDIR (the Debian path it named does not exist on Lambda).

DT_RPATH, not DT_RUNPATH, on purpose: glibc searches an object's DT_RPATH,
and the executable's for every library loaded on its behalf, *before*
LD_LIBRARY_PATH, and Lambda sets LD_LIBRARY_PATH to /lib64:/usr/lib64:...
(Amazon Linux's glibc and libraries: loading those into a process with
Debian's loader fails). DT_RUNPATH would come after LD_LIBRARY_PATH and
apply only to direct dependencies. The libraries live in ffmpeg/lib, not
lib/, because Lambda also puts /opt/lib on LD_LIBRARY_PATH, so a Debian
glibc there could be picked up by the function itself.

It also copies the copyright file of every package a bundled file comes
from to OUT/ffmpeg/share/doc/PACKAGE/copyright, the licence texts those
files refer to (base-files' /usr/share/common-licenses: GPL-2, GPL-3,
LGPL-2.1, Apache-2.0, ...) to OUT/ffmpeg/share/common-licenses, and writes
OUT/ffmpeg/packages.tsv and OUT/ffmpeg/README.
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys

ELF_MAGIC = b"\x7fELF"


def fail(msg):
    print(f"layer.py: {msg}", file=sys.stderr)
    sys.exit(1)


class Root:
    """Paths inside the staging root, symbolic links resolved within it."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def host(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def resolve(self, path):
        """The real in-root path of an absolute in-root path (absolute
        symlink targets are taken relative to the root), or None."""
        parts = [p for p in path.split("/") if p]
        done = []
        hops = 0
        while parts:
            p = parts.pop(0)
            if p == ".":
                continue
            if p == "..":
                if done:
                    done.pop()
                continue
            candidate = os.path.join(self.root, *done, p)
            if os.path.islink(candidate):
                hops += 1
                if hops > 40:
                    return None
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                parts = [t for t in target.split("/") if t] + parts
                continue
            if not os.path.lexists(candidate):
                return None
            done.append(p)
        return "/" + "/".join(done)


class Elf:
    """What readelf says about one file."""

    def __init__(self, host_path):
        out = subprocess.run(
            ["readelf", "-W", "-h", "-l", "-d", host_path],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
        ).stdout
        self.machine = None
        self.interp = None
        self.needed = []
        self.rpath = []
        self.runpath = []
        self.soname = None
        for line in out.splitlines():
            s = line.strip()
            if s.startswith("Machine:"):
                self.machine = s.split(":", 1)[1].strip()
            elif s.startswith("[Requesting program interpreter:"):
                self.interp = s.split(":", 1)[1].strip().rstrip("]").strip()
            elif "(NEEDED)" in s:
                self.needed.append(bracket(s))
            elif "(RPATH)" in s:
                self.rpath = [d for d in bracket(s).split(":") if d]
            elif "(RUNPATH)" in s:
                self.runpath = [d for d in bracket(s).split(":") if d]
            elif "(SONAME)" in s:
                self.soname = bracket(s)


def bracket(s):
    return s[s.index("[") + 1 : s.rindex("]")]


def is_elf(host_path):
    try:
        with open(host_path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--triplet", required=True)
    ap.add_argument("--machine", required=True, help="readelf's Machine, e.g. AArch64")
    ap.add_argument("--libdir", required=True, help="where the libraries are at run time")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    root = Root(a.root)
    machine = {"AArch64": "AArch64", "X86-64": "Advanced Micro Devices X86-64"}[a.machine]

    # path -> (package, version, source) from dpkg-deb's listings.
    owner = {}
    with open(a.index) as f:
        for line in f:
            pkg, ver, src, path = line.rstrip("\n").split("\t", 3)
            path = path.rstrip("/") or "/"
            owner[path] = (pkg, ver, src)

    # glibc's search list after the object's own paths: ld.so.conf.d (as
    # Debian's ldconfig would cache it), then the built-in directories.
    search = []
    conf_d = root.host("/etc/ld.so.conf.d")
    if os.path.isdir(conf_d):
        for name in sorted(os.listdir(conf_d)):
            if name.endswith(".conf"):
                with open(os.path.join(conf_d, name)) as f:
                    search += [l.strip() for l in f if l.strip().startswith("/")]
    search += [f"/lib/{a.triplet}", f"/usr/lib/{a.triplet}", "/lib", "/usr/lib"]
    search = list(dict.fromkeys(search))

    elf_cache = {}

    def elf(path):
        if path not in elf_cache:
            elf_cache[path] = Elf(root.host(path))
        return elf_cache[path]

    def fits(path):
        real = root.resolve(path)
        if real is None or not os.path.isfile(root.host(real)) or not is_elf(root.host(real)):
            return None
        return real if elf(real).machine == machine else None

    anywhere = None
    reported = set()

    def find(name, by):
        """The real in-root path of library `name` needed by object `by`."""
        nonlocal anywhere
        o = elf(by)
        origin = os.path.dirname(by)
        own = o.rpath if not o.runpath else o.runpath
        for d in own + search:
            d = d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            real = fits(os.path.join(d, name))
            if real:
                return real
        # Not on the search path: Debian reaches some libraries through
        # update-alternatives links that a maintainer script makes (libblas.so.3
        # -> /usr/lib/TRIPLET/blas/libblas.so.3), which extraction does not run.
        if anywhere is None:
            anywhere = collections.defaultdict(set)
            for dirpath, _, files in os.walk(root.root):
                for fname in files:
                    host_path = os.path.join(dirpath, fname)
                    anywhere[fname].add("/" + os.path.relpath(host_path, root.root))
        found = {r for r in (fits(p) for p in sorted(anywhere.get(name, ()))) if r}
        if len(found) == 1:
            real = found.pop()
            if name not in reported:
                reported.add(name)
                print(f"  {name}: not on the search path, found at {real} "
                      "(Debian's postinst would link it with update-alternatives)")
            return real
        if found:
            fail(f"{name} (needed by {by}) is in several places: {sorted(found)}")
        fail(f"{name} (needed by {by}) is in no extracted package")

    # The closure, breadth first from the two executables.
    exes = {}
    for name in ("ffmpeg", "ffprobe"):
        real = fits(f"/usr/bin/{name}")
        if not real:
            fail(f"/usr/bin/{name} is not an ELF executable for {a.machine}")
        exes[name] = real
    interp = elf(exes["ffmpeg"]).interp
    if not interp or interp != elf(exes["ffprobe"]).interp:
        fail("ffmpeg and ffprobe name no (or different) program interpreters")
    loader_name = os.path.basename(interp)
    loader = fits(interp)
    if not loader:
        fail(f"the program interpreter {interp} is not in the extracted packages")

    libs = {loader_name: loader}  # name in the layer -> real in-root path
    needed_by = {loader_name: ["(program interpreter)"]}
    queue = collections.deque(exes.values())
    seen = set(exes.values())
    while queue:
        obj = queue.popleft()
        for name in elf(obj).needed:
            real = find(name, obj)
            if name in libs and libs[name] != real:
                fail(f"{name} resolves to both {libs[name]} and {real}")
            needed_by.setdefault(name, []).append(os.path.basename(obj))
            libs[name] = real
            if real not in seen:
                seen.add(real)
                queue.append(real)
    by_real = collections.defaultdict(list)
    for name, real in libs.items():
        by_real[real].append(name)
    for real, names in by_real.items():
        if len(names) > 1:
            print(f"  note: {real} is needed as {', '.join(sorted(names))} (copied once per name)")

    # Copy.
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    libdir_rel = a.libdir.removeprefix("/opt/")
    out_bin = os.path.join(a.out, "bin")
    out_lib = os.path.join(a.out, libdir_rel)
    os.makedirs(out_bin)
    os.makedirs(out_lib)
    files = {}  # layer path -> real in-root path
    for name, real in exes.items():
        shutil.copyfile(root.host(real), os.path.join(out_bin, name))
        files[f"bin/{name}"] = real
    for name, real in sorted(libs.items()):
        shutil.copyfile(root.host(real), os.path.join(out_lib, name))
        files[f"{libdir_rel}/{name}"] = real

    # Patch.
    def patchelf(*args):
        subprocess.run(["patchelf", *args], check=True)

    for name in exes:
        patchelf("--set-interpreter", f"{a.libdir}/{loader_name}",
                 "--force-rpath", "--set-rpath", a.libdir, os.path.join(out_bin, name))
    repathed = []
    for name, real in sorted(libs.items()):
        o = elf(real)
        if o.rpath or o.runpath:
            patchelf("--force-rpath", "--set-rpath", a.libdir, os.path.join(out_lib, name))
            repathed.append(f"{name} ({':'.join(o.runpath or o.rpath)})")

    # Check what was written: every NEEDED of every bundled object is in the
    # library directory, only the executables name an interpreter, and no
    # object searches anywhere but the library directory.
    for lp in sorted(files):
        o = Elf(os.path.join(a.out, lp))
        for n in o.needed:
            if n not in libs:
                fail(f"{lp} needs {n}, which is not bundled")
        if o.runpath:
            fail(f"{lp} still has DT_RUNPATH {o.runpath}")
        if o.rpath and o.rpath != [a.libdir]:
            fail(f"{lp} has DT_RPATH {o.rpath}")
        if lp.startswith("bin/") and (o.interp != f"{a.libdir}/{loader_name}" or o.rpath != [a.libdir]):
            fail(f"{lp}: interpreter {o.interp}, rpath {o.rpath} after patchelf")

    # Licences and the package list.
    packages = {}
    file_pkg = {}
    for lp, real in files.items():
        if real not in owner:
            fail(f"no package owns {real}")
        file_pkg[lp] = owner[real]
        packages[owner[real][0]] = owner[real]
    licenses = root.resolve("/usr/share/common-licenses")
    if not licenses or not os.path.isdir(root.host(licenses)):
        fail("no /usr/share/common-licenses (base-files) in the extracted packages")
    out_licenses = os.path.join(a.out, "ffmpeg", "share", "common-licenses")
    os.makedirs(out_licenses)
    for name in sorted(os.listdir(root.host(licenses))):
        real = root.resolve(f"{licenses}/{name}")
        if real and os.path.isfile(root.host(real)):
            lp = f"ffmpeg/share/common-licenses/{name}"
            shutil.copyfile(root.host(real), os.path.join(a.out, lp))
            file_pkg[lp] = owner[real]
            packages[owner[real][0]] = owner[real]
    for pkg in sorted(packages):
        real = root.resolve(f"/usr/share/doc/{pkg}/copyright")
        if not real or not os.path.isfile(root.host(real)):
            fail(f"{pkg} has no usr/share/doc/{pkg}/copyright")
        dest = os.path.join(a.out, "ffmpeg", "share", "doc", pkg)
        os.makedirs(dest)
        shutil.copyfile(root.host(real), os.path.join(dest, "copyright"))

    with open(os.path.join(a.out, "ffmpeg", "packages.tsv"), "w") as f:
        f.write("file\tpackage\tversion\tsource\tsource_version\n")
        for lp in sorted(file_pkg):
            pkg, ver, src = file_pkg[lp]
            # dpkg's Source field is "name" or "name (version)" (binNMUs).
            src_name, _, src_ver = src.partition(" (")
            src_ver = src_ver.rstrip(")") or ver
            f.write(f"{lp}\t{pkg}\t{ver}\t{src_name}\t{src_ver}\n")

    # The licence statement below (and LicenseInfo in the templates) rests on these.
    for needed, why in (("libcdio", "GPL-3.0-or-later"), ("libx264-", "GPL-2.0-or-later")):
        if not any(p.startswith(needed) for p in packages):
            fail(f"no {needed}* ({why}) in the layer any more: review the licence statement "
                 "in layer.py, README.md and the templates' LicenseInfo")
    ffmpeg_ver = packages["ffmpeg"][1]
    with open(os.path.join(a.out, "ffmpeg", "README"), "w") as f:
        f.write(f"""ffmpeg {ffmpeg_ver} for {a.arch} (Linux, glibc), from Debian's packages,
as a Lambda layer: /opt/bin/ffmpeg and /opt/bin/ffprobe run with the glibc,
loader and libraries in {a.libdir} and need nothing from the system.
Made by mediaflow's infra/layers/ffmpeg/build.

packages.tsv lists every executable, library and licence text with the
Debian binary package it comes from, its version and its source package;
share/doc/PACKAGE/copyright holds each package's copyright and licence
terms, and share/common-licenses the licence texts they refer to.

ffmpeg is built by Debian with --enable-gpl and linked with GPL libraries
(x264, x265, xvid, ...), a GPL-3.0-or-later one (libcdio) and Apache-2.0
ones (OpenSSL 3), so the layer as a whole is distributed under the GNU GPL,
version 3 or later (share/common-licenses/GPL-3). The corresponding source
is Debian's source packages at the versions listed (apt-get source
SOURCE=VERSION, or https://snapshot.debian.org/).
""")

    size = sum(os.path.getsize(os.path.join(a.out, p)) for p in files)
    print(f"  {len(libs)} libraries (loader {loader_name}) from {len(packages)} packages, "
          f"{size / 1048576:.1f} MiB of executables and libraries")
    if repathed:
        print(f"  DT_RPATH replaced in: {', '.join(repathed)}")
    biggest = sorted(files, key=lambda p: -os.path.getsize(os.path.join(a.out, p)))[:8]
    print("  largest: " + ", ".join(
        f"{os.path.basename(p)} {os.path.getsize(os.path.join(a.out, p)) / 1048576:.1f}" for p in biggest))


if __name__ == "__main__":
    main()
