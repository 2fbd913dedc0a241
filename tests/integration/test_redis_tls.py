"""Redis over TLS (rediss://): every connection feedpipe makes verifies the server's certificate.

A real redis-server with a TLS port and a certificate from a test CA (trustme). redis-py
verifies by default; kombu (Celery's broker connection) does not, unless told to
(workers/broker_connection.py). The URL's own ``ssl_ca_certs`` names the CA.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as sync_redis
import trustme

from pipeline.settings import Settings
from tests.integration.test_broker_urls import publish_one_feed
from workers.celery_config import create_app
from workers.embedded_redis import find_redis_server, free_port


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca_file: Path

    @property
    def url(self) -> str:
        """No CA named: the system's trust store, which does not know the test CA."""
        return f"rediss://127.0.0.1:{self.port}/0"

    @property
    def trusted_url(self) -> str:
        return f"{self.url}?ssl_ca_certs={self.ca_file}"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    server = TlsRedis(free_port(), files["ca"])
    process = subprocess.Popen(
        [
            find_redis_server(),
            *("--port", "0", "--tls-port", str(server.port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"])),
            *("--tls-ca-cert-file", str(files["ca"]), "--tls-auth-clients", "no"),
            *("--dir", str(tmp_path), "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.terminate()
        process.wait(15)


def _wait_ready(server: TlsRedis, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"redis-server did not start with TLS (built without it?):\n{output}")
        try:
            with sync_redis.Redis.from_url(server.trusted_url) as client:
                client.ping()
            return
        except sync_redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_no_connection_trusts_a_certificate_it_cannot_verify(tls_redis: TlsRedis) -> None:
    app = create_app(Settings(redis_url=tls_redis.url))
    with app.connection_for_write() as broker, pytest.raises(Exception) as refused:
        broker.ensure_connection(max_retries=1)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    with (
        sync_redis.Redis.from_url(tls_redis.url) as client,
        pytest.raises(sync_redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.ping()


def test_the_broker_connection_takes_the_urls_tls_options(tls_redis: TlsRedis) -> None:
    app = create_app(Settings(redis_url=tls_redis.trusted_url))
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1)
        with broker.default_channel.conn_or_acquire() as client:
            assert client.ping()
    # Verification off is the URL's to say, where everyone reading it sees it.
    app = create_app(Settings(redis_url=f"{tls_redis.url}?ssl_cert_reqs=none"))
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1)


@pytest.mark.slow
def test_a_run_over_tls_publishes_every_story(tls_redis: TlsRedis, tmp_path: Path) -> None:
    publish_one_feed(tls_redis.trusted_url, tmp_path, node="tls")
