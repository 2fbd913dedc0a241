"""Item building, extraction fallback and the item JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import msgspec

from pipeline.article_text import ExtractionPolicy, article_from_feed, extract_article
from pipeline.language import Language
from pipeline.models import Entry, ExtractJob, FeedRef
from pipeline.publish import build_item, item_json

ZWNJ = "\u200c"
PARAGRAPHS = [
    f"به گزارش خبرگزاری نمونه، وزیر نیرو امروز از آغاز طرح بازچرخانی آب در سه استان خبر داد و گفت این طرح تا پایان سال به بهره{ZWNJ}برداری می{ZWNJ}رسد.",
    f"او افزود: کارشناسان برآورد می{ZWNJ}کنند که با اجرای این طرح، مصرف آب کشاورزی در این استان{ZWNJ}ها تا ۱۵ درصد کاهش یابد.",
    f"بر اساس این گزارش، هزینه اجرای طرح از محل اعتبارات ملی و مشارکت بخش خصوصی تأمین می{ZWNJ}شود و نخستین مرحله آن از ماه آینده آغاز خواهد شد.",
]
TITLE = "آغاز طرح بازچرخانی آب در سه استان"

PAGE = f"""<html lang="fa" dir="rtl"><head><title>{TITLE} - خبرگزاری نمونه</title>
<meta property="og:site_name" content="خبرگزاری نمونه"></head><body>
<nav><a href="/">صفحه اصلی</a><a href="/politics">سیاسی</a><a href="/economy">اقتصادی</a></nav>
<article><h1>{TITLE}</h1>{"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}</article>
<aside><h3>اخبار مرتبط</h3><ul><li><a href="/n/2">خبر دیگر</a></li></ul></aside>
<footer>تمامی حقوق محفوظ است</footer></body></html>"""


def entry(**changes: Any) -> Entry:
    base = Entry(
        identity="guid:1",
        title=TITLE,
        url="https://agency.example/fa/news/1",
        canonical_url="https://agency.example/fa/news/1",
        published_at="2025-12-13T06:00:00Z",
        summary="خلاصه خبر",
        language="fa",
    )
    return msgspec.structs.replace(base, **changes)


def job(e: Entry) -> ExtractJob:
    return ExtractJob(
        item_id="a" * 24,
        feed=FeedRef(
            id="f" * 16, url="https://agency.example/rss", title="خبرگزاری نمونه", tags=("fa",)
        ),
        entry=e,
        fetched_at="2025-12-13T07:00:00Z",
    )


POLICY = ExtractionPolicy.create(min_text_chars=200)


def test_page_extraction_keeps_paragraphs_and_zwnj() -> None:
    article = extract_article(PAGE.encode(), "utf-8", entry(), POLICY)
    assert article.extraction == "trafilatura"
    assert article.text == "\n\n".join(PARAGRAPHS)
    assert ZWNJ in article.text
    assert article.site_name == "خبرگزاری نمونه"
    assert article.language == "fa"


def test_page_in_declared_legacy_charset() -> None:
    # windows-1256 has no ZWNJ-free gap for Persian letters like گ/پ; Arabic text round-trips.
    arabic = PAGE.replace(TITLE, "عنوان الخبر")
    sentences = [
        "أعلنت الوزارة اليوم عن افتتاح ثلاثة مستشفيات جديدة في المنطقة الشرقية.",
        "وقال المتحدث الرسمي إن المشروع يخدم أكثر من مئتي ألف نسمة في القرى المجاورة.",
        "ومن المتوقع أن تبدأ المرحلة الثانية من المشروع مطلع العام المقبل بتكلفة إضافية.",
    ]
    body = "".join(f"<p>{s} {s}</p>" for s in sentences)
    page = (
        arabic.split("<article>")[0]
        + f"<article><h1>عنوان الخبر</h1>{body}</article></body></html>"
    )
    article = extract_article(
        page.encode("cp1256", errors="replace"), "windows-1256", entry(title="عنوان الخبر"), POLICY
    )
    assert article.extraction == "trafilatura"
    assert article.text.startswith("أعلنت الوزارة اليوم")


def test_short_page_falls_back_to_feed_content() -> None:
    tiny = b"<html><body><article><p>Login to read.</p></article></body></html>"
    full = "\n\n".join(PARAGRAPHS)
    article = extract_article(tiny, "utf-8", entry(content=full), POLICY)
    assert article.extraction == "feed"
    assert article.text == full


def test_no_page_uses_summary() -> None:
    article = extract_article(None, None, entry(), POLICY)
    assert article == article_from_feed(entry())
    assert article.text == "خلاصه خبر"


def test_item_matches_schema(item_schema: dict[str, Any]) -> None:
    e = entry()
    article = extract_article(PAGE.encode(), "utf-8", e, POLICY)
    item = build_item(job(e), article, Language(language="fa", declared=article.language))
    document = json.loads(item_json(item))
    jsonschema.validate(document, item_schema, format_checker=jsonschema.FormatChecker())
    assert document["schema"] == 2
    assert (document["language"], document["declared_language"]) == ("fa", "fa")
    assert document["source"] == "خبرگزاری نمونه"
    assert document["feed"] == {
        "url": "https://agency.example/rss",
        "title": "خبرگزاری نمونه",
        "tags": ["fa"],
    }
    assert document["cluster"] == {"id": "a" * 24, "size": 1}
    # UTF-8 on the wire, not \\u escapes: readable with redis-cli.
    assert TITLE.encode() in item_json(item)


def test_item_without_link_still_valid(item_schema: dict[str, Any]) -> None:
    e = entry(url=None, canonical_url=None)
    item = build_item(job(e), article_from_feed(e), Language(language=None, declared=None))
    jsonschema.validate(json.loads(item_json(item)), item_schema)
    assert item.extraction == "feed" and item.url is None


def test_only_html_pages_are_extracted() -> None:
    from pipeline.article_text import is_html

    assert is_html("text/html; charset=windows-1256") and is_html(None)
    assert is_html("application/xhtml+xml") and is_html("text/plain")
    assert not is_html("image/png") and not is_html("application/pdf")
    assert not is_html("application/octet-stream")
