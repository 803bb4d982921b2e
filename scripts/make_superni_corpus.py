#!/usr/bin/env python3
"""Pre-training text for the SuperNI backbone of docs/results.md: the plain text of the *training* tasks.

Reads SUPERNI/train/*.jsonl (one instance a line: definition, input, outputs) and writes every task's
definition once and every instance's input and first output, one paragraph a line, in a seeded shuffle.
The held-out tasks (SUPERNI/test/) are never read, so the backbone has seen nothing of the tasks it is
adapted to. Every 50th paragraph goes to corpus.valid.txt instead (the backbone trainer's held-out check).

Python 3 standard library only; fixed seed; a rerun writes byte-identical files.
Usage: python3 scripts/make_superni_corpus.py [--superni ../shared/data/superni] [--out DIR]
"""
import argparse
import glob
import json
import os
import random
import sys

SEED = 2718


def paragraphs(train_dir):
    files = sorted(glob.glob(os.path.join(train_dir, "*.jsonl")))
    if not files:
        sys.exit(f"make_superni_corpus: no *.jsonl in {train_dir}")
    for path in files:
        definition_written = False
        with open(path, encoding="utf-8") as f:
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{line_number}: {e}")
                if not definition_written:
                    yield row.get("definition", "")
                    definition_written = True
                yield row.get("input", "")
                outputs = row.get("outputs") or []
                if isinstance(outputs, str):
                    outputs = [outputs]
                if outputs:
                    yield outputs[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--superni", default=os.path.join("..", "shared", "data", "superni"))
    ap.add_argument("--out", default=os.path.join("build", "superni-backbone"))
    args = ap.parse_args()
    seen = set()
    text = []
    for p in paragraphs(os.path.join(args.superni, "train")):
        p = " ".join(p.split())  # one line each: newlines and tabs become spaces
        if len(p) >= 2 and p not in seen:
            seen.add(p)
            text.append(p)
    random.Random(SEED).shuffle(text)
    valid = [p for i, p in enumerate(text) if i % 50 == 0]
    train = [p for i, p in enumerate(text) if i % 50 != 0]
    os.makedirs(args.out, exist_ok=True)
    for name, rows in (("corpus.txt", train), ("corpus.valid.txt", valid)):
        tmp = os.path.join(args.out, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
        os.replace(tmp, os.path.join(args.out, name))
    size = sum(len(p.encode("utf-8")) + 1 for p in train)
    print(f"make_superni_corpus: {len(train)} paragraphs ({size / 1e6:.1f} MB) in {args.out}/corpus.txt, "
          f"{len(valid)} in corpus.valid.txt")


if __name__ == "__main__":
    main()
