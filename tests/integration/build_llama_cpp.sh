#!/usr/bin/env bash
# Builds llama.cpp (llama-server and the library) for the integration tests, once per version,
# into a cache outside the clone, and prints the folder that holds it. Reruns take seconds.
#
#   bash tests/integration/build_llama_cpp.sh          # prints e.g. ~/.cache/ctune-ci/llama.cpp-0.3.36
#
# Source: the llama.cpp tree vendored inside a pinned llama-cpp-python source package from PyPI
# (its own pip build installs only the libraries, not llama-server), built with cmake: Release,
# server on, UI download / curl / OpenSSL off, tests and examples off, shared libraries.
# Then tests/integration/llama_probe.cpp (ctune's small client of the llama.h API: logits at
# every position, tokenization, LoRA at load time) is compiled against it; it is rebuilt when
# its source changes.
#
# Output layout under the printed folder: bin/llama-server, bin/llama-probe, bin/lib*.so.
# Environment: CT_CACHE_DIR (default ~/.cache/ctune-ci), CT_JOBS (default: nproc).
# Fails (non-zero) when anything is missing or does not build: CI must not skip these tests.
set -euo pipefail
version=0.3.36          # llama-cpp-python; its vendor/llama.cpp knows llama, qwen2, qwen3
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CT_CACHE_DIR:-$HOME/.cache/ctune-ci}"
dir="$cache/llama.cpp-$version"
jobs="${CT_JOBS:-$(nproc)}"
cmake_flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF)
say() { echo "build_llama_cpp: $*" >&2; }

need_apt=()
command -v cmake > /dev/null || need_apt+=(cmake)
command -v g++ > /dev/null || need_apt+=(g++)
command -v make > /dev/null || need_apt+=(make)
python3 -m pip --version > /dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
    say "installing ${need_apt[*]} (Debian packages)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo" # as scripts/setup.sh: root, or a user with sudo
    $sudo apt-get update -qq > /dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" > /dev/null \
        || { say "apt-get install ${need_apt[*]} failed; install them and rerun"; exit 1; }
fi

# The stamp holds the flags, so a change of flags rebuilds.
stamp_text="$version ${cmake_flags[*]}"
if [ "$(cat "$dir/.ctune-stamp" 2>/dev/null)" != "$stamp_text" ]; then
    say "building llama.cpp from llama-cpp-python $version into $dir (cold: several minutes)"
    start=$(date +%s)
    rm -rf "$dir"
    mkdir -p "$dir/dl"
    python3 -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
        "llama-cpp-python==$version" -d "$dir/dl" \
        || { say "pip download llama-cpp-python==$version failed"; exit 1; }
    tar -xzf "$dir/dl/llama_cpp_python-$version.tar.gz" -C "$dir/dl"
    mv "$dir/dl/llama_cpp_python-$version/vendor/llama.cpp" "$dir/src"
    rm -rf "$dir/dl"
    generator=()
    command -v ninja > /dev/null && generator=(-G Ninja)
    cmake -S "$dir/src" -B "$dir/build" "${generator[@]}" "${cmake_flags[@]}" > "$dir/cmake.log" 2>&1 \
        || { say "cmake configure failed; see $dir/cmake.log"; exit 1; }
    cmake --build "$dir/build" -j "$jobs" --target llama-server > "$dir/build.log" 2>&1 \
        || { say "build failed; see $dir/build.log"; tail -20 "$dir/build.log" >&2; exit 1; }
    echo "$stamp_text" > "$dir/.ctune-stamp"
    say "llama.cpp built in $(( $(date +%s) - start )) s"
fi
bin="$dir/build/bin"
[ -x "$bin/llama-server" ] || { say "$bin/llama-server missing; rm -rf $dir and rerun"; exit 1; }

probe_src="$here/llama_probe.cpp"
probe_key="$(sha256sum "$probe_src" | cut -d' ' -f1)"
if [ "$(cat "$bin/.llama-probe-stamp" 2>/dev/null)" != "$probe_key" ]; then
    g++ -std=c++17 -O2 -o "$bin/llama-probe" "$probe_src" \
        -I"$dir/src/include" -I"$dir/src/ggml/include" -L"$bin" -lllama -lggml -lggml-base \
        -Wl,-rpath,"$bin" \
        || { say "compiling $probe_src failed"; exit 1; }
    echo "$probe_key" > "$bin/.llama-probe-stamp"
fi
echo "$dir/build"
