"""Pure text and URL normalization: canonical URLs, clean output text, stable ids.

Output text keeps its original letters and every ZWNJ (U+200C): in Persian it separates parts
of one word ("می‌نوشتند"), and dropping it changes the spelling. Normalization for *matching*
(near-duplicate detection) is a separate, lossy step and never touches published text.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from urllib.parse import urljoin, urlsplit, urlunsplit

import courlan
import lxml.html
from lxml import etree

# Horizontal whitespace to fold into one space. Not \s: that would also match \n (paragraph
# structure) and must not match ZWNJ/ZWJ (format characters, not whitespace, in Unicode).
_HSPACE = re.compile(r"[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# Invisible characters that carry no meaning in news text: BOM, soft hyphen, word joiner.
_INVISIBLE = re.compile(r"[\ufeff\u00ad\u2060]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n\s*\n+")

_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "table",
        "tr",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "dd",
        "dt",
        "hr",
    ]
)
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object")


def clean_text(text: str) -> str:
    """NFC, folded spaces, paragraphs separated by exactly one blank line, ZWNJ kept."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    paragraphs = []
    for raw_line in text.split("\n"):
        line = _HSPACE.sub(" ", raw_line).strip()
        if line:
            paragraphs.append(line)
    return "\n\n".join(paragraphs)


def clean_line(text: str | None) -> str:
    """A title or name: one line, clean."""
    return clean_text(text or "").replace("\n\n", " ")


def html_to_text(fragment: str) -> str:
    """Plain text of a feed's HTML content/summary, one paragraph per block element.

    Written here rather than taken from trafilatura: trafilatura's extractors look for the main
    content of a whole page and drop short fragments, which is wrong for a feed summary.
    """
    if "<" not in fragment:
        return clean_text(html.unescape(fragment))
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return clean_text(fragment)
    etree.strip_elements(root, *_DROP_TAGS, with_tail=False)
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n" + (element.text or "")
    return clean_text(root.text_content())


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The URL an article is known by: absolute, http(s) only, tracking parameters removed.

    Returns None for anything that is not a fetchable web URL (javascript:, data:, mailto:).
    """
    if not url:
        return None
    url = url.strip()
    try:  # "http://[" and other malformed authorities: not a fetchable URL
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    # Not strict=True: that keeps only courlan's whitelist of query parameters and would merge
    # distinct articles such as "news.php?sid=5" and "?sid=6". Non-strict drops known trackers.
    try:
        normalized = courlan.normalize_url(url, strict=False)
    except ValueError:
        normalized = url
    return urlunsplit(urlsplit(normalized)._replace(fragment=""))


def absolute_url(url: str | None, base: str | None = None) -> str | None:
    """An http(s) URL resolved against ``base``, unchanged otherwise; None if not fetchable."""
    if not url:
        return None
    try:  # "http://[" and other malformed authorities: not a fetchable URL
        resolved = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme in ("http", "https") and parts.netloc else None


def primary_subtag(tag: str | None) -> str | None:
    """A language tag's primary subtag: ``fa-IR`` -> ``fa``; an empty or malformed tag -> None."""
    first = (tag or "").strip().split("-")[0].split("_")[0].lower()
    return first if first.isascii() and first.isalpha() and 2 <= len(first) <= 3 else None


def short_hash(value: str, length: int = 24) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def feed_id(url: str) -> str:
    """A feed's id: stable across restarts and machines, from its URL as the user gave it."""
    return short_hash(url.strip(), 16)


def item_id(canonical: str | None, fallback_identity: str) -> str:
    """An item's id: from its canonical URL, so the same article in two feeds is one item."""
    return short_hash(canonical) if canonical else short_hash("entry:" + fallback_identity)


def content_hash(text: str) -> str:
    """Hash of the text with whitespace and case folded: equal texts, equal hashes."""
    folded = " ".join(unicodedata.normalize("NFC", text).casefold().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


# --- Normalization for matching (near-duplicate detection) -------------------------------------
# Lossy on purpose and never applied to published text. Any change here changes fingerprints:
# bump MATCH_NORMALIZER_VERSION, which is part of every dedupe key (pipeline/keys.py).
MATCH_NORMALIZER_VERSION = 1

_DELETE = "\u0640"  # tatweel
_DIACRITICS = (
    "\u064b-\u065f\u0670\u0610-\u061a\u06d6-\u06ed\u08d3-\u08ff"  # tashkeel, Quranic marks
)
_LETTERS = str.maketrans(
    {
        **dict.fromkeys("يىےئ", "ی"),
        **dict.fromkeys("كڪ", "ک"),
        **dict.fromkeys("ةۀہھە", "ه"),
        **dict.fromkeys("أإٱٲٳآ", "ا"),
        "ؤ": "و",
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Persian digits
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **dict.fromkeys(
            "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
            "\u2066\u2067\u2068\u2069\ufeff\u00ad\u00ac\u00a0",
            " ",
        ),
    }
)
_STRIP_MARKS = re.compile(f"[{_DELETE}{_DIACRITICS}]")
# Punctuation and symbols of every script become spaces. (Stdlib \W also matches combining
# marks; the Arabic ones are deleted above, and any other would only turn into a space, which
# character shingling removes anyway.)
_NON_WORD = re.compile(r"[\W_]+")


def normalize_for_matching(text: str) -> str:
    """Fold every spelling variant syndicated copies use into one form (see docs/dedupe.md)."""
    text = unicodedata.normalize("NFKC", text)
    text = _STRIP_MARKS.sub("", text).translate(_LETTERS).lower()
    return _NON_WORD.sub(" ", text).strip()


def number_value(token: str) -> int | None:
    """The value of a token of ``normalize_for_matching`` output that is a number: digits
    (every script's digits are ASCII by then), or a number word from one to ten, cardinal or
    ordinal ("الخامسة", "خمس", "پنجمین" are all 5)."""
    if token.isascii() and token.isdigit():
        return int(token)
    if token in _WEEKDAY_NUMBER_WORDS:
        return None
    for prefix in _NUMBER_WORD_PREFIXES:
        if token.startswith(prefix) and (value := _NUMBER_WORDS.get(token[len(prefix) :])):
            return value
    return None


# As normalize_for_matching spells them (ی for ي/ى, ه for ة, ا for أ/إ). Persian has its
# ordinals only: its cardinals begin compounds written with a ZWNJ, a space or nothing
# ("سه‌شنبه" is Tuesday, "دوجانبه" bilateral), which would make a spelling variant look like
# another number (Persian news writes counts in digits anyway). Arabic words take the article
# and "and" attached. A word misread as a number is harmless unless the other text has another
# number word between the very same words (pipeline/dedupe.py, lead_numbers).
_NUMBER_WORDS = {
    word: value
    for value, words in {
        1: "واحد واحده اول اولی یکم یکمین نخست نخستین اولین",
        2: "اثنان اثنین اثنتان اثنتین ثانی ثانیه دوم دومین",
        3: "ثلاث ثلاثه ثالث ثالثه سوم سومین",
        4: "اربع اربعه رابع رابعه چهارم چهارمین",
        5: "خمس خمسه خامس خامسه پنجم پنجمین",
        6: "ست سته سادس سادسه ششم ششمین",
        7: "سبع سبعه سابع سابعه هفتم هفتمین",
        8: "ثمان ثمانی ثمانیه ثامن ثامنه هشتم هشتمین",
        9: "تسع تسعه تاسع تاسعه نهم نهمین",
        10: "عشر عشره عاشر عاشره دهم دهمین",
    }.items()
    for word in words.split()
}
_NUMBER_WORD_PREFIXES = ("", "ال", "و", "وال", "بال", "لل")
# "الاثنين" is "the two" and Monday; in news it is the weekday ("يوم الاثنين"), and two
# bulletins of different Mondays must not read as "2" vs another number between the same words.
_WEEKDAY_NUMBER_WORDS = frozenset({"الاثنین", "والاثنین", "بالاثنین"})
