"""pipeline/page_store.py: a page kept as the server sent it decodes to the same bytes, within
the page size cap; a hostile blob is a BadEncoding or ResponseTooLarge, never anything else."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import page_store
from pipeline.errors import BadEncoding, ResponseTooLarge

PAGE = ("<html><body><p>" + "خبر عاجل من طهران " * 400 + "</p></body></html>").encode()
WHERE = {"feed_url": "http://feeds.example/rss", "url": "http://news.example/a/1"}
CAP = 1024 * 1024


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


SENT = {
    "gzip": gzip.compress(PAGE),
    "x-gzip": gzip.compress(PAGE),
    "deflate": zlib.compress(PAGE),
    "br": brotli.compress(PAGE),
}


@pytest.mark.parametrize("coding", sorted(SENT))
def test_a_compressed_page_is_kept_as_sent_and_decodes_to_the_page(coding: str) -> None:
    blob = page_store.encode(SENT[coding], coding.upper(), **WHERE)
    assert blob[1:] == SENT[coding]  # not inflated and compressed again
    assert page_store.decode(blob, CAP, **WHERE) == PAGE


def test_raw_deflate_and_gzip_labelled_zlib_decode_too() -> None:
    blob = page_store.encode(raw_deflate(PAGE), "deflate", **WHERE)
    assert page_store.decode(blob, CAP, **WHERE) == PAGE
    mislabelled = page_store.encode(zlib.compress(PAGE), "gzip", **WHERE)
    assert page_store.decode(mislabelled, CAP, **WHERE) == PAGE


@pytest.mark.parametrize("coding", [None, "", "identity", " Identity ", "none", "UTF-8", "binary"])
def test_an_uncompressed_page_is_compressed_here(coding: str | None) -> None:
    """Labels that name no compression are what misconfigured servers send with plain pages."""
    blob = page_store.encode(PAGE, coding, **WHERE)
    assert len(blob) < len(PAGE) // 4
    assert page_store.decode(blob, CAP, **WHERE) == PAGE


def test_a_blob_stored_before_the_tag_still_decodes() -> None:
    legacy = zlib.compress(PAGE, 1)  # what the fetch worker stored until 2026-12-03
    assert page_store.decode(legacy, CAP, **WHERE) == PAGE


@pytest.mark.parametrize("coding", ["zstd", "compress", "gzip, br", "gzip,gzip", "ZSTD, identity"])
def test_a_coding_we_did_not_ask_for_is_refused_at_the_fetch(coding: str) -> None:
    with pytest.raises(BadEncoding, match="unsupported Content-Encoding"):
        page_store.encode(b"\x28\xb5\x2f\xfd...", coding, **WHERE)


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", lambda d: gzip.compress(d, 9)),
        ("deflate", lambda d: zlib.compress(d, 9)),
        ("br", lambda d: brotli.compress(d, quality=5)),
        (None, lambda d: d),
    ],
)
def test_a_bomb_stops_at_the_cap(coding: str | None, pack: object) -> None:
    inflated = b"<html>" + b" " * (8 * CAP)
    assert callable(pack)
    blob = page_store.encode(pack(inflated), coding, **WHERE)
    assert len(blob) < CAP
    with pytest.raises(ResponseTooLarge, match=f"larger than {CAP} bytes"):
        page_store.decode(blob, CAP, **WHERE)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_body_cut_short_is_bad_not_a_shorter_page(coding: str) -> None:
    blob = page_store.encode(SENT[coding][: len(SENT[coding]) // 2], coding, **WHERE)
    with pytest.raises(BadEncoding):
        page_store.decode(blob, CAP, **WHERE)


def test_exactly_at_the_cap_is_kept() -> None:
    blob = page_store.encode(gzip.compress(PAGE), "gzip", **WHERE)
    assert page_store.decode(blob, len(PAGE), **WHERE) == PAGE
    with pytest.raises(ResponseTooLarge):
        page_store.decode(blob, len(PAGE) - 1, **WHERE)


@given(st.binary(max_size=2048))
def test_any_stored_blob_decodes_or_is_refused_with_a_reason(blob: bytes) -> None:
    try:
        page = page_store.decode(blob, 4096, **WHERE)
    except (BadEncoding, ResponseTooLarge) as exc:
        assert str(exc)
    else:
        assert len(page) <= 4096


@given(st.sampled_from(["gzip", "deflate", "br", "identity"]), st.binary(max_size=2048))
def test_any_body_sent_with_a_coding_decodes_or_is_refused(coding: str, body: bytes) -> None:
    blob = page_store.encode(body, coding, **WHERE)
    try:
        page = page_store.decode(blob, 4096, **WHERE)
    except (BadEncoding, ResponseTooLarge) as exc:
        assert str(exc)
    else:
        assert coding != "identity" or page == body[:4096]
