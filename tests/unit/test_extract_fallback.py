"""pipeline.article_text: the second attempt when the precise setting gives too little."""

from __future__ import annotations

from typing import Any

import lxml.html
import pytest
import trafilatura

from pipeline.article_text import ExtractionPolicy, extract_article
from pipeline.models import Entry

ZWNJ = "\u200c"
POLICY = ExtractionPolicy.create(min_text_chars=250)
TITLE = "Council to rebuild the old bridge"
PARAGRAPHS = [
    "The county council voted on Tuesday to rebuild the old stone bridge over the river, closed"
    " since the spring floods damaged two of its arches.",
    "Engineers told the council that the work would take eighteen months and that a temporary"
    " footbridge would open beside it within six weeks.",
    "Residents of the east bank, who now drive twelve miles around to reach the market town,"
    " said they were relieved but wanted a firm date.",
]
BODY = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
HEAD = f"<head><title>{TITLE} - The Valley Gazette</title></head>"

# A 2008-style page: navigation, article and footer are rows of one layout table.
TABLE_PAGE = f"""<html>{HEAD}<body><table width="100%">
<tr><td class="nav"><a href="/">Home</a> | <a href="/news">News</a> | <a href="/world">World</a>
 | <a href="/sport">Sport</a></td></tr>
<tr><td><h1>{TITLE}</h1>{BODY}</td></tr>
<tr><td class="footer">Copyright 2008 The Valley Gazette</td></tr>
</table></body></html>"""

ARTICLE_PAGE = f"""<html>{HEAD}<body>
<nav><a href="/">Home</a><a href="/news">News</a><a href="/sport">Sport</a></nav>
<article><h1>{TITLE}</h1>{BODY}</article>
<footer>Copyright 2008 The Valley Gazette</footer></body></html>"""


def entry(**changes: Any) -> Entry:
    return Entry(identity="guid:1", title=TITLE, url="https://gazette.example/news/1", **changes)


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The options of every trafilatura run pipeline.article_text makes."""
    seen: list[Any] = []
    real = trafilatura.bare_extraction

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["options"])
        return real(*args, **kwargs)

    monkeypatch.setattr(trafilatura, "bare_extraction", spy)
    return seen


def test_the_precise_setting_drops_a_table_layout() -> None:
    # The premise of the fallback: if this starts passing, trafilatura changed.
    tree = lxml.html.document_fromstring(TABLE_PAGE)
    assert trafilatura.bare_extraction(tree, options=POLICY.options) is None


def test_an_article_laid_out_in_a_table_is_extracted(attempts: list[Any]) -> None:
    article = extract_article(TABLE_PAGE.encode(), "utf-8", entry(summary="The summary."), POLICY)
    assert article.extraction == "trafilatura"
    # Cells read as blocks: paragraphs kept apart, no "| cell |" rows, no navigation or footer.
    assert article.text == "\n\n".join(PARAGRAPHS)
    assert attempts == [POLICY.options, POLICY.fallback]


def test_a_normal_article_page_takes_the_precise_path_only(attempts: list[Any]) -> None:
    article = extract_article(ARTICLE_PAGE.encode(), "utf-8", entry(), POLICY)
    assert article.extraction == "trafilatura"
    assert article.text == "\n\n".join(PARAGRAPHS)
    assert attempts == [POLICY.options]


def test_the_feed_text_still_stands_in_when_the_fallback_gives_too_little(
    attempts: list[Any],
) -> None:
    page = f"<html>{HEAD}<body><table><tr><td><p>Too short.</p></td></tr></table></body></html>"
    article = extract_article(page.encode(), "utf-8", entry(summary="The feed's summary."), POLICY)
    assert (article.extraction, article.text) == ("feed", "The feed's summary.")
    # precise; balanced with tables as blocks; balanced with tables kept; the same three on
    # the page as an HTML5 parser reads it; then the feed
    assert attempts == [POLICY.options, POLICY.fallback, POLICY.fallback] * 2


def test_zwnj_survives_the_fallback() -> None:
    words = f"می{ZWNJ}گویند که این طرح تا پایان سال به بهره{ZWNJ}برداری می{ZWNJ}رسد"
    cells = "".join(f"<p>{words} و بخش {n} از گزارش است.</p>" for n in range(6))
    page = f'<html lang="fa"><body><table><tr><td>{cells}</td></tr></table></body></html>'
    article = extract_article(page.encode(), "utf-8", entry(), POLICY)
    assert article.extraction == "trafilatura"
    assert words in article.text


def test_trafilatura_leaves_the_tree_it_is_given_whole() -> None:
    # The second attempt reuses the parsed tree: bare_extraction must work on a copy.
    tree = lxml.html.document_fromstring(ARTICLE_PAGE)
    before = lxml.html.tostring(tree)
    trafilatura.bare_extraction(tree, options=POLICY.options)
    assert lxml.html.tostring(tree) == before


def test_an_xml_declaration_naming_an_encoding_is_parsed(attempts: list[Any]) -> None:
    # lxml refuses such a str; the page went to the feed's text before.
    page = f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<!-- a comment -->{ARTICLE_PAGE}'
    article = extract_article(page.encode(), "utf-8", entry(summary="The summary."), POLICY)
    assert (article.extraction, article.text) == ("trafilatura", "\n\n".join(PARAGRAPHS))
    assert attempts == [POLICY.options]


def test_a_page_libxml2_misreads_is_read_as_browsers_do() -> None:
    # A stray </html> before the body: libxml2 drops what follows, browsers show it.
    head, body = ARTICLE_PAGE.split("<body>", 1)
    page = f"{head}</html><body>{body}"
    article = extract_article(page.encode(), "utf-8", entry(summary="The summary."), POLICY)
    assert (article.extraction, article.text) == ("trafilatura", "\n\n".join(PARAGRAPHS))
