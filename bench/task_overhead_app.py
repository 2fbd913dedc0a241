"""The Celery app `bench.task_overhead_bench` runs a worker of: feedpipe's configuration
(workers/celery_config.py) with one task that burns a fixed amount of CPU, and the way task
events are sent chosen by BENCH_EVENTS (``batched``: feedpipe's consumer; ``celery``: Celery's
own consumer, one flush per loop turn; ``off``: no task events)."""

from __future__ import annotations

import os
from typing import Any

from celery.signals import setup_logging

from pipeline import logs
from pipeline.settings import Settings
from workers.celery_config import create_app

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
    logs.configure(app.settings.log_level)  # as workers/app.py: feedpipe's log lines and level


@app.task(name=NOOP)
def spin(job: dict[str, str]) -> int:
    total = 0
    for i in range(SPIN):
        total += i
    return total
