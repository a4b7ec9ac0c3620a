"""The text classifier against the baselines it must beat, on the same stratified folds of one labelled CSV.

    .venv/bin/python bench/classify_baselines.py [--csv bench/data/it_tickets.csv] [--text-col title+body]
        [--label-col category] [--folds 5] [--seed 0] [--rules bench/data/keyword_rules.yaml]

Methods, all scored by macro-F1 (every label weighs the same) and accuracy over the out-of-fold predictions:

- majority: each training fold's most frequent label (`majority_baseline`);
- keyword rules: the first rule of ``--rules`` that matches and sets ``--label-col`` (the hub's condition language
  on ``{"title": first text column, "description": the others}``); a ticket no rule matches counts as wrong;
- keyword rules + majority: the same, unmatched tickets get the training fold's majority label;
- model: `evaluate` (TF-IDF + calibrated linear SVM), then one `TextModel.train` on all rows (timed, without its own
  cross-validation) and its predict latency: µs per ticket for batches of 500, median of 5 runs.

Prints a table, then one JSON line per method.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import accuracy_score, f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from itsm_core.rules.conditions import compile_condition, parse_condition, record_view
from itsm_core.rules.model import TextModel, evaluate, majority_baseline, read_labelled_csv, stratified_folds

DATA = Path(__file__).resolve().parent / "data"
NO_PREDICTION = "<no rule matched>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DATA / "it_tickets.csv")
    parser.add_argument("--text-col", default="title+body")
    parser.add_argument("--label-col", default="category")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rules", type=Path, default=DATA / "keyword_rules.yaml")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    texts, labels = read_labelled_csv(args.csv, args.text_col, args.label_col)
    records = ticket_records(args.csv, args.text_col, args.label_col)
    assert len(records) == len(labels)
    folds = stratified_folds(labels, args.folds, args.seed)
    every = sorted(set(labels))
    base = {"csv": str(args.csv), "label": args.label_col, "rows": len(labels), "labels": len(every),
            "folds": args.folds}  # fmt: skip
    results: list[dict] = []

    majority = majority_baseline(labels, folds=args.folds, seed=args.seed)
    results.append({"method": "majority", **scores(majority)})

    rules = load_rules(args.rules, args.label_col)
    started = time.perf_counter()
    matched = [first_match(rules, record) for record in records]
    rules_us = (time.perf_counter() - started) / len(records) * 1e6
    ruled = np.array([NO_PREDICTION if m is None else m for m in matched], dtype=object)
    coverage = sum(m is not None for m in matched) / len(matched)
    hits = [m == y for m, y in zip(matched, labels, strict=True) if m is not None]
    results.append({
        "method": "keyword_rules", **score(labels, ruled, every), "coverage": round(coverage, 4),
        "precision_when_matched": round(sum(hits) / max(len(hits), 1), 4), "rules": len(rules),
        "predict_us_per_ticket": round(rules_us, 1),
    })  # fmt: skip
    filled = ruled.copy()
    for train, test in folds:
        fallback = Counter(labels[i] for i in train).most_common(1)[0][0]
        for i in test:
            if matched[i] is None:
                filled[i] = fallback
    results.append({"method": "keyword_rules+majority", **score(labels, filled, every)})

    started = time.perf_counter()
    model_scores = evaluate(texts, labels, folds=args.folds, seed=args.seed)
    cv_s = time.perf_counter() - started
    started = time.perf_counter()
    model = TextModel.train(texts, labels, target=args.label_col, folds=0, seed=args.seed)
    train_s = time.perf_counter() - started
    batch = [texts[i % len(texts)] for i in range(args.batch)]
    model.predict(batch)  # warm-up
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        model.predict(batch)
        runs.append((time.perf_counter() - started) / len(batch) * 1e6)
    results.append({
        "method": "model", **scores(model_scores), "train_s_all_rows": round(train_s, 2),
        "cv_s": round(cv_s, 2), "predict_us_per_ticket": round(statistics.median(runs), 1), "batch": len(batch),
        "mean_chars": round(sum(map(len, batch)) / len(batch)),
    })  # fmt: skip

    print(f"{args.csv.name}: {len(labels)} rows, {len(every)} labels of {args.label_col!r}, {args.folds} folds")
    print(f"{'method':<24} {'macro-F1':>9} {'accuracy':>9}  notes")
    for r in results:
        print(f"{r['method']:<24} {r['macro_f1']:>9.3f} {r['accuracy']:>9.3f}  {notes(r)}")
    for r in results:
        print(json.dumps({**base, **r}))


def ticket_records(csv_path: Path, text_col: str, label_col: str) -> list[dict[str, str]]:
    """The tickets as the rules see them: first text column as title, the others as description."""
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame = frame[frame[label_col].str.strip() != ""]
    title, *rest = [name.strip() for name in text_col.split("+")]
    return [
        record_view({"title": row[title], "description": "\n".join(row[name] for name in rest)})
        for row in frame.to_dict("records")
    ]


def load_rules(path: Path, label_col: str) -> list[tuple[str, object, str]]:
    """(name, predicate, value) of every classification rule that sets `label_col`, in file order."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for rule in document["classification"]:
        if label_col in rule["set"]:
            rules.append((rule["name"], compile_condition(parse_condition(rule["when"])), str(rule["set"][label_col])))
    return rules


def first_match(rules: list, record: dict) -> str | None:
    for _name, predicate, value in rules:
        if predicate(record):
            return value
    return None


def score(labels: list[str], predicted: np.ndarray, every: list[str]) -> dict[str, float]:
    macro = f1_score(labels, list(predicted), labels=every, average="macro", zero_division=0)
    return {"macro_f1": round(float(macro), 4), "accuracy": round(float(accuracy_score(labels, list(predicted))), 4)}


def scores(result: dict) -> dict[str, float]:
    return {"macro_f1": round(result["macro_f1"], 4), "accuracy": round(result["accuracy"], 4)}


def notes(result: dict) -> str:
    if result["method"] == "keyword_rules":
        return (f"{result['coverage']:.0%} matched, {result['precision_when_matched']:.0%} right when matched, "
                f"{result['predict_us_per_ticket']:.0f} µs/ticket")  # fmt: skip
    if result["method"] == "model":
        return (f"predict {result['predict_us_per_ticket']:.0f} µs/ticket (batch {result['batch']}, "
                f"{result['mean_chars']} chars avg), train {result['train_s_all_rows']:.1f} s on all rows, "
                f"{result['cv_s']:.1f} s for the cross-validation")  # fmt: skip
    return ""


if __name__ == "__main__":
    main()
