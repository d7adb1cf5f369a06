#!/usr/bin/env python3
"""The Hugging Face `tokenizers` library on the text bench_tokenizer encodes, on one thread.

    RAYON_NUM_THREADS=1 python3 bench/bench_tokenizer_hf.py [--bench build/bench_tokenizer]

Asks bench_tokenizer for its text (--dump), times the library encoding it line by line (best of
three passes, encode_batch so Python's loop does not count), then runs bench_tokenizer itself
and prints both JSON lines and one with the ratio ctune / library.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # must be set before the library starts its thread pool
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default=str(ROOT / "build" / "bench_tokenizer"), help="the bench_tokenizer binary")
    args = parser.parse_args()
    shared = Path(os.environ.get("CT_SHARED_DIR", ROOT.parent / "shared"))
    tokenizer_path = shared / "data" / "qwen3-tokenizer" / "tokenizer.json"
    if not tokenizer_path.exists():
        sys.exit(f"{tokenizer_path} not found: set CT_SHARED_DIR")
    env = {**os.environ, "CT_SOURCE_DIR": str(ROOT)}
    with tempfile.NamedTemporaryFile(suffix=".txt") as dump:
        subprocess.run([args.bench, "--dump", dump.name], check=True, env=env)
        text = Path(dump.name).read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.encode_special_tokens = True  # ctune's default: special-token text is plain text
    best, tokens = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        encodings = tok.encode_batch(lines, add_special_tokens=False)
        best = min(best, time.perf_counter() - start)
        tokens = sum(len(e.ids) for e in encodings)
    nbytes = len(text.encode("utf-8"))
    hf = {"bench": "tokenizer_encode_hf", "tokenizers": tokenizers.__version__, "bytes": nbytes,
          "lines": len(lines), "tokens": tokens, "seconds": round(best, 4),
          "mb_per_s": round(nbytes / 1e6 / best, 2), "threads": 1}
    print(json.dumps(hf))
    out = subprocess.run([args.bench], check=True, env=env, capture_output=True, text=True).stdout
    print(out, end="")
    ours = json.loads(out.splitlines()[0])
    print(json.dumps({"bench": "tokenizer_encode_ratio", "ctune_mb_per_s": ours["mb_per_s"],
                      "hf_mb_per_s": hf["mb_per_s"], "ratio": round(ours["mb_per_s"] / hf["mb_per_s"], 2),
                      "same_token_count": ours["tokens"] == tokens}))


if __name__ == "__main__":
    main()
