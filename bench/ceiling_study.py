"""How far can any rule over today's signals go on template stories? (issue 20, a study)

    .venv/bin/python -m bench.ceiling_study     # ~40 s on one core

For every labelled pair of ``arabic-dev`` and ``arabic-dev-templates`` (``updates`` left out;
read at run time from ``../shared/data/syndication``, never copied), the signals feedpipe has or
has tried (docs/dedupe.md), computed with the Python reference of the publish script:

- the sketches: resemblance J, containment C, the lead score (the smaller direction), the larger
  direction, the longer text's lead found in the shorter, the size ratio, a shared LSH band;
- what differs: lead numbers, the slot check's verdict and slot count, how much of the shorter
  lead window aligns, the titles' word overlap, digits each text has that the other lacks on
  both sides;
- rare words (``bench.rare_words_study``): rare containment, one-sidedness.

Then two estimates:

1. **The threshold frontier** (in-sample, so optimistic): today's rule ``J >= j or (C >= c and
   lead >= l)``, the slot check and lead numbers kept, over a grid of j, c, l; for each count of
   false merges on templates, the point with the most copies found on both sets.
2. **Fitted models**, the least a learned rule would claim: logistic regression, decision trees
   of depth 3 and 5, gradient boosting, with a false merge weighted twice a missed copy. Each is
   measured in-sample and held out: for a template family, fitted on ``arabic-dev`` and the other
   families and measured on it; for ``arabic-dev``, 5 folds by pair number, fitted on the other
   folds and all templates. Held-out predictions are also limited to pairs with a shared LSH band
   (what the index can find).

Writes ``bench/reports/ceiling_study.json``; the findings are in docs/dedupe.md.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from bench.harness import write_report
from bench.rare_words_study import document_frequencies, pair_features, words
from bench.template_study import DATA, ROOT, Checker, Pair, load_pairs
from pipeline.align import SlotPolicy, align
from pipeline.dedupe import DedupePolicy, _lead_in, fingerprint, similarity
from pipeline.normalize import normalize_for_matching

OUT = ROOT / "bench" / "reports" / "ceiling_study.json"
SETS = ("arabic-dev", "arabic-dev-templates")
FEATURES = (
    "J", "C", "lead", "lead_max", "longer_lead", "size_ratio", "numbers_differ",
    "slot_distinct", "slots", "aligned", "title_overlap", "rare_containment", "rare_one_sided",
    "rare_only_min", "digits_both_sided",
)  # fmt: skip
FALSE_MERGE_WEIGHT = {0: 2, 1: 1}  # label 0: distinct; a false merge hides a story
FOLDS = 5
GRID = {
    "J": (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.01),
    "C": (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.01),
    "lead": (0.2, 0.3, 0.4, 0.5, 0.6),
}
MODELS: dict[str, Callable[[], ClassifierMixin]] = {
    "logistic regression": lambda: make_pipeline(
        StandardScaler(), LogisticRegression(class_weight=FALSE_MERGE_WEIGHT, max_iter=2000)
    ),
    "tree, depth 3": lambda: DecisionTreeClassifier(
        max_depth=3, class_weight=FALSE_MERGE_WEIGHT, random_state=0
    ),
    "tree, depth 5": lambda: DecisionTreeClassifier(
        max_depth=5, class_weight=FALSE_MERGE_WEIGHT, random_state=0
    ),
    "gradient boosting": lambda: GradientBoostingClassifier(
        n_estimators=150, max_depth=2, random_state=0
    ),
}


def digits(text: str) -> set[str]:
    return set(re.findall(r"[0-9]+", normalize_for_matching(text)))


def features(
    pair: Pair, checker: Checker, idf: Callable[[str], float], near: DedupePolicy
) -> dict[str, Any] | None:
    """The pair's signals, or None when a text is too short to fingerprint."""
    fa, fb = fingerprint(pair.a, near), fingerprint(pair.b, near)
    if fa is None or fb is None:
        return None
    sim = similarity(fa, fb)
    a_in_b, b_in_a = _lead_in(fa, fb), _lead_in(fb, fa)
    slots = SlotPolicy()
    verdict = checker.check(pair, slots)
    ra, rb = checker.records(pair, slots.lead_tokens)
    title_a, title_b = words(pair.a_title), words(pair.b_title)
    text_a, text_b = words(pair.a), words(pair.b)
    rare = pair_features(text_a, text_b, {w: idf(w) for w in text_a | text_b})
    da, db = digits(pair.a), digits(pair.b)
    return {
        "J": sim.jaccard,
        "C": sim.containment,
        "lead": sim.lead,
        "lead_max": max(a_in_b, b_in_a),
        "longer_lead": b_in_a if fa.shingles >= fb.shingles else a_in_b,
        "size_ratio": min(fa.shingles, fb.shingles) / max(fa.shingles, fb.shingles),
        "numbers_differ": int(sim.numbers_differ),
        "slot_distinct": int(verdict.distinct),
        "slots": len(verdict.slots),
        "aligned": len(align(ra.words, rb.words)) / max(1, min(len(ra.words), len(rb.words))),
        "title_overlap": len(title_a & title_b) / max(1, len(title_a | title_b)),
        "rare_containment": rare["rare_containment"],
        "rare_one_sided": int(rare["one_sided"]),
        "rare_only_min": min(rare["only_a"], rare["only_b"]),
        "digits_both_sided": int(bool(da - db) and bool(db - da)),
        "band": int(bool(set(fa.bands) & set(fb.bands))),
    }


def load_rows() -> list[dict[str, Any]]:
    near = DedupePolicy()
    articles, frequencies = document_frequencies()

    def idf(word: str) -> float:
        return math.log((articles + 1) / (frequencies[word] + 1))

    checker, rows = Checker(), []
    for pair in load_pairs(near):
        if pair.label == "update":
            continue
        row: dict[str, Any] = {
            "id": pair.id, "set": pair.set, "family": pair.family,
            "dup": pair.label == "dup", "same_text": pair.sketch_reason == "same_text",
        }  # fmt: skip
        found = features(pair, checker, idf, near)
        rows.append(row | ({"fingerprinted": True} | found if found else {"fingerprinted": False}))
    return rows


def score(rows: Sequence[dict[str, Any]], merged: Sequence[bool]) -> dict[str, dict[str, Any]]:
    result = {}
    for name in SETS:
        cases = [(r["dup"], m) for r, m in zip(rows, merged, strict=True) if r["set"] == name]
        tp = sum(dup and m for dup, m in cases)
        fp = sum(m and not dup for dup, m in cases)
        fn = sum(dup and not m for dup, m in cases)
        result[name] = {
            "precision": round(tp / max(1, tp + fp), 3),
            "recall": round(tp / max(1, tp + fn), 3),
            "false_merges": fp,
            "missed": fn,
        }
    return result


def rule(row: dict[str, Any], j: float, c: float, lead: float) -> bool:
    """Today's decision at other thresholds (docs/dedupe.md "Decide")."""
    if row["same_text"]:
        return True
    if not row["fingerprinted"] or not row["band"] or row["numbers_differ"]:
        return False
    near = row["J"] >= j or (row["C"] >= c and row["lead"] >= lead)
    return bool(near and not row["slot_distinct"])


def frontier(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[int, dict[str, Any]] = {}
    for j, c, lead in itertools.product(GRID["J"], GRID["C"], GRID["lead"]):
        figures = score(rows, [rule(r, j, c, lead) for r in rows])
        merges = figures["arabic-dev-templates"]["false_merges"]
        found = sum(f["recall"] for f in figures.values())
        if merges not in best or found > best[merges]["found"]:
            best[merges] = {"thresholds": {"J": j, "C": c, "lead": lead}, "found": found}
            best[merges] |= figures
    return [best[k] | {"template_false_merges": k} for k in sorted(best)]


def group(row: dict[str, Any]) -> str:
    """A held-out unit: a template family, or a fold of arabic-dev by pair number."""
    if row["set"] == "arabic-dev-templates":
        return f"family {row['family']}"
    number = "".join(ch for ch in row["id"] if ch.isdigit())
    return f"arabic-dev fold {int(number or 0) % FOLDS}"


def matrix(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[float(r[f]) for f in FEATURES] for r in rows])
    return x, np.array([int(r["dup"]) for r in rows])


def fitted(rows: list[dict[str, Any]], make: Callable[[], ClassifierMixin]) -> dict[str, Any]:
    """A model's figures over every pair; a pair too short to fingerprint is decided as today
    (merged only when the texts are the same)."""
    known = [i for i, r in enumerate(rows) if r["fingerprinted"]]
    x, y = matrix([rows[i] for i in known])
    in_sample = [r["same_text"] for r in rows]
    for i, merged in zip(known, make().fit(x, y).predict(x), strict=True):
        in_sample[i] = bool(merged)
    held = [r["same_text"] for r in rows]
    for unit in sorted({group(rows[i]) for i in known}):
        train = [k for k, i in enumerate(known) if group(rows[i]) != unit]
        test = [k for k, i in enumerate(known) if group(rows[i]) == unit]
        model = make().fit(x[train], y[train])
        for k, merged in zip(test, model.predict(x[test]), strict=True):
            held[known[k]] = bool(merged)
    candidates = [
        merged and (r["same_text"] or bool(r.get("band")))
        for merged, r in zip(held, rows, strict=True)
    ]
    return {
        "in_sample": score(rows, in_sample),
        "held_out": score(rows, held),
        "held_out_lsh_candidates": score(rows, candidates),
    }


def line(figures: dict[str, dict[str, Any]]) -> str:
    return "   ".join(
        f"{name} P {f['precision']:.3f} R {f['recall']:.3f} "
        f"({f['false_merges']} merged, {f['missed']} missed)"
        for name, f in figures.items()
    )


def main() -> None:
    if not DATA.exists():
        sys.exit(f"needs {DATA} (the labelled pairs, read at run time)")
    rows = load_rows()
    fingerprinted = sum(r["fingerprinted"] for r in rows)
    print(f"{len(rows)} pairs, {fingerprinted} long enough to fingerprint")
    print("today:", line(score(rows, [rule(r, 0.8, 0.7, 0.2) for r in rows])))
    print("\n== threshold frontier (in-sample): fewest template false merges -> copies found")
    front = frontier(rows)
    for point in front:
        t = point["thresholds"]
        print(
            f"  {point['template_false_merges']:2} merged: J>={t['J']} or C>={t['C']} and "
            f"lead>={t['lead']}:  " + line({k: point[k] for k in SETS})
        )
    models = {}
    for name, make in MODELS.items():
        models[name] = fitted(rows, make)
        print(f"\n== {name}")
        for kind, figures in models[name].items():
            print(f"  {kind:24} {line(figures)}")
    write_report(
        OUT,
        {"features": FEATURES, "frontier": front, "models": models,
         "pairs": rows},
    )  # fmt: skip


if __name__ == "__main__":
    main()
