"""The Lua scripts live in pipeline/lua/, one file each, and each says what it takes."""

from __future__ import annotations

import importlib.resources

import pytest

from pipeline import keys, publish

LUA = importlib.resources.files("pipeline") / "lua"
# A script is a file, or a folder of parts joined in name order.
NAMES = sorted(
    p.name.removesuffix(".lua") for p in LUA.iterdir() if p.name.endswith(".lua") or p.is_dir()
)
LOADED = {
    "acquire_host_slot": keys.ACQUIRE_HOST_SLOT,
    "add_feeds": keys.ADD_FEEDS,
    "claim_due_feeds": keys.CLAIM_DUE_FEEDS,
    "claim_entry": keys.CLAIM_ENTRY,
    "count_new_feeds": keys.COUNT_NEW_FEEDS,
    "publish_item": publish.PUBLISH_ITEM,
    "record_failure": keys.RECORD_FAILURE,
    "record_fulltext_check": keys.RECORD_FULLTEXT_CHECK,
    "save_poll": keys.SAVE_POLL,
    "set_feed_fields": keys.SET_FEED_FIELDS,
}


def test_every_file_is_a_script_the_code_calls() -> None:
    assert sorted(LOADED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_script_opens_with_its_inputs(name: str) -> None:
    text = LOADED[name].text
    assert LOADED[name].name == name
    assert keys._PLACEHOLDER.search(text) is None, f"{name}.lua: a placeholder left unfilled"
    header = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    assert header, f"{name}.lua: no header comment"
    # What a pipeline sends (EVAL): the script without its header.
    assert LOADED[name].body == text.split("\n", len(header))[-1].rstrip("\n")
    assert "KEYS" in "\n".join(header), f"{name}.lua: its header does not name its KEYS"


def test_placeholders_must_all_be_filled_and_nothing_else_given() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        keys.lua_source("publish_item")
    with pytest.raises(ValueError, match="placeholders"):
        keys.lua_source("claim_entry", {"UNUSED": 1})


def test_a_script_in_parts_is_its_files_in_name_order() -> None:
    parts = sorted(p.name for p in (LUA / "publish_item").iterdir())
    assert parts[0] == "00_arguments.lua" and len(parts) > 1
    texts = [(LUA / "publish_item" / name).read_text("utf-8") for name in parts]
    assert keys._lua_file("publish_item") == "\n".join(texts)
