"""Feeds files (pipeline/registry.py): OPML folders as tags, the streamed YAML reader, and any
bytes at all giving a list of feeds or a ConfigError, never another exception."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.models import FeedSpec
from pipeline.registry import PROGRESS_EVERY, load_feeds_file, parse_feeds_yaml, parse_opml


def opml(body: str) -> bytes:
    return f'<?xml version="1.0"?><opml version="2.0"><head/><body>{body}</body></opml>'.encode()


# ------------------------------------------------------------------------ OPML folders as tags


def test_every_enclosing_folder_is_a_tag_outermost_first() -> None:
    specs = parse_opml(
        opml(
            '<outline text="World"><outline title="Middle East" text="ignored">'
            '<outline text="Iran"><outline text="ILNA" xmlUrl="https://ilna.example/rss"/>'
            '</outline><outline text="Al" xmlUrl="https://al.example/rss"/></outline>'
            '<outline text="W" xmlUrl="https://w.example/rss"/></outline>'
            '<outline text="Top" xmlUrl="https://top.example/rss"/>'
        ),
        "subs.opml",
    )
    assert specs == [
        FeedSpec(
            url="https://ilna.example/rss", title="ILNA", tags=("World", "Middle East", "Iran")
        ),
        FeedSpec(url="https://al.example/rss", title="Al", tags=("World", "Middle East")),
        FeedSpec(url="https://w.example/rss", title="W", tags=("World",)),
        FeedSpec(url="https://top.example/rss", title="Top"),
    ]


def test_a_feed_inside_a_feed_does_not_take_its_title_as_a_tag() -> None:
    specs = parse_opml(
        opml(
            '<outline text="News"><outline text="Parent feed" xmlUrl="https://p.example/rss">'
            '<outline text="Child" xmlUrl="https://c.example/rss">'
            '<outline text="Grandchild" xmlUrl="https://g.example/rss"/></outline>'
            "</outline></outline>"
        ),
        "subs.opml",
    )
    assert [(s.url, s.tags) for s in specs] == [
        ("https://p.example/rss", ("News",)),
        ("https://c.example/rss", ("News",)),
        ("https://g.example/rss", ("News",)),
    ]


def test_untitled_and_repeated_folders_add_no_tag() -> None:
    specs = parse_opml(
        opml(
            '<outline><outline text="fa"><outline text="fa">'
            '<outline xmlUrl="https://a.example/rss"/></outline></outline></outline>'
            '<outline text="" xmlUrl=""><outline xmlUrl="https://b.example/rss"/></outline>'
        ),
        "subs.opml",
    )
    assert [(s.url, s.tags) for s in specs] == [
        ("https://a.example/rss", ("fa",)),
        ("https://b.example/rss", ()),
    ]


def test_a_bad_outline_is_named_with_its_line() -> None:
    body = '<outline text="ok" xmlUrl="https://a.example/rss"/>\n' * 3
    body += '<outline text="bad" xmlUrl="ftp://b.example/rss"/>\n'
    with pytest.raises(ConfigError, match=r"^subs\.opml: line 5: outline ftp://b\.example/rss: "):
        parse_opml(opml("\n" + body), "subs.opml")


# --------------------------------------------------------------------------- YAML, streamed


@pytest.mark.parametrize(
    ("body", "root"),
    [
        (b"<html><body><a href='/rss'>feed</a></body></html>", "html"),
        (b'<rss version="2.0"><channel><title>t</title></channel></rss>', "rss"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>', "feed"),
    ],
)
def test_a_file_that_is_not_opml_is_refused_not_imported_as_nothing(body: bytes, root: str) -> None:
    with pytest.raises(ConfigError, match=rf"subs.opml: not an OPML file .*<{root}>"):
        parse_opml(body, "subs.opml")


def test_yaml_other_keys_and_anchors_are_read_around_the_list() -> None:
    specs = parse_feeds_yaml(
        b"defaults: &fa [fa, agency]\n"
        b"feeds:\n  - url: https://a.example/rss\n    tags: *fa\n  - https://b.example/rss\n"
        b"notes: {any: [thing]}\n",
        "feeds.yaml",
    )
    assert specs == [
        FeedSpec(url="https://a.example/rss", tags=("fa", "agency")),
        FeedSpec(url="https://b.example/rss"),
    ]
    # An anchored or aliased list is read whole.
    assert len(parse_feeds_yaml(b"x: &l [https://a.example/]\nfeeds: *l\n", "f.yaml")) == 1
    assert len(parse_feeds_yaml(b"feeds: !!seq [https://a.example/]\n", "f.yaml")) == 1


def test_fulltext_is_read_and_checked() -> None:
    body = b"feeds:\n  - url: https://a.example/rss\n    fulltext: feed\n  - https://b.example/\n"
    specs = parse_feeds_yaml(body, "feeds.yaml")
    assert [s.fulltext for s in specs] == ["feed", "auto"]
    with pytest.raises(ConfigError, match=r"feeds\[0\]: Invalid enum value 'always'"):
        parse_feeds_yaml(b"feeds:\n  - {url: https://a.example/, fulltext: always}\n", "f.yaml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "expected a top-level 'feeds:' list"),
        (b"- https://a.example/\n", "expected a top-level 'feeds:' list"),
        (b"feeds: {url: https://a.example/}\n", "expected a top-level 'feeds:' list"),
        (b"feeds: []\nfeeds: []\n", "'feeds:' is given twice"),
        (b"feeds: []\n---\nfeeds: []\n", "not valid YAML: more than one document"),
        (b"feeds: [https://a.example/]\n]\n", "not valid YAML: line 2, column 1"),
        (b"feeds:\n  - interval: !!int x\n", "not valid YAML: ValueError"),
        (b"feeds:\n  - title: !!timestamp x\n", "not valid YAML"),
        (b"feeds:\n  - title: !!bool maybe\n", "not valid YAML"),
        (b"feeds:\n  - !!python/object/apply:os.system [true]\n", "not valid YAML"),
        (b"feeds: " + b"[" * 2000 + b"]" * 2000, "not valid YAML"),
        (b"feeds: " + b"[" * 900 + b"]" * 900, "not valid YAML: nested too deeply"),
    ],
)
def test_bad_yaml_is_one_line_naming_the_file(body: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_feeds_yaml(body, "feeds.yaml")
    text = str(info.value)
    assert text.startswith("feeds.yaml: ") and message in text and "\n" not in text


def test_the_bad_entry_of_a_long_file_is_named(tmp_path: Path) -> None:
    lines = ["feeds:"] + [f"  - https://f{i}.example/rss" for i in range(3000)]
    lines[2346] = "  - url: https://bad.example/rss\n    colour: red"
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"feeds\.yaml: feeds\[2345\]: .*colour"):
        load_feeds_file(path)


def test_progress_is_reported_and_equal_tags_are_shared(tmp_path: Path) -> None:
    count = 2 * PROGRESS_EVERY + 5
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        + "".join(f"  - {{url: https://f{i}.example/, tags: [fa]}}\n" for i in range(count))
    )
    seen: list[int] = []
    specs = load_feeds_file(path, progress=seen.append)
    assert len(specs) == count and seen == [PROGRESS_EVERY, 2 * PROGRESS_EVERY]
    assert specs[0].tags == ("fa",) and specs[0].tags is specs[-1].tags


def test_files_are_told_apart_by_content_and_read_from_a_pipe(tmp_path: Path) -> None:
    bom_yaml = tmp_path / "feeds"
    bom_yaml.write_bytes(b"\xef\xbb\xbffeeds: [https://a.example/]\n")
    assert load_feeds_file(bom_yaml) == [FeedSpec(url="https://a.example/")]
    outline = tmp_path / "subs.txt"
    outline.write_bytes(b'\n  <opml><body><outline xmlUrl="https://b.example/"/></body></opml>')
    assert load_feeds_file(outline) == [FeedSpec(url="https://b.example/")]

    fifo = tmp_path / "fifo"  # `feedpipe run --feeds <(generate-feeds)`
    os.mkfifo(fifo)
    writer = threading.Thread(
        target=fifo.write_bytes, args=(opml('<outline xmlUrl="https://c.example/"/>'),)
    )
    writer.start()
    try:
        assert load_feeds_file(fifo) == [FeedSpec(url="https://c.example/")]
    finally:
        writer.join(10)


# ------------------------------------------------------------- any bytes: feeds or ConfigError

XML_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {n} "{("&" + p + ";") * 10}">'.encode()
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + b']><opml><body><outline text="&i;" xmlUrl="https://a.example/&i;"/></body></opml>'
)
XML_EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<opml><body><outline text="&x;" xmlUrl="https://a.example/"/></body></opml>'
)
XML_PARAMETER = (
    b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    b'<opml><body><outline xmlUrl="https://a.example/"/></body></opml>'
)
XML_DEEP = b"<opml><body>" + b"<outline>" * 300 + b"</outline>" * 300 + b"</body></opml>"
YAML_BOMB = (
    b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + b"".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n".encode()
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + b"feeds: [{url: 'https://a.example/', tags: *i}]\n"
)

xml_pieces = st.sampled_from(
    [
        "<opml>", "</opml>", "<body>", "</body>", "<outline ", "/>", ">", "</outline>",
        'text="T" ', 'title="" ', 'xmlUrl="https://a.example/rss" ', 'xmlUrl="ftp://x" ',
        'xmlUrl="&e;" ', "<!DOCTYPE o [<!ENTITY e 'https://e.example/'>]>", "&e;", "&#0;",
        "<![CDATA[x]]>", "<!-- c -->", '<?xml version="1.0" encoding="bogus"?>',
        '<?xml version="1.0" encoding="utf-16"?>', "\x00", "\u200f", "\ud800",
    ]
)  # fmt: skip
yaml_pieces = st.sampled_from(
    [
        "feeds:", "\n", "  - ", "url: ", "https://a.example/rss", "title: ", "tags: ", "[",
        "]", "{", "}", ", ", "interval: ", "300", "-5", "1e999", "!!int ", "!!float ",
        "!!timestamp ", "!!binary ", "!!bool ", "!!set ", "!!omap ", "!!python/name:os.system ",
        "&a ", "*a", "*b", "<<: ", "? ", "---\n", "...\n", "%YAML 1.1\n", "'", '"', "\t",
        "\x00", "\ufeff", "\ud800", "maybe", "x",
    ]
)  # fmt: skip
hostile_opml = st.one_of(
    st.binary(max_size=2000),
    st.lists(xml_pieces, max_size=40).map(lambda p: "".join(p).encode(errors="surrogatepass")),
)
hostile_yaml = st.one_of(
    st.binary(max_size=2000),
    st.lists(yaml_pieces, max_size=40).map(lambda p: "".join(p).encode(errors="surrogatepass")),
)


def _feeds_or_config_error(read: object) -> None:
    try:
        specs = read() if callable(read) else read
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(specs, list)
    for spec in specs:
        assert isinstance(spec, FeedSpec) and spec.url.startswith(("http://", "https://"))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_opml)
@example(XML_BOMB)
@example(XML_EXTERNAL)
@example(XML_PARAMETER)
@example(XML_DEEP)
@example(b"")
def test_any_bytes_as_opml(raw: bytes) -> None:
    _feeds_or_config_error(lambda: parse_opml(raw, "fuzz.opml"))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_yaml)
@example(YAML_BOMB)
@example(b"feeds: " + b"[" * 5000)
@example(b"feeds:\n" + b"  - " * 400 + b"x\n")
@example(b"feeds: &r [*r]\n")
@example(b"feeds:\n  - &e {url: *e}\n")
@example(b"feeds:\n  - {url: https://a.example/, interval: 1e999}\n")
def test_any_bytes_as_feeds_yaml(raw: bytes) -> None:
    _feeds_or_config_error(lambda: parse_feeds_yaml(raw, "fuzz.yaml"))


_FILES = tempfile.TemporaryDirectory(prefix="feedpipe-feeds-file-")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.one_of(hostile_yaml, hostile_opml), st.sampled_from(["yaml", "opml", "xml", "txt"]))
@example(XML_BOMB, "txt")
@example(YAML_BOMB, "xml")
def test_any_bytes_as_a_feeds_file(raw: bytes, suffix: str) -> None:
    path = Path(_FILES.name) / f"feeds.{suffix}"
    path.write_bytes(raw)
    _feeds_or_config_error(lambda: load_feeds_file(path))
