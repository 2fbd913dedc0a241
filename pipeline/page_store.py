"""An article page as its extract task finds it in Redis: the bytes the server sent.

Most servers send pages compressed. The fetch worker keeps the body as received, behind one
byte naming its coding, and compresses only a page sent uncompressed (zlib, level 1: the blob
lives minutes); the extract child decodes it once, where it is used. Letting aiohttp inflate
the page in the fetch worker and compressing it again for Redis cost ~0.4-0.5 ms of CPU per
150 KB page (docs/performance.md, section 1).

Counting decompressed bytes is what stops a compression bomb, so the page size cap
(FEEDPIPE_MAX_PAGE_BYTES) is enforced here, on what the body inflates to, and the fetch only
caps bytes as received. Hand-written because the standard decoders do what is needed (zlib's
``max_length``, brotli's ``output_buffer_limit``) and the rest is five tags.
"""

from __future__ import annotations

import zlib

import brotli

from pipeline.errors import BadEncoding, ResponseTooLarge

DEFAULT_MAX_PAGE_BYTES = 5 * 1024 * 1024  # FEEDPIPE_MAX_PAGE_BYTES's default
# What page requests ask for: the codings decode() undoes (br: brotli is a dependency).
ACCEPT_ENCODING = "gzip, deflate, br"

_ZLIB = b"z"  # sent uncompressed, zlib-compressed here
_GZIP = b"g"
_DEFLATE = b"d"  # HTTP "deflate": zlib-wrapped, or raw deflate from some servers
_BROTLI = b"b"
_TAGS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": _DEFLATE, "br": _BROTLI}
# Compressions in the HTTP registry that page requests do not ask for and decode() cannot undo.
_UNSUPPORTED = frozenset({"zstd", "compress", "x-compress", "dcb", "dcz", "aes128gcm", "exi"})
# Blobs written before the tag (plain zlib) start with a zlib header: 0x78 at level 1.
_LEGACY_FIRST_BYTE = 0x78


def encode(body: bytes, content_encoding: str | None, *, feed_url: str, url: str) -> bytes:
    """The blob to store for a page ``body`` sent with ``content_encoding`` (None: as is).

    A label that names no compression ("none", "utf-8", "binary": misconfigured servers) is
    read as identity, as aiohttp and browsers do; a compression we did not ask for ("zstd",
    "compress") or two stacked is refused."""
    codings = [c for c in (content_encoding or "").lower().replace(" ", "").split(",") if c]
    compressions = [c for c in codings if c in _TAGS or c in _UNSUPPORTED]
    if not compressions:
        return _ZLIB + zlib.compress(body, 1)
    if len(compressions) > 1 or compressions[0] in _UNSUPPORTED:
        label = ", ".join(codings)[:40]
        raise BadEncoding(feed_url, f"unsupported Content-Encoding {label!r}", url=url)
    return _TAGS[compressions[0]] + body


def decode(blob: bytes, max_bytes: int, *, feed_url: str, url: str) -> bytes:
    """The page's bytes, at most ``max_bytes`` of them once inflated (ResponseTooLarge past
    that; BadEncoding for a broken or truncated body)."""
    tag, data = blob[:1], blob[1:]
    try:
        if tag == _BROTLI:
            return _unbrotli(data, max_bytes, feed_url, url)
        if tag in (_ZLIB, _GZIP, _DEFLATE):
            return _inflate(data, _wbits(tag, data), max_bytes, feed_url, url)
        if blob[:1] == bytes([_LEGACY_FIRST_BYTE]):
            return _inflate(blob, zlib.MAX_WBITS, max_bytes, feed_url, url)
    except (zlib.error, brotli.error) as exc:
        raise BadEncoding(feed_url, f"broken compressed body: {exc}", url=url) from exc
    raise BadEncoding(feed_url, f"unknown stored page coding {blob[:1]!r}", url=url)


def _wbits(tag: bytes, data: bytes) -> int:
    if tag == _GZIP:
        return zlib.MAX_WBITS | 32  # gzip, or zlib mislabelled as gzip (auto-detected)
    if tag == _DEFLATE and not _zlib_header(data):
        return -zlib.MAX_WBITS  # raw deflate
    return zlib.MAX_WBITS


def _zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate(data: bytes, wbits: int, max_bytes: int, feed_url: str, url: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, max_bytes + 1)
    if len(out) > max_bytes:
        raise _too_large(max_bytes, feed_url, url)
    if not inflater.eof:
        raise BadEncoding(feed_url, "compressed body cut short", url=url)
    return out


def _unbrotli(data: bytes, max_bytes: int, feed_url: str, url: str) -> bytes:
    decompressor = brotli.Decompressor()
    out: bytes = decompressor.process(data, output_buffer_limit=max_bytes + 1)
    if len(out) > max_bytes:
        raise _too_large(max_bytes, feed_url, url)
    if not decompressor.is_finished():
        raise BadEncoding(feed_url, "compressed body cut short", url=url)
    return out


def _too_large(max_bytes: int, feed_url: str, url: str) -> ResponseTooLarge:
    message = f"page larger than {max_bytes} bytes (after decompression)"
    return ResponseTooLarge(feed_url, message, url=url)
