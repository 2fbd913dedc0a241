"""The demo news site on 127.0.0.1, served from a background thread for `feedpipe demo`."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from workers.demo_site import DemoFeed, NewsSite, make_app


class DemoServer:
    def __init__(self, feeds: list[DemoFeed]) -> None:
        self.site = NewsSite(feeds)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(make_app(self.site))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> DemoServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
