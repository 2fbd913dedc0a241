"""Do template stories and reworded copies differ in their *rare* words? (issue 20, a study)

    .venv/bin/python -m bench.dedupe_eval --data ../shared/data/syndication --loaded-runs 0
    .venv/bin/python -m bench.rare_words_study     # ~20 s, after the line above

The idea: a copy, however reworded, names the same people, places and figures, so it shares the
rare words of its original; two stories of one template share the template's common words and
differ in the rare ones (another country, another convict). A word's rarity is its document
frequency in the SaudiNewsNet raw files of the same days (15,042 articles, read at run time from
``../shared/data/syndication/saudinewsnet-dev-raw``, never copied), ``idf = ln((N+1)/(df+1))``;
words are normalized and stemmed as the slot check does (``align.stem``). Per labelled pair of
``arabic-dev`` and ``arabic-dev-templates`` (updates left out):

- rare containment: the idf-weighted share of the rarer side's rare words (idf >= 3, a word in
  fewer than ~5 % of articles) found in the other;
- one-sided: only one of the two texts has rare words the other lacks (an insertion, what copies
  make) rather than both (a substitution, what templates make).

Printed: deciles of rare containment per set and label, and both features for every pair
today's publish script gets wrong (read from ``bench/reports/dedupe_eval.json``). Writes
``bench/reports/rare_words_study.json``. Findings are in docs/dedupe.md.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import write_report
from pipeline.align import stem
from pipeline.normalize import normalize_for_matching

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "syndication"
EVAL = ROOT / "bench" / "reports" / "dedupe_eval.json"
OUT = ROOT / "bench" / "reports" / "rare_words_study.json"
RARE_IDF = 3.0
SETS = ("arabic-dev", "arabic-dev-templates")


def words(text: str) -> set[str]:
    return {stem(word) for word in normalize_for_matching(text).split()}


def document_frequencies() -> tuple[int, Counter[str]]:
    frequencies: Counter[str] = Counter()
    articles = 0
    for archive in sorted((DATA / "saudinewsnet-dev-raw").glob("*.zip")):
        with zipfile.ZipFile(archive) as files:
            for name in files.namelist():
                for record in json.loads(files.read(name)):
                    articles += 1
                    frequencies.update(
                        words(f"{record.get('title') or ''} {record.get('content') or ''}")
                    )
    return articles, frequencies


def pair_features(a: set[str], b: set[str], idf: dict[str, float]) -> dict[str, Any]:
    rare_a = {w for w in a if idf.get(w, 0.0) >= RARE_IDF}
    rare_b = {w for w in b if idf.get(w, 0.0) >= RARE_IDF}

    def weight(found: set[str]) -> float:
        return sum(idf[w] for w in found)

    smaller = min(weight(rare_a), weight(rare_b))
    only_a, only_b = len(rare_a - rare_b), len(rare_b - rare_a)
    return {
        "rare_containment": round(weight(rare_a & rare_b) / smaller, 3) if smaller else 0.0,
        "only_a": only_a,
        "only_b": only_b,
        "one_sided": min(only_a, only_b) == 0,
    }


def main() -> None:
    if not EVAL.exists() or not DATA.exists():
        sys.exit(f"needs {DATA} and {EVAL} (run bench.dedupe_eval first, see the docstring)")
    verdicts = json.loads(EVAL.read_text())["sets"]
    articles, frequencies = document_frequencies()
    rows: list[dict[str, Any]] = []
    for name in SETS:
        texts = {}
        for line in (DATA / name / "articles.jsonl").open(encoding="utf-8"):
            article = json.loads(line)
            texts[article["id"]] = words(f"{article['title']} {article['text']}")
        idf = {
            w: math.log((articles + 1) / (frequencies[w] + 1)) for t in texts.values() for w in t
        }
        case = {c["id"]: c for c in verdicts[name]["cases"]}
        for line in (DATA / name / "pairs.jsonl").open(encoding="utf-8"):
            pair = json.loads(line)
            if pair["label"] == "update":
                continue
            found = case[pair["id"]]
            rows.append(
                {"set": name, "id": pair["id"], "label": pair["label"],
                 "family": pair.get("family"), "merged": found["predicted_dup"],
                 "jaccard": found["jaccard"], "containment": found["containment"]}
                | pair_features(texts[pair["a"]], texts[pair["b"]], idf)
            )  # fmt: skip
    deciles = {
        f"{name} {label}": [
            round(q, 2)
            for q in statistics.quantiles(
                [r["rare_containment"] for r in rows if r["set"] == name and r["label"] == label],
                n=10,
            )
        ]
        for name in SETS
        for label in ("dup", "distinct")
    }
    wrong = [r for r in rows if r["merged"] != (r["label"] == "dup")]
    for key, values in deciles.items():
        print(f"rare containment deciles, {key}: {values}")
    print("today's mistakes:")
    for row in wrong:
        print(
            f"  {row['id']:9} {row['label']:8} J {row['jaccard']:.2f} C {row['containment']:.2f}"
            f"  rare containment {row['rare_containment']:.2f}  rare words only in A/B "
            f"{row['only_a']}/{row['only_b']}{'  one-sided' if row['one_sided'] else ''}"
        )
    one_sided = {
        label: sorted(r["id"] for r in rows if r["one_sided"] and r["label"] == label)
        for label in ("dup", "distinct")
    }
    counts = {label: len(ids) for label, ids in one_sided.items()}
    print(f"one-sided pairs: {counts}")
    write_report(
        OUT,
        {"articles_for_df": articles, "rare_idf": RARE_IDF, "deciles": deciles,
         "mistakes": wrong, "one_sided": one_sided, "pairs": rows},
    )  # fmt: skip


if __name__ == "__main__":
    main()
