"""Feed bytes -> UTF-8 bytes that no XML parser can misread, whatever the feed claimed.

Feeds arrive with charsets that are missing (windows-1256 Persian/Arabic with no declaration),
only in the XML prolog, behind a BOM, in EBCDIC, or wrong: UTF-8 served as ``charset=ISO-8859-1``
(feedparser trusts the header and makes mojibake), windows-1256 served as UTF-8, UTF-8 with one
stray latin-1 byte pasted in by a CMS. ``decode_xml_body`` decides the encoding once, decodes,
and hands back UTF-8 whose XML declaration says so. Labels mean what they mean in browsers
(WHATWG Encoding Standard): ``codec_for_label``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import NamedTuple

import charset_normalizer

__all__ = ["DecodedBody", "codec_for_label", "decode_xml_body"]


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
# Encoding labels as browsers read them: the WHATWG Encoding Standard's label table
# (https://encoding.spec.whatwg.org/#names-and-labels), for every encoding Python has a codec
# for, keyed by the codec. Written out rather than taken from the ``webencodings`` package: that
# would be a new dependency for a small table that is part of a standard and rarely changes.
# What it changes from Python's own aliases is what feeds get wrong most: latin-1/ascii/us-ascii
# mean windows-1252 (curly quotes and dashes in 0x80-0x9F, which Python's latin-1 turns into C1
# controls), iso-8859-9 means windows-1254, tis-620/iso-8859-11 windows-874, and the legacy CJK
# labels mean the supersets their servers really send: gb2312/gbk -> gb18030, euc-kr -> cp949
# (Microsoft's 11,172-syllable Hangul), shift_jis -> cp932 (NEC/IBM extensions such as ①),
# big5 -> big5hkscs. Standard labels Python lacks a codec for (x-user-defined) are left out.
_WHATWG_LABELS_BY_CODEC = {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "cp866": "866 cp866 csibm866 ibm866",
    "iso8859_2": "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 "
    "iso_8859-2:1987 l2 latin2",
    "iso8859_3": "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 "
    "iso_8859-3:1988 l3 latin3",
    "iso8859_4": "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 "
    "iso_8859-4:1988 l4 latin4",
    "iso8859_5": "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 "
    "iso_8859-5 iso_8859-5:1988",
    "iso8859_6": "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 "
    "iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987",
    "iso8859_7": "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 "
    "iso8859-7 iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek",
    # ISO-8859-8 (visual) and ISO-8859-8-I (logical) differ in bidi handling, not in bytes.
    "iso8859_8": "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 "
    "iso8859-8 iso88598 iso_8859-8 iso_8859-8:1988 visual csiso88598i iso-8859-8-i logical",
    "iso8859_10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso8859_13": "iso-8859-13 iso8859-13 iso885913",
    "iso8859_14": "iso-8859-14 iso8859-14 iso885914",
    "iso8859_15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso8859_16": "iso-8859-16",
    "koi8_r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8_u": "koi8-ru koi8-u",
    "mac_roman": "csmacintosh mac macintosh x-mac-roman",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1250": "cp1250 windows-1250 x-cp1250",
    "cp1251": "cp1251 windows-1251 x-cp1251",
    "cp1252": "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 "
    "iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252",
    "cp1253": "cp1253 windows-1253 x-cp1253",
    "cp1254": "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 "
    "iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254",
    "cp1255": "cp1255 windows-1255 x-cp1255",
    "cp1256": "cp1256 windows-1256 x-cp1256",
    "cp1257": "cp1257 windows-1257 x-cp1257",
    "cp1258": "cp1258 windows-1258 x-cp1258",
    "mac_cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    "gb18030": "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk "
    "gb18030",
    "big5hkscs": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",
    "euc_jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso2022_jp": "csiso2022jp iso-2022-jp",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "cp949": "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 "
    "ksc5601 ksc_5601 windows-949",
}
_WHATWG_LABELS = {
    label: codecs.lookup(codec).name
    for codec, labels in _WHATWG_LABELS_BY_CODEC.items()
    for label in labels.split()
}


def _by_python_name(labels: dict[str, str]) -> dict[str, str]:
    """Python's other spellings of the same encodings ("latin_1", "ISO8859_1", "s_jis") go the
    same way: keyed by the codec Python resolves a WHATWG label to (iso8859-1 -> cp1252, ...)."""
    by_name: dict[str, str] = {}
    for label, codec in labels.items():
        try:
            by_name.setdefault(codecs.lookup(label).name, codec)
        except LookupError:
            continue
    return by_name


_WHATWG_BY_PYTHON_NAME = _by_python_name(_WHATWG_LABELS)
# WHATWG's "replacement" labels: 7-bit encodings whose escapes can smuggle markup past filters.
_WHATWG_REPLACEMENT = frozenset(
    {"csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr", "replacement"}
)
# Labels that can never be an honest declaration of an 8-bit body: a real UTF-16/32 body was
# already caught by its BOM or first bytes (WHATWG treats a utf-16 label as utf-8 likewise),
# UTF-7 and the 7-bit CJK escapes are XSS vectors browsers refuse, and the rest are Python
# codecs, not charsets.
_REFUSED_LABELS = frozenset(
    {
        "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7",
        "hz", "iso2022_kr", "unicode-escape", "raw-unicode-escape", "idna", "punycode",
        "undefined",
    }
)  # fmt: skip
# What a label may look like before Python's codec registry is asked about it: every WHATWG and
# Python label fits; NUL, surrogates or a megabyte of header would make codecs.lookup raise.
_LABEL_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}\Z")
# ISO-2022-JP is 7-bit: its kanji hide behind ESC sequences in an all-ASCII (so valid UTF-8) body.
_SEVEN_BIT_CODECS = frozenset({"iso2022_jp"})
# XML 1.0 Appendix F: "<?xm" in an EBCDIC code page. The declaration is read in each EBCDIC
# code page Python has until one yields a label (they mostly agree on the characters a
# declaration uses, but not all: '"' is 0x7F in cp037, 0xFC in cp1026), then the body is
# decoded in the code page the label names.
_EBCDIC_XML_START = b"\x4c\x6f\xa7\x94"
_EBCDIC_CODECS = ("cp037", "cp500", "cp1140", "cp273", "cp1026", "cp875", "cp424")
_EBCDIC_XML_DECL = "<?xml".encode("cp037")
# UTF-8 with a few stray bytes (a CMS pasting in one latin-1 "é", a multi-byte character cut in
# two) is still UTF-8: decoding it all over again as a guessed legacy charset turns every
# accent into mojibake. A legacy body misread as UTF-8 looks nothing like that: its non-ASCII
# letters are mostly followed by ASCII, so nearly every one is an invalid sequence. Measured on
# French/German/Spanish/Turkish (cp1252/1254), Polish (cp1250), Russian (cp1251, KOI8-R), Greek,
# Hebrew, Thai, Persian/Arabic/Urdu (cp1256, ISO-8859-6), GBK, Big5, Shift_JIS, EUC-JP and
# EUC-KR news text: at most 0.4 valid multi-byte characters per invalid sequence (EUC-JP; Persian
# cp1256 0.1). So a body is UTF-8 when it has at most 1 invalid sequence per 100 valid
# multi-byte characters, or, for a short feed, at most _MAX_STRAY of them and still 10 valid
# characters for each: 25 times the worst legacy ratio. (A legacy body would need 10 of its
# first 11 non-ASCII characters to form valid UTF-8 by chance: about 1 in 50,000 for EUC-JP,
# the worst case, and far less with every further character.) A one-item feed with fewer than
# 10 accents and a stray byte is still re-detected: too little evidence either way.
_STRAY_PER_VALID = 100
_MAX_STRAY = 3
_MIN_VALID_PER_STRAY = 10
_UTF8_REPLACEMENT_CHAR = "\ufffd".encode()
# windows-1256 encodes ZWNJ/ZWJ as 0x9D/0x9E; see _guess.
_CP1256_JOINERS_TO_SPACE = bytes.maketrans(b"\x9d\x9e", b"  ")


def decode_xml_body(body: bytes, http_charset: str | None) -> DecodedBody:
    """Decode a feed body and return it as UTF-8 labelled as UTF-8.

    The encoding is decided in this order (what miniflux and feedbin do), first match wins:

    1. A BOM (UTF-8/16/32), a wide-encoded ``<?`` (XML 1.0 Appendix F), or an EBCDIC ``<?xml``
       whose declaration then names the EBCDIC code page: nothing is surer.
    2. Strict UTF-8, whatever the labels say: real windows-1256/1251/latin-1 text with non-ASCII
       letters is essentially never valid UTF-8, while UTF-8 mislabelled as latin-1 is common.
       (An all-ASCII body declared ISO-2022-JP is decoded as declared: ``_SEVEN_BIT_CODECS``.)
    3. UTF-8 but for a few stray bytes (see ``_STRAY_PER_VALID``): decoded as UTF-8, each stray
       sequence a U+FFFD, instead of re-detecting the whole document as some legacy charset.
    4. The prolog's ``encoding="..."``, then ``http_charset``, each only if it names an encoding
       (read as browsers read labels: ``codec_for_label``) and the body decodes strictly with
       it. The prolog goes first: it is written by the feed's author, the header by a server
       default.
    5. charset-normalizer's detection, plus a windows-1256 rescue for Persian (see ``_guess``).
    6. UTF-8 with U+FFFD for whatever does not decode.

    The text is then cleaned of characters XML 1.0 forbids (expat aborts on them) and the XML
    declaration's encoding is rewritten to utf-8, so no parser re-decodes with the old label.
    ``guessed`` is False when a BOM, a declaration or XML's UTF-8 default decided.
    """
    if not body:
        return DecodedBody(b"", "utf-8", guessed=False)
    decoded = _decide(body, http_charset)
    return DecodedBody(_clean(decoded.text).encode("utf-8"), decoded.encoding, decoded.guessed)


def codec_for_label(label: str | None) -> str | None:
    """The Python codec a declared charset label stands for, as a browser would read it.

    WHATWG labels first (``latin1`` -> cp1252, ``gb2312`` -> gb18030, ``shift_jis`` -> cp932,
    ...); other labels Python knows (``cp037``, ``latin_1``) are resolved by Python and then
    mapped the same way. None for an unknown label or one that cannot be trusted (UTF-7,
    UTF-16 without a BOM, WHATWG's "replacement" encodings, Python's non-charset codecs).
    """
    if not label:
        return None
    key = label.strip().strip("\"'").strip().lower()
    if key in _WHATWG_LABELS:
        return _WHATWG_LABELS[key]
    if key in _WHATWG_REPLACEMENT or not _LABEL_SHAPE.match(key):
        return None
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    if name in _REFUSED_LABELS:
        return None
    return _WHATWG_BY_PYTHON_NAME.get(name, name)


def _decide(body: bytes, http_charset: str | None) -> _Decoded:
    by_signature = _by_signature(body)
    if by_signature is not None:
        return by_signature
    labels = (_prolog_label(body), http_charset)
    if b"\x1b" in body and body.isascii():
        seven_bit = _decode_seven_bit(body, labels)
        if seven_bit is not None:
            return seven_bit
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return _Decoded(text, "utf-8", guessed=_overrules_a_label(body, labels))
    text_with_strays = _utf8_with_stray_bytes(body)
    if text_with_strays is not None:
        return _Decoded(text_with_strays, "utf-8", guessed=_overrules_a_label(body, labels))
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
    if body.startswith(_EBCDIC_XML_START):
        return _decode_ebcdic(body)
    return None


def _decode_ebcdic(body: bytes) -> _Decoded:
    """An EBCDIC document, in the code page its declaration names when Python has it.

    Otherwise (no declaration, IBM-1047, which Python lacks, or a label that is not EBCDIC)
    cp037: letters, digits and most of XML's markup are the same in the Latin EBCDIC code
    pages, so at worst a few punctuation marks come out wrong.
    """
    head = body[:1024]
    for reader in _EBCDIC_CODECS:
        prolog = head.decode(reader, "replace").encode("ascii", "replace")
        codec = codec_for_label(_prolog_label(prolog))
        if codec is not None and _is_ebcdic(codec):
            return _Decoded(body.decode(codec, "replace"), codec, guessed=False)
    return _Decoded(body.decode("cp037", "replace"), "cp037", guessed=True)


def _is_ebcdic(codec: str) -> bool:
    try:
        return "<?xml".encode(codec) == _EBCDIC_XML_DECL
    except (UnicodeError, LookupError):  # LookupError: a codec that is not a text encoding
        return False


def _prolog_label(body: bytes) -> str | None:
    match = _PROLOG_ENCODING.match(body[:1024])
    return match.group(1).decode("ascii") if match else None


def _decode_seven_bit(body: bytes, labels: tuple[str | None, ...]) -> _Decoded | None:
    for label in labels:
        codec = codec_for_label(label)
        if codec in _SEVEN_BIT_CODECS:
            declared = _decode_as_declared(body, label)
            if declared is not None:
                return declared
    return None


def _utf8_with_stray_bytes(body: bytes) -> str | None:
    """The body as UTF-8 with U+FFFD for its stray bytes, if it is UTF-8 but for a few of them.

    Counted in sequences as the decoder replaces them (a cut-off 3-byte character is one), and
    against valid multi-byte characters; the thresholds are explained at ``_STRAY_PER_VALID``.
    """
    text = body.decode("utf-8", "replace")
    # U+FFFD already in the feed (EF BF BD is always a whole, valid sequence) are not strays.
    stray = text.count("\ufffd") - body.count(_UTF8_REPLACEMENT_CHAR)
    valid = len(text) - len(text.encode("ascii", "ignore")) - stray
    if stray * _STRAY_PER_VALID <= valid:
        return text
    if stray <= _MAX_STRAY and stray * _MIN_VALID_PER_STRAY <= valid:
        return text
    return None


def _overrules_a_label(body: bytes, labels: tuple[str | None, ...]) -> bool:
    """Whether (nearly) valid UTF-8 won against a declaration naming another charset.

    Pure ASCII reads the same in every label we accept, so nothing was overruled there.
    """
    if body.isascii():
        return False
    return any(label is not None and codec_for_label(label) != "utf-8" for label in labels)


def _decode_as_declared(body: bytes, label: str | None) -> _Decoded | None:
    codec = codec_for_label(label)
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
