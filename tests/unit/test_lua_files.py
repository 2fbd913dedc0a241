"""The Lua scripts live in pipeline/lua/, one file each, and each says what it takes."""

from __future__ import annotations

import importlib.resources

import pytest

from pipeline import keys, monitor, registry

LUA = importlib.resources.files("pipeline") / "lua"
NAMES = sorted(p.name.removesuffix(".lua") for p in LUA.iterdir() if p.name.endswith(".lua"))
LOADED = {
    "acquire_host_slot": keys.ACQUIRE_HOST_SLOT,
    "add_feeds": registry.ADD_FEEDS,
    "claim_due_feeds": keys.CLAIM_DUE_FEEDS,
    "claim_entry": keys.CLAIM_ENTRY,
    "count_new_feeds": monitor.COUNT_NEW_FEEDS,
    "publish_item": keys.PUBLISH_ITEM,
    "record_failure": keys.RECORD_FAILURE,
    "record_fulltext_check": keys.RECORD_FULLTEXT_CHECK,
    "save_poll": keys.SAVE_POLL,
}


def test_every_file_is_a_script_the_code_calls() -> None:
    assert sorted(LOADED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_script_opens_with_its_inputs(name: str) -> None:
    text = keys.lua_source(name)
    assert text == LOADED[name]
    header = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    assert header, f"{name}.lua: no header comment"
    assert "KEYS" in "\n".join(header), f"{name}.lua: its header does not name its KEYS"
