#!/usr/bin/env bash
# The bundled corpus is what its generator makes, and it shares no near-duplicate with the
# hand-written test split: regenerates every generated file with the documented seed into a
# temporary folder, compares them byte for byte with datasets/data, then runs
# tools/corpus/overlap.py (exit 1 on any test utterance or dialogue within 3-gram Jaccard 0.8 or
# normalized edit distance 0.2 of training or validation text). Standard library Python only.
#
#   bash tests/integration/test_corpus_overlap.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
tmp="$(mktemp -d /tmp/ctune-corpus.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
python3 tools/corpus/generate.py --seed 1234 --out "$tmp" > "$tmp/stats.txt"
status=0
for f in labels.json intent_train.jsonl intent_val.jsonl dialog_train.jsonl dialog_val.jsonl \
         sft_train.jsonl sft_val.jsonl pretrain_train.txt pretrain_val.txt; do
    cmp -s "$tmp/$f" "datasets/data/$f" ||
        { echo "FAIL: datasets/data/$f is not what tools/corpus/generate.py --seed 1234 writes; regenerate it"; status=1; }
done
python3 tools/corpus/overlap.py > "$tmp/overlap.txt" ||
    { sed -n '/^near-duplicates/,$p' "$tmp/overlap.txt"; echo "FAIL: near-duplicates of the test split in the training data"; status=1; }
grep '^near-duplicates' "$tmp/overlap.txt"
[ $status -eq 0 ] && echo "test_corpus_overlap: ok"
exit $status
