#!/usr/bin/env bash
# The main job: `ctune run recipes/intent_zh_pipeline.yaml` (docs/pipeline.md), from the bundled
# corpus to a served INT8 intent model, with the table it ends with. Kept for the scripts and CI
# jobs that call it by this name; the README runs the command itself.
# Runs from the repository root with the binary of scripts/setup.sh (CT_BUILD_DIR, default build).
# Extra arguments go to `ctune run` (key=value overrides of the pipeline file, --stage NAME).
# CT_RUNS_DIR (default runs) holds the run folder, CT_RUNS_DIR/intent_zh_pipeline. Running it
# again skips the finished stages; Ctrl-C stops it (exit status 130) and the next run continues.
set -euo pipefail
cd "$(dirname "$0")/.."
ctune="./${CT_BUILD_DIR:-build}/ctune"
[ -x "$ctune" ] || { echo "main_job.sh: $ctune not found; run scripts/setup.sh first" >&2; exit 1; }
exec "$ctune" run recipes/intent_zh_pipeline.yaml output_dir="${CT_RUNS_DIR:-runs}/intent_zh_pipeline" "$@"
