"""A prefork pool that replaces an exited pool process at once, for ``bench.extract_worker_bench``
(tried, not kept: docs/performance.md).

The extract worker recycles its pool processes (``--max-tasks-per-child``). Celery's prefork
pool learns that one exited when the process's sentinel pipe closes, and then reaps and replaces
it. But the pipe closes while the process is still exiting: the kernel closes a process's files
before it makes the process reapable. When the event loop is quicker than the exit, the reap
finds nothing, the sentinel is no longer watched, and the exited process is only reaped by the
pool's 5 s maintenance timer. Until then one of the two pool processes is missing, and the
backlog is worked by one. This pool looks again shortly after, until the process is reaped.
It overrides a private method of Celery's pool.
"""

from __future__ import annotations

from typing import Any

from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import TaskPool

REAP_RETRY_SECONDS = 0.01  # an exiting process is reapable within microseconds
REAP_RETRIES = 50  # then Celery's own 5 s maintenance takes over


class PromptlyReapingAsynPool(AsynPool):  # type: ignore[misc]  # Celery is untyped
    def _event_process_exit(self, hub: Any, proc: Any) -> None:
        super()._event_process_exit(hub, proc)  # reaps and replaces it, if it can be reaped
        if proc in self._pool:
            hub.call_later(REAP_RETRY_SECONDS, self._reap_again, hub, proc, REAP_RETRIES)

    def _reap_again(self, hub: Any, proc: Any, retries: int) -> None:
        self.maintain_pool()
        if proc in self._pool and retries > 1:
            hub.call_later(REAP_RETRY_SECONDS, self._reap_again, hub, proc, retries - 1)


class ReapingTaskPool(TaskPool):  # type: ignore[misc]
    """Celery's prefork pool, with the pool above (``-P custom`` with
    ``CELERY_CUSTOM_WORKER_POOL=bench.reaping_pool:ReapingTaskPool``)."""

    Pool = PromptlyReapingAsynPool
