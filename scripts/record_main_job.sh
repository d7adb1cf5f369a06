#!/usr/bin/env bash
# Re-measures the main job and rewrites its row in docs/PERF.md, so the figure there is always the
# one this build gives (never typed by hand). Runs scripts/main_job.sh (extra arguments are passed
# on), reads the report the pipeline writes (runs/intent_zh_pipeline/report.json), and replaces the
# lines between the `main-job-results` markers of docs/PERF.md with a table row for this machine
# and date. Finished stages are skipped: remove the run folder first to time every stage.
#
#   rm -rf runs/intent_zh_pipeline && bash scripts/record_main_job.sh   # then review `git diff docs/PERF.md`
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/main_job.sh "$@"

report="${CT_RUNS_DIR:-runs}/intent_zh_pipeline/report.json"
[ -f "$report" ] || { echo "record_main_job.sh: $report was not written" >&2; exit 1; }
python3 - "$report" docs/PERF.md "$("./${CT_BUILD_DIR:-build}/ctune" --version | sed -n 2p)" <<'PY'
import datetime, json, platform, subprocess, sys

report_path, perf_path, blas = sys.argv[1], sys.argv[2], sys.argv[3]
stages = json.load(open(report_path))["stages"]

def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()

def acc(stage):
    m = stages.get(stage, {}).get("metrics", {})
    return "{:.4f} / {:.4f}".format(m["test_accuracy"], m["dialog_accuracy"]) if "test_accuracy" in m else "-"

cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
seconds = " + ".join("{:.0f}".format(stages[s]["seconds"]) for s in stages)
total = sum(stages[s]["seconds"] for s in stages)
row = "| {date} | {cores}-core {arch} ({cpu}), {blas} | {seconds} = {total:.0f} s | {t} | {s} | {p} | {q} |".format(
    date=datetime.date.today().isoformat(), cores=cores, arch=platform.machine(), cpu=cpu_model(), blas=blas,
    seconds=seconds, total=total, t=acc("merge"), s=acc("distill"), p=acc("prune"), q=acc("quantize"))

text = open(perf_path).read()
begin, end = "<!-- main-job-results:begin -->", "<!-- main-job-results:end -->"
if begin not in text or end not in text:
    sys.exit(f"record_main_job.sh: {perf_path} has no {begin} ... {end} block")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
block = ("\n| date | machine, BLAS kernels | stage seconds (teacher + adapt + merge + distill + prune + quantize + "
         "export + serve) | test accuracy, single-turn / multi-turn: teacher | student | pruned student | INT8 student |\n"
         "| --- | --- | --- | --- | --- | --- | --- |\n" + row + "\n")
open(perf_path, "w").write(head + begin + block + end + tail)
print("docs/PERF.md: " + row)
PY
