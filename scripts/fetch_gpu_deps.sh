#!/usr/bin/env bash
# Fills third_party/debs/ with the .deb files a CT_CORE_ONLY build needs on a machine that has CUDA
# but not ctune's Debian libraries and cannot install packages (docs/gpu.md). Run it here, on a
# Debian/Ubuntu machine with apt; the folder is git-ignored and travels to the GPU machine as a
# carried path. Only OpenBLAS is needed: the core uses no other library outside CUDA, and
# scripts/gpu_check.sh links the static libopenblas.a of libopenblas-openmp-dev (its cblas.h
# too), which needs nothing but libgomp and libm, both part of gcc and glibc.
#
#   scripts/fetch_gpu_deps.sh          download what is missing
#   scripts/fetch_gpu_deps.sh --force  download again
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-openmp-dev)
dest=third_party/debs
force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) echo "usage: scripts/fetch_gpu_deps.sh [--force]" >&2; exit 2 ;;
esac

command -v apt-get >/dev/null || { echo "fetch_gpu_deps: apt-get not found; run this on a Debian or Ubuntu machine" >&2; exit 1; }
mkdir -p "$dest"
for p in "${packages[@]}"; do
  if [ "$force" -eq 0 ] && compgen -G "$dest/${p}_*.deb" >/dev/null; then
    echo "fetch_gpu_deps: $p already in $dest"
    continue
  fi
  rm -f "$dest/${p}_"*.deb
  # apt-get download writes into the current folder; the quiet flag keeps its progress lines out.
  (cd "$dest" && apt-get download -q "$p") || {
    echo "fetch_gpu_deps: apt-get download $p failed; run 'apt-get update' and retry" >&2; exit 1; }
done
# What will be carried, so a caller can check the size against the carry limit (64 MiB).
ls -l "$dest"/*.deb
du -sh "$dest"
sha256sum "$dest"/*.deb
