"""The `feedpipe` command."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
import redis
from pydantic import ValidationError
from redis.asyncio import Redis as AsyncRedis

from pipeline import dead_letters, registry
from pipeline.errors import ConfigError, FeedError
from pipeline.fulltext import FulltextPolicy
from pipeline.fulltext import describe as describe_fulltext
from pipeline.keys import Keys, keys_for
from pipeline.locate import locate_feed
from pipeline.models import FULLTEXT_MODES, FeedSpec, FeedState, Fulltext
from pipeline.monitor import GroupLag, Snapshot, count_since, stream_groups, take_snapshot
from pipeline.publish import ClusterCopy, biggest_clusters
from pipeline.redact import redact_text, redact_url
from pipeline.routes import Route, RouteTable, save_routes, stored_routes
from pipeline.settings import Settings
from pipeline.subscribe import StreamSubscriber
from workers import runtime, supervisor
from workers.celery_config import TASK_INGEST_PUSH, create_app
from workers.demo_server import DemoServer
from workers.demo_site import DemoFeed, demo_feeds, find_fixture
from workers.embedded_redis import EmbeddedRedis, running_embedded_url
from workers.exporter import QUEUES
from workers.exporter import serve as serve_metrics
from workers.websub_service import serve as serve_websub

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            message = " ".join(error["msg"].removeprefix("Value error, ").split())
            # A field's error is named after its variable; a check across fields (loc empty)
            # names the variables in its message.
            field = error["loc"][0] if error["loc"] else None
            problems.append(f"FEEDPIPE_{str(field).upper()}: {message}" if field else message)
        raise click.ClickException(f"invalid settings: {'; '.join(problems)}") from exc


def redis_url(settings: Settings) -> str:
    """FEEDPIPE_REDIS_URL, else the Redis of a `feedpipe run` running on this data dir."""
    url = settings.redis_url or running_embedded_url(settings.data_dir)
    if url is None:
        raise click.ClickException(
            "FEEDPIPE_REDIS_URL is not set and no `feedpipe run` is running with data dir "
            f"{settings.data_dir}: start `feedpipe run` or set FEEDPIPE_REDIS_URL"
        )
    return url


def run_async(settings: Settings, work: Callable[[AsyncRedis, Keys], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        client = AsyncRedis.from_url(redis_url(settings))
        try:
            return await work(client, keys_for(settings.output_stream, settings.duplicates_stream))
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except redis.ConnectionError as exc:
        source = (
            "FEEDPIPE_REDIS_URL"
            if settings.redis_url
            else f"the `feedpipe run` on data dir {settings.data_dir}"
        )
        raise click.ClickException(
            f"cannot reach Redis at {redact_url(redis_url(settings))} ({source}): "
            f"{redact_text(str(exc))}"
        ) from exc


@click.group()
def main() -> None:
    """feedpipe: RSS/Atom feeds in, clean deduplicated items out on a Redis stream."""


# ---------------------------------------------------------------------------------- run / demo


@main.command()
@click.option(
    "--feeds",
    "feeds_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML or OPML feeds file to import at start.",
)
@click.option(
    "--summary-interval", default=5.0, show_default=True, help="Seconds per summary line."
)
@click.option("--verbose", is_flag=True, help="Show worker logs here instead of in the data dir.")
def run(feeds_file: Path | None, summary_interval: float, verbose: bool) -> None:
    """Run the whole pipeline on this machine (starts Redis too when none is configured)."""
    settings = load_settings()
    document = _load_document(feeds_file, runtime.feed_policy(settings))
    with supervisor.stop_signals():
        try:
            code = _run(settings, document, summary_interval, verbose)
        except supervisor.Stop:
            code = 0
    sys.exit(code)


def _run(
    settings: Settings, document: registry.FeedsDocument, interval: float, verbose: bool
) -> int:
    with _redis_for(settings) as redis_server:
        client = redis.Redis.from_url(redis_server.url)
        added = _import(settings, redis_server.url, document.specs)
        routed = _save_routes(settings, redis_server.url, document.routes)
        click.echo(
            f"feedpipe: Redis {redact_url(redis_server.url)}; {added} new feed(s) imported; "
            f"output stream {settings.output_stream}{routed}; Ctrl-C to stop"
        )
        keys = keys_for(settings.output_stream, settings.duplicates_stream)
        summary = supervisor.Summary(client, keys)
        summary.line()  # baseline: the first printed line shows this run's activity only
        return _supervise(
            settings, redis_server, verbose, lambda: click.echo(summary.line()), interval
        )


@main.command()
@click.option("--once", is_flag=True, help="Exit once every demo article has been published.")
@click.option("--timeout", default=180.0, show_default=True, help="With --once: give up after.")
def demo(once: bool, timeout: float) -> None:
    """Serve demo news feeds on 127.0.0.1 and run the pipeline on them, printing each item."""
    fixture = find_fixture()
    if fixture is None:
        click.echo(
            "feedpipe demo: ../shared/fixtures/seed-ilna.txt not found; "
            "using only the demo's own Persian stories",
            err=True,
        )
    feeds = demo_feeds(fixture)
    base_settings = load_settings()
    with supervisor.stop_signals():
        try:
            published, expected = _demo(base_settings, feeds, once, timeout)
        except supervisor.Stop:
            sys.exit(0)
    if once and published < expected:
        raise click.ClickException(f"only {published} of {expected} items arrived")
    sys.exit(0)


def _demo(
    base_settings: Settings, feeds: list[DemoFeed], once: bool, timeout: float
) -> tuple[int, int]:
    expected = sum(len(f.articles) for f in feeds)
    with tempfile.TemporaryDirectory(prefix="feedpipe-demo-") as tmp, DemoServer(feeds) as server:
        settings = base_settings.model_copy(
            update={
                "redis_url": None,
                "data_dir": Path(tmp),
                "dispatch_interval_seconds": 1.0,
                # The demo's feeds are on 127.0.0.1, all on one host of our own.
                "allow_private_networks": True,
                "host_min_gap_seconds": 0.05,
            }
        )
        specs = [
            FeedSpec(url=server.url(f.path), title=f.title, tags=("demo", f.language))
            for f in feeds
        ]
        with _redis_for(settings) as redis_server:
            _import(settings, redis_server.url, specs)
            click.echo(
                f"feedpipe demo: {len(feeds)} feeds at {server.url('/')}, "
                f"Redis {redact_url(redis_server.url)}"
            )
            client = redis.Redis.from_url(redis_server.url)
            printer = _ItemPrinter(client, settings.output_stream, "text")
            deadline = time.monotonic() + timeout
            code = _supervise(
                settings,
                redis_server,
                False,
                printer.print_new,
                0.5,
                until=lambda: once and (printer.count >= expected or time.monotonic() > deadline),
            )
            if code != 0:
                raise click.ClickException("the pipeline stopped (see above)")
    return printer.count, expected


def _supervise(
    settings: Settings,
    redis_server: _RedisServer,
    verbose: bool,
    tick: Callable[[], None],
    interval: float,
    until: Callable[[], bool] = lambda: False,
) -> int:
    url = redis_server.url
    env = {
        **os.environ,
        "FEEDPIPE_REDIS_URL": url,
        "FEEDPIPE_DATA_DIR": str(settings.data_dir),
        "FEEDPIPE_DISPATCH_INTERVAL_SECONDS": str(settings.dispatch_interval_seconds),
        "FEEDPIPE_ALLOW_PRIVATE_NETWORKS": str(settings.allow_private_networks).lower(),
        "FEEDPIPE_HOST_MIN_GAP_SECONDS": str(settings.host_min_gap_seconds),
    }
    try:
        supervisor.preflight(env, settings.broker_url)
    except supervisor.PreflightError as exc:
        raise click.ClickException(str(exc)) from exc
    log_dir = None if verbose else settings.data_dir / "logs"
    procs = supervisor.Supervisor(settings, env, log_dir)
    outage = supervisor.RedisOutage(url)
    try:
        procs.start()
        if log_dir:
            click.echo(f"feedpipe: worker logs in {log_dir}")
        return supervisor.watch(procs, redis_server.watched(tick), interval, outage, until)
    finally:
        procs.stop()  # first: nothing below may keep the workers from being stopped
        supervisor.say("feedpipe: workers stopped")


class _RedisServer:
    """The Redis of a run: FEEDPIPE_REDIS_URL's, or an embedded one that is restarted (same
    port, same AOF) when it exits under us."""

    def __init__(self, url: str, embedded: EmbeddedRedis | None) -> None:
        self.url = url
        self.embedded = embedded

    def watched(self, tick: Callable[[], None]) -> Callable[[], None]:
        def tick_and_revive() -> None:
            if self.embedded is not None and self.embedded.restart_if_dead():
                supervisor.say("feedpipe: the embedded redis-server exited; restarted it")
            tick()

        return tick_and_revive


@contextmanager
def _redis_for(settings: Settings) -> Iterator[_RedisServer]:
    if settings.redis_url:
        try:
            supervisor.check_redis(settings.redis_url, "FEEDPIPE_REDIS_URL")
        except supervisor.PreflightError as exc:
            raise click.ClickException(str(exc)) from exc
        yield _RedisServer(settings.redis_url, None)
        return
    embedded = EmbeddedRedis(settings.data_dir / "redis")
    try:
        yield _RedisServer(_start(embedded), embedded)
    finally:
        embedded.stop()


def _start(embedded: EmbeddedRedis) -> str:
    try:
        return embedded.start()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


class _ItemPrinter:
    def __init__(self, client: redis.Redis, stream: str, fmt: str) -> None:
        self.subscriber = StreamSubscriber(
            client,
            stream,
            "feedpipe-demo",
            "demo",
            from_start=True,
            block_ms=1,
            on_bad_entry=lambda bad: click.echo(f"feedpipe demo: {bad.describe()}", err=True),
        )
        self.fmt = fmt
        self.count = 0

    def print_new(self) -> None:
        for entry_id, item in self.subscriber.read():
            click.echo(format_item(item, self.fmt) + "\n")
            self.subscriber.ack(entry_id)
            self.count += 1


# ---------------------------------------------------------------------------------------- tail


@main.command()
@click.option("--group", default="feedpipe-tail", show_default=True, help="Consumer group.")
@click.option("--consumer", default=None, help="Consumer name [default: host name].")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True
)
@click.option("--from-start", is_flag=True, help="A new group starts at the stream's beginning.")
@click.option("--count", type=int, default=None, help="Exit after this many items.")
@click.option(
    "--stream",
    "stream_name",
    default=None,
    help="A route's name (feedpipe routes ls), or a stream's full key [default: the output "
    "stream].",
)
@click.option(
    "--claim-idle",
    type=float,
    default=60.0,
    show_default=True,
    help="Take over items another consumer of the group left unacked for this many seconds "
    "(XAUTOCLAIM); 0: never.",
)
def tail(
    group: str,
    consumer: str | None,
    fmt: str,
    from_start: bool,
    count: int | None,
    stream_name: str | None,
    claim_idle: float,
) -> None:
    """Print items from the output stream (or a route's) as a consumer group (XREADGROUP, XACK
    after printing).

    An entry that is not an item is reported on stderr, copied to <stream>:bad and acked."""
    settings = load_settings()
    client = redis.Redis.from_url(redis_url(settings))
    stream = _stream_named(settings, stream_name)
    printed = 0
    try:
        sub = StreamSubscriber(
            client,
            stream,
            group,
            consumer or socket.gethostname(),
            from_start=from_start,
            claim_idle_ms=int(claim_idle * 1000) or None,
            on_bad_entry=lambda bad: click.echo(f"feedpipe tail: {bad.describe()}", err=True),
        )
        while count is None or printed < count:
            for entry_id, item in sub.read(count=1 if count else 100):
                click.echo(format_item(item, fmt) + ("\n" if fmt == "text" else ""))
                sub.ack(entry_id)
                printed += 1
    except KeyboardInterrupt:
        pass
    except redis.ConnectionError as exc:
        raise click.ClickException(f"lost Redis: {exc}") from exc
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _stream_named(settings: Settings, name: str | None) -> str:
    """The output stream, a route's stream by the route's name, or a key given whole."""
    if name is None:
        return settings.output_stream
    keys = keys_for(settings.output_stream, settings.duplicates_stream)
    table = run_async(settings, stored_routes)
    if any(route.name == name for route in table.routes):
        return keys.route_stream(name)
    if ":" in name:
        return name
    known = ", ".join(r.name for r in table.routes) or "none"
    raise click.ClickException(f"--stream {name!r}: no such route (routes: {known})")


def format_item(item: dict[str, Any], fmt: str) -> str:
    """Any JSON object as printable text (valid UTF-8), never an error: with ``text``, a field
    that is missing or null shows as empty, one of another type than a string as ``?``."""
    if fmt == "json":
        # ensure_ascii=False writes a lone surrogate as it is: put its JSON escape back.
        return json.dumps(item, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()

    def field(obj: Any, name: str) -> str:
        if obj is None:
            return ""
        if not isinstance(obj, dict):
            return "?"
        value = obj.get(name)
        return "" if value is None else value if isinstance(value, str) else "?"

    day = (field(item, "published_at") or field(item, "fetched_at"))[:10]
    source = field(item, "source") or field(item.get("feed"), "title")
    text = f"date {day} {source}\n{field(item, 'title')}\n\n{field(item, 'text')}"
    return text.encode("utf-8", "replace").decode()


# ------------------------------------------------------------------------------------ clusters


@main.command()
@click.option("--limit", default=20, show_default=True, help="How many clusters.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per cluster.")
def clusters(limit: int, as_json: bool) -> None:
    """The biggest recent story clusters: syndicated copies withheld as duplicates."""
    found = run_async(load_settings(), lambda r, k: biggest_clusters(r, k, limit))
    for cluster in found:
        if as_json:
            click.echo(json.dumps(msgspec.to_builtins(cluster), ensure_ascii=False))
        else:
            click.echo(
                f"{cluster.size:4}  {cluster.title or '(no title)'}\n      "
                f"{', '.join(cluster.sources)}  [{cluster.id}]"
            )
            for copy in cluster.copies:
                click.echo(f"      + {_joined_because(copy)}")
    if not found and not as_json:
        click.echo("no clusters yet: no syndicated copies seen in the dedupe window")


def _joined_because(copy: ClusterCopy) -> str:
    figures = " ".join(f"{name} {value:.2f}" for name, value in copy.similarity.items())
    why = f"; {copy.alignment}" if copy.alignment else ""
    return f"{copy.source or '?'} [{copy.id}]: {figures}{why}"


# -------------------------------------------------------------------------------- dead letters


@main.group("dead-letters")
def dead_letters_group() -> None:
    """Articles given up after FEEDPIPE_EXTRACT_MAX_ATTEMPTS, and messages set aside."""


def _letter_filter_options(command: Callable[..., None]) -> Callable[..., None]:
    feed = click.option(
        "--feed", metavar="ID_OR_URL", help="Only the letters of this feed (its ID or URL)."
    )
    reason = click.option(
        "--reason", metavar="TEXT", help="Only the letters whose reason contains TEXT."
    )
    return feed(reason(command))


@dead_letters_group.command("ls")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many, newest first.",
)
@_letter_filter_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per letter.")
def dead_letters_ls(limit: int, feed: str | None, reason: str | None, as_json: bool) -> None:
    """The newest dead letters: when, attempts, reason, title, article and feed URLs."""
    where = dead_letters.LetterFilter(feed=feed, reason=reason)
    found = run_async(load_settings(), lambda r, k: dead_letters.read_letters(r, k, limit, where))
    for stored in found:
        if as_json:
            row = {"id": stored.stream_id, "problem": stored.problem} | (
                msgspec.to_builtins(stored.letter) if stored.letter else {}
            )
            click.echo(redact_text(json.dumps(row, ensure_ascii=False, default=repr)))
        else:
            click.echo("\n".join(_letter_lines(stored)))
    if not found and not as_json:
        click.echo("no dead letters")


def _letter_lines(stored: dead_letters.StoredLetter) -> list[str]:
    when = _when(int(stored.stream_id.split("-")[0]) / 1000)
    letter = stored.letter
    if letter is None:
        return [f"{stored.stream_id}  {when}  unreadable: {redact_text(stored.problem or '')}"]
    lines = [
        f"{stored.stream_id}  {when}  {letter.attempts} attempts  {redact_text(letter.reason)}"
    ]
    if letter.title:
        lines.append(f"    {letter.title}")
    if letter.entry_url:
        lines.append(f"    {redact_url(letter.entry_url)}")
    if letter.feed_url:
        lines.append(f"    feed {redact_url(letter.feed_url)}")
    return lines


@dead_letters_group.command("retry")
@click.argument("letter_ids", nargs=-1)
@click.option(
    "--all", "every", is_flag=True, help="Every letter (that --feed and --reason choose)."
)
@_letter_filter_options
def dead_letters_retry(
    letter_ids: tuple[str, ...], every: bool, feed: str | None, reason: str | None
) -> None:
    """Has each letter's article taken again at its feed's next poll (now), and removes the
    letter. LETTER_IDS are the IDs `feedpipe dead-letters ls` shows."""
    if bool(letter_ids) == every:
        raise click.UsageError("give the letters' IDs, or --all")
    where = dead_letters.LetterFilter(feed=feed, reason=reason)
    if letter_ids and where != dead_letters.EVERY_LETTER:
        raise click.UsageError("--feed and --reason choose letters for --all")
    for letter_id in letter_ids:
        if not dead_letters.is_stream_id(letter_id):
            raise click.BadParameter(
                f"{letter_id!r} is not a dead letter's ID (like 1733312345678-0)",
                param_hint="LETTER_IDS",
            )
    results = run_async(load_settings(), lambda r, k: _retry(r, k, letter_ids, where))
    for result in results:
        click.echo(f"{result.stream_id}  {result.status}: {redact_text(result.detail)}")
    if not results:
        click.echo("no dead letters")
    if any(result.status == "not_found" for result in results):
        sys.exit(1)


async def _retry(
    client: AsyncRedis, keys: Keys, letter_ids: tuple[str, ...], where: dead_letters.LetterFilter
) -> list[dead_letters.RetryResult]:
    if not letter_ids:  # --all: the whole stream as it is now, or what the filter chooses of it
        stored = await dead_letters.read_letters(client, keys, 2**31, where)
        letter_ids = tuple(letter.stream_id for letter in reversed(stored))
    return [
        await dead_letters.retry_letter(client, keys, letter_id, time.time())
        for letter_id in letter_ids
    ]


# ---------------------------------------------------------------------------- status / metrics


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The whole snapshot as one JSON object.")
@click.option("--worst", default=10, show_default=True, help="How many problem feeds to list.")
def status(as_json: bool, worst: int) -> None:
    """One screen: workers, queues, scheduling lag, feeds ok/failing, last hour, consumers."""
    settings = load_settings()
    url = redis_url(settings)
    snap, hour = run_async(settings, lambda r, k: _status_snapshot(settings, r, k, worst))
    workers = _ping_workers(settings.model_copy(update={"redis_url": url}))
    if as_json:
        row = msgspec.to_builtins(snap) | {"workers": workers, "last_hour": hour}
        click.echo(redact_text(json.dumps(row, ensure_ascii=False)))
        return
    click.echo("\n".join(_status_lines(snap, hour, workers, url)))


async def _status_snapshot(
    settings: Settings, client: AsyncRedis, keys: Keys, worst: int
) -> tuple[Snapshot, dict[str, int]]:
    snap = await take_snapshot(
        client, keys, queues=QUEUES, failing_after=settings.failing_after_errors, worst=worst
    )
    since = snap.taken_at - 3600
    hour = {
        "items": await count_since(client, keys.output_stream, since),
        "duplicates": await count_since(client, keys.duplicates_stream, since),
    }
    return snap, hour


def _ping_workers(settings: Settings) -> list[str]:
    """Names of the Celery workers that answer a ping within a second."""
    app = create_app(settings)
    try:
        replies = app.control.ping(timeout=1.0) or []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


def _status_lines(snap: Snapshot, hour: dict[str, int], workers: list[str], url: str) -> list[str]:
    lines = [
        f"feedpipe status  {_when(snap.taken_at)}  Redis {redact_url(url)}",
        f"workers    {', '.join(workers) if workers else 'NONE ANSWERING'}",
        "queues     " + "  ".join(f"{name} {n}" for name, n in snap.queues.items()),
        f"schedule   {snap.feeds} feeds, {snap.feeds_overdue} overdue, "
        f"lag {snap.oldest_overdue_seconds:.0f} s",
        f"feeds      {snap.feeds_ok} ok, {snap.feeds_new} new, "
        f"{snap.feeds_erroring} erroring, {snap.feeds_failing} failing",
        f"last hour  {hour['items']} items, {hour['duplicates']} duplicates",
        "streams    " + "  ".join(f"{name} {n}" for name, n in snap.streams.items()),
    ]
    for group in snap.groups:
        lag = "?" if group.lag is None else str(group.lag)
        lines.append(
            f"  group {group.group} on {group.stream}: lag {lag}, pending {group.pending}, "
            f"{group.consumers} consumer(s)"
        )
    if snap.worst:
        lines.append("feeds with errors, worst first:")
        for problem in snap.worst:
            lines.append(f"  {problem.errors:3} errors  {redact_url(problem.url)}")
            lines.append(f"      {redact_text(problem.last_error or '')[:160]}")
    return lines


@main.command()
def exporter() -> None:
    """Serve Prometheus metrics on FEEDPIPE_METRICS_HOST:FEEDPIPE_METRICS_PORT/metrics."""
    settings = load_settings()
    url = redis_url(settings)
    click.echo(
        f"feedpipe exporter: http://{settings.metrics_host}:{settings.metrics_port}/metrics "
        f"(Redis {redact_url(url)})"
    )
    serve_metrics(settings, url, keys_for(settings.output_stream, settings.duplicates_stream))


@main.command()
def websub() -> None:
    """Serve the WebSub callback (FEEDPIPE_WEBSUB_HOST:FEEDPIPE_WEBSUB_PORT) that hubs reach
    at FEEDPIPE_WEBSUB_BASE_URL: verification of intent and signed notifications."""
    settings = load_settings()
    url = redis_url(settings)
    app = create_app(settings.model_copy(update={"redis_url": url}))

    def send(feed_id: str, body_key: str) -> None:
        app.send_task(TASK_INGEST_PUSH, args=[feed_id, body_key])

    click.echo(
        f"feedpipe websub: http://{settings.websub_host}:{settings.websub_port}/websub/ "
        f"(hubs call {redact_url(settings.websub_base_url or '(FEEDPIPE_WEBSUB_BASE_URL unset)')}"
        f"/websub/; Redis {redact_url(url)})"
    )
    try:
        serve_websub(
            settings, url, keys_for(settings.output_stream, settings.duplicates_stream), send
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


# --------------------------------------------------------------------------------------- feeds


@main.group()
def feeds() -> None:
    """Manage the feeds kept in Redis."""


@feeds.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def feeds_import(path: Path) -> None:
    """Add or update the feeds of a YAML or OPML file (all of them, or none if one is bad)."""
    started = time.monotonic()
    settings = load_settings()
    document = _load_document(path, runtime.feed_policy(settings))
    specs = document.specs
    added = _import(settings, None, specs)
    routed = _save_routes(settings, None, document.routes)
    click.echo(
        f"{len(specs)} feed(s) in {path}: {added} new, {len(specs) - added} updated"
        f"{routed} ({time.monotonic() - started:.1f} s)"
    )


@feeds.command("add")
@click.argument("url")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--title", default=None)
@click.option("--interval", type=int, default=None, help="Poll interval in seconds.")
@click.option(
    "--fulltext",
    type=click.Choice(FULLTEXT_MODES),
    default="auto",
    show_default=True,
    help="Where items take their text from: the article page, the feed's own content, or "
    "auto (pages until the feed's content is seen to be the article).",
)
@click.option(
    "--discover/--no-discover",
    default=True,
    show_default=True,
    help="Fetch the URL first: a site's page is replaced by the feed it links to (or one at "
    "a common path such as /feed).",
)
def feeds_add(
    url: str,
    tags: tuple[str, ...],
    title: str | None,
    interval: int | None,
    fulltext: Fulltext,
    discover: bool,
) -> None:
    """Add one feed (a feed URL, or a site's URL with --discover)."""
    settings = load_settings()
    policy = runtime.feed_policy(settings)
    given = FeedSpec(url=url, title=title, tags=tags, interval=interval, fulltext=fulltext)
    try:
        spec = registry.validate_feed_spec(given, "feeds add", policy)
        if discover:  # the page's link is input too: a hostile page may offer anything
            found = run_async(settings, lambda r, k: _locate(settings, r, k, spec.url))
            if found != spec.url:
                found_spec = msgspec.structs.replace(spec, url=found)
                spec = registry.validate_feed_spec(found_spec, "feeds add: found feed", policy)
                click.echo(f"found the feed {redact_url(found)} on {redact_url(url)}")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    added = _import(settings, None, [spec])
    click.echo(f"{'added' if added else 'updated'} {redact_url(spec.url)}")


async def _locate(settings: Settings, client: AsyncRedis, keys: Keys, url: str) -> str:
    async with runtime.http_session(settings) as http:
        fetcher = runtime.fetcher(settings, http, client, keys)
        try:
            return await locate_feed(fetcher, url, runtime.feed_limits(settings), 60.0)
        except FeedError as exc:
            raise click.ClickException(f"{exc} (--no-discover adds it as it is)") from exc


@feeds.command("rm")
@click.argument("url_or_id")
def feeds_rm(url_or_id: str) -> None:
    """Remove a feed (by URL or id). Items already published stay on the stream."""
    removed = run_async(load_settings(), lambda r, k: registry.remove_feed(r, k, url_or_id))
    if removed is None:
        raise click.ClickException(f"no such feed: {url_or_id}")
    click.echo(f"removed {redact_url(removed.url)}")


@feeds.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed.")
def feeds_ls(as_json: bool) -> None:
    """List feeds with their state."""
    settings = load_settings()
    failing_after = settings.failing_after_errors
    states = run_async(settings, registry.list_feeds)
    for state in states:
        if as_json:
            row = msgspec.to_builtins(state) | {
                "health": registry.feed_health(state, failing_after)
            }
            click.echo(redact_text(json.dumps(row, ensure_ascii=False)))
        else:
            click.echo(_feed_row(state, failing_after))
    if not as_json:
        failing = sum(registry.feed_health(s, failing_after) == "failing" for s in states)
        click.echo(f"{len(states)} feed(s), {failing} failing")


def _feed_row(state: FeedState, failing_after: int) -> str:
    health = registry.feed_health(state, failing_after)
    lines = [
        f"{redact_url(state.url)}  [{health}]",
        f"  last poll {_when(state.last_poll)}  status {state.last_status or '-'}"
        f"  errors {state.errors}  next poll {_when(state.next_poll)}  items {state.items}",
    ]
    if state.rate is not None:
        lines.append(
            f"  rate {state.rate:.2f}/h" + (f"  hint {state.hint:g}s" if state.hint else "")
        )
    lines.append(f"  text from {describe_fulltext(state, FulltextPolicy())}")
    if state.fetch_url:
        lines.append(f"  moved to {redact_url(state.fetch_url)} (permanent redirect)")
    if state.last_error:
        lines.append(f"  last error: {redact_text(state.last_error)[:160]}")
    return "\n".join(lines)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _load_document(path: Path | None, policy: registry.FeedPolicy) -> registry.FeedsDocument:
    """Every feed and route of the file, validated: a bad entry stops here, before anything is
    written. ``policy``: from the settings (which feeds the SSRF guard refuses, the interval
    bounds)."""
    if path is None:
        return registry.FeedsDocument([])
    on_terminal = sys.stderr.isatty()  # a counter there; logs and pipes get the summary only

    def counter(read: int) -> None:
        click.echo(f"\rreading {path}: {read} feeds", err=True, nl=False)

    try:
        return registry.load_feeds_document(
            path, policy=policy, progress=counter if on_terminal else None
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if on_terminal:
            click.echo("\r\033[K", err=True, nl=False)  # the counter line, erased


def _save_routes(settings: Settings, url: str | None, found: tuple[Route, ...] | None) -> str:
    """Stores the file's routes (replacing the stored ones) when it has a ``routes:`` section;
    returns what to say about it."""
    if found is None:
        return ""
    if url is not None:
        settings = settings.model_copy(update={"redis_url": url})
    version = run_async(settings, lambda r, k: save_routes(r, k, found))
    return f"; {len(found)} route(s) (version {version})"


def _import(settings: Settings, url: str | None, specs: list[FeedSpec]) -> int:
    """Writes the feeds (registry.IMPORT_BATCH per round trip); returns how many were new.
    A progress bar on a terminal when there is more than one batch."""
    if url is not None:
        settings = settings.model_copy(update={"redis_url": url})
    if len(specs) <= registry.IMPORT_BATCH or not sys.stderr.isatty():
        return run_async(settings, lambda r, k: registry.add_feeds(r, k, specs, time.time()))
    with click.progressbar(length=len(specs), label="writing feeds", file=sys.stderr) as bar:

        def advance(written: int) -> None:
            bar.update(written - bar.pos)

        return run_async(
            settings,
            lambda r, k: registry.add_feeds(r, k, specs, time.time(), progress=advance),
        )


# -------------------------------------------------------------------------------------- routes


@main.group()
def routes() -> None:
    """Named output streams taking the items that match a condition (feeds file `routes:`)."""


@routes.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per route.")
def routes_ls(as_json: bool) -> None:
    """Each route: its stream, condition, length and consumer groups' lag."""
    settings = load_settings()
    table, lengths, groups = run_async(settings, _routes_view)
    if not table.routes and not as_json:
        click.echo(f"no routes (version {table.version}): add a routes: section to the feeds file")
    keys = keys_for(settings.output_stream, settings.duplicates_stream)
    for route in table.routes:
        stream = keys.route_stream(route.name)
        lags = [g for g in groups if g.stream == stream]
        if as_json:
            row = msgspec.to_builtins(route) | {
                "stream": stream,
                "length": lengths[stream],
                "groups": msgspec.to_builtins(lags),
                "version": table.version,
            }
            click.echo(redact_text(json.dumps(row, ensure_ascii=False)))
            continue
        click.echo(f"{route.name:16} {stream}  {lengths[stream]} items  {route.describe()}")
        for group in lags:
            lag = "?" if group.lag is None else str(group.lag)
            click.echo(f"{'':16} group {group.group}: lag {lag}, pending {group.pending}")


async def _routes_view(
    client: AsyncRedis, keys: Keys
) -> tuple[RouteTable, dict[str, int], list[GroupLag]]:
    table = await stored_routes(client, keys)
    streams = [keys.route_stream(r.name) for r in table.routes]
    lengths = {stream: await client.xlen(stream) for stream in streams}
    return table, lengths, await stream_groups(client, streams)


if __name__ == "__main__":
    main()
