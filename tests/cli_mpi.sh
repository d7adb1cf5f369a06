#!/bin/sh
# ctune train under mpirun (docs/distributed.md), 2 ranks of one thread each on the qwen2 fixture:
#   parity   2 ranks, one micro-batch each, against 1 rank running both (train.grad_accum=2):
#            every loss in metrics.jsonl and the final weights, bit for bit, over 20 steps
#   zero     the same with train.shard_optimizer=true (ZeRO-1): losses, weights and the
#            consolidated AdamW moments of the last checkpoint equal the 1-rank run's
#   lora     a LoRA run (adapter dropout on) on 2 sharded ranks: the adapter file equals 1 rank's
#   resume   saved on 2 ranks (ZeRO-1), resumed on 1; saved on 1, resumed on 2 (ZeRO-1): both
#            end with the uninterrupted 1-rank run's weights; a plain process resumes too
#   refuse   ranks with other recipes, another binary, train.grad_accum not a multiple of the
#            ranks: exit 1, one line on rank 0, no run folder
#   faults   a rank that hangs at step 12 (the other stops after train.dist_timeout_s with one
#            line) or vanishes at step 12 (rank 0 says mpirun stopped it): non-zero exit, and the
#            step-10 checkpoint resumes to the end
#   sh tests/cli_mpi.sh path/to/ctune MODE HAVE_MPI(ON|OFF)
set -u
ctune=$1 mode=$2 have_mpi=$3
skip() {
    echo "SKIPPED: $1"
    [ "${CI:-}" = "true" ] && { echo "FAIL: CI must run the MPI tests: $1"; exit 1; }
    [ -n "${CT_SKIP_NOTES:-}" ] && echo "cli_mpi_$mode: $1" > "$CT_SKIP_NOTES/cli_mpi_$mode.txt"
    exit 77
}
[ "$have_mpi" = "ON" ] || skip "ctune was built without MPI (apt-get install libopenmpi-dev openmpi-bin)"
command -v mpirun > /dev/null 2>&1 || skip "no mpirun (apt-get install openmpi-bin)"
tmp=$(mktemp -d /tmp/ctune-cli-mpi.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mpi="mpirun --allow-run-as-root --oversubscribe --quiet --bind-to none"
# A sanitizer build reports what Open MPI keeps past MPI_Finalize; those frames are not ctune's.
# The slow unwinder follows stacks through Open MPI's plugins, so the suppressions can name them.
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan_mpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS ASAN_OPTIONS
full=recipes/full_finetune_intent_zh.yaml
base="model.path=tests/fixtures/models/qwen2 tokenizer.path=tests/fixtures/models/qwen2 data.max_examples=64 data.val= \
data.batch_size=4 data.max_seq_len=48 train.max_steps=20 train.grad_accum=2 train.log_every=5 threads=1"

run() { # name ranks recipe overrides...: a run that must succeed
    name=$1 n=$2 recipe=$3
    shift 3
    # shellcheck disable=SC2086
    $mpi -np "$n" "$ctune" train "$recipe" $base output_dir="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 ||
        { cat "$tmp/$name.log"; fail "$name: $n ranks"; }
}
losses() { grep '"type":"train"' "$1/metrics.jsonl" | sed 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/'; }
same_losses() { # run_a run_b: all 20 losses, as written
    [ "$(losses "$tmp/$1" | wc -l)" -eq 20 ] || fail "$1: not 20 losses in metrics.jsonl"
    losses "$tmp/$1" > "$tmp/$1.losses"
    losses "$tmp/$2" > "$tmp/$2.losses"
    cmp -s "$tmp/$1.losses" "$tmp/$2.losses" || { diff "$tmp/$1.losses" "$tmp/$2.losses" | head; fail "$1 and $2 lose differently"; }
}
same_file() { cmp -s "$tmp/$1" "$tmp/$2" || fail "$1 and $2 differ"; }

case $mode in
parity)
    run one 1 $full
    run two 2 $full
    grep -q "^distributed: 2 ranks, 1 micro-batch(es) per rank and step" "$tmp/two.log" || fail "no distributed line"
    same_losses one two
    same_file one/model/model.safetensors two/model/model.safetensors
    # Only rank 0 writes: one start record, one line per step.
    [ "$(grep -c '"type":"start"' "$tmp/two/metrics.jsonl")" -eq 1 ] || fail "two: metrics.jsonl written twice"
    [ "$(grep -c '^steps 20, final loss' "$tmp/two.log")" -eq 1 ] || fail "two: the result printed by more than rank 0"
    ;;
zero)
    run one 1 $full
    run zero 2 $full train.shard_optimizer=true
    grep -q "AdamW moments sharded (ZeRO-1)" "$tmp/zero.log" || fail "no ZeRO-1 line"
    same_losses one zero
    same_file one/model/model.safetensors zero/model/model.safetensors
    h5diff "$tmp/one/checkpoints/step-00000020.h5" "$tmp/zero/checkpoints/step-00000020.h5" /optimizer ||
        fail "the consolidated moments differ from the 1-rank run's"
    ;;
lora)
    lora="lora.r=4 lora.alpha=8"
    # shellcheck disable=SC2086
    run lora1 1 recipes/lora_intent_zh.yaml $lora
    # shellcheck disable=SC2086
    run lora2 2 recipes/lora_intent_zh.yaml $lora train.shard_optimizer=true
    same_losses lora1 lora2
    same_file lora1/adapter/adapter_model.safetensors lora2/adapter/adapter_model.safetensors
    ;;
resume)
    run one 1 $full
    # 2 ranks (ZeRO-1) stop after step 10's checkpoint; 1 rank resumes it.
    CTUNE_DIST_FAULT=0:11:exit $mpi -x CTUNE_DIST_FAULT -np 2 "$ctune" train $full $base output_dir="$tmp/a" \
        checkpoint.every=10 train.shard_optimizer=true > "$tmp/a.log" 2>&1 && fail "the injected fault did not stop a"
    run a 1 $full checkpoint.every=10 resume="$tmp/a/checkpoints/step-00000010.h5"
    same_file one/model/model.safetensors a/model/model.safetensors
    # 1 rank stops after step 10; 2 ranks (ZeRO-1) resume it.
    CTUNE_DIST_FAULT=0:11:exit $mpi -x CTUNE_DIST_FAULT -np 1 "$ctune" train $full $base output_dir="$tmp/b" \
        checkpoint.every=10 > "$tmp/b.log" 2>&1 && fail "the injected fault did not stop b"
    cp -r "$tmp/b" "$tmp/c"
    run b 2 $full checkpoint.every=10 train.shard_optimizer=true resume="$tmp/b/checkpoints/step-00000010.h5"
    same_file one/model/model.safetensors b/model/model.safetensors
    # A plain process (no mpirun) resumes a checkpoint of ranks too.
    # shellcheck disable=SC2086
    "$ctune" train $full $base output_dir="$tmp/c" checkpoint.every=10 resume="$tmp/c/checkpoints/step-00000010.h5" \
        > "$tmp/c.log" 2>&1 || { cat "$tmp/c.log"; fail "a plain resume"; }
    ;;
refuse)
    refused() { # name expected-text command...
        name=$1 want=$2
        shift 2
        out=$("$@" 2>&1)
        rc=$?
        [ $rc -ne 0 ] || fail "$name: exit 0: $out"
        echo "$out" | grep -q "$want" || fail "$name: '$out' lacks '$want'"
        [ "$(echo "$out" | grep -c '^ctune train:')" -eq 1 ] || fail "$name: not one line: $out"
        [ ! -e "$tmp/bad" ] || fail "$name: left $tmp/bad"
        echo "ok $name: $out"
    }
    # shellcheck disable=SC2086
    refused "other recipes" "rank 1 runs another recipe (after overrides) than rank 0" \
        $mpi -np 1 "$ctune" train $full $base output_dir="$tmp/bad" : -np 1 "$ctune" train $full $base output_dir="$tmp/bad" optimizer.lr=1e-3
    cp "$ctune" "$tmp/other-ctune"
    printf x >> "$tmp/other-ctune"
    # shellcheck disable=SC2086
    refused "other binary" "rank 1 runs another ctune binary than rank 0" \
        $mpi -np 1 "$ctune" train $full $base output_dir="$tmp/bad" : -np 1 "$tmp/other-ctune" train $full $base output_dir="$tmp/bad"
    # shellcheck disable=SC2086
    refused "grad_accum" "train.grad_accum=3 cannot be split over 2 ranks" \
        $mpi -np 2 "$ctune" train $full $base output_dir="$tmp/bad" train.grad_accum=3
    ;;
faults)
    for fault in hang exit; do
        out=$(CTUNE_DIST_FAULT=1:12:$fault $mpi -x CTUNE_DIST_FAULT -np 2 "$ctune" train $full $base \
              output_dir="$tmp/$fault" checkpoint.every=10 train.dist_timeout_s=3 2>&1)
        rc=$?
        [ $rc -ne 0 ] || fail "$fault: exit 0"
        case $fault in
        hang) want="not every one of the 2 ranks answered within train.dist_timeout_s=3 s (a rank died or hangs)" ;;
        exit) want="stopped by mpirun's signal (another rank failed, or the job was cancelled)" ;;
        esac
        echo "$out" | grep -q "$want" || fail "$fault: '$out' lacks '$want'"
        [ "$(echo "$out" | grep -c '^ctune train:')" -eq 1 ] || fail "$fault: not one line: $out"
        ls "$tmp/$fault/checkpoints" | grep -qx "step-00000010.h5" || fail "$fault: no step-10 checkpoint"
        [ "$(ls "$tmp/$fault/checkpoints" | wc -l)" -eq 1 ] || fail "$fault: a partial checkpoint was left"
        # shellcheck disable=SC2086
        "$ctune" train $full $base output_dir="$tmp/$fault" resume="$tmp/$fault/checkpoints/step-00000010.h5" \
            > "$tmp/$fault.resume.log" 2>&1 || { cat "$tmp/$fault.resume.log"; fail "$fault: the checkpoint does not resume"; }
        echo "ok $fault: $(echo "$out" | grep '^ctune train:')"
    done
    ;;
*) fail "unknown mode $mode" ;;
esac
echo "cli_mpi_$mode: all checks passed"
