from __future__ import annotations

import pytest

from pipeline.normalize import (
    absolute_url,
    canonical_url,
    clean_line,
    clean_text,
    content_hash,
    feed_id,
    html_to_text,
    item_id,
)

ZWNJ = "\u200c"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Example.com/a/b?utm_source=rss&id=3#top", "https://example.com/a/b?id=3"),
        ("https://example.com/a?fbclid=xyz", "https://example.com/a"),
        ("HTTP://EXAMPLE.COM/News/1", "http://example.com/News/1"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ],
)
def test_canonical_url_strips_tracking_and_noise(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


@pytest.mark.parametrize(
    "raw", ["javascript:alert(1)", "data:text/html,hi", "mailto:a@b.c", "", None]
)
def test_canonical_url_refuses_non_web_links(raw: str | None) -> None:
    assert canonical_url(raw) is None


def test_relative_links_resolve_against_the_feed() -> None:
    assert (
        canonical_url("/news/7?utm_medium=x", "https://agency.ir/rss") == "https://agency.ir/news/7"
    )
    assert (
        absolute_url("story.html", "https://agency.ir/fa/rss.xml")
        == "https://agency.ir/fa/story.html"
    )
    assert absolute_url("javascript:void(0)", "https://agency.ir/") is None


def test_clean_text_keeps_zwnj_and_paragraphs() -> None:
    raw = f"  کره{ZWNJ}شمالی   اعلام کرد\u00a0 که\r\n\r\n\r\nمی{ZWNJ}نوشتند\t \n"
    assert clean_text(raw) == f"کره{ZWNJ}شمالی اعلام کرد که\n\nمی{ZWNJ}نوشتند"


def test_clean_text_is_nfc_and_drops_invisible_marks() -> None:
    decomposed = "e\u0301t\u00e9"  # é as e + combining accent
    assert clean_text("\ufeff" + decomposed + "\u00ad") == "\u00e9t\u00e9"


def test_clean_line_joins_paragraphs() -> None:
    assert clean_line("a\n\nb ") == "a b"
    assert clean_line(None) == ""


def test_html_to_text_keeps_block_structure() -> None:
    html = "<p>First <b>bold</b>&nbsp;words</p><div>Second<br>line</div><script>x=1</script>"
    assert html_to_text(html) == "First bold words\n\nSecond\n\nline"


def test_html_to_text_plain_text_unescapes() -> None:
    assert html_to_text("AT&amp;T reports") == "AT&T reports"


def test_ids_are_stable_and_url_based() -> None:
    assert feed_id("https://a.example/rss") == feed_id(" https://a.example/rss ")
    assert len(feed_id("https://a.example/rss")) == 16
    one = item_id("https://a.example/n/1", "guid:1")
    assert one == item_id("https://a.example/n/1", "guid:other")  # same URL, same item
    assert one != item_id(None, "guid:1")
    assert len(one) == 24


def test_content_hash_folds_case_and_whitespace_only() -> None:
    assert content_hash("Hello  World\n\nAgain") == content_hash("hello world again")
    assert content_hash(f"می{ZWNJ}شود") != content_hash("میشود")


def test_canonical_url_keeps_identifying_parameters() -> None:
    one = canonical_url("https://agency.example/news.php?sid=5&utm_campaign=x")
    assert one == "https://agency.example/news.php?sid=5"
    assert one != canonical_url("https://agency.example/news.php?sid=6")


def test_matching_normalization_folds_syndication_variants() -> None:
    from pipeline.normalize import normalize_for_matching

    variants = [
        f"کره{ZWNJ}شمالی ۱۲۰ روزه، «۹ نفر» را از دست داد.",
        "كره شمالي 120 روزه «9 نفر» را از دست داد",  # Arabic yeh/kaf, ASCII digits, ZWNJ as space
        "کره شمالی ١٢٠ روزه، ۹ نفر را از دست داد!",  # Arabic-Indic digits
    ]
    folded = {normalize_for_matching(v).replace(" ", "") for v in variants}
    assert folded == {"کرهشمالی120روزه9نفرراازدستداد"}
    assert normalize_for_matching("كَتَبَ الـــخبر") == "کتب الخبر"  # diacritics, tatweel
    assert normalize_for_matching("Hello, WORLD_x") == "hello world x"


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("120", 120),
        ("الخامسه", 5),  # الخامسة: the fifth (feminine), as normalize_for_matching spells it
        ("والسادس", 6),  # "and the sixth"
        ("خمس", 5),
        ("الاولی", 1),  # الأولى
        ("پنجمین", 5),
        ("ششم", 6),
        ("سه", None),  # Persian cardinals begin compounds (سه‌شنبه, Tuesday): not numbers
        ("شنبه", None),
        ("الاثنین", None),  # الاثنين: Monday in news, not "the two"
        ("اثنین", 2),
        ("الطائره", None),
        ("", None),
    ],
)
def test_number_value_reads_digits_and_number_words(token: str, value: int | None) -> None:
    from pipeline.normalize import number_value

    assert number_value(token) == value
