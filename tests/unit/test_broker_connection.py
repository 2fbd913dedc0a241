"""workers/broker_connection.py: every Redis URL feedpipe accepts reaches kombu as the same
address, credentials, database and options that redis-py reads from it. kombu's own URL parsing
is what reads the result here (no connection is made; tests/integration/test_redis_tls.py and
test_broker_urls.py connect)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from kombu import Connection
from kombu.utils.url import url_to_parts

from pipeline.settings import Settings, check_redis_url
from workers.broker_connection import broker_connection
from workers.celery_config import celery_config


def kombu_reads(url: str) -> dict[str, Any]:
    """What kombu's Redis channel connects to, for a broker URL (as its _connparams does)."""
    connection = Connection(url)
    if connection.hostname and "://" in connection.hostname:  # redis+socket://
        parts = url_to_parts(connection.hostname)
        db = dict(parts.query).get("virtual_host", "0")
        return {"path": "/" + (parts.path or ""), "password": parts.password, "db": int(db)}
    return {
        "host": connection.hostname,
        "port": connection.port,
        "username": connection.userid,
        "password": connection.password,
        "db": int(connection.virtual_host or 0),
    }


@pytest.mark.parametrize(
    ("url", "address", "options", "tls"),
    [
        ("redis://redis:6379/0", "redis://redis:6379/0", {}, None),
        ("redis://h", "redis://h:6379/0", {}, None),
        (
            "redis://:s%2Fcret@h:6380?db=2&socket_timeout=5&client_name=fp&protocol=3",
            "redis://:s%2Fcret@h:6380/2",
            {"socket_timeout": 5.0, "client_name": "fp"},
            None,
        ),
        (
            "redis://[::1]:6379/1?health_check_interval=30",
            "redis://[::1]:6379/1",
            {"health_check_interval": 30},
            None,
        ),
        (
            "unix://:pw@/run/redis/redis.sock?db=3&socket_timeout=2",
            "redis+socket://:pw@/run/redis/redis.sock?virtual_host=3",
            {"socket_timeout": 2.0},
            None,
        ),
        (
            "rediss://default:pw@redis.example:6380/0",
            "rediss://default:pw@redis.example:6380/0",
            {},
            {"ssl_cert_reqs": ssl.CERT_REQUIRED},
        ),
        (
            "rediss://h/0?ssl_ca_certs=/etc/ca.pem&ssl_check_hostname=false",
            "rediss://h:6379/0",
            {},
            {
                "ssl_cert_reqs": ssl.CERT_REQUIRED,
                "ssl_ca_certs": "/etc/ca.pem",
                "ssl_check_hostname": False,
            },
        ),
        ("rediss://h/0?ssl_cert_reqs=none", "rediss://h:6379/0", {}, {"ssl_cert_reqs": "none"}),
    ],
)
def test_kombu_gets_each_part_where_it_takes_it(
    url: str, address: str, options: dict[str, Any], tls: dict[str, Any] | None
) -> None:
    broker = broker_connection(check_redis_url(url))
    assert broker.url == address
    assert dict(broker.transport_options) == options
    assert (dict(broker.tls) if broker.tls is not None else None) == tls


def test_the_celery_config_carries_them() -> None:
    config = celery_config(Settings(redis_url="rediss://h/0?socket_timeout=5"))
    assert config["broker_url"] == "rediss://h:6379/0"
    assert config["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert config["broker_transport_options"]["socket_timeout"] == 5.0
    assert config["broker_transport_options"]["visibility_timeout"] > 0
    assert celery_config(Settings(redis_url="redis://h/0"))["broker_use_ssl"] is False


secrets = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@given(
    user=secrets,
    password=secrets.filter(bool),
    db=st.integers(0, 2**31 - 1),
    socket=st.booleans(),
    query_db=st.booleans(),
)
def test_kombu_reads_what_redis_py_reads(
    user: str, password: str, db: int, socket: bool, query_db: bool
) -> None:
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    if socket:
        url = f"unix://{userinfo}/run/redis.sock?db={db}"
    else:
        url = f"redis://{userinfo}h.example:7000" + (f"?db={db}" if query_db else f"/{db}")
    expected = redis.ConnectionPool.from_url(check_redis_url(url)).connection_kwargs
    read = kombu_reads(broker_connection(url).url)
    assert read["password"] == expected["password"] and read["db"] == expected["db"] == db
    if socket:
        assert read["path"] == expected["path"]
    else:
        assert (read["host"], read["port"]) == (expected["host"], expected["port"])
        assert (read["username"] or "") == (expected.get("username") or "")
