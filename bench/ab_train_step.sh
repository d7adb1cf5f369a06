#!/usr/bin/env bash
# Two or more ctune binaries (e.g. before and after a change) on the same training step, on one
# thread, alternating: user CPU milliseconds per step of recipes/pretrain_tiny_zh.yaml from the
# tokenizer of runs/pretrain_tiny_zh (a run of LONG steps minus a run of SHORT steps, so set-up
# and the final save cancel), REPS rounds, each binary once per round in the order given. Wall
# time on a shared VM moves by 20-35% between runs; user time on one thread moves far less, and
# alternating keeps any binary from getting all the quiet moments. Prints one line per run, then
# each binary's median and its median ratio to the first binary's run of the same round.
#   bash bench/ab_train_step.sh [-r REPS=5] [-s "SHORT LONG"="5 45"] CTUNE_A CTUNE_B [...] [-- key=value ...]
# e.g. git worktree add /tmp/before HEAD~1 && (cd /tmp/before && bash scripts/setup.sh)
#      bash bench/ab_train_step.sh /tmp/before/build/ctune build/ctune
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5 steps="5 45" binaries=() overrides=()
while (($#)); do
    case "$1" in
    -r) reps=$2; shift 2 ;;
    -s) steps=$2; shift 2 ;;
    --) shift; overrides=("$@"); break ;;
    *) binaries+=("$1"); shift ;;
    esac
done
read -r short long <<< "$steps"
if ((${#binaries[@]} < 2)); then
    echo "ab_train_step.sh: name at least two ctune binaries (usage in the header of $0)" >&2
    exit 2
fi
for b in "${binaries[@]}"; do
    [ -x "$b" ] || { echo "ab_train_step.sh: $b is not an executable; build it first" >&2; exit 1; }
done
tokenizer=runs/pretrain_tiny_zh/tokenizer
[ -d "$tokenizer" ] || { echo "ab_train_step.sh: $tokenizer not found; run the main job's pretraining first" >&2; exit 1; }
out=$(mktemp -d /tmp/ctune-ab.XXXXXX)
trap 'rm -rf "$out"' EXIT
"${binaries[0]}" --version | sed -n 2p
for ((rep = 1; rep <= reps; rep++)); do
    for i in "${!binaries[@]}"; do
        for n in "$short" "$long"; do
            /usr/bin/time -f "%U" -o "$out/user.$n" "${binaries[$i]}" train recipes/pretrain_tiny_zh.yaml \
                output_dir="$out/run" threads=1 overwrite=true train.max_steps="$n" train.eval_every=0 \
                checkpoint.every=0 data.val= tokenizer.train=false tokenizer.path="$tokenizer" "${overrides[@]}" \
                > "$out/log" 2>&1 || { cat "$out/log"; exit 1; }
        done
        ms=$(python3 -c "import sys; print(round((float(open(sys.argv[1]).read()) - float(open(sys.argv[2]).read())) * 1000 / ($long - $short), 1))" "$out/user.$long" "$out/user.$short")
        echo "$rep $i $ms" >> "$out/results"
        echo "round $rep  ${binaries[$i]}  $ms ms/step (user CPU, 1 thread)"
    done
done
python3 - "$out/results" "${binaries[@]}" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
names = sys.argv[2:]
ms = {}
for rep, i, v in rows:
    ms.setdefault(int(i), {})[int(rep)] = float(v)
for i, name in enumerate(names):
    ratios = [ms[i][r] / ms[0][r] for r in ms[i]]
    print(f"{name}: median {statistics.median(ms[i].values()):.1f} ms/step, median ratio to {names[0]} "
          f"{statistics.median(ratios):.3f} (per round: {', '.join(f'{x:.3f}' for x in ratios)})")
PY
