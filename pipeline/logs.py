"""Structured log lines with fixed keys (feed_url, entry_url, stage, reason, duration_ms),
every URL in them redacted (``pipeline.redact``)."""

from __future__ import annotations

import logging
import time

from pipeline.redact import redact_text

FIELDS = ("stage", "feed_url", "entry_url", "reason", "duration_ms", "items", "status")


class KeyValueFormatter(logging.Formatter):
    """``<time> <level> <logger> <message> key=value ...`` with the fixed keys, when present."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{k}={_quote(getattr(record, k))}" for k in FIELDS if hasattr(record, k)]
        # Last, over everything (message, keys, traceback): no credential reaches a log.
        return redact_text(f"{line} {' '.join(pairs)}" if pairs else line)


def _quote(value: object) -> str:
    text = str(value)
    if not text.isprintable():  # a hub's reason, a feed's error text: one line, whatever it holds
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f'"{text}"' if " " in text or not text else text


class RepeatedErrorFilter(logging.Filter):
    """Lets the same warning or error (same logger, same message template) through once per
    ``interval`` seconds, then says how many were held back.

    When Redis is away for a minute, every task and every beat tick fails the same way; one
    line (with its traceback) per interval tells the operator as much as hundreds would."""

    def __init__(self, interval: float = 30.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        last, held = self._last.get(key, (-self.interval, 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return False
        self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.interval:g} s)"
        return True


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(RepeatedErrorFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def elapsed_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
