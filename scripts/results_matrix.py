#!/usr/bin/env python3
"""A variants x tasks Markdown matrix of one metric from a sweep's results.jsonl (mean over seeds).

The sweep's summary.md lists the per-task numbers one row per (task, variant); this prints the same numbers
as one row per variant and one column per task, the layout of the papers' per-task tables.

Usage: python3 scripts/results_matrix.py RESULTS.jsonl [--metric rouge_l] [--variants a,b,...]
Python 3 standard library only.
"""
import argparse
import collections
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--metric", default="rouge_l")
    ap.add_argument("--variants", default="", help="comma-separated order (default: first-seen)")
    args = ap.parse_args()
    cells = collections.defaultdict(list)
    tasks, variants = [], []
    with open(args.results, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{args.results}:{n}: {e}")
            value = row["metrics"].get(args.metric)
            if value is None:
                continue
            if row["task"] not in tasks:
                tasks.append(row["task"])
            if row["variant"] not in variants:
                variants.append(row["variant"])
            cells[(row["variant"], row["task"])].append(value)
    if args.variants:
        variants = [v for v in args.variants.split(",") if any(k[0] == v for k in cells)]
    short = [t.split("_")[0] for t in tasks]  # SuperNI task ids: "task1195"
    print("| Variant | " + " | ".join(short) + " | mean |")
    print("|---|" + "---:|" * (len(tasks) + 1))
    for v in variants:
        means = [sum(cells[(v, t)]) / len(cells[(v, t)]) if cells[(v, t)] else None for t in tasks]
        known = [m for m in means if m is not None]
        row = ["n/a" if m is None else f"{m:.1f}" for m in means]
        mean = f"{sum(known) / len(known):.1f}" if known else "n/a"
        print(f"| {v} | " + " | ".join(row) + f" | {mean} |")
    print()
    print("Columns: " + ", ".join(f"{s} = {t}" for s, t in zip(short, tasks)))


if __name__ == "__main__":
    main()
