"""The pure edges of subscribing: whatever a stream entry holds, ``decode_entry`` gives an item
(a JSON object) or a ``NotAnItem`` with its reason, never an exception; ``format_item`` prints
any JSON object; a bad entry's copy keeps every field it had."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.subscribe import BAD_FIELDS, MAX_DEPTH, NotAnItem, bad_copy, decode_entry
from workers.cli import format_item

ITEM_FIELDS = ["title", "text", "source", "feed", "published_at", "fetched_at", "schema", "url"]

# Any text, lone surrogates included (hypothesis leaves them out by default).
texts = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(ITEM_FIELDS) | texts, children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.sampled_from(ITEM_FIELDS) | texts, json_values, max_size=8)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII: lone surrogates as escapes


item_values = st.one_of(
    st.binary(max_size=60),
    json_values.map(_json_bytes),
    json_objects.map(_json_bytes),
    json_objects.map(_json_bytes).flatmap(
        lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])  # cut short
    ),
    st.sampled_from([b"NaN", b'{"a": Infinity}', b"[" * 5000, b'{"a": ' + b"9" * 5000 + b"}"]),
)
entries = st.one_of(
    st.dictionaries(st.binary(max_size=10), st.binary(max_size=30), max_size=5),
    st.builds(
        lambda extra, item: extra | {b"item": item},
        st.dictionaries(st.binary(max_size=10), st.binary(max_size=30), max_size=3),
        item_values,
    ),
)


@given(entries)
def test_any_entry_decodes_to_an_item_or_a_reason(fields: dict[bytes, bytes]) -> None:
    decoded = decode_entry(fields)
    if not fields:
        assert decoded is None  # deleted while pending
    elif isinstance(decoded, NotAnItem):
        assert decoded.reason and decoded.reason.isprintable() and len(decoded.reason) <= 240
    else:
        assert isinstance(decoded, dict)
        # A JSON object any consumer can encode again, as JSON and as UTF-8.
        json.dumps(decoded, ensure_ascii=False, allow_nan=False).encode("utf-8")


@given(json_objects)
def test_json_objects_are_items(obj: dict[str, Any]) -> None:
    decoded = decode_entry({b"item": _json_bytes(obj)})
    if any("\ud800" <= c <= "\udfff" for c in json.dumps(obj, ensure_ascii=False)):
        assert isinstance(decoded, NotAnItem) and "lone surrogate" in decoded.reason
    else:
        assert decoded == obj


@given(json_objects)
def test_format_item_prints_any_json_object(obj: dict[str, Any]) -> None:
    as_json = format_item(obj, "json")
    as_json.encode("utf-8")  # printable on a UTF-8 terminal, lone surrogates included
    assert json.loads(as_json) == obj
    as_text = format_item(obj, "text")
    as_text.encode("utf-8")
    assert as_text.startswith("date ")


def test_format_item_shows_missing_fields_empty_and_wrong_types_as_question_marks() -> None:
    assert format_item({}, "text") == "date  \n\n\n"
    odd = {"title": 1, "text": None, "feed": "x", "published_at": [], "fetched_at": "2025-12-14"}
    assert format_item(odd, "text") == "date ? ?\n?\n\n"
    fallback = {"feed": {"title": "Feed"}, "fetched_at": "2025-12-14T00:00:00Z", "text": "t"}
    assert format_item(fallback, "text") == "date 2025-12-14 Feed\n\n\nt"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"item": b"<html>"}, "not JSON: Expecting value at line 1 column 1"),
        ({b"item": b"\xff{}"}, "not UTF-8: invalid start byte at byte 0"),
        ({b"item": b"[]"}, "not an object: JSON array"),
        ({b"item": b'"s"'}, "not an object: JSON string"),
        ({b"item": b"1"}, "not an object: JSON number"),
        ({b"item": b"false"}, "not an object: JSON boolean"),
        ({b"item": b"null"}, "not an object: JSON null"),
        ({b"title": b"t"}, "no \"item\" field (fields: 'title')"),
        ({b"item": b'{"a": NaN}'}, "not JSON: NaN is not JSON"),
        ({b"item": b'{"a": "\\udc00"}'}, "not Unicode: a string holds a lone surrogate"),
        ({b"item": b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)}, "nested deeper"),
        ({b"item": b"[" * 100_000}, "nested deeper than"),
        ({b"item": "\ufeff{}".encode()}, "not JSON: Unexpected UTF-8 BOM"),
    ],
)
def test_reasons(fields: dict[bytes, bytes], reason: str) -> None:
    decoded = decode_entry(fields)
    assert isinstance(decoded, NotAnItem) and decoded.reason.startswith(reason)


def test_items_and_deleted_entries() -> None:
    deep_enough = b'{"a": ' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert isinstance(decode_entry({b"item": deep_enough}), dict)
    assert decode_entry({b"item": b"{}", b"other": b"x"}) == {}  # an empty object is an item
    assert decode_entry({"item": '{"t": "ok"}'}) == {"t": "ok"}
    assert decode_entry({}) is None
    assert decode_entry(None) is None


@given(st.dictionaries(st.binary(max_size=12), st.binary(max_size=12), max_size=6))
def test_a_bad_copy_keeps_every_field(fields: dict[bytes, bytes]) -> None:
    copy = bad_copy(fields, "1-0", "s", "g", "why")
    assert {name: copy[name.encode()] for name in BAD_FIELDS} == {
        "entry_id": b"1-0",
        "stream": b"s",
        "group": b"g",
        "reason": b"why",
    }
    assert len(copy) == len(fields) + len(BAD_FIELDS)
    own = [(k, v) for k, v in copy.items() if k.decode("utf-8", "replace") not in BAD_FIELDS]
    assert sorted(v for _k, v in own) == sorted(fields.values())
    for key, value in own:  # under its own name, or that name behind "original:" prefixes
        name = key
        while name not in fields or fields[name] != value:
            assert name.startswith(b"original:")
            name = name.removeprefix(b"original:")


def test_a_cluster_copy_line_says_why_it_joined() -> None:
    from pipeline.publish import ClusterCopy
    from workers.cli import _joined_because

    copy = ClusterCopy(
        id="c" * 24,
        source="Okaz",
        title="t",
        similarity={"jaccard": 0.91, "containment": 0.97, "lead": 0.8},
        alignment="no template slot differs (1 substitution(s) below the rule: content)",
    )
    assert _joined_because(copy) == (
        f"Okaz [{'c' * 24}]: jaccard 0.91 containment 0.97 lead 0.80; "
        "no template slot differs (1 substitution(s) below the rule: content)"
    )
    assert _joined_because(ClusterCopy(id="x")) == "? [x]: "
