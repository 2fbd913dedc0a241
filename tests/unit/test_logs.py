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


def test_a_value_with_a_newline_stays_on_its_line() -> None:
    import logging

    from pipeline.logs import KeyValueFormatter

    record = logging.LogRecord("websub", logging.WARNING, __file__, 1, "websub denied", (), None)
    record.reason = "denied\nFAKE 2026 ERROR forged line"
    line = KeyValueFormatter().format(record)
    assert "\n" not in line and 'reason="denied\\nFAKE 2026 ERROR forged line"' in line


def test_celerys_per_task_lines_are_off_but_at_debug() -> None:
    from workers.celery_config import CELERY_PER_TASK_LOGGERS, configure_worker_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_worker_logging("INFO")
        for name in CELERY_PER_TASK_LOGGERS:
            assert not logging.getLogger(name).isEnabledFor(logging.INFO)
            assert logging.getLogger(name).isEnabledFor(logging.ERROR)  # failures still show
        assert logging.getLogger("pipeline.extract_stage").isEnabledFor(logging.INFO)
        configure_worker_logging("DEBUG")
        assert all(logging.getLogger(n).isEnabledFor(logging.INFO) for n in CELERY_PER_TASK_LOGGERS)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])  # through setLevel: it clears the loggers' cached levels
        for name in CELERY_PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
