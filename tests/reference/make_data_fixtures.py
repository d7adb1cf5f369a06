#!/usr/bin/env python3
"""Regenerates tests/fixtures/data/qwen3_sft.jsonl: what training examples of the bundled corpus
become with the real Qwen3 tokenizer, computed here independently of ctune, which
tests/test_data.c requires ctune to reproduce exactly.

    pip install tokenizers==0.23.3
    python3 tests/reference/make_data_fixtures.py

For each case the ChatML text is written out by hand from the format
(<|im_start|>role\\ncontent<|im_end|>\\n per message), encoded with the `tokenizers` library, and
the loss mask is taken from the token offsets: a token is a target when it overlaps the content
of a trained assistant turn or is the <|im_end|> closing it. Evaluation candidates split the
encoding of the conversation with each label's answer at the answer's first character.

The Qwen3 tokenizer is read from $CT_SHARED_DIR/data/qwen3-tokenizer (default ../shared next to
the source root); it is not copied here.
"""
import json
import os
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "data"
OUT = ROOT / "tests" / "fixtures" / "data"
SYSTEM = "你是电商平台的客服助手。请判断用户的意图。"


def shared_dir():
    return Path(os.environ.get("CT_SHARED_DIR", ROOT.parent / "shared"))


def read_jsonl(name):
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def render(messages, trained):
    """The ChatML text, and the character ranges [content start, end of <|im_end|>) of the
    assistant turns whose index is in `trained`."""
    text, ranges = "", []
    for i, m in enumerate(messages):
        text += "<|im_start|>" + m["role"] + "\n"
        start = len(text)
        text += m["content"] + "<|im_end|>"
        if i in trained:
            ranges.append((start, len(text)))
        text += "\n"
    return text, ranges


def encode(tok, messages, loss_on):
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    trained = set(assistant if loss_on == "all" else assistant[-1:])
    text, ranges = render(messages, trained)
    enc = tok.encode(text, add_special_tokens=False)
    mask = [int(any(s < end and e > start for start, end in ranges)) for s, e in enc.offsets]
    return enc.ids, mask, enc.offsets, ranges


def candidates(tok, messages, displays):
    prompt, answers = None, []
    for display in displays:
        ids, mask, _, _ = encode(tok, messages + [{"role": "assistant", "content": display}], "last")
        first = mask.index(1)
        last = len(mask) - mask[::-1].index(1)
        assert prompt is None or prompt == ids[:first], "the prompt depends on the answer"
        prompt = ids[:first]
        answers.append(ids[first:last])
    return prompt, answers


def main():
    tok = Tokenizer.from_file(str(shared_dir() / "data" / "qwen3-tokenizer" / "tokenizer.json"))
    with open(DATA / "labels.json", encoding="utf-8") as f:
        labels = json.load(f)
    displays = list(labels.values())
    intents = read_jsonl("intent_val.jsonl")
    dialogs = read_jsonl("dialog_val.jsonl")
    cases = []

    def intent_messages(item, system):
        head = [{"role": "system", "content": SYSTEM}] if system else []
        return head + [{"role": "user", "content": item["text"]}]

    for line in (1, 2, 3):
        item = intents[line - 1]
        for system in (False, True):
            msgs = intent_messages(item, system) + [{"role": "assistant", "content": labels[item["label"]]}]
            ids, mask, _, _ = encode(tok, msgs, "last")
            cases.append({"kind": "encode", "format": "intent", "file": "intent_val.jsonl", "line": line,
                          "system": SYSTEM if system else "", "loss_on": "last", "ids": ids, "mask": mask})
    # Dialogues with at least one agent turn, so the two loss settings differ.
    dialog_lines = [i + 1 for i, d in enumerate(dialogs) if len(d["messages"]) >= 3][:2]
    for line in dialog_lines:
        d = dialogs[line - 1]
        for loss_on in ("all", "last"):
            msgs = d["messages"] + [{"role": "assistant", "content": labels[d["label"]]}]
            ids, mask, _, _ = encode(tok, msgs, loss_on)
            cases.append({"kind": "encode", "format": "dialog_intent", "file": "dialog_val.jsonl",
                          "line": line, "system": "", "loss_on": loss_on, "ids": ids, "mask": mask})
    for line in (1, 2):
        item = intents[line - 1]
        prompt, answers = candidates(tok, intent_messages(item, True), displays)
        cases.append({"kind": "candidates", "format": "intent", "file": "intent_val.jsonl", "line": line,
                      "system": SYSTEM, "prompt": prompt, "answers": answers})
    d = dialogs[dialog_lines[0] - 1]
    prompt, answers = candidates(tok, d["messages"], displays)
    cases.append({"kind": "candidates", "format": "dialog_intent", "file": "dialog_val.jsonl",
                  "line": dialog_lines[0], "system": "", "prompt": prompt, "answers": answers})

    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "qwen3_sft.jsonl", "w", encoding="utf-8") as f:
        meta = {"tokenizers": tokenizers.__version__, "script": "tests/reference/make_data_fixtures.py"}
        f.write(json.dumps({"meta": meta}) + "\n")
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {OUT / 'qwen3_sft.jsonl'}")


if __name__ == "__main__":
    main()
