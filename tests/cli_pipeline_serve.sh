#!/bin/sh
# The serve stage with a real llama-server (CT_LLAMA_SERVER, else the integration tests' build in
# ~/.cache/ctune-ci; skipped, exit 77, when there is none): tests/fixtures/pipeline_tiny.yaml
# served on a loopback port, eight test prompts from one and then four clients; the record holds
# the accuracy, the agreement with ctune generate and the latency figures, answers.jsonl one line
# per prompt, the table the serving rows. The answers of a tiny random model are not checked.
#   sh tests/cli_pipeline_serve.sh path/to/ctune
set -u
ctune=$1
server=${CT_LLAMA_SERVER:-}
if [ -z "$server" ]; then
    for f in "${CT_CACHE_DIR:-$HOME/.cache/ctune-ci}"/llama.cpp-*/build/bin/llama-server; do
        [ -x "$f" ] && server=$f
    done
fi
[ -n "$server" ] && [ -x "$server" ] || { echo "no llama-server (CT_LLAMA_SERVER or the CI cache): skipped"; exit 77; }
tmp=$(mktemp -d /tmp/ctune-cli-pipeline-serve.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$ctune" run tests/fixtures/pipeline_tiny.yaml output_dir="$tmp/run" serve.server="$server" > "$tmp/out" 2> "$tmp/err" ||
    { cat "$tmp/err"; fail "ctune run"; }
rec=$tmp/run/serve/stage.json
for key in served_accuracy agreement ctune_generate_accuracy p50_ms p95_ms requests_per_s tokens_per_s; do
    grep -q "\"$key\":" "$rec" || { cat "$rec"; fail "no $key in the serve record"; }
done
[ "$(grep -c '"clients":' "$rec")" -eq 2 ] || fail "not two client counts"
[ "$(wc -l < "$tmp/run/serve/answers.jsonl")" -eq 8 ] || fail "answers.jsonl is not one line per prompt"
grep -q "served INT8 model (GGUF Q8_0, llama-server): exact-label accuracy [0-9.]* on 8 test prompts" "$tmp/out" ||
    { cat "$tmp/out"; fail "no serving line in the table"; }
grep -q "^4  *8  *[0-9.]*  *[0-9.]*" "$tmp/out" || { cat "$tmp/out"; fail "no 4-client row"; }
echo "serve stage checks passed"
