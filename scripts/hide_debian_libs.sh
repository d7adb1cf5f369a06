#!/usr/bin/env bash
# Emulates the GPU machine's missing libraries on a Debian machine: run as root inside a private
# mount namespace, it hides the system's copies of ctune's Debian libraries (headers, .so/.a files,
# .pc files, the HDF5 tools) and pkg-config, then runs the given command. The mounts vanish with the
# namespace, so nothing is left behind (docs/gpu.md):
#
#   unshare -m scripts/hide_debian_libs.sh scripts/gpu_check.sh full train
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: unshare -m scripts/hide_debian_libs.sh <command...>" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "hide_debian_libs: needs root (run it under 'unshare -m' as root)" >&2; exit 2; }
mount --make-rprivate /
lib=/usr/lib/x86_64-linux-gnu
for d in /usr/include/hdf5 /usr/include/cjson /usr/include/x86_64-linux-gnu/openblas-openmp \
         $lib/openblas-openmp $lib/hdf5 /usr/include/x86_64-linux-gnu/openblas-pthread $lib/openblas-pthread; do
  if [ -d "$d" ]; then mount -t tmpfs none "$d"; fi
done
shopt -s nullglob
files=(/usr/include/yaml.h /usr/include/pcre2.h /usr/include/pcre2posix.h /usr/include/utf8proc.h
       /usr/include/zlib.h /usr/include/zconf.h /usr/include/szlib.h /usr/include/libaec.h /usr/include/cblas.h
       $lib/libcjson*.so* $lib/libyaml* $lib/libutf8proc* $lib/libhdf5* $lib/libsz* $lib/libaec* $lib/libz.so
       $lib/libz.a $lib/libpcre2-8.so $lib/libpcre2-8.a $lib/libopenblas* $lib/libblas* $lib/libcblas*
       $lib/pkgconfig/*.pc /usr/bin/h5*)
for f in "${files[@]}"; do
  # symbolic links point at a hidden file already
  if [ -e "$f" ] && [ ! -L "$f" ]; then mount --bind /dev/null "$f"; fi
done
# pkg-config answers "not found" for everything (the mount lives only as long as the namespace)
fake=$(mktemp -d)
mount -t tmpfs none "$fake"
printf '#!/bin/sh\necho "pkg-config: hidden" >&2\nexit 1\n' > "$fake/pkg-config"
chmod +x "$fake/pkg-config"
for p in /usr/bin/pkg-config /usr/bin/pkgconf /usr/bin/x86_64-linux-gnu-pkg-config; do
  if [ -e "$p" ]; then mount --bind "$fake/pkg-config" "$p"; fi
done
echo "hide_debian_libs: $(findmnt -rn | grep -cE '/usr/(include|lib|bin)') mounts hide the libraries"
exec "$@"
