#!/usr/bin/env bash
# Re-measures the main job and rewrites its row in docs/PERF.md, so the figure there is always the
# one this build gives (never typed by hand). Runs scripts/main_job.sh (extra arguments are passed
# on), reads the summary it writes (runs/main_job.json), and replaces the lines between the
# `main-job-results` markers of docs/PERF.md with a table row for this machine and date.
#
#   bash scripts/record_main_job.sh            # then review `git diff docs/PERF.md` and commit
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/main_job.sh "$@"

summary=runs/main_job.json
[ -f "$summary" ] || { echo "record_main_job.sh: $summary was not written" >&2; exit 1; }
python3 - "$summary" docs/PERF.md <<'EOF'
import json, platform, re, subprocess, sys

summary_path, perf_path = sys.argv[1], sys.argv[2]
s = json.load(open(summary_path))

def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()

cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[2]  # the 15-minute load: how shared the machine was
row = ("| {date} | {cores}-core {arch} ({cpu}), {blas} | {pre} s + {ft} s + {ev} s = {total} s "
       "(CPU {pcpu} s + {fcpu} s; 15-min load {load}) | {acc:.4f} / {accn:.4f} | {multi:.4f} |").format(
    date=s["date"], cores=cores, arch=platform.machine(), cpu=cpu_model(), blas=s["blas"],
    pre=s["pretrain_s"], ft=s["finetune_s"], ev=s["eval_s"],
    total=s["pretrain_s"] + s["finetune_s"] + s["eval_s"], pcpu=s["pretrain_cpu_s"], fcpu=s["finetune_cpu_s"],
    load=load, acc=s["accuracy"], accn=s["accuracy_length_normalized"], multi=s["multi_turn_accuracy"])

text = open(perf_path).read()
begin, end = "<!-- main-job-results:begin -->", "<!-- main-job-results:end -->"
if begin not in text or end not in text:
    sys.exit(f"record_main_job.sh: {perf_path} has no {begin} ... {end} block")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
block = ("\n| date | machine, BLAS kernels | pretraining + fine-tuning + test evaluation (wall; CPU of the "
         "two training stages) | single-turn test accuracy (summed / length-normalized) | multi-turn test accuracy |"
         "\n| --- | --- | --- | --- | --- |\n" + row + "\n")
open(perf_path, "w").write(head + begin + block + end + tail)
print("docs/PERF.md: " + row)
EOF
