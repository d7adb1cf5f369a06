#!/usr/bin/env bash
# Fills third_party/debs/ with the Debian 12 .deb files that ctune needs on a machine that has
# CUDA but not ctune's Debian libraries and cannot install packages (docs/gpu.md). Run it here, on
# a Debian/Ubuntu machine with apt; the folder is git-ignored and travels to the GPU machine as a
# carried path, where scripts/gpu_check.sh unpacks it (dpkg -x, no installation).
#
# What each package is for:
#   libopenblas-openmp-dev   cblas.h and the static libopenblas.a (needs only libgomp and libm);
#                            the only one a core-only build (CT_CORE_ONLY) uses
#   libhdf5-dev              hdf5.h and the static libhdf5_serial.a. The shared libhdf5 needs
#                            libcurl and libcrypto, and through them some twenty libraries, some
#                            under Debian-only sonames (libldap-2.5.so.0); the static library
#                            pulls in none of that code (its S3 driver is the only user)
#   libaec-dev, zlib1g-dev   libsz.a, libaec.a and libz.a: what the static HDF5 calls (szip, deflate)
#   libcjson-dev libcjson1   cJSON: header and .so symlink, and the shared library it points to
#   libyaml-dev libyaml-0-2  libyaml, likewise
#   libpcre2-dev libpcre2-8-0      PCRE2 (8-bit), likewise
#   libutf8proc-dev libutf8proc2   utf8proc, likewise
# The four shared libraries need nothing but libc (Debian 12's glibc 2.36, so any glibc from 2.36
# on runs them); the executables find them through their run-time path. `apt-cache depends` and
# `dpkg -I` list the packages' dependencies; the -dev packages' other dependencies (libhdf5's
# Fortran and C++ bindings, libcurl, libssl, PCRE2's 16- and 32-bit libraries, ...) are not needed
# to build or run ctune and are left out.
#
#   scripts/fetch_gpu_deps.sh          download what is missing
#   scripts/fetch_gpu_deps.sh --force  download again
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libopenblas-openmp-dev
  libhdf5-dev libaec-dev zlib1g-dev
  libcjson-dev libcjson1
  libyaml-dev libyaml-0-2
  libpcre2-dev libpcre2-8-0
  libutf8proc-dev libutf8proc2
)
dest=third_party/debs
# The carried paths may add up to 64 MiB; the .debs must leave most of that free.
max_bytes=$((32 * 1024 * 1024))
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
# apt-get writes a version's epoch "1:" as "1%3a"; a name of letters, digits, '.', '_', '+' and
# '-' alone copies anywhere.
for f in "$dest"/*%3a*.deb; do
  [ -e "$f" ] && mv "$f" "${f//%3a/_}"
done
# A .deb in the folder that the list does not name (an old version, a dropped package) would be
# unpacked too; say so rather than carry it silently.
for f in "$dest"/*.deb; do
  name=$(basename "$f"); name=${name%%_*}
  printf '%s\n' "${packages[@]}" | grep -qx "$name" || echo "fetch_gpu_deps: warning: $f is not in the list; remove it"
done
# What will be carried, so a caller can check the size against the carry limit (64 MiB).
ls -l "$dest"/*.deb
sha256sum "$dest"/*.deb
debs=("$dest"/*.deb)
total=$(cat "${debs[@]}" | wc -c)
echo "fetch_gpu_deps: ${#debs[@]} packages, $total bytes ($((total / 1024 / 1024)) MiB) in $dest"
if [ "$total" -gt "$max_bytes" ]; then
  echo "fetch_gpu_deps: more than $((max_bytes / 1024 / 1024)) MiB: too much of the 64 MiB a GPU machine's carried paths may hold" >&2
  exit 1
fi
