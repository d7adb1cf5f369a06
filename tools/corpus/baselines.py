#!/usr/bin/env python3
"""Baselines on the hand-written test split (standard library only).

    python3 tools/corpus/baselines.py [--data datasets/data] [--json datasets/data/baselines.json]

  * majority class: the most frequent label of the training data;
  * multinomial naive Bayes over character 1-3-grams (additive smoothing alpha);
  * multinomial logistic regression over the same features (SGD, L2), as a stronger
    bag-of-n-grams reference.
Training data: intent_train.jsonl texts plus dialog_train.jsonl dialogues (the user turns joined
with "｜"). Hyper-parameters (alpha; L2 strength and epochs) are picked on the validation split
(intent_val + dialog_val) only. The test split is used once, for the final numbers: single-turn
test, dialog test (user turns joined), and both together; "dialog test, last turn only" shows how
much the context matters. Metrics: accuracy and macro-F1 over the labels present in the gold or
predicted labels. The figures are also written as JSON (--json; default
datasets/data/baselines.json), which scripts read to print the baselines beside a model.
"""
import argparse
import json
import math
import os
import random
import unicodedata
from collections import Counter, defaultdict

NGRAMS = (1, 2, 3)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def dialog_text(d, last_only=False):
    users = [m["content"] for m in d["messages"] if m["role"] == "user"]
    return users[-1] if last_only else "｜".join(users)


def features(text):
    t = "^" + unicodedata.normalize("NFKC", text).lower() + "$"
    feats = Counter()
    for n in NGRAMS:
        for i in range(len(t) - n + 1):
            feats[t[i:i + n]] += 1
    return feats


def metrics(gold, pred):
    acc = sum(g == p for g, p in zip(gold, pred)) / max(len(gold), 1)
    labels = sorted(set(gold) | set(pred))
    f1s = []
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == lab and p == lab)
        fp = sum(1 for g, p in zip(gold, pred) if g != lab and p == lab)
        fn = sum(1 for g, p in zip(gold, pred) if g == lab and p != lab)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return acc, sum(f1s) / max(len(f1s), 1)


class NaiveBayes:
    def __init__(self, labels, alpha):
        self.labels, self.alpha = labels, alpha

    def fit(self, X, y):
        self.count = {lab: Counter() for lab in self.labels}
        self.total = Counter()
        docs = Counter(y)
        for feats, lab in zip(X, y):
            self.count[lab].update(feats)
            self.total[lab] += sum(feats.values())
        self.vocab = set()
        for lab in self.labels:
            self.vocab.update(self.count[lab])
        self.prior = {lab: math.log((docs[lab] + 1) / (len(y) + len(self.labels))) for lab in self.labels}
        return self

    def predict(self, feats):
        V = len(self.vocab)
        best, best_score = None, -math.inf
        for lab in self.labels:
            denom = math.log(self.total[lab] + self.alpha * V)
            c = self.count[lab]
            s = self.prior[lab]
            for f, k in feats.items():
                if f in self.vocab:
                    s += k * (math.log(c.get(f, 0) + self.alpha) - denom)
            if s > best_score:
                best, best_score = lab, s
        return best


class LogReg:
    """Softmax regression on L2-normalized n-gram counts; weights stored per feature."""

    def __init__(self, labels, l2, epochs, seed=0):
        self.labels, self.l2, self.epochs, self.seed = labels, l2, epochs, seed

    @staticmethod
    def _normalize(feats):
        n = math.sqrt(sum(v * v for v in feats.values())) or 1.0
        return [(f, v / n) for f, v in feats.items()]

    def _scores(self, feats):
        s = list(self.b)
        K = len(s)
        for f, v in feats:
            w = self.w.get(f)
            if w is not None:
                for k in range(K):
                    s[k] += w[k] * v
        return s

    def fit(self, X, y):
        rng = random.Random(self.seed)
        K = len(self.labels)
        index = {lab: i for i, lab in enumerate(self.labels)}
        self.w, self.b = {}, [0.0] * K
        data = [(self._normalize(feats), index[lab]) for feats, lab in zip(X, y)]
        step = 0
        for _ in range(self.epochs):
            rng.shuffle(data)
            for feats, target in data:
                step += 1
                lr = 0.5 / (1.0 + step * 1e-4)
                s = self._scores(feats)
                m = max(s)
                e = [math.exp(v - m) for v in s]
                z = sum(e)
                g = [lr * (e[k] / z - (1.0 if k == target else 0.0)) for k in range(K)]
                decay = 1.0 - lr * self.l2
                for f, v in feats:
                    w = self.w.get(f)
                    if w is None:
                        w = self.w[f] = [0.0] * K
                    for k in range(K):
                        w[k] = w[k] * decay - g[k] * v
                for k in range(K):
                    self.b[k] -= g[k]
        return self

    def predict(self, feats):
        s = self._scores(self._normalize(feats))
        return self.labels[max(range(len(s)), key=s.__getitem__)]


def main():
    ap = argparse.ArgumentParser(description="majority-class, naive Bayes and logistic-regression baselines")
    ap.add_argument("--data", default="datasets/data")
    ap.add_argument("--json", default=None, help="where to write the figures (default DATA/baselines.json)")
    args = ap.parse_args()
    p = lambda name: os.path.join(args.data, name)  # noqa: E731
    with open(p("labels.json"), encoding="utf-8") as f:
        labels = list(json.load(f))

    train = [(x["text"], x["label"]) for x in read_jsonl(p("intent_train.jsonl"))]
    train += [(dialog_text(d), d["label"]) for d in read_jsonl(p("dialog_train.jsonl"))]
    val = [(x["text"], x["label"]) for x in read_jsonl(p("intent_val.jsonl"))]
    val += [(dialog_text(d), d["label"]) for d in read_jsonl(p("dialog_val.jsonl"))]
    test_single = [(x["text"], x["label"]) for x in read_jsonl(p("intent_test.jsonl"))]
    dtest = read_jsonl(p("dialog_test.jsonl"))
    test_dialog = [(dialog_text(d), d["label"]) for d in dtest]
    test_last = [(dialog_text(d, last_only=True), d["label"]) for d in dtest]

    Xtr = [features(t) for t, _ in train]
    ytr = [lab for _, lab in train]
    Xva = [features(t) for t, _ in val]
    yva = [lab for _, lab in val]

    counts = Counter(ytr)
    majority = max(labels, key=lambda lab: (counts[lab], -labels.index(lab)))

    n_single = len(read_jsonl(p("intent_train.jsonl")))
    print("train %d examples (%d single-turn + %d dialogues), val %d, test %d utterances + %d dialogues"
          % (len(train), n_single, len(train) - n_single, len(val), len(test_single), len(test_dialog)))
    print("tuning on val:")
    best_nb = None
    for alpha in (0.01, 0.03, 0.1, 0.3, 1.0):
        nb = NaiveBayes(labels, alpha).fit(Xtr, ytr)
        acc, f1 = metrics(yva, [nb.predict(x) for x in Xva])
        print("   naive Bayes alpha=%-5g val accuracy %.3f macro-F1 %.3f" % (alpha, acc, f1))
        if best_nb is None or f1 > best_nb[0]:
            best_nb = (f1, alpha, nb)
    best_lr = None
    for l2 in (1e-4, 1e-3, 3e-3, 1e-2):
        for epochs in (5, 10):
            lr = LogReg(labels, l2, epochs).fit(Xtr, ytr)
            acc, f1 = metrics(yva, [lr.predict(x) for x in Xva])
            print("   logistic regression l2=%-6g epochs=%-2d val accuracy %.3f macro-F1 %.3f" % (l2, epochs, acc, f1))
            if best_lr is None or f1 > best_lr[0]:
                best_lr = (f1, (l2, epochs), lr)

    models = [("majority", "majority class (%s)" % majority, {"label": majority}, lambda x: majority),
              ("naive_bayes", "char 1-3-gram naive Bayes (alpha=%g)" % best_nb[1], {"alpha": best_nb[1]},
               best_nb[2].predict),
              ("logistic_regression", "char 1-3-gram logistic regression (l2=%g, %d epochs)" % best_lr[1],
               {"l2": best_lr[1][0], "epochs": best_lr[1][1]}, best_lr[2].predict)]
    val_single = [(x["text"], x["label"]) for x in read_jsonl(p("intent_val.jsonl"))]
    val_dialog = [(dialog_text(d), d["label"]) for d in read_jsonl(p("dialog_val.jsonl"))]
    sets = [("single_turn_val", "single-turn val", val_single),
            ("multi_turn_val", "dialog val (user turns joined)", val_dialog),
            ("single_turn_test", "single-turn test", test_single),
            ("multi_turn_test", "dialog test (user turns joined)", test_dialog),
            ("all_test", "all test", test_single + test_dialog),
            ("multi_turn_test_last_turn", "dialog test, last turn only", test_last)]
    print("\n%-52s %-34s %8s %8s" % ("model", "split", "accuracy", "macro-F1"))
    summary = {"command": "python3 tools/corpus/baselines.py",
               "train": {"single_turn": n_single, "dialogues": len(train) - n_single},
               "features": "character 1-3-grams of the NFKC-normalized, lower-cased text; dialogues as "
                           "their user turns joined with '\uff5c'",
               "models": {}}
    for key, name, params, predict in models:
        entry = summary["models"][key] = {"name": name, "params": params}
        for skey, sname, data in sets:
            gold = [lab for _, lab in data]
            pred = [predict(features(t)) for t, _ in data]
            acc, f1 = metrics(gold, pred)
            entry[skey] = {"n": len(data), "accuracy": round(acc, 4), "macro_f1": round(f1, 4)}
            print("%-52s %-34s %8.3f %8.3f" % (name, "%s (n=%d)" % (sname, len(data)), acc, f1))
    out = args.json or p("baselines.json")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    print("\nwrote %s" % out)


if __name__ == "__main__":
    main()
