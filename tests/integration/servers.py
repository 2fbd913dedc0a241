"""Loopback HTTP servers on their own event loop in a thread, so tests can stay plain sync
while real worker subprocesses fetch from them."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import trustme
from aiohttp import web

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


class ServerThread:
    """``app`` on 127.0.0.1 (``http_port``); with ``tls`` also over HTTPS with a certificate the
    workers do not trust (``https_port``); with ``raw`` a plain TCP server (``raw_port``)."""

    def __init__(
        self, app: web.Application, *, tls: bool = False, raw: RawHandler | None = None
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # Short shutdown: hanging and trickling handlers never finish on their own.
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        self.http_port = self.https_port = self.raw_port = 0
        self._raw: asyncio.Server | None = None
        self._call(self._start(tls, raw))

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self, tls: bool, raw: RawHandler | None) -> None:
        await self.runner.setup()
        http = web.TCPSite(self.runner, "127.0.0.1", 0)
        await http.start()
        self.http_port = port_of(http)
        if tls:
            https = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=untrusted_tls())
            await https.start()
            self.https_port = port_of(https)
        if raw is not None:
            self._raw = await asyncio.start_server(raw, "127.0.0.1", 0)
            self.raw_port = self._raw.sockets[0].getsockname()[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def stop(self) -> None:
        async def stop() -> None:
            if self._raw is not None:
                self._raw.close()
            await self.runner.cleanup()
            # Handlers still waiting (hanging, trickling) are ended here, quietly.
            current = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not current:
                    task.cancel()

        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


def port_of(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the bound asyncio server here
    assert isinstance(server, asyncio.base_events.Server)
    return int(server.sockets[0].getsockname()[1])


def untrusted_tls() -> ssl.SSLContext:
    """A certificate from a CA the workers do not trust (as a self-signed server would)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context
