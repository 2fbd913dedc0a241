"""Celery configuration: JSON only, late acks, prefetch 1, one queue per kind of work.

Importing this module reads no settings: producers (tests, other programs) build their own app
with ``create_app(Settings(...))`` and send tasks by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import Celery

from pipeline import logs
from pipeline.settings import POLL_WORK_LIMIT_SECONDS, Settings
from workers.broker_connection import broker_connection
from workers.runtime import Runtime


@dataclass(frozen=True)
class TaskTimeLimits:
    """Every time limit of the tasks, each from one rule, in seconds.

    A poll task (``poll_feeds``, ``ingest_push``) ends its own work after ``poll_work``: the
    poll budget plus one request, which Settings checks fits POLL_WORK_LIMIT_SECONDS. Celery's
    soft limit comes 10 s later (the loop finishes or cancels cleanly first) and the hard limit
    20 s after that. An extract task: FEEDPIPE_EXTRACT_TIME_LIMIT_SECONDS is the hard limit,
    which kills the process (a retry follows); past three quarters of it, the soft limit, the
    feed's text stands in for the page's."""

    poll_work: int
    poll_soft: int
    poll_hard: int
    extract_soft: int
    extract_hard: int


def task_time_limits(settings: Settings) -> TaskTimeLimits:
    hard = settings.extract_time_limit_seconds
    return TaskTimeLimits(
        poll_work=POLL_WORK_LIMIT_SECONDS,
        poll_soft=POLL_WORK_LIMIT_SECONDS + 10,
        poll_hard=POLL_WORK_LIMIT_SECONDS + 30,
        extract_soft=max(1, hard * 3 // 4),
        extract_hard=hard,
    )


QUEUE_DISPATCH, QUEUE_FETCH, QUEUE_EXTRACT = "dispatch", "fetch", "extract"
# WebSub notifications: a queue and worker of their own, so a push never waits for a thread
# of a fetch worker whose polls all wait for their hosts' turns (docs/performance.md, "Push").
QUEUE_PUSH = "push"
TASK_DISPATCH = "feedpipe.dispatch_due_feeds"
TASK_POLL = "feedpipe.poll_feeds"
TASK_EXTRACT = "feedpipe.extract_article"
TASK_REDELIVER = "feedpipe.redeliver_lost_extract_jobs"
TASK_WEBSUB_MAINTAIN = "feedpipe.websub_maintain"
TASK_INGEST_PUSH = "feedpipe.ingest_push"
# Deterministic: a job sent again (retry, redelivery of a lost one) keeps its task id.
EXTRACT_TASK_ID_PREFIX = "extract-"


class FeedpipeCelery(Celery):
    """A Celery app that carries feedpipe's settings and this process's runtime."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__("feedpipe", **kwargs)
        self.settings = settings
        self.runtime = Runtime(settings)


# Celery's line for every task ("Task ... received", "Task ... succeeded in 0.01s: ..."), without
# the fixed keys, says what feedpipe's own "article" and "polled" lines say with them: two more
# lines per article, and CPU in both of the extract worker's processes (docs/performance.md).
# Failures (ERROR) still show; retries are logged by feedpipe (workers/tasks.py). At DEBUG
# Celery's lines are back.
CELERY_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def configure_worker_logging(level: str) -> None:
    """feedpipe's log lines (pipeline/logs.py) in a Celery worker, at ``level``."""
    logs.configure(level)
    per_task_level = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in CELERY_PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(per_task_level)


def celery_config(settings: Settings) -> dict[str, Any]:
    visibility = settings.visibility_timeout_seconds
    broker = broker_connection(settings.celery_broker_url)
    transport = {
        "visibility_timeout": visibility,
        "socket_keepalive": True,
        # How soon messages of a worker killed outright are found and requeued: kombu sweeps
        # every interval x throttle seconds (~100 s at the defaults, ~3 s for a 15 s timeout).
        "unacked_restore_interval": max(1, min(10, visibility // 5)),
        "unacked_restore_throttle": max(1, min(10, visibility // 180)),
    }
    return {
        # The URL as kombu reads it (workers/broker_connection.py): its options, TLS included,
        # each where kombu takes them.
        "broker_url": broker.url,
        "broker_use_ssl": dict(broker.tls) if broker.tls else False,
        "broker_transport_options": transport | dict(broker.transport_options),
        "result_backend_transport_options": transport,
        "visibility_timeout": visibility,
        "broker_connection_retry_on_startup": True,
        # Redis away for minutes (a restart, a failover) is waited out, never a reason to exit.
        "broker_connection_max_retries": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        # Task events in batches (workers/consumer.py); no ``task-sent`` event: Flower shows a
        # task from its ``task-received`` on, and the queues' depth is on the metrics.
        "worker_consumer": "workers.consumer:BatchedEventsConsumer",
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "task_routes": {
            TASK_DISPATCH: {"queue": QUEUE_DISPATCH},
            TASK_POLL: {"queue": QUEUE_FETCH},
            TASK_REDELIVER: {"queue": QUEUE_DISPATCH},
            TASK_EXTRACT: {"queue": QUEUE_EXTRACT},
            TASK_WEBSUB_MAINTAIN: {"queue": QUEUE_DISPATCH},
            TASK_INGEST_PUSH: {"queue": QUEUE_PUSH},
        },
        "beat_schedule": {
            "dispatch-due-feeds": {
                "task": TASK_DISPATCH,
                "schedule": settings.dispatch_interval_seconds,
                # A dispatch that waited longer than one interval is stale: the next one covers it.
                "options": {"expires": max(settings.dispatch_interval_seconds, 1.0)},
            },
            "redeliver-lost-extract-jobs": {
                "task": TASK_REDELIVER,
                "schedule": _redeliver_interval(settings),
                "options": {"expires": _redeliver_interval(settings)},
            },
        }
        | _websub_schedule(settings),
    }


def _websub_schedule(settings: Settings) -> dict[str, Any]:
    """Subscriptions are requested and renewed only where FEEDPIPE_WEBSUB_BASE_URL is set."""
    if not settings.websub_base_url:
        return {}
    every = settings.websub_maintain_seconds
    return {
        "websub-maintain": {
            "task": TASK_WEBSUB_MAINTAIN,
            "schedule": every,
            "options": {"expires": every},
        }
    }


def _redeliver_interval(settings: Settings) -> float:
    """A lost job is sent again at most a fifth of FEEDPIPE_REDELIVER_AFTER_SECONDS late."""
    return settings.redeliver_after_seconds / 5


def create_app(settings: Settings) -> FeedpipeCelery:
    app = FeedpipeCelery(settings, include=["workers.tasks"])
    app.conf.update(celery_config(settings))
    return app
