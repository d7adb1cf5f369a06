#!/bin/sh
# A bf16 run's checkpoint records where its bf16 GEMMs ran (kernels/cpu/cpu_bf16_gemm.h): resumed
# with the other path (CT_GEMM_BF16=widen), whose sums round differently, it is refused with the
# fix named and nothing written; resumed on the same path it continues. Skipped (77) where this
# CPU has no AVX512-BF16 (there is then only one path).
# usage: cli_bf16_resume.sh CTUNE (run from the source root)
set -u
ctune=$1
"$ctune" --version | grep -q "bf16 gemm: oneDNN" ||
    { echo "SKIPPED: no hardware bf16 GEMM here ($("$ctune" --version | sed -n 's/.*bf16 gemm: //p'))"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
set -- recipes/pretrain_tiny_zh.yaml output_dir="$dir/run" train.precision=bf16 model.hidden_size=32 \
    model.intermediate_size=48 model.num_layers=1 model.num_heads=2 model.num_kv_heads=1 tokenizer.vocab_size=300 \
    data.val= train.eval_every=0 checkpoint.every=2 threads=1
"$ctune" train "$@" train.max_steps=2 >"$dir/out" 2>&1 || { echo "the bf16 run failed"; cat "$dir/out"; exit 1; }
ckpt="$dir/run/checkpoints/step-00000002.h5"
[ -f "$ckpt" ] || { echo "no checkpoint at step 2"; ls -R "$dir/run"; exit 1; }
before=$(ls -lR --time-style=full-iso "$dir/run" | md5sum)
CT_GEMM_BF16=widen "$ctune" train "$@" train.max_steps=4 resume="$ckpt" >"$dir/out2" 2>&1
status=$?
[ $status -eq 1 ] || { echo "resume on the widened path: exit $status (1 expected)"; cat "$dir/out2"; exit 1; }
grep -q "its matmuls ran on .*, bf16 GEMMs on oneDNN .* but this run's run on .*resume on a CPU with AVX512-BF16, without CT_GEMM_BF16=widen" "$dir/out2" ||
    { echo "the refusal does not name the bf16 path and its fix"; cat "$dir/out2"; exit 1; }
[ "$(ls -lR --time-style=full-iso "$dir/run" | md5sum)" = "$before" ] || { echo "the refused resume changed the run folder"; exit 1; }
"$ctune" train "$@" train.max_steps=4 resume="$ckpt" >"$dir/out3" 2>&1 || { echo "resume on the same path failed"; cat "$dir/out3"; exit 1; }
echo "a bf16 checkpoint resumes on its own bf16 path and is refused on the other"
