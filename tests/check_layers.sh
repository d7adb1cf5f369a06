#!/usr/bin/env bash
# The folder order: every #include "FOLDER/..." in a layer's files must name its own layer or one
# below it. The layers come bottom up as arguments, from CMakeLists.txt's CT_LAYERS (the one
# place the order is written). Prints each violation as
#   file:line: FOLDER (layer N) includes OTHER (layer M, above it)
# and exits 1 if there is one. tests/, bench/ and tools/ stand on top and are not checked.
#   bash tests/check_layers.sh SOURCE_DIR core kernels autograd ...
set -euo pipefail
root=$1
shift
layers=("$@")
[ ${#layers[@]} -gt 0 ] || { echo "usage: check_layers.sh SOURCE_DIR LAYER..." >&2; exit 2; }
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done

violations=0 checked=0
for layer in "${layers[@]}"; do
    while IFS= read -r hit; do
        file=${hit%%:*}
        rest=${hit#*:}
        line=${rest%%:*}
        target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([A-Za-z0-9_]+)\/.*/\1/' <<<"${rest#*:}")
        checked=$((checked + 1))
        if [ -z "${rank[$target]+set}" ]; then
            echo "${file#"$root"/}:$line: includes \"$target/...\", a folder that is not a layer (CT_LAYERS)"
            violations=$((violations + 1))
        elif [ "${rank[$target]}" -gt "${rank[$layer]}" ]; then
            echo "${file#"$root"/}:$line: $layer (layer ${rank[$layer]}) includes $target (layer ${rank[$target]}, above it)"
            violations=$((violations + 1))
        fi
    done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[A-Za-z0-9_]+/' "$root/$layer" \
                  --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh' || true)
done
[ "$checked" -gt 0 ] || { echo "check_layers: no #include found under $root: wrong SOURCE_DIR?" >&2; exit 1; }
if [ "$violations" -gt 0 ]; then
    echo "check_layers: $violations include(s) point up the layers (${layers[*]})"
    exit 1
fi
echo "check_layers: $checked includes in ${#layers[@]} layers, none points up (${layers[*]})"
