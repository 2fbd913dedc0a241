"""bench/dedupe_eval.py: cluster membership, per-family figures, the table and the data check."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from bench import dedupe_eval
from bench.dedupe_eval import (
    Case,
    check_data,
    cluster_cases,
    cluster_root,
    clusters,
    family_scores,
    make_item,
    table_rows,
)
from pipeline.dedupe import DedupePolicy
from pipeline.models import Discarded, Item, Published, PublishOutcome
from pipeline.publish import PublishPolicy
from workers.embedded_redis import EmbeddedRedis


def items_for(*ids: str) -> dict[str, Item]:
    return {i: make_item(i, "title", "text", "src") for i in ids}


def near(article: str) -> Discarded:
    """Withheld as a copy of ``article`` (the Lua script answers with item ids)."""
    return Discarded(article, "duplicate_near", duplicate_of=make_item(article, "", "", "").id)


def test_a_published_article_is_its_own_cluster_and_a_copy_joins_the_kept_one() -> None:
    outcomes: dict[str, PublishOutcome] = {
        "a": Published("a", "1-0"),
        "b": near("a"),
        "c": Published("c", "2-0"),
        "d": Discarded("d", "too_short"),
    }
    assert clusters(outcomes, items_for("a", "b", "c", "d")) == {
        "a": "a",
        "b": "a",
        "c": "c",
        "d": "d",
    }


def test_chains_are_followed_and_a_cycle_is_one_cluster() -> None:
    assert cluster_root({"a": "b", "b": "c", "c": "c"}, "a") == "c"
    cycle = {"x": "y", "y": "z", "z": "x"}
    assert {cluster_root(cycle, n) for n in cycle} == {"x"}


def test_a_kept_id_of_no_article_still_groups_its_copies() -> None:
    outcomes: dict[str, PublishOutcome] = {
        i: Discarded(i, "duplicate_content", duplicate_of="not-an-article") for i in ("a", "b")
    }
    assert clusters(outcomes, items_for("a", "b")) == {"a": "not-an-article", "b": "not-an-article"}


def case(label: str, predicted: bool, family: str) -> Case:
    return Case(f"{family}-{label}", label, predicted, "", 0.0, 0.0, 0.0, family=family)


def test_scores_per_family_and_table_rows() -> None:
    cases = [
        case("dup", True, "weather"),
        case("distinct", True, "weather"),
        case("dup", False, "cable"),
        case("update", True, "cable"),
    ]
    families = family_scores(cases)
    assert families["weather"]["precision"] == 0.5 and families["weather"]["recall"] == 1.0
    assert families["cable"]["recall"] == 0.0 and families["cable"]["updates_merged"] == 1
    assert family_scores([case("dup", True, "")]) == {}
    result = dedupe_eval.report("t", cases)
    rows = table_rows({"sets": {"arabic-dev-templates": result}, "cluster": {}})
    assert [(r["family"], r["method"], r["n"]) for r in rows] == [
        ("", "pairwise", 3),
        ("cable", "pairwise", 1),
        ("weather", "pairwise", 2),
    ]


def test_missing_data_is_a_skip_but_a_failure_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not check_data(tmp_path / "nowhere")
    assert "skipped" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit, match="CI=true"):
        check_data(tmp_path / "nowhere")


def test_complete_data_runs_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data" / "syndication"
    for name in ("arabic-dev", "arabic-dev-templates", "persian-set-a"):
        (data / name).mkdir(parents=True)
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "seed-ilna.txt").write_text("x")
    monkeypatch.setenv("CI", "true")
    assert check_data(data)


# --- end to end on a private redis-server --------------------------------------------------


@pytest_asyncio.fixture
async def redis(tmp_path: Path) -> AsyncIterator[Redis]:
    # Its own server: publish_in_order flushes the database.
    (tmp_path / "redis").mkdir()
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    client = Redis.from_url(server.start())
    yield client
    await client.aclose()
    server.stop()


def words(seed: int, count: int) -> str:
    rng = random.Random(seed)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(6)) for _ in range(300)
    ]
    sentences = [
        " ".join(rng.choice(vocabulary) for _ in range(12)) + "." for _ in range(count // 12)
    ]
    return " ".join(sentences)


def write_set(folder: Path) -> None:
    story, other = words(1, 144), words(2, 144)
    articles = [  # b is listed last but dated first: it is the one kept
        ("a", "2015-07-21 12:00:00", story),
        ("c", "2015-07-21 13:00:00", other),
        ("d", "2015-07-23 09:00:00", story + " " + words(3, 12)),
        ("b", "2015-07-21 10:00:00", story + " " + words(4, 12)),
    ]
    rows = [
        {"id": i, "source": f"s{i}", "url": "", "date": d, "title": i, "text": t}
        for i, d, t in articles
    ]
    pairs = [
        {"id": "p1", "a": "a", "b": "b", "label": "dup", "family": "f"},
        {"id": "p2", "a": "a", "b": "c", "label": "distinct", "family": "f"},
        {"id": "p3", "a": "b", "b": "d", "label": "dup", "family": "g"},
        {"id": "p4", "a": "c", "b": "d", "label": "distinct", "family": "g"},
    ]
    folder.mkdir()
    (folder / "articles.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")


async def test_cluster_cases_publish_in_date_order_and_compare_clusters(
    redis: Redis, tmp_path: Path
) -> None:
    write_set(tmp_path / "set")
    policy = PublishPolicy(
        maxlen=1000, dedupe_ttl_seconds=3600, min_text_chars=250, near=DedupePolicy()
    )
    cases = {c.id: c for c in await cluster_cases(redis, policy, tmp_path / "set")}
    assert {i: c.predicted_dup for i, c in cases.items()} == {
        "p1": True,
        "p2": False,
        "p3": True,
        "p4": False,
    }
    assert cases["p1"].reason.startswith("A duplicate_") and "B published" in cases["p1"].reason
    assert cases["p3"].family == "g"
