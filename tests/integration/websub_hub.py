"""A WebSub hub written for the tests (W3C WebSub, sections 5-7), served on 127.0.0.1.

It takes (un)subscription requests, verifies intent by calling the subscriber back with a
challenge, grants the lease it is configured with, publishes a topic's content to its verified
subscriber signed with their secret, and can sign badly on purpose. It also serves the topics
themselves (``/feed/<name>.xml``), Atom feeds that advertise the hub (``<link rel="hub">`` and
a ``Link`` header) and their own URL. bench/freshness_bench.py uses it for its push run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.integration.test_pipeline import WORDS


@dataclass
class Subscriber:
    callback: str
    secret: str
    lease_seconds: int


@dataclass
class LoopbackHub:
    lease_seconds: int = 60
    requests: list[dict[str, str]] = field(default_factory=list)  # every form POSTed to /hub
    verified: list[tuple[str, bool]] = field(default_factory=list)  # (mode, subscriber agreed)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)  # topic -> subscriber
    # Each topic's entries, (slug, title), by the topic's name; "feed" is `entries`.
    topics: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {"feed": []})
    base: str = ""  # set once served

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hub", self._request)
        app.router.add_get("/feed/{name}.xml", self._feed)
        return app

    @property
    def entries(self) -> list[tuple[str, str]]:
        return self.topics["feed"]

    @entries.setter
    def entries(self, value: list[tuple[str, str]]) -> None:
        self.topics["feed"] = value

    @property
    def topic(self) -> str:
        return self.topic_of("feed")

    def topic_of(self, name: str) -> str:
        return f"{self.base}/feed/{name}.xml"

    async def _request(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        asyncio.get_running_loop().create_task(self._verify(form))
        return web.Response(status=202)

    async def _verify(self, form: dict[str, str]) -> None:
        """Section 5.3: GET the callback with a challenge; the subscriber must echo it."""
        await asyncio.sleep(0.05)  # after the 202, as a real hub does
        challenge = secrets.token_hex(8)
        query = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": challenge,
            "hub.lease_seconds": str(self.lease_seconds),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.get(form["hub.callback"], params=query) as response,
        ):
            agreed = response.status == 200 and await response.text() == challenge
        self.verified.append((form["hub.mode"], agreed))
        if agreed and form["hub.mode"] == "subscribe":
            self.subscribers[form["hub.topic"]] = Subscriber(
                form["hub.callback"], form.get("hub.secret", ""), self.lease_seconds
            )
        elif agreed:
            self.subscribers.pop(form["hub.topic"], None)

    async def publish(
        self, name: str = "feed", *, secret: str | None = None, method: str = "sha256"
    ) -> int:
        """Section 7: POST the topic's content to its subscriber, signed with its secret (or
        with ``secret`` instead); returns the subscriber's status."""
        topic = self.topic_of(name)
        subscriber = self.subscribers[topic]
        body = self.feed_xml(name).encode()
        key = (subscriber.secret if secret is None else secret).encode()
        signature = hmac.new(key, body, getattr(hashlib, method)).hexdigest()
        headers = {
            "Content-Type": "application/atom+xml",
            "X-Hub-Signature": f"{method}={signature}",
            "Link": f'<{self.base}/hub>; rel="hub", <{topic}>; rel="self"',
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(subscriber.callback, data=body, headers=headers) as response,
        ):
            return response.status

    async def _feed(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.topics:
            raise web.HTTPNotFound()
        # The hub in a Link header too (section 4: a subscriber looks there first).
        link = f'</hub>; rel="hub", <{self.topic_of(name)}>; rel="self"'
        return web.Response(
            text=self.feed_xml(name), content_type="application/atom+xml", headers={"Link": link}
        )

    def feed_xml(self, name: str = "feed") -> str:
        topic = self.topic_of(name)
        entries = "".join(_entry(self.base, slug, title) for slug, title in self.topics[name])
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Pushed Agency</title><id>{topic}</id><updated>2026-12-03T10:00:00Z</updated>"
            f'<link rel="hub" href="{self.base}/hub"/><link rel="self" href="{topic}"/>'
            f"{entries}</feed>"
        )


def _entry(base: str, slug: str, title: str) -> str:
    """A whole article in the feed, its words its own (seeded by the slug): never a near-copy
    of another entry."""
    rng = random.Random(slug)
    paragraphs = "".join(
        f"<p>{title}. {' '.join(rng.choice(WORDS) for _ in range(40))}.</p>" for _ in range(4)
    )
    return (
        f"<entry><title>{title}</title><id>urn:pushed:{slug}</id>"
        f'<link href="{base}/news/{slug}.html"/><updated>2026-12-03T10:00:00Z</updated>'
        f'<content type="html"><![CDATA[{paragraphs}]]></content></entry>'
    )
