"""Writes tests/fixtures/eval_metrics/pairs.json: random (true, predicted) label pairs over 7
classes and the metrics computed from them with plain Python arithmetic (no libraries), as an
independent check of train/eval_metrics.c.

Shaped to reach the edge cases: class 5 occurs as a true label but is never predicted
(precision 0 by convention, so F1 0), class 6 never occurs at all (left out of the macro
averages), class 3 is predicted but never true (recall 0). Run from the repository root:
    python3 tests/reference/make_eval_metrics_fixture.py
"""
import json
import os
import random

OUT = "tests/fixtures/eval_metrics/pairs.json"
K = 7


def make_pairs(rng, n):
    pairs = []
    true_labels = [0, 1, 2, 4, 5]
    for _ in range(n):
        t = rng.choice(true_labels)
        if rng.random() < 0.7 and t != 5:
            p = t
        else:
            p = rng.choice([0, 1, 2, 3, 4])
        pairs.append([t, p])
    return pairs


def metrics(pairs):
    counts = [[0] * K for _ in range(K)]
    for t, p in pairs:
        counts[t][p] += 1
    classes = []
    for k in range(K):
        tp = counts[k][k]
        support = sum(counts[k])
        predicted = sum(counts[t][k] for t in range(K))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes.append({"precision": precision, "recall": recall, "f1": f1, "support": support,
                        "predicted": predicted})
    scored = [c for c in classes if c["support"] or c["predicted"]]
    correct = sum(counts[k][k] for k in range(K))
    return {
        "accuracy": correct / len(pairs),
        "correct": correct,
        "macro_precision": sum(c["precision"] for c in scored) / len(scored),
        "macro_recall": sum(c["recall"] for c in scored) / len(scored),
        "macro_f1": sum(c["f1"] for c in scored) / len(scored),
        "classes_scored": len(scored),
        "classes": classes,
        "counts": counts,
    }


def main():
    rng = random.Random(715)
    pairs = make_pairs(rng, 203)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"n_classes": K, "pairs": pairs, "expected": metrics(pairs)}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
