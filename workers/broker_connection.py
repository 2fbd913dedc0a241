"""feedpipe's Redis URL, as Celery's broker connection (kombu) must be given it.

feedpipe reads one URL for its own Redis clients (redis-py) and for the broker
(pipeline/settings.py checks it as redis-py reads it). kombu reads it differently:

- a query option other than ``ssl_*`` (``?socket_timeout=5``, ``?db=2``, ``?client_name=x``)
  is handed to kombu's ``Connection`` as a keyword, a TypeError at every worker's start;
- ``unix://`` is no transport kombu knows: its name for Redis on a socket is
  ``redis+socket://``, the database in ``?virtual_host=``;
- ``rediss://`` without ``ssl_*`` options connects without verifying the certificate
  (``CERT_NONE``, with a warning), where redis-py verifies.

So the URL is read once by redis-py's own parser, and kombu gets the parts it takes, each
where it takes them: the address (and credentials) as a URL without a query, the connection
options it supports as transport options, the ``ssl_*`` options (verification on unless the
URL says ``ssl_cert_reqs=none``) as ``broker_use_ssl``. The rest (``protocol``,
``legacy_responses``, ``socket_read_size``) apply to feedpipe's own clients only: kombu has
no way to pass them, and the broker works without them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

import redis

# The connection options kombu's Redis channel takes as transport options (its
# Channel.from_transport_options), in redis-py's names and types.
KOMBU_CONNECTION_OPTIONS = (
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "max_connections",
    "health_check_interval",
    "retry_on_timeout",
    "client_name",
)


@dataclass(frozen=True)
class BrokerConnection:
    url: str  # no query: kombu would pass its options on as keywords it does not take
    transport_options: Mapping[str, Any]  # the URL's connection options kombu supports
    tls: Mapping[str, Any] | None  # broker_use_ssl: None on redis:// and unix://


def broker_connection(url: str) -> BrokerConnection:
    """What kombu needs of ``url``, a URL ``pipeline.settings.check_redis_url`` accepted."""
    options = redis.ConnectionPool.from_url(url).connection_kwargs  # parsed, not connected
    transport_options = MappingProxyType(
        {name: options[name] for name in KOMBU_CONNECTION_OPTIONS if name in options}
    )
    scheme = urlsplit(url).scheme
    db = int(options.get("db") or 0)
    if scheme == "unix":
        # kombu reads a socket URL's database from ?virtual_host= (its path is the socket's).
        address = f"redis+socket://{_userinfo(options)}{options['path']}?virtual_host={db}"
        return BrokerConnection(address, transport_options, None)
    host, port = options.get("host", "localhost"), options.get("port", 6379)  # redis-py's
    address = f"{scheme}://{_userinfo(options)}{_host(host)}:{port}/{db}"
    if scheme != "rediss":
        return BrokerConnection(address, transport_options, None)
    tls = {"ssl_cert_reqs": ssl.CERT_REQUIRED} | {
        name: value for name, value in options.items() if name.startswith("ssl_")
    }
    return BrokerConnection(address, transport_options, MappingProxyType(tls))


def _userinfo(options: Mapping[str, Any]) -> str:
    """``user:password@`` (each percent-encoded again), from the URL's user info or from its
    ``?username=`` / ``?password=`` options, as redis-py reads them."""
    username, password = options.get("username"), options.get("password")
    if username is None and password is None:
        return ""
    return f"{quote(username or '', safe='')}:{quote(password or '', safe='')}@"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
