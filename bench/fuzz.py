"""A long property run over the pure edges that take hostile input (tests/properties.py): feed
parsing, JSON Feed, charset decoding, URL canonicalization, text cleaning, feeds-file import,
stream-entry decoding. Any input must give a typed result or a feedpipe error.

    .venv/bin/python -m bench.fuzz                     # 20,000 cases per target (~5 min)
    .venv/bin/python -m bench.fuzz --cases 2000 --target parse_feed

Needs the dev extras (hypothesis). Prints cases run and failures per target, writes
bench/reports/fuzz.json, and exits 1 on the first failing target with hypothesis' minimal
example. The unit tests run the same targets at hypothesis' default size on every run.
"""

from __future__ import annotations

import argparse
import time
import traceback
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from bench.harness import write_report
from tests.properties import TARGETS, Target

REPORT = Path(__file__).parent / "reports" / "fuzz.json"


def run_target(target: Target, cases: int, seed: int) -> dict[str, Any]:
    ran = 0

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def check(value: Any) -> None:
        nonlocal ran
        ran += 1
        target.check(value)

    started = time.monotonic()
    failure = None
    try:
        check._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
        check()
    except Exception:  # noqa: BLE001 - the report names any failure; nothing else is caught
        failure = traceback.format_exc(limit=-3)
    seconds = time.monotonic() - started
    return {"cases": ran, "seconds": round(seconds, 1), "failure": failure}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000, help="cases per target")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--target", action="append", help="only these targets (repeatable)")
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if not args.target or t.name in args.target]
    results = {}
    for target in chosen:
        result = run_target(target, args.cases, args.seed)
        results[target.name] = result
        verdict = "ok" if result["failure"] is None else "FAILED"
        print(f"{target.name:18} {result['cases']:>7} cases {result['seconds']:>7.1f} s  {verdict}")
        if result["failure"]:
            print(result["failure"])
    total = sum(r["cases"] for r in results.values())
    print(f"{total} cases in all")
    write_report(REPORT, {"cases_per_target": args.cases, "seed": args.seed, "targets": results})
    if any(r["failure"] for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
