"""Log policy: repeated warnings and errors are held back within an interval."""

from __future__ import annotations

import logging
import time

from pipeline.logs import RepeatedErrorFilter


def test_repeated_errors_are_logged_once_per_interval() -> None:
    limit = RepeatedErrorFilter(interval=0.2)

    def record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord("celery.beat", level, __file__, 1, msg, ("x",), None)

    assert limit.filter(record("Message Error: %s"))
    assert not any(limit.filter(record("Message Error: %s")) for _ in range(50))
    assert limit.filter(record("another error %s"))  # a different message is its own
    assert all(limit.filter(record("info %s", logging.INFO)) for _ in range(5))
    time.sleep(0.25)
    again = record("Message Error: %s")
    assert limit.filter(again) and "50 more like this" in str(again.msg)
