#!/usr/bin/env python3
"""Generate data/builtin/: a small synthetic multi-task suite in the JSON Lines layout of the SuperNI subset.

Short, rule-based tasks (string edits, small arithmetic, rule classification, table lookups) that a tiny
model on CPU can learn. Held-out tasks compose skills of training tasks (e.g. reverse + uppercase), so
multi-task pre-training of adapters should help few-shot adaptation on them.

Layout (same as /work/shared/data/superni):
  train/<task>.jsonl                       training-task instances
  test/<task>.train.jsonl, <task>.test.jsonl  few-shot adaptation / evaluation instances of held-out tasks
  tasks.json                               per task: split, definition, 2 positive examples, skills, files, counts
Each line: {"id", "task", "definition", "input", "outputs": [...]}.

Python 3 standard library only; fixed seed; reruns give byte-identical files.
Usage: python3 scripts/make_builtin_suite.py [--out data/builtin]
"""
import argparse
import hashlib
import json
import os
import random
import sys

SEED = 1234
N_TRAIN = 300      # instances per training task
N_FEWSHOT = 100    # adaptation instances per held-out task
N_TEST = 100       # evaluation instances per held-out task
N_POSITIVE = 2     # positive examples per task (kept apart from every instance of held-out tasks)

# ----------------------------------------------------------------------------------------------------------
# Word lists and tables (all lowercase ASCII so the tasks are about the rule, not the tokenizer).

WORDS = """
apple river garden table window yellow orange purple silver golden forest mountain ocean desert island
castle bridge market school doctor teacher farmer singer dancer pilot driver writer painter baker hunter
rabbit turtle monkey tiger lion zebra horse camel eagle parrot spider dolphin whale shark salmon
pencil paper letter camera phone laptop button pocket jacket shirt glove boot hat scarf blanket pillow
bottle basket bucket hammer ladder candle lamp mirror clock wallet ticket coin stamp map flag
summer winter spring autumn morning evening night sunday monday friday storm cloud thunder rain snow
bread butter cheese honey sugar salt pepper lemon cherry grape melon peach carrot potato tomato onion
garlic rice pasta soup salad coffee juice water milk tea cake cookie pizza candy
happy quiet brave clever gentle lucky simple strong sweet bright calm eager fancy jolly kind proud
small large quick slow early late young ancient modern narrow wide heavy light soft hard warm cold
run jump swim read write sing dance paint cook clean drive climb build carry listen travel
music story poem song movie game puzzle dream idea plan secret answer question number picture
friend family village city country planet rocket engine wheel train truck boat plane ship
circle square triangle arrow corner center border edge shadow sunset rainbow crystal diamond pearl
marble velvet cotton wool paper metal stone wood glass plastic rubber copper iron
""".split()
WORDS = sorted(set(WORDS))

NOUN_PLURALS = {
    # regular (+s), sibilant (+es), consonant+y (-> ies), f/fe (-> ves), irregular
    "apple": "apples", "river": "rivers", "garden": "gardens", "table": "tables", "window": "windows",
    "forest": "forests", "mountain": "mountains", "island": "islands", "castle": "castles",
    "bridge": "bridges", "market": "markets", "school": "schools", "doctor": "doctors",
    "teacher": "teachers", "farmer": "farmers", "rabbit": "rabbits", "turtle": "turtles",
    "monkey": "monkeys", "tiger": "tigers", "horse": "horses", "camel": "camels", "eagle": "eagles",
    "pencil": "pencils", "camera": "cameras", "button": "buttons", "pocket": "pockets",
    "jacket": "jackets", "shirt": "shirts", "glove": "gloves", "bottle": "bottles", "basket": "baskets",
    "bucket": "buckets", "hammer": "hammers", "ladder": "ladders", "candle": "candles",
    "mirror": "mirrors", "clock": "clocks", "ticket": "tickets", "planet": "planets", "rocket": "rockets",
    "engine": "engines", "wheel": "wheels", "train": "trains", "truck": "trucks", "cloud": "clouds",
    "carrot": "carrots", "onion": "onions", "cookie": "cookies", "friend": "friends",
    "village": "villages", "song": "songs", "poem": "poems", "game": "games", "dream": "dreams",
    "box": "boxes", "fox": "foxes", "bus": "buses", "dish": "dishes", "brush": "brushes",
    "church": "churches", "watch": "watches", "glass": "glasses", "class": "classes",
    "bench": "benches", "match": "matches", "peach": "peaches", "lunch": "lunches",
    "city": "cities", "story": "stories", "party": "parties", "baby": "babies", "lady": "ladies",
    "puppy": "puppies", "cherry": "cherries", "family": "families", "country": "countries",
    "berry": "berries", "body": "bodies", "penny": "pennies",
    "leaf": "leaves", "wolf": "wolves", "knife": "knives", "life": "lives", "shelf": "shelves",
    "half": "halves", "loaf": "loaves", "wife": "wives", "thief": "thieves",
    "child": "children", "mouse": "mice", "goose": "geese", "tooth": "teeth", "foot": "feet",
    "man": "men", "woman": "women", "person": "people", "ox": "oxen", "sheep": "sheep", "fish": "fish",
    "deer": "deer", "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes",
}

ANTONYMS = {
    "hot": "cold", "big": "small", "tall": "short", "fast": "slow", "happy": "sad", "light": "dark",
    "early": "late", "young": "old", "open": "closed", "full": "empty", "hard": "soft", "rich": "poor",
    "strong": "weak", "wet": "dry", "clean": "dirty", "high": "low", "thick": "thin", "wide": "narrow",
    "heavy": "light", "loud": "quiet", "good": "bad", "true": "false", "cheap": "expensive",
    "easy": "difficult", "first": "last", "inside": "outside", "up": "down", "left": "right",
    "near": "far", "push": "pull", "win": "lose", "buy": "sell", "give": "take", "start": "finish",
    "love": "hate", "brave": "afraid", "smooth": "rough", "sharp": "dull", "sweet": "sour",
    "friend": "enemy", "day": "night", "begin": "end", "above": "below", "before": "after",
    "always": "never", "alive": "dead", "awake": "asleep", "correct": "wrong", "deep": "shallow",
    "entrance": "exit", "future": "past", "gentle": "rough", "guilty": "innocent", "arrive": "leave",
    "increase": "decrease", "maximum": "minimum", "polite": "rude", "question": "answer",
    "remember": "forget", "success": "failure", "accept": "refuse", "asleep": "awake", "calm": "angry",
}

CAPITALS = {
    "france": "paris", "germany": "berlin", "italy": "rome", "spain": "madrid", "portugal": "lisbon",
    "japan": "tokyo", "china": "beijing", "india": "delhi", "egypt": "cairo", "kenya": "nairobi",
    "canada": "ottawa", "mexico": "mexico city", "peru": "lima", "chile": "santiago",
    "argentina": "buenos aires", "brazil": "brasilia", "russia": "moscow", "norway": "oslo",
    "sweden": "stockholm", "finland": "helsinki", "denmark": "copenhagen", "poland": "warsaw",
    "austria": "vienna", "greece": "athens", "turkey": "ankara", "ireland": "dublin",
    "belgium": "brussels", "netherlands": "amsterdam", "hungary": "budapest", "cuba": "havana",
    "thailand": "bangkok", "vietnam": "hanoi", "iran": "tehran", "iraq": "baghdad",
    "australia": "canberra", "ghana": "accra", "nigeria": "abuja", "morocco": "rabat",
    "colombia": "bogota", "venezuela": "caracas", "ukraine": "kyiv", "romania": "bucharest",
    "switzerland": "bern", "iceland": "reykjavik", "nepal": "kathmandu", "qatar": "doha",
}

POSITIVE_WORDS = ["wonderful", "great", "excellent", "lovely", "amazing", "delightful", "fantastic",
                  "pleasant", "superb", "charming"]
NEGATIVE_WORDS = ["terrible", "awful", "horrible", "boring", "dreadful", "poor", "disappointing",
                  "annoying", "unpleasant", "miserable"]
SENTIMENT_SUBJECTS = ["the movie", "the meal", "our trip", "the concert", "the book", "my day", "the hotel",
                      "the game", "the party", "the service", "the show", "the weather", "the class",
                      "the song", "the story"]
SENTIMENT_TEMPLATES = ["{s} was {w}", "i thought {s} was {w}", "{s} felt {w} to me", "honestly {s} was {w}",
                       "everyone said {s} was {w}", "{s} turned out {w}"]

PALINDROMES = ["level", "radar", "civic", "kayak", "refer", "rotor", "madam", "noon", "racecar", "stats",
               "tenet", "solos", "wow", "pop", "deed", "peep", "sagas", "minim", "redder", "reviver",
               "anna", "bob", "eye", "gig", "nun", "toot", "pup", "did", "sees", "mum"]

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_word(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    if n == 100:
        return "one hundred"
    raise ValueError(n)


def sentence(rng, lo=3, hi=7):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def parity(n):
    return "even" if n % 2 == 0 else "odd"


# ----------------------------------------------------------------------------------------------------------
# Task generators: each takes a Random and returns (input, [outputs]).

def g_reverse_word(r):
    w = r.choice(WORDS)
    return w, [w[::-1]]


def g_uppercase(r):
    s = sentence(r, 1, 4)
    return s, [s.upper()]


def g_sort_letters(r):
    w = r.choice(WORDS)
    return w, ["".join(sorted(w))]


def g_first_word(r):
    s = sentence(r)
    return s, [s.split()[0]]


def g_last_word(r):
    s = sentence(r)
    return s, [s.split()[-1]]


def g_count_words(r):
    s = sentence(r, 1, 9)
    return s, [str(len(s.split()))]


def g_duplicate_word(r):
    w = r.choice(WORDS)
    return w, [w + " " + w]


def g_reverse_sentence(r):
    s = sentence(r, 2, 6)
    return s, [" ".join(reversed(s.split()))]


def g_word_length(r):
    w = r.choice(WORDS)
    return w, [str(len(w))]


def g_title_case(r):
    s = sentence(r, 2, 5)
    return s, [" ".join(x[:1].upper() + x[1:] for x in s.split())]


def g_add(r):
    a, b = r.randint(0, 49), r.randint(0, 49)
    return "%d + %d" % (a, b), [str(a + b)]


def g_subtract(r):
    a = r.randint(0, 99)
    b = r.randint(0, a)
    return "%d - %d" % (a, b), [str(a - b)]


def g_compare(r):
    a, b = r.randint(0, 99), r.randint(0, 99)
    while a == b:
        b = r.randint(0, 99)
    return "%d and %d" % (a, b), ["yes" if a > b else "no"]


def g_parity(r):
    n = r.randint(0, 999)
    return str(n), [parity(n)]


def g_sentiment(r):
    pos = r.random() < 0.5
    w = r.choice(POSITIVE_WORDS if pos else NEGATIVE_WORDS)
    s = r.choice(SENTIMENT_TEMPLATES).format(s=r.choice(SENTIMENT_SUBJECTS), w=w)
    return s, ["positive" if pos else "negative"]


def g_palindrome(r):
    if r.random() < 0.5:
        w = r.choice(PALINDROMES)
    else:
        w = r.choice(WORDS)
    return w, ["yes" if w == w[::-1] else "no"]


def g_vowel_start(r):
    w = r.choice(WORDS)
    return w, ["yes" if w[0] in "aeiou" else "no"]


def g_capital(r):
    c = r.choice(sorted(CAPITALS))
    return c, [CAPITALS[c]]


def g_number_to_word(r):
    n = r.randint(0, 99)
    return str(n), [number_word(n)]


def g_antonym(r):
    w = r.choice(sorted(ANTONYMS))
    return w, [ANTONYMS[w]]


def g_plural(r):
    w = r.choice(sorted(NOUN_PLURALS))
    return w, [NOUN_PLURALS[w]]


def g_word_to_number(r):
    n = r.randint(0, 99)
    return number_word(n), [str(n)]


# Held-out compositions.
def g_reverse_uppercase(r):
    w = r.choice(WORDS)
    return w, [w[::-1].upper()]


def g_sort_uppercase(r):
    w = r.choice(WORDS)
    return w, ["".join(sorted(w)).upper()]


def g_last_word_reverse(r):
    s = sentence(r)
    return s, [s.split()[-1][::-1]]


def g_first_word_uppercase(r):
    s = sentence(r)
    return s, [s.split()[0].upper()]


def g_add_parity(r):
    a, b = r.randint(0, 49), r.randint(0, 49)
    return "%d + %d" % (a, b), [parity(a + b)]


def g_add_to_word(r):
    a, b = r.randint(0, 49), r.randint(0, 49)
    return "%d + %d" % (a, b), [number_word(a + b)]


def g_count_words_parity(r):
    s = sentence(r, 1, 9)
    return s, [parity(len(s.split()))]


def g_subtract_compare(r):
    a = r.randint(0, 99)
    b = r.randint(0, a)
    c = r.randint(0, 99)
    while c == a - b:
        c = r.randint(0, 99)
    return "%d - %d and %d" % (a, b, c), ["yes" if a - b > c else "no"]


# name, split, generator, definition, skills (training tasks whose rules it combines)
TASKS = [
    ("reverse_word", "train", g_reverse_word, "Write the letters of the given word in reverse order.", ["reverse"]),
    ("uppercase", "train", g_uppercase, "Rewrite the given text in uppercase letters.", ["uppercase"]),
    ("sort_letters", "train", g_sort_letters, "Sort the letters of the given word in alphabetical order.", ["sort"]),
    ("first_word", "train", g_first_word, "Return the first word of the given sentence.", ["first_word"]),
    ("last_word", "train", g_last_word, "Return the last word of the given sentence.", ["last_word"]),
    ("count_words", "train", g_count_words, "Count the words in the given sentence and answer with a number.", ["count_words"]),
    ("duplicate_word", "train", g_duplicate_word, "Repeat the given word twice, separated by a space.", ["duplicate"]),
    ("reverse_sentence", "train", g_reverse_sentence, "Write the words of the given sentence in reverse order.", ["reverse_words"]),
    ("word_length", "train", g_word_length, "Answer with the number of letters in the given word.", ["length"]),
    ("title_case", "train", g_title_case, "Capitalize the first letter of every word in the given text.", ["title_case"]),
    ("add", "train", g_add, "Add the two numbers and answer with the sum.", ["add"]),
    ("subtract", "train", g_subtract, "Subtract the second number from the first and answer with the result.", ["subtract"]),
    ("compare", "train", g_compare, "Is the first number larger than the second? Answer yes or no.", ["compare"]),
    ("parity", "train", g_parity, "Is the given number even or odd? Answer even or odd.", ["parity"]),
    ("sentiment", "train", g_sentiment, "Classify the sentiment of the sentence as positive or negative.", ["sentiment"]),
    ("is_palindrome", "train", g_palindrome, "Does the word read the same forwards and backwards? Answer yes or no.", ["palindrome"]),
    ("vowel_start", "train", g_vowel_start, "Does the given word start with a vowel? Answer yes or no.", ["vowel"]),
    ("capital", "train", g_capital, "Name the capital city of the given country.", ["capital"]),
    ("number_to_word", "train", g_number_to_word, "Write the given number in English words.", ["number_to_word"]),
    ("antonym", "train", g_antonym, "Give the antonym of the given word.", ["antonym"]),
    ("plural", "train", g_plural, "Write the plural form of the given noun.", ["plural"]),
    ("word_to_number", "train", g_word_to_number, "Write the number given in English words as digits.", ["word_to_number"]),
    # Held-out tasks: each combines skills of two training tasks.
    ("reverse_uppercase", "test", g_reverse_uppercase, "Reverse the letters of the given word and write the result in uppercase.", ["reverse", "uppercase"]),
    ("sort_uppercase", "test", g_sort_uppercase, "Sort the letters of the given word alphabetically and write them in uppercase.", ["sort", "uppercase"]),
    ("last_word_reverse", "test", g_last_word_reverse, "Take the last word of the sentence and reverse its letters.", ["last_word", "reverse"]),
    ("first_word_uppercase", "test", g_first_word_uppercase, "Return the first word of the sentence in uppercase.", ["first_word", "uppercase"]),
    ("add_parity", "test", g_add_parity, "Add the two numbers. Is the sum even or odd? Answer even or odd.", ["add", "parity"]),
    ("add_to_word", "test", g_add_to_word, "Add the two numbers and write the sum in English words.", ["add", "number_to_word"]),
    ("count_words_parity", "test", g_count_words_parity, "Is the number of words in the sentence even or odd? Answer even or odd.", ["count_words", "parity"]),
    ("subtract_compare", "test", g_subtract_compare, "Compute the difference of the first two numbers. Is it larger than the third number? Answer yes or no.", ["subtract", "compare"]),
]


def task_rng(name, purpose):
    # A string seed goes through SHA-512 in random.seed (version 2): identical on every platform and run.
    return random.Random("%d/%s/%s" % (SEED, name, purpose))


def draw_distinct(rng, gen, n, exclude, max_tries=200000):
    """n instances with inputs not in `exclude` and pairwise distinct (held-out tasks: no input shared)."""
    out, seen = [], set(exclude)
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries:
            raise SystemExit("cannot draw %d distinct inputs" % n)
        inp, outs = gen(rng)
        if inp in seen:
            continue
        seen.add(inp)
        out.append((inp, outs))
    return out


def draw_training(rng, gen, n, exclude):
    """Training instances: distinct inputs while the input space allows, repeats once it is exhausted."""
    out, seen, misses = [], set(exclude), 0
    while len(out) < n:
        inp, outs = gen(rng)
        if inp in seen and misses < 2000:
            misses += 1
            continue
        seen.add(inp)
        out.append((inp, outs))
    return out


def write_jsonl(path, name, definition, instances, id_prefix):
    lines = []
    for i, (inp, outs) in enumerate(instances):
        lines.append(json.dumps({"id": "%s-%d" % (id_prefix, i), "task": name, "definition": definition,
                                 "input": inp, "outputs": outs}, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "builtin"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    os.makedirs(os.path.join(out, "train"), exist_ok=True)
    os.makedirs(os.path.join(out, "test"), exist_ok=True)

    train_names = {t[0] for t in TASKS if t[1] == "train"}
    entries = []
    for name, split, gen, definition, skills in TASKS:
        rng = task_rng(name, "positive")
        positives = draw_distinct(rng, gen, N_POSITIVE, ())
        pos_inputs = {p[0] for p in positives}
        entry = {"name": name, "split": split, "definition": definition,
                 "positive_examples": [{"input": i, "output": o[0]} for i, o in positives],
                 "skills": skills}
        rng = task_rng(name, "instances")
        if split == "train":
            inst = draw_training(rng, gen, N_TRAIN, pos_inputs)
            rel = "train/%s.jsonl" % name
            sha = write_jsonl(os.path.join(out, rel), name, definition, inst, "builtin-%s" % name)
            entry.update({"files": {"train": rel}, "n_train": len(inst), "sha256": {"train": sha}})
        else:
            # Few-shot and test instances drawn together as distinct inputs, so the two files share no input.
            inst = draw_distinct(rng, gen, N_FEWSHOT + N_TEST, pos_inputs)
            fewshot, test = inst[:N_FEWSHOT], inst[N_FEWSHOT:]
            rel_tr, rel_te = "test/%s.train.jsonl" % name, "test/%s.test.jsonl" % name
            sha_tr = write_jsonl(os.path.join(out, rel_tr), name, definition, fewshot, "builtin-%s-train" % name)
            sha_te = write_jsonl(os.path.join(out, rel_te), name, definition, test, "builtin-%s-test" % name)
            # Which training tasks teach the skills this held-out task combines.
            entry["related_train_tasks"] = sorted(t[0] for t in TASKS if t[1] == "train" and set(t[4]) & set(skills))
            entry.update({"files": {"train": rel_tr, "test": rel_te}, "n_train": len(fewshot), "n_test": len(test),
                          "sha256": {"train": sha_tr, "test": sha_te}})
            inst = fewshot + test
        firsts = [o[0] for _, o in inst]
        entry["output_stats"] = {"distinct_first_outputs": len(set(firsts)),
                                 "max_input_words": max(len(i.split()) for i, _ in inst),
                                 "max_output_words": max(len(o.split()) for o in firsts)}
        entries.append(entry)

    assert len(train_names) >= 18 and len(entries) - len(train_names) >= 6
    meta = {
        "command": "python3 scripts/make_builtin_suite.py",
        "selection": {"seed": SEED, "n_train_per_task": N_TRAIN, "n_fewshot_per_task": N_FEWSHOT,
                      "n_test_per_task": N_TEST, "n_positive_examples": N_POSITIVE},
        "n_train_tasks": len(train_names),
        "n_test_tasks": len(entries) - len(train_names),
        "tasks": entries,
    }
    with open(os.path.join(out, "tasks.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    n_inst = sum(e["n_train"] + e.get("n_test", 0) for e in entries)
    print("wrote %s: %d training tasks, %d held-out tasks, %d instances" %
          (out, meta["n_train_tasks"], meta["n_test_tasks"], n_inst), file=sys.stderr)


if __name__ == "__main__":
    main()
