#!/usr/bin/env bash
# Integration tests: ctune's files read by the other programs that serve them (transformers,
# peft, llama.cpp and its llama-server). Runs every tests/integration/test_*.py (with the virtual environment below) and
# test_*.sh (with bash), each on its own, and ends with the line "N passed, N failed, N skipped".
# A test passes with exit 0, is skipped with 77, and fails otherwise.
#
#   bash tests/integration/run.sh                # after scripts/setup.sh (or a build in build/)
#   bash tests/integration/run.sh test_chat_template.py   # only these
#
# The Python packages are the pinned ones of requirements.txt, installed once into a virtual
# environment kept outside the clone, ${CT_CACHE_DIR:-$HOME/.cache/ctune-ci}/venv, and reused
# while requirements.txt and the Python version stay the same (a stamp file holds their hash).
# Environment: CTUNE (the binary; default ${CT_BUILD_DIR:-build}/ctune), CT_CACHE_DIR,
# CT_INTENT_MODEL (a trained intent run to serve instead of the cached short training).
# The tests get CTUNE and CT_SOURCE_DIR (absolute), a fresh CT_INTEGRATION_TMP folder, and for
# the llama.cpp tests CT_LLAMA_CPP (the llama.cpp build folder) and CT_INTENT_MODEL.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

ctune="${CTUNE:-$root/${CT_BUILD_DIR:-build}/ctune}"
[ -x "$ctune" ] || { echo "integration: $ctune not found; build first (bash scripts/setup.sh)" >&2; exit 1; }
ctune="$(cd "$(dirname "$ctune")" && pwd)/$(basename "$ctune")"

cache="${CT_CACHE_DIR:-$HOME/.cache/ctune-ci}"
venv="$cache/venv"
python="${CT_PYTHON:-python3}"
stamp_text="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version)')"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.ctune-stamp" 2>/dev/null)" != "$stamp_text" ]; then
    echo "integration: installing tests/integration/requirements.txt into $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" || { echo "integration: $python -m venv failed; install Python's venv module (Debian: python3-venv)" >&2; exit 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$stamp_text" > "$venv/.ctune-stamp"
fi

if [ $# -gt 0 ]; then
    tests=("$@")
else
    mapfile -t tests < <(cd "$here" && ls test_*.py test_*.sh 2>/dev/null | sort)
fi
[ ${#tests[@]} -gt 0 ] || { echo "integration: no test_*.py or test_*.sh in $here" >&2; exit 1; }

# The llama.cpp tests need llama.cpp (built once into the cache by build_llama_cpp.sh) and a
# trained intent model (trained once into the cache by train_intent_model.sh, or CT_INTENT_MODEL:
# a run or model folder). A failed build or training fails the whole run: these tests are never
# skipped for want of them.
llama_cpp="" intent=""
if printf '%s\n' "${tests[@]}" | grep -q -e llama -e gguf; then
    llama_cpp="$(CT_CACHE_DIR="$cache" bash "$here/build_llama_cpp.sh")" \
        || { echo "integration: building llama.cpp failed (tests/integration/build_llama_cpp.sh)" >&2; exit 1; }
    intent="${CT_INTENT_MODEL:-}"
    if [ -n "$intent" ]; then
        intent="$(cd "$intent" && pwd)" || { echo "integration: CT_INTENT_MODEL=$CT_INTENT_MODEL is not a folder" >&2; exit 1; }
    else
        intent="$(CTUNE="$ctune" CT_CACHE_DIR="$cache" bash "$here/train_intent_model.sh")" \
            || { echo "integration: training the intent model failed (tests/integration/train_intent_model.sh)" >&2; exit 1; }
    fi
fi

passed=0 failed=0 skipped=0
for test in "${tests[@]}"; do
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/ctune-integration.XXXXXX")"
    case "$test" in
        *.py) runner=("$venv/bin/python") ;;
        *.sh) runner=(bash) ;;
        *) echo "integration: $test is neither .py nor .sh" >&2; exit 1 ;;
    esac
    echo "== $test"
    set +e
    CTUNE="$ctune" CT_SOURCE_DIR="$root" CT_INTEGRATION_TMP="$tmp" CT_LLAMA_CPP="$llama_cpp" CT_INTENT_MODEL="$intent" \
        "${runner[@]}" "$here/$test"
    rc=$?
    set -e
    case $rc in
        0) passed=$((passed + 1)); echo "PASS $test"; rm -rf "$tmp" ;;
        77) skipped=$((skipped + 1)); echo "SKIP $test"; rm -rf "$tmp" ;;
        *) failed=$((failed + 1)); echo "FAIL $test (exit $rc; its files are in $tmp)" ;;
    esac
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
