#!/usr/bin/env python3
"""Overlap between the hand-written test split and everything the model may train or tune on.

    python3 tools/corpus/overlap.py [--data datasets/data]

Reference side ("train"): intent_train/intent_val texts, every turn of dialog_train/dialog_val,
and pretrain_train/pretrain_val text. Test side: intent_test texts and dialog_test dialogues.

Reports
  * character n-gram overlap (n = 3, 4, 5): the share of the test split's distinct n-grams, and
    of its n-gram occurrences, that also occur anywhere in the reference text; the same numbers
    for intent_val against intent_train are printed for comparison (a generated split against
    its own generator);
  * near-duplicates: a test utterance (or a test dialogue's joined user turns) whose normalized
    text has character-3-gram Jaccard >= 0.8, or normalized edit distance <= 0.2, with some
    reference utterance (or reference dialogue's joined user turns);
  * exact matches of test dialogues' last user turns among reference user turns (informational:
    these short context-dependent replies are generic by design; only the dialogue as a whole
    must be new).
Normalization: NFKC, lower case, traditional -> simplified for common characters, digit runs ->
"#", everything that is not a CJK character, letter or "#" removed.
Exits 1 when any near-duplicate exists, else 0. Standard library only.
"""
import argparse
import json
import os
import re
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lexicon  # noqa: E402  (only for the traditional -> simplified character table)

T2S = {lexicon.S2T_PAIRS[i + 1]: lexicon.S2T_PAIRS[i] for i in range(0, len(lexicon.S2T_PAIRS), 2)}
KEEP = re.compile(r"[#a-z\u3400-\u4dbf\u4e00-\u9fff]")


def normalize(text):
    t = unicodedata.normalize("NFKC", text).lower()
    t = "".join(T2S.get(c, c) for c in t)
    t = re.sub(r"\d+", "#", t)
    return "".join(KEEP.findall(t))


def grams(s, n):
    return [s[i:i + n] for i in range(len(s) - n + 1)]


def jaccard(a, b):
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def edit_distance(a, b, limit):
    """Levenshtein distance, or limit + 1 once it must exceed limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def user_joined(d):
    return "｜".join(m["content"] for m in d["messages"] if m["role"] == "user")


class NearIndex:
    """Finds reference strings that are near-duplicates of a query (after normalization)."""

    def __init__(self, texts, jac=0.8, ned=0.2):
        self.jac, self.ned = jac, ned
        self.items = {}  # normalized -> one original
        for t in texts:
            n = normalize(t)
            if n:
                self.items.setdefault(n, t)
        self.keys = list(self.items)
        self.tri = [set(grams(k, 3)) for k in self.keys]
        self.index = {}
        for i, k in enumerate(self.keys):
            for g in set(grams(k, 2)) or {k}:
                self.index.setdefault(g, []).append(i)

    def find(self, text):
        q = normalize(text)
        if not q:
            return None
        if q in self.items:
            return (self.items[q], 1.0, 0.0)
        qtri = set(grams(q, 3))
        qbi = set(grams(q, 2)) or {q}
        counts = {}
        for g in qbi:
            for i in self.index.get(g, ()):
                counts[i] = counts.get(i, 0) + 1
        best = None
        for i, shared in counts.items():
            k = self.keys[i]
            longest = max(len(k), len(q))
            if shared < 0.5 * (min(len(k), len(q)) - 1):
                continue
            jac = jaccard(qtri, self.tri[i]) if (qtri and self.tri[i]) else 0.0
            limit = int(self.ned * longest)
            dist = edit_distance(q, k, limit)
            ned = dist / longest
            if jac >= self.jac or ned <= self.ned:
                score = (jac, -ned)
                if best is None or score > best[0]:
                    best = (score, self.items[k], jac, ned)
        return None if best is None else best[1:]


def ngram_overlap(test_texts, ref_sets, n):
    types, total, hit_types, hit_tokens = set(), 0, set(), 0
    for t in test_texts:
        for g in grams(t, n):
            total += 1
            types.add(g)
            if g in ref_sets[n]:
                hit_tokens += 1
                hit_types.add(g)
    return (len(hit_types) / max(len(types), 1), hit_tokens / max(total, 1), len(types))


def main():
    ap = argparse.ArgumentParser(description="test-split overlap and near-duplicate report")
    ap.add_argument("--data", default="datasets/data")
    ap.add_argument("--jaccard", type=float, default=0.8)
    ap.add_argument("--edit", type=float, default=0.2)
    args = ap.parse_args()
    p = lambda name: os.path.join(args.data, name)  # noqa: E731

    intent_train = read_jsonl(p("intent_train.jsonl"))
    intent_val = read_jsonl(p("intent_val.jsonl"))
    dialogs = read_jsonl(p("dialog_train.jsonl")) + read_jsonl(p("dialog_val.jsonl"))
    pretrain = ""
    for name in ("pretrain_train.txt", "pretrain_val.txt"):
        with open(p(name), encoding="utf-8") as f:
            pretrain += f.read() + "\n"
    test = read_jsonl(p("intent_test.jsonl"))
    dtest = read_jsonl(p("dialog_test.jsonl"))

    ref_utts = [x["text"] for x in intent_train + intent_val]
    ref_utts += [m["content"] for d in dialogs for m in d["messages"] if m["role"] == "user"]
    ref_utts += [line[3:] for line in pretrain.split("\n") if line.startswith("用户：")]
    ref_dialogs = [user_joined(d) for d in dialogs]
    ref_dialogs += ["｜".join(line[3:] for line in para.split("\n") if line.startswith("用户："))
                    for para in pretrain.split("\n\n")]
    ref_text = [x["text"] for x in intent_train + intent_val]
    ref_text += [m["content"] for d in dialogs for m in d["messages"]]
    ref_text.append(pretrain)

    ref_sets = {n: set() for n in (3, 4, 5)}
    for t in ref_text:
        for n in (3, 4, 5):
            ref_sets[n].update(grams(t, n))
    test_texts = [x["text"] for x in test] + [m["content"] for d in dtest for m in d["messages"]]
    train_sets = {n: set() for n in (3, 4, 5)}
    for x in intent_train:
        for n in (3, 4, 5):
            train_sets[n].update(grams(x["text"], n))

    print("test split: %d utterances, %d dialogues; reference: %d utterances, %d dialogues, %d chars of text"
          % (len(test), len(dtest), len(set(ref_utts)), len(ref_dialogs), sum(map(len, ref_text))))
    print("character n-gram overlap (share of test n-grams also present in training/validation text):")
    print("   n   distinct-types  occurrences   | intent_val vs intent_train (generated, for comparison)")
    for n in (3, 4, 5):
        ty, tok, ntypes = ngram_overlap(test_texts, ref_sets, n)
        vty, vtok, _ = ngram_overlap([x["text"] for x in intent_val], train_sets, n)
        print("   %d   %6.1f%% of %-6d %6.1f%%       | %6.1f%% / %6.1f%%" % (n, 100 * ty, ntypes, 100 * tok, 100 * vty, 100 * vtok))

    # per-utterance 5-gram containment, to spot items that are mostly made of training phrases
    cont = []
    for x in test:
        g = grams(x["text"], 5)
        if g:
            cont.append(sum(1 for s in g if s in ref_sets[5]) / len(g))
    cont.sort()
    if cont:
        print("per test utterance 5-gram containment: median %.2f, 90th percentile %.2f, max %.2f"
              % (cont[len(cont) // 2], cont[int(len(cont) * 0.9)], cont[-1]))

    utt_index = NearIndex(ref_utts, args.jaccard, args.edit)
    dlg_index = NearIndex(ref_dialogs, args.jaccard, args.edit)
    near = []
    for i, x in enumerate(test, 1):
        hit = utt_index.find(x["text"])
        if hit:
            near.append(("intent_test.jsonl:%d" % i, x["text"], hit))
    for i, d in enumerate(dtest, 1):
        hit = dlg_index.find(user_joined(d))
        if hit:
            near.append(("dialog_test.jsonl:%d" % i, user_joined(d), hit))
    ref_exact = set(ref_utts)
    last_exact = [(i, d["messages"][-1]["content"]) for i, d in enumerate(dtest, 1)
                  if d["messages"][-1]["content"] in ref_exact]
    print("dialog_test last user turns that occur verbatim as a training user turn: %d of %d%s"
          % (len(last_exact), len(dtest), "".join("\n   dialog_test.jsonl:%d %s" % e for e in last_exact)))
    print("near-duplicates (3-gram Jaccard >= %.2f or normalized edit distance <= %.2f): %d"
          % (args.jaccard, args.edit, len(near)))
    for where, text, (ref, jac, ned) in near:
        print("   %s  %s\n      ~ %s  (jaccard %.2f, edit %.2f)" % (where, text, ref, jac, ned))
    return 1 if near else 0


if __name__ == "__main__":
    sys.exit(main())
