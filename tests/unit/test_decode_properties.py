"""Property tests of pipeline/decode.py: whatever bytes and labels a server sends, decoding ends
in a valid UTF-8 XML text, never in an exception; honest UTF-8 comes out untouched."""

from __future__ import annotations

import codecs
import re
from encodings.aliases import aliases

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decode import _WHATWG_LABELS, DecodedBody, codec_for_label, decode_xml_body

# The characters XML 1.0 allows (the decoder removes the others) and that a text can start with
# without being read as something else (U+FEFF is a BOM there).
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
xml_chars = st.characters(exclude_categories=("Cs",)).filter(lambda c: not _XML_ILLEGAL.match(c))
xml_texts = st.text(xml_chars, max_size=300).filter(lambda t: not t.startswith("\ufeff"))
non_ascii_chars = xml_chars.filter(lambda c: ord(c) > 0x7F and c != "\ufeff")

labels = st.one_of(
    st.none(),
    st.sampled_from(sorted(_WHATWG_LABELS)),
    st.sampled_from(sorted(set(aliases) | set(aliases.values()))),
    st.sampled_from(["x-no-such-charset", "utf-7", "rot13", "base64", "zlib", "idna", "hex"]),
    st.text(max_size=20),
)
prefixes = st.sampled_from(
    [
        b"",
        codecs.BOM_UTF8,
        codecs.BOM_UTF16_LE,
        codecs.BOM_UTF16_BE,
        codecs.BOM_UTF32_LE,
        b"<\x00?\x00",
        b"\x00<\x00?",
        b"\x4c\x6f\xa7\x94",  # "<?xm" in EBCDIC
        "<?xml".encode("cp037"),
        b"<?xml version='1.0'?>",
        b'\n <?xml version="1.0" encoding="',
    ]
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.tuples(prefixes, st.binary(max_size=600)).map(b"".join),
    # Mostly UTF-8 with arbitrary bytes mixed in: around the stray-byte thresholds.
    st.tuples(xml_texts, st.binary(max_size=8), xml_texts).map(
        lambda parts: parts[0].encode("utf-8") + parts[1] + parts[2].encode("utf-8")
    ),
)


def prolog(label: str) -> bytes:
    return f'<?xml version="1.0" encoding="{label}"?>\n'.encode()


def assert_well_formed(decoded: DecodedBody) -> str:
    assert isinstance(decoded, DecodedBody)
    text = decoded.text_bytes.decode("utf-8")  # strict: always valid UTF-8
    assert not _XML_ILLEGAL.search(text)
    assert codecs.lookup(decoded.encoding).name == decoded.encoding
    return text


@settings(deadline=None)
@given(body=bodies, http_charset=labels)
def test_any_bytes_and_any_label_decode(body: bytes, http_charset: str | None) -> None:
    assert_well_formed(decode_xml_body(body, http_charset))


@settings(deadline=None)
@given(
    body=bodies,
    declared=st.sampled_from([*sorted(_WHATWG_LABELS), "IBM037", "cp1026", "utf-7", "x-bogus"]),
    http_charset=labels,
)
def test_any_bytes_under_any_declaration_decode(
    body: bytes, declared: str, http_charset: str | None
) -> None:
    assert_well_formed(decode_xml_body(prolog(declared) + body, http_charset))
    assert_well_formed(decode_xml_body(prolog(declared).decode().encode("cp037") + body, None))


@settings(deadline=None)
@given(text=xml_texts, http_charset=st.sampled_from([None, "utf-8", "UTF8"]))
def test_utf8_declared_as_utf8_round_trips(text: str, http_charset: str | None) -> None:
    body = text.encode("utf-8")

    decoded = decode_xml_body(body, http_charset)

    assert decoded.text_bytes == body
    assert (decoded.encoding, decoded.guessed) == ("utf-8", False)
    with_prolog = prolog("utf-8") + body
    assert decode_xml_body(with_prolog, http_charset).text_bytes == with_prolog


@settings(deadline=None)
@given(
    before=xml_texts,
    accents=st.text(non_ascii_chars, min_size=10, max_size=60),
    after=xml_texts,
    stray=st.integers(0x80, 0xFF),
)
def test_one_stray_byte_costs_one_character(
    before: str, accents: str, after: str, stray: int
) -> None:
    # Any byte 0x80-0xFF between two whole characters is invalid UTF-8 on its own.
    body = (before + accents).encode("utf-8") + bytes([stray]) + after.encode("utf-8")

    decoded = decode_xml_body(prolog("utf-8") + body, "utf-8")

    assert decoded.text_bytes.decode("utf-8") == prolog("utf-8").decode() + (
        before + accents + "\ufffd" + after
    )
    assert (decoded.encoding, decoded.guessed) == ("utf-8", False)


@given(label=st.one_of(st.none(), st.text(max_size=80), labels))
def test_codec_for_label_answers_a_codec_or_none(label: str | None) -> None:
    codec = codec_for_label(label)
    assert codec is None or codecs.lookup(codec).name == codec
