"""Feed bytes -> UTF-8 bytes that no XML parser can misread, whatever the feed claimed.

Feeds arrive with charsets that are missing (windows-1256 Persian/Arabic with no declaration),
only in the XML prolog, behind a BOM, or wrong: UTF-8 served as ``charset=ISO-8859-1`` (feedparser
trusts the header and makes mojibake), windows-1256 served as UTF-8. ``decode_xml_body`` decides
the encoding once, decodes, and hands back UTF-8 whose XML declaration says so.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import NamedTuple

import charset_normalizer

__all__ = ["DecodedBody", "decode_xml_body"]


@dataclass(frozen=True, slots=True)
class DecodedBody:
    text_bytes: bytes  # the document as UTF-8, declaration relabelled, XML-illegal chars removed
    encoding: str  # Python's canonical name of the codec we decoded with ("utf-8", "cp1256", ...)
    guessed: bool  # True when inferred (detection, or UTF-8 validity overruling a declared label)


class _Decoded(NamedTuple):
    text: str
    encoding: str
    guessed: bool


# A BOM is unambiguous. UTF-32-LE's BOM starts with UTF-16-LE's, so it must be tried first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# No BOM but "<" / "<?" in a wide encoding (XML 1.0 Appendix F). Strict UTF-8 accepts an
# all-ASCII UTF-16 body (NUL is valid UTF-8), and the cleanup below would then eat its NULs.
_WIDE_STARTS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
# XML EncName, read from the raw bytes: any label we can act on is ASCII in an 8-bit body.
_PROLOG_ENCODING = re.compile(rb"""\A\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][\w.-]*)["']""")
_DECL_ENCODING = re.compile(r"""\A(\s*<\?xml\s[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")
# Everything outside XML 1.0's Char production: C0 controls but tab/LF/CR, lone surrogates,
# U+FFFE/U+FFFF. Any of them makes expat abort the whole feed. U+200C/U+200D (ZWNJ/ZWJ, part
# of Persian spelling) are legal and are kept.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Browsers decode these labels as windows-1252 (WHATWG Encoding Standard): servers that say
# latin-1 almost always send windows-1252 (curly quotes, dashes in 0x80-0x9F).
_WHATWG_ALIASES = {"ascii": "cp1252", "iso8859-1": "cp1252"}
# Labels that can never be an honest declaration of an 8-bit body: a real UTF-16/32 body was
# already caught by its BOM or first bytes (WHATWG treats a utf-16 label as utf-8 likewise),
# UTF-7 is an XSS vector browsers refuse, and the rest are Python codecs, not charsets.
_REFUSED_LABELS = frozenset(
    {
        "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7",
        "unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined",
    }
)  # fmt: skip
# windows-1256 encodes ZWNJ/ZWJ as 0x9D/0x9E; see _guess.
_CP1256_JOINERS_TO_SPACE = bytes.maketrans(b"\x9d\x9e", b"  ")


def decode_xml_body(body: bytes, http_charset: str | None) -> DecodedBody:
    """Decode a feed body and return it as UTF-8 labelled as UTF-8.

    The encoding is decided in this order (what miniflux and feedbin do), first match wins:

    1. A BOM (UTF-8/16/32), or a wide-encoded ``<?`` (XML 1.0 Appendix F): nothing is surer.
    2. Strict UTF-8, whatever the labels say: real windows-1256/1251/latin-1 text with non-ASCII
       letters is essentially never valid UTF-8, while UTF-8 mislabelled as latin-1 is common.
    3. The prolog's ``encoding="..."``, then ``http_charset``, each only if Python knows it and
       the body decodes strictly with it. latin-1/ascii mean windows-1252, as in browsers.
       The prolog goes first: it is written by the feed's author, the header by a server default.
    4. charset-normalizer's detection, plus a windows-1256 rescue for Persian (see ``_guess``).
    5. UTF-8 with U+FFFD for whatever does not decode.

    The text is then cleaned of characters XML 1.0 forbids (expat aborts on them) and the XML
    declaration's encoding is rewritten to utf-8, so no parser re-decodes with the old label.
    ``guessed`` is False when a BOM, a declaration or XML's UTF-8 default decided.
    """
    if not body:
        return DecodedBody(b"", "utf-8", guessed=False)
    decoded = _decide(body, http_charset)
    return DecodedBody(_clean(decoded.text).encode("utf-8"), decoded.encoding, decoded.guessed)


def _decide(body: bytes, http_charset: str | None) -> _Decoded:
    by_signature = _by_signature(body)
    if by_signature is not None:
        return by_signature
    labels = (_prolog_label(body), http_charset)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return _Decoded(text, "utf-8", guessed=_overrules_a_label(body, labels))
    for label in labels:
        declared = _decode_as_declared(body, label)
        if declared is not None:
            return declared
    return _detect(body)


def _by_signature(body: bytes) -> _Decoded | None:
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            # The BOM wins even over bad bytes after it: replacing them is the least wrong.
            return _Decoded(body[len(bom) :].decode(encoding, "replace"), encoding, guessed=False)
    for start, encoding in _WIDE_STARTS:
        if body.startswith(start):
            return _Decoded(body.decode(encoding, "replace"), encoding, guessed=False)
    return None


def _prolog_label(body: bytes) -> str | None:
    match = _PROLOG_ENCODING.match(body[:1024])
    return match.group(1).decode("ascii") if match else None


def _codec_for(label: str | None) -> str | None:
    """The Python codec a declared label stands for, or None when it cannot be trusted."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    if name in _REFUSED_LABELS:
        return None
    return _WHATWG_ALIASES.get(name, name)


def _overrules_a_label(body: bytes, labels: tuple[str | None, ...]) -> bool:
    """Whether valid UTF-8 won against a declaration naming another charset.

    Pure ASCII reads the same in every label we accept, so nothing was overruled there.
    """
    if body.isascii():
        return False
    return any(label is not None and _codec_for(label) != "utf-8" for label in labels)


def _decode_as_declared(body: bytes, label: str | None) -> _Decoded | None:
    codec = _codec_for(label)
    if codec is None:
        return None
    try:
        return _Decoded(body.decode(codec), codec, guessed=False)
    except (UnicodeDecodeError, LookupError):  # LookupError: a codec that is not a text encoding
        return None


def _detect(body: bytes) -> _Decoded:
    encoding = _guess(body)
    if encoding is None:
        return _Decoded(body.decode("utf-8", "replace"), "utf-8", guessed=True)
    # charset-normalizer only decodes samples of big bodies; a stray bad byte elsewhere
    # should cost one U+FFFD, not the whole document.
    return _Decoded(body.decode(encoding, "replace"), encoding, guessed=True)


def _guess(body: bytes) -> str | None:
    """charset-normalizer's best guess, with one tie-break in favour of windows-1256.

    charset-normalizer counts every ZWNJ/ZWJ as an unprintable character (``str.isprintable``
    is False for them), so a Persian windows-1256 passage with a few "می‌شود"-like words exceeds
    its mess threshold in some 64-character chunk: it then answers None or a Cyrillic codepage
    (ptcp154, mac_cyrillic). When the body contains 0x9D/0x9E, detection is run again with
    those bytes as spaces, and windows-1256 is taken if it wins there. Other Arabic codepages
    are not overruled: with ZWNJ out of the way it tells windows-1256 from ISO-8859-6 reliably.
    """
    guess = _best_encoding(body)
    if guess == "cp1256" or (b"\x9d" not in body and b"\x9e" not in body):
        return guess
    if _best_encoding(body.translate(_CP1256_JOINERS_TO_SPACE)) == "cp1256":
        return "cp1256"
    return guess


def _best_encoding(body: bytes) -> str | None:
    best = charset_normalizer.from_bytes(body).best()
    return None if best is None else codecs.lookup(best.encoding).name


def _clean(text: str) -> str:
    text = _XML_ILLEGAL.sub("", text)
    return _DECL_ENCODING.sub(r"\g<1>\g<2>utf-8\g<2>", text, count=1)
