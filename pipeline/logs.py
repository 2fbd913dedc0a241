"""Structured log lines with fixed keys (feed_url, entry_url, stage, reason, duration_ms)."""

from __future__ import annotations

import logging
import time

FIELDS = ("stage", "feed_url", "entry_url", "reason", "duration_ms", "items", "status")


class KeyValueFormatter(logging.Formatter):
    """``<time> <level> <logger> <message> key=value ...`` with the fixed keys, when present."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{k}={_quote(getattr(record, k))}" for k in FIELDS if hasattr(record, k)]
        return f"{line} {' '.join(pairs)}" if pairs else line


def _quote(value: object) -> str:
    text = str(value)
    return f'"{text}"' if " " in text or not text else text


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def elapsed_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
