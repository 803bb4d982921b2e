#!/usr/bin/env python3
"""Generate the pre-training corpus of the embedded tiny T5 backbone (models/peft-tiny-t5/).

Plain English-like text about the vocabulary of the built-in suite (data/builtin/): its words, numbers and
number words, countries and capitals, antonyms, plurals, sentiment words, spellings, letter counts, casing.
It reuses the word lists of scripts/make_builtin_suite.py so both stay in step. It never writes the
suite's instruction/answer pairs, and in particular nothing in the format of a held-out task (no "a + b",
no sums written as words, no reversed or sorted words in uppercase, no word counts with parity).

Python 3 standard library only; fixed seed; a rerun writes byte-identical files.
Usage: python3 scripts/make_backbone_corpus.py [--out DIR] [--mb 3.0]
Writes DIR/corpus.txt (training text, one paragraph a line) and DIR/corpus.valid.txt (held-out text drawn
with another seed, for the sanity check of docs/backbone.md).
"""
import argparse
import hashlib
import importlib.util
import os
import random
import sys

SEED = 4321
HERE = os.path.dirname(os.path.abspath(__file__))

_spec = importlib.util.spec_from_file_location("suite", os.path.join(HERE, "make_builtin_suite.py"))
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

WORDS = suite.WORDS
CAPITALS = suite.CAPITALS
ANTONYMS = suite.ANTONYMS
PLURALS = suite.NOUN_PLURALS
POS, NEG = suite.POSITIVE_WORDS, suite.NEGATIVE_WORDS
SUBJECTS = suite.SENTIMENT_SUBJECTS
PALINDROMES = suite.PALINDROMES
number_word = suite.number_word

NAMES = ["anna", "ben", "carla", "david", "emma", "felix", "grace", "henry", "iris", "jack", "lena", "max",
         "nora", "oscar", "paula", "sam", "tom", "vera"]
VERBS_PAST = ["saw", "found", "bought", "painted", "carried", "cleaned", "liked", "wanted", "made", "lost",
              "counted", "drew", "moved", "sold", "kept"]
ADJ = ["happy", "quiet", "brave", "clever", "gentle", "lucky", "simple", "strong", "sweet", "bright", "calm",
       "small", "large", "quick", "slow", "young", "ancient", "modern", "heavy", "soft", "warm", "cold", "old",
       "new", "red", "blue", "green"]
NOUNS = sorted(k for k, v in PLURALS.items() if v != k)


def a_an(w):
    return ("an " if w[0] in "aeiou" else "a ") + w


def cap(s):
    return s[:1].upper() + s[1:]


def s_story(r):
    n = r.choice(NAMES)
    k = r.randint(2, 99)
    noun = r.choice(NOUNS)
    adj = r.choice(ADJ)
    opts = [
        "%s %s %d %s %s." % (n, r.choice(VERBS_PAST), k, adj, PLURALS[noun]),
        "%s %s %s %s %s near the %s." % (n, r.choice(VERBS_PAST), number_word(k), adj, PLURALS[noun],
                                         r.choice(WORDS)),
        "The %s %s was %s, and %s %s it in the %s." % (adj, noun, r.choice(POS + NEG), n, r.choice(VERBS_PAST),
                                                       r.choice(["morning", "evening", "summer", "winter"])),
        "%s has %s and a %s %s." % (n, a_an(r.choice(WORDS)), adj, noun),
        "In %s, %s %s %s %s." % (r.choice(sorted(CAPITALS.values())), n, r.choice(VERBS_PAST), a_an(adj), noun),
    ]
    return cap(r.choice(opts))


def s_capital(r):
    c = r.choice(sorted(CAPITALS))
    t = CAPITALS[c]
    opts = ["The capital of %s is %s." % (c, t), "%s is the capital city of %s." % (t, c),
            "%s lives in %s, the capital of %s." % (r.choice(NAMES), t, c),
            "Many people visit %s, a large city in %s." % (t, c),
            "The government of %s meets in %s." % (c, t)]
    return cap(r.choice(opts))


def s_number(r):
    n = r.randint(0, 100)
    w = number_word(n)
    m = r.randint(0, 99)
    opts = ["The number %d is written %s." % (n, w), "%s means %d." % (w, n),
            "There were %s %s, that is %d." % (w, PLURALS[r.choice(NOUNS)], n),
            "%d is an %s number." % (m, suite.parity(m)) if suite.parity(m) == "even" else
            "%d is an odd number." % m,
            "%s comes after %s." % (number_word(min(n, 99) + 1), number_word(min(n, 99))),
            "%d is larger than %d." % (max(n, m), min(n, m)) if n != m else "%d equals %d." % (n, m),
            "%d is smaller than %d." % (min(n, m), max(n, m)) if n != m else "%d is the same as %s." % (n, w),
            "Count with me: %s." % ", ".join(number_word(i) for i in range(min(n, 95), min(n, 95) + 5))]
    return cap(r.choice(opts))


def s_words(r):
    w = r.choice(WORDS)
    opts = ["The word %s has %s letters." % (w, number_word(len(w))),
            "%s is spelled %s." % (w, " ".join(w)),
            "The word %s starts with the letter %s." % (w, w[0]),
            "The word %s ends with the letter %s." % (w, w[-1]),
            "%s is %s word." % (w, "a short" if len(w) <= 4 else "a long"),
            "The letters of %s are %s." % (w, ", ".join(w)),
            "Read backwards, %s becomes %s." % (w, w[::-1]),
            "%s, %s and %s are words." % (r.choice(WORDS), w, r.choice(WORDS))]
    return cap(r.choice(opts))


def s_lexical(r):
    a = r.choice(sorted(ANTONYMS))
    p = r.choice(sorted(PLURALS))
    pal = r.choice(PALINDROMES)
    opts = ["The opposite of %s is %s." % (a, ANTONYMS[a]),
            "%s is not %s; it is %s." % (r.choice(["it", "the room", "the road", "the box"]), a, ANTONYMS[a]),
            "One %s, two %s." % (p, PLURALS[p]),
            "I saw one %s and then many %s." % (p, PLURALS[p]),
            "The word %s reads the same in both directions." % pal,
            "%s and %s mean opposite things." % (a, ANTONYMS[a])]
    return cap(r.choice(opts))


def s_sentiment(r):
    pos = r.random() < 0.5
    w = r.choice(POS if pos else NEG)
    s = r.choice(SUBJECTS)
    opts = ["%s was %s, %s." % (s, w, "we loved it" if pos else "nobody liked it"),
            "%s: %s, said %s." % (s, w, r.choice(NAMES)),
            "It was a %s day and %s was %s." % (r.choice(["happy", "sad", "long", "cold", "warm"]), s, w),
            "%s felt %s." % (s, w)]
    return cap(r.choice(opts))


def s_random(r):
    # Word lists like the suite's inputs, as plain text, some in title case or uppercase (headlines).
    s = " ".join(r.choice(WORDS) for _ in range(r.randint(3, 9)))
    x = r.random()
    if x < 0.15:
        s = " ".join(cap(t) for t in s.split())
    elif x < 0.25:
        s = s.upper()
    return s + r.choice([".", ".", ",", "!", "?"])


META = ["definition", "example", "examples", "positive", "input", "output", "complete", "following", "now",
        "answer", "given", "word", "words", "letter", "letters", "number", "numbers", "sentence", "text", "order",
        "reverse", "sort", "count", "first", "last", "yes", "no", "even", "odd", "sum", "difference", "uppercase",
        "lowercase", "capital", "plural", "antonym", "sentiment", "alphabetical", "write", "return", "name",
        "classify", "repeat", "rewrite", "separated", "space", "every", "larger", "smaller", "result", "digits",
        "english", "vowel", "forwards", "backwards", "same", "city", "noun", "form", "twice", "second", "third"]
SYMBOLS = "+-*/=%<>()[]{}#&@$_|~^:;'\"\\"


def s_meta(r):
    # Instruction-like vocabulary and every ASCII symbol, in sentences that state no task's input/answer pair.
    ws = r.sample(META, 4)
    c = r.choice(SYMBOLS)
    opts = ["%s, %s, %s and %s are common words." % tuple(ws),
            "The symbol %s is called %s." % (c, r.choice(["a sign", "a mark", "a character"])),
            "Write the %s and the %s on the board." % (ws[0], ws[1]),
            "She read the %s %s slowly." % (ws[0], ws[1]),
            "Symbols: %s %s %s." % (c, r.choice(SYMBOLS), r.choice(SYMBOLS)),
            "The %s of this %s was %s." % (ws[0], ws[1], r.choice(POS + NEG))]
    return cap(r.choice(opts))


GENERATORS = [(s_meta, 1), (s_story, 3), (s_capital, 2), (s_number, 3), (s_words, 3), (s_lexical, 2), (s_sentiment, 2),
              (s_random, 3)]


def paragraph(r):
    gens = [g for g, w in GENERATORS for _ in range(w)]
    return " ".join(r.choice(gens)(r) for _ in range(r.randint(3, 7)))


def write(path, r, n_bytes):
    lines, size = [], 0
    while size < n_bytes:
        p = paragraph(r)
        lines.append(p)
        size += len(p) + 1
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return len(lines), len(data), hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/backbone")
    ap.add_argument("--mb", type=float, default=3.0, help="size of corpus.txt in MB")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, seed, size in (("corpus.txt", SEED, args.mb), ("corpus.valid.txt", SEED + 1, 0.05)):
        n, b, sha = write(os.path.join(args.out, name), random.Random(seed), int(size * 1e6))
        print("wrote %s: %d paragraphs, %d bytes, sha256 %s" % (os.path.join(args.out, name), n, b, sha),
              file=sys.stderr)


if __name__ == "__main__":
    main()
