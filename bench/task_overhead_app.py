"""The Celery app `bench.task_overhead_bench` runs a worker of: feedpipe's configuration
(workers/celery_config.py) with one task that burns a fixed amount of CPU and logs a line as
the extract stage does, the way task events are sent chosen by BENCH_EVENTS (``batched``:
feedpipe's consumer; ``celery``: Celery's own consumer, one flush per loop turn; ``off``: no
task events), and BENCH_CELERY_LINES=on putting Celery's per-task log lines back."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import celeryd_after_setup, setup_logging

from pipeline.settings import Settings
from workers.celery_config import CELERY_PER_TASK_LOGGERS, configure_worker_logging, create_app

NOOP = "bench.spin"
QUEUE = "bench"
SPIN = 20_000  # loop turns per task: ~1 ms of CPU, so the pool is busy the way extraction keeps it

app = create_app(Settings())
app.conf.task_routes = {NOOP: {"queue": QUEUE}}
app.conf.beat_schedule = {}
match os.environ.get("BENCH_EVENTS", "batched"):
    case "celery":
        app.conf.worker_consumer = "celery.worker.consumer:Consumer"
    case "off":
        app.conf.worker_send_task_events = False


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    configure_worker_logging(app.settings.log_level)  # as workers/app.py


@celeryd_after_setup.connect
def _celery_lines_back(**_: Any) -> None:
    # After every setup_logging receiver (workers/app.py has one too, imported with the
    # consumer), before the consumer and the pool processes read the loggers' levels.
    if os.environ.get("BENCH_CELERY_LINES") == "on":
        for name in CELERY_PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


log = logging.getLogger("pipeline.extract_stage")


@app.task(name=NOOP)
def spin(job: dict[str, str]) -> int:
    total = 0
    for i in range(SPIN):
        total += i
    extra = {"stage": "extract", "entry_url": job["url"], "reason": "published", "duration_ms": 1}
    log.info("article", extra=extra)
    return total
