"""The worker's Celery app, configured from the environment (FEEDPIPE_*).

Run with ``celery -A workers.app worker -Q fetch,dispatch`` / ``-Q extract`` / ``beat``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from pydantic import ValidationError

from pipeline import extract_stage, logs
from pipeline.errors import ConfigError
from pipeline.language import LanguagePolicy
from pipeline.settings import Settings
from workers.celery_config import QUEUE_EXTRACT, configure_worker_logging, create_app
from workers.runtime import Runtime, extraction_policy

log = logging.getLogger(__name__)

try:
    app = create_app(Settings())
except (ConfigError, ValidationError) as exc:
    # Celery imports this module first thing: a bad setting ends the worker with one clear line.
    raise SystemExit(f"feedpipe: invalid configuration: {exc}") from exc


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own handlers over ours.
    configure_worker_logging(app.settings.log_level)


@worker_init.connect
def _warm_up_extraction(sender: Any, **_: Any) -> None:
    # Once, in the extract worker's main process, before it forks its pool processes: they, and
    # those that replace recycled ones, inherit the loaded model instead of each loading it.
    if QUEUE_EXTRACT in sender.app.amqp.queues.consume_from:
        configure_worker_logging(app.settings.log_level)  # Celery's own setup comes later
        start = time.monotonic()
        extract_stage.warm_up(extraction_policy(app.settings), LanguagePolicy())
        log.info(
            "extraction loaded before the pool starts",
            extra={"stage": "extract", "duration_ms": logs.elapsed_ms(start)},
        )


@worker_process_init.connect
def _fresh_runtime_after_fork(**_: Any) -> None:
    app.runtime = Runtime(app.settings)


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    app.runtime.close()


@worker_shutdown.connect
def _close_main_runtime(**_: Any) -> None:
    # The worker's own process: the fetch worker's loop thread and clients (thread pool), the
    # extract worker's main process (it records hard time limits).
    app.runtime.close()
