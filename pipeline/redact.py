"""URLs made safe to print: every message, log line, banner and status screen shows a URL
through ``redact_url``, so a Redis password or a feed's credentials never reach a terminal,
a log file or a metric label.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry a secret by convention (Redis URLs take ``password``; feeds
# put API keys and tokens in the query string). Compared lower-cased, "-" read as "_".
SECRET_PARAMETERS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "token",
        "access_token",
        "auth",
        "auth_token",
        "key",
        "api_key",
        "apikey",
        "sig",
        "signature",
        "private_token",
        "client_secret",
    }
)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and secret query values masked; the rest as it was.

    ``redis://:pw@host:6379/0`` -> ``redis://***@host:6379/0``;
    ``https://u:pw@h/feed?token=t&page=2`` -> ``https://***@h/feed?token=***&page=2``.
    Text that does not parse as a URL is masked whole rather than shown.
    """
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return MASK
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else parts.netloc
    query = _redact_query(parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_is_secret(name) for name, _value in pairs):
        return query
    masked = [(name, MASK if _is_secret(name) else value) for name, value in pairs]
    return urlencode(masked, safe="*")


def _is_secret(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_PARAMETERS


def without_credentials(url: str) -> str:
    """``url`` as it may be published: no userinfo at all, secret query values masked.

    Credentials in a feed URL are kept for fetching, never handed to subscribers.
    """
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return MASK
    query = _redact_query(parts.query)
    if host == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


# Inside free text (an error message, a log line, a traceback): the userinfo of anything
# that looks like a URL, whatever characters the password holds (only white space and the
# delimiters "/?#" end it, as they end a URL's authority), then the URL's secret parameters.
_USERINFO_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,15}://)[^\s/?#]*@")
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s\"'<>`]+")


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (as ``redact_url`` does); the rest unchanged."""
    if "://" not in text:
        return text
    text = _USERINFO_IN_TEXT.sub(lambda match: f"{match.group(1)}{MASK}@", text)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
