"""Loopback HTTP servers run from a background thread: the demo news site for `feedpipe demo`,
and any aiohttp app (the benchmarks' feed farm serves itself through ``LoopbackServer``)."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

from aiohttp import web

from workers.demo_site import DemoFeed, NewsSite, make_app


class LoopbackServer:
    """``app`` on ``ports`` free ports of 127.0.0.1, from an event loop in its own thread."""

    def __init__(
        self, app: web.Application, ports: int = 1, keepalive_timeout: float = 75.0
    ) -> None:
        self.ports: list[int] = []
        self._count = ports
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1, keepalive_timeout=keepalive_timeout
        )
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        for _ in range(self._count):
            await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024).start()
        self.ports.extend(int(address[1]) for address in self._runner.addresses)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class DemoServer(LoopbackServer):
    def __init__(self, feeds: list[DemoFeed]) -> None:
        self.site = NewsSite(feeds)
        super().__init__(make_app(self.site))

    @property
    def port(self) -> int:
        return self.ports[0]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"
