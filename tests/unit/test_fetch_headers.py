"""Header policy of pipeline.fetch: Retry-After and freshness, read as servers send them."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from pipeline.fetch import freshness_seconds, retry_after_seconds

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 3600 ", 3600.0),
        ("Fri, 15 Jan 2027 09:00:00 GMT", 3600.0),
        ("Fri, 15 Jan 2027 07:00:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, NOW) == expected


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, None),
        ({"Cache_Control": "max-age=300"}, 300.0),
        ({"Cache_Control": "public, max-age=600, s-maxage=1200"}, 1200.0),
        ({"Cache_Control": 'max-age="900"'}, 900.0),
        ({"Cache_Control": "no-cache, max-age=600"}, None),
        ({"Cache_Control": "no-store"}, None),
        (
            {"Expires": "Fri, 15 Jan 2027 09:00:00 GMT", "Date": "Fri, 15 Jan 2027 08:00:00 GMT"},
            3600.0,
        ),
        ({"Expires": "0", "Date": "Fri, 15 Jan 2027 08:00:00 GMT"}, None),
        ({"Cache_Control": "max-age=60", "Expires": "Sat, 16 Jan 2027 08:00:00 GMT"}, 60.0),
    ],
)
def test_freshness(given: dict[str, str], expected: float | None) -> None:
    assert freshness_seconds(headers(**given)) == expected
