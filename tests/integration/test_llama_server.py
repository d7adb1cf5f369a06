"""llama-server serves ctune's Q8_0 GGUF of the trained intent model: started on a loopback port,
it answers /v1/chat/completions for every prompt of the test split (datasets/data/intent_test.jsonl).

- The client sends no system message: the chat template embedded in the GGUF must supply the
  one the model was trained with. Checked directly (/apply-template renders the training system
  prompt of ctune_task.json) and through the answers.
- Greedy (temperature 0), 4 requests in flight (continuous batching over 4 slots).
- On >= 99% of the prompts the answer equals ctune's own greedy generation on the same Q8_0 file
  (`ctune generate --model FILE.gguf`).
- The exact-label accuracy of the served answers is printed beside `ctune eval`'s accuracy
  (log-likelihood scoring of the 15 labels) on the same split.
"""
import atexit
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from llama_cpp_common import (CTUNE, ROOT, TMP, export_gguf, intent_model, labels, llama_bin, model_folder,
                              test_split)

MIN_AGREEMENT = 0.99
MAX_TOKENS = 16
SLOTS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, path, body, timeout=120):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_ready(port, server, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"llama-server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"llama-server not ready after {seconds} s")


# A prompt longer than the model's context (128 positions for the intent model) is refused by
# both programs; the two refusals count as the same answer (and as a wrong label).
REFUSED = "<refused: longer than the model's context>"


def chat(port, text):
    try:
        reply = post(port, "/v1/chat/completions", {"messages": [{"role": "user", "content": text}],
                                                    "temperature": 0, "max_tokens": MAX_TOKENS})
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        if e.code == 400 and "exceeds the available context size" in body:
            return REFUSED
        raise SystemExit(f"llama-server answered {e.code}: {body[:500]}")
    return reply["choices"][0]["message"]["content"]


def ctune_answer(gguf, text):
    # One thread per process, two processes at a time: the prompts are short, and a 2-thread
    # team per tiny matrix product mostly waits on the other thread on a busy machine.
    done = subprocess.run([CTUNE, "generate", "--model", gguf, "--prompt", text, "--max-new-tokens", str(MAX_TOKENS)],
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    if done.returncode != 0 and "but the model's context is" in done.stderr:
        return REFUSED
    if done.returncode != 0:
        raise SystemExit(f"ctune generate failed with exit {done.returncode}: {done.stderr[-1000:]}")
    return done.stdout.rstrip("\n")


def start_ctune_eval(model):
    """`ctune eval` on the test split, run beside the rest of the test."""
    return subprocess.Popen([CTUNE, "eval", "--model", model, "--data",
                             os.path.join(ROOT, "datasets", "data", "intent_test.jsonl")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ctune_eval_accuracy(proc):
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"ctune eval failed with exit {proc.returncode}: {err[-2000:]}")
    for line in out.splitlines():
        if line.startswith("accuracy"):
            return float(line.split()[1])
    raise SystemExit("ctune eval printed no accuracy line")


def main():
    model = intent_model()
    folder = model_folder(model)
    names = labels(folder)
    system = json.load(open(os.path.join(folder, "ctune_task.json"), encoding="utf-8"))["system_prompt"]
    gguf = export_gguf(folder, "q8_0", os.path.join(TMP, "intent-serve-q8_0.gguf"))
    evaluation = start_ctune_eval(model)
    atexit.register(lambda: evaluation.poll() is None and evaluation.kill())
    rows = test_split()
    port = free_port()
    log = open(os.path.join(TMP, "llama-server.log"), "w")
    cmd = [llama_bin("llama-server"), "-m", gguf, "--host", "127.0.0.1", "--port", str(port), "-c", str(256 * SLOTS),
           "-np", str(SLOTS), "-t", "2", "--jinja", "--no-ui"]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, server)
        rendered = post(port, "/apply-template", {"messages": [{"role": "user", "content": "你好"}]})["prompt"]
        # the training system prompt, or none at all when the model was trained without one
        template_ok = (f"<|im_start|>system\n{system}<|im_end|>\n" in rendered if system
                       else "<|im_start|>system" not in rendered)
        print(f"embedded chat template, no system message sent: renders the training system prompt: "
              f"{'yes' if template_ok else 'NO'}\n  {rendered!r}")
        start = time.time()
        with concurrent.futures.ThreadPoolExecutor(SLOTS) as pool:
            served = list(pool.map(lambda r: chat(port, r["text"]), rows))
        serve_s = time.time() - start
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        local = list(pool.map(lambda r: ctune_answer(gguf, r["text"]), rows))
    local_s = time.time() - start
    same = sum(a == b for a, b in zip(served, local))
    for r, a, b in list((r, a, b) for r, a, b in zip(rows, served, local) if a != b)[:10]:
        print(f"  differs: {r['text']!r}: llama-server {a!r}, ctune {b!r}")
    served_acc = sum(a.strip() == names[r["label"]] for r, a in zip(rows, served)) / len(rows)
    local_acc = sum(a.strip() == names[r["label"]] for r, a in zip(rows, local)) / len(rows)
    eval_acc = ctune_eval_accuracy(evaluation)
    agreement = same / len(rows)
    refused = sum(a == REFUSED and b == REFUSED for a, b in zip(served, local))
    if refused:
        print(f"{refused} prompts longer than the model's context were refused by both")
    print(f"llama-server (Q8_0, {SLOTS} slots) vs ctune generate on the same file: {same}/{len(rows)} answers equal "
          f"({100 * agreement:.2f}%, need >= {100 * MIN_AGREEMENT:.0f}%); served in {serve_s:.1f} s, ctune {local_s:.1f} s")
    print(f"exact-label accuracy: llama-server {served_acc:.4f}, ctune generate {local_acc:.4f}; "
          f"ctune eval (f32, label log-likelihood) {eval_acc:.4f}")
    ok = template_ok and agreement >= MIN_AGREEMENT
    print("all checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
