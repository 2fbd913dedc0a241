"""The extract stage on the demo site's RTL news pages (full chrome: menus, sidebar, related
stories, newsletter box, footer), Persian and Arabic, served in UTF-8 and in windows-1256,
the charset given by the HTTP header or only by the page's <meta>: the text that comes out is
the story, paragraph for paragraph, with every ZWNJ kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.article_text import ExtractionPolicy, extract_article
from pipeline.models import Entry
from workers.demo_site import (
    AR_HERITAGE,
    AR_SOLAR,
    FA_BOOKS,
    FA_WATER,
    DemoArticle,
    DemoFeed,
    article_page_html,
    demo_feeds,
    read_fixture,
)

ZWNJ = "\u200c"
POLICY = ExtractionPolicy.create(min_text_chars=250)
FEEDS = {feed.language: feed for feed in demo_feeds(None)}
# windows-1256 has neither the Persian yeh (U+06CC) nor Persian digits: pages in it carry the
# Arabic yeh (U+064A) and ASCII digits.
TO_WINDOWS_1256 = str.maketrans({"ی": "ي", **{chr(0x06F0 + d): str(d) for d in range(10)}})
STORIES = [("fa", FA_BOOKS), ("fa", FA_WATER), ("ar", AR_SOLAR), ("ar", AR_HERITAGE)]


def page(feed: DemoFeed, article: DemoArticle, charset: str) -> bytes:
    related = {a.title: f"/{feed.language}/news/{a.slug}" for a in feed.articles if a != article}
    html = article_page_html(feed, article, f"https://demo.example/{article.slug}", related)
    html = html.replace('<meta charset="utf-8">', f'<meta charset="{charset}">')
    if charset == "windows-1256":  # the whole page, chrome included, as such a site writes it
        html = html.translate(TO_WINDOWS_1256)
    return html.encode(charset)


def entry(article: DemoArticle, language: str) -> Entry:
    return Entry(identity=f"guid:{article.slug}", title=article.title, language=language)


def as_in_windows_1256(article: DemoArticle) -> DemoArticle:
    return DemoArticle(
        article.slug,
        article.title.translate(TO_WINDOWS_1256),
        tuple(p.translate(TO_WINDOWS_1256) for p in article.paragraphs),
        article.author,
        article.published,
        article.summary.translate(TO_WINDOWS_1256),
    )


@pytest.mark.parametrize(("language", "story"), STORIES, ids=lambda v: getattr(v, "slug", v))
@pytest.mark.parametrize("charset", ["utf-8", "windows-1256"])
@pytest.mark.parametrize("declared", ["header", "meta only"])
def test_the_story_comes_out_whole(
    language: str, story: DemoArticle, charset: str, declared: str
) -> None:
    if charset == "windows-1256":
        story = as_in_windows_1256(story)
    feed = FEEDS[language]
    body = page(feed, story, charset)
    article = extract_article(
        body, charset if declared == "header" else None, entry(story, language), POLICY
    )
    assert article.extraction == "trafilatura"
    assert article.text == "\n\n".join(story.paragraphs)
    assert article.language == language


def test_the_persian_stories_do_carry_zwnj() -> None:
    # Otherwise the test above would prove nothing about ZWNJ.
    assert all(ZWNJ in "".join(s.paragraphs) for lang, s in STORIES if lang == "fa")


@pytest.mark.parametrize("charset", ["utf-8", "windows-1256"])
def test_the_persian_fixture_in_an_agency_page_comes_out_whole(
    fixture_path: Path, charset: str
) -> None:
    # The shared fixture (a real agency story, read at run time) in the Persian outlet's page.
    story = read_fixture(fixture_path)
    if charset == "windows-1256":
        story = as_in_windows_1256(story)
    article = extract_article(page(FEEDS["fa"], story, charset), None, entry(story, "fa"), POLICY)
    assert article.extraction == "trafilatura"
    assert article.text == "\n\n".join(story.paragraphs)  # its ZWNJs, where it has them
