"""Generates the lower-case range table in src/eval/metrics.cpp from Python's str.lower().

Run: python3 tests/eval/data/gen_unicode_lower.py  (prints C++ initialiser rows)
Each row {first, last, stride, delta}: code points first, first+stride, ..., last map to cp+delta.
Only one-to-one mappings are tabled; U+0130 (-> "i\u0307") and U+03A3 (final sigma) are special-cased
in C++. Generated with CPython 3.11 (Unicode 14.0)."""
import sys

pairs = []
for cp in range(sys.maxunicode + 1):
    ch = chr(cp)
    if cp in (0x130, 0x3A3) or cp < 0x80:
        continue
    lo = ch.lower()
    if lo != ch:
        assert len(lo) == 1, hex(cp)
        pairs.append((cp, ord(lo) - cp))

rows = []
i = 0
while i < len(pairs):
    cp, d = pairs[i]
    # try to extend with stride 1 or 2 and same delta
    best = (cp, cp, 1, d)
    for stride in (1, 2):
        j = i
        last = cp
        while j + 1 < len(pairs) and pairs[j + 1][0] == last + stride and pairs[j + 1][1] == d:
            j += 1
            last = pairs[j][0]
        if last > best[1]:
            best = (cp, last, stride, d)
    rows.append(best)
    i += (best[1] - best[0]) // best[2] + 1
print(len(rows), file=sys.stderr)
for r in rows:
    print("    {0x%X, 0x%X, %d, %d}," % r)
