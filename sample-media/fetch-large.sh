#!/usr/bin/env bash
# Fetch the large original photographs that are deliberately NOT committed
# (they would bloat the repository) into sample-media/large/.
#
# Source: Debian packages lomiri-wallpapers-16.04 / lomiri-wallpapers-20.04
# (version 20.04.0-2, Debian bookworm), downloaded with `apt-get download`
# and unpacked with dpkg-deb. Licences: see sample-media/LICENSES.md.
#
# Idempotent: files already present with the expected SHA-256 are kept and
# the packages are not downloaded again. Prints the absolute path of each
# file on stdout (one per line); progress messages go to stderr.
#
# Needs: apt-get (with package lists present: run `apt-get update` once if
# `apt-get download` says it cannot find the package), dpkg-deb, tar,
# sha256sum. Does not need root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/large"

# package | path inside the package | sha256 of the original file
files=(
  "lomiri-wallpapers-20.04|usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg|6572410c09f4492c74ccadde133565a14c0161617d5917d4c820c66d65a44ba7"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg|a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f"
)

have_ok() { # file sha
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

mkdir -p "$dest"
tmp=""
cleanup() { if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT

for entry in "${files[@]}"; do
  IFS='|' read -r pkg path sha <<<"$entry"
  out="$dest/$(basename "$path")"
  if have_ok "$out" "$sha"; then
    echo "ok (cached): $out" >&2
    echo "$out"
    continue
  fi
  if [[ -z "$tmp" ]]; then
    tmp="$(mktemp -d)"
    # let apt's unprivileged _apt user write here (avoids a sandbox warning)
    chmod 0777 "$tmp"
  fi
  deb="$(ls "$tmp"/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)"
  if [[ -z "$deb" ]]; then
    echo "downloading Debian package $pkg ..." >&2
    if ! (cd "$tmp" && apt-get download "$pkg" >&2); then
      echo "error: 'apt-get download $pkg' failed; run 'apt-get update' and retry" >&2
      exit 1
    fi
    deb="$(ls "$tmp"/"${pkg}"_*.deb | head -n1)"
  fi
  echo "extracting $path from $(basename "$deb")" >&2
  mkdir -p "$tmp/x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" "./$path"
  if ! have_ok "$tmp/x/$path" "$sha"; then
    echo "error: $path from $(basename "$deb") does not have the expected sha256 $sha" >&2
    exit 1
  fi
  mv -f "$tmp/x/$path" "$out.part"
  chmod 0644 "$out.part"
  mv -f "$out.part" "$out"
  echo "$out"
done
