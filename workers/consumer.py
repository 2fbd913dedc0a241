"""The workers' Celery consumer: task events for Flower, sent in batches.

With task events on (``-E``, which Flower needs), Celery's consumer buffers each task event
(``task-received``, ``-started``, ``-succeeded``) and flushes the buffer on the event loop's next
turn: in practice one synchronous Redis ``PUBLISH`` (and one redis-py client built by kombu) per
event, in the main process that also feeds the pool. Flushing on a short timer instead sends the
events of many tasks in one ``task.multi`` message, which Flower and every ``EventReceiver``
read as the separate events. docs/performance.md has the measurement.
"""

from __future__ import annotations

from celery.worker.consumer import Consumer

EVENT_FLUSH_SECONDS = 0.1  # how late Flower may see a task's state change


class BatchedEventsConsumer(Consumer):
    """Celery's consumer, flushing buffered task events at most every EVENT_FLUSH_SECONDS
    (and at once when the buffer is full, as Celery does: 24 events)."""

    _flush_scheduled = False

    def on_send_event_buffered(self) -> None:
        if self.hub is None or self._flush_scheduled:
            return
        self._flush_scheduled = True
        # A threads pool sends events from its threads: call_soon is the hub's thread-safe way
        # in (what Celery's own consumer uses); its timers are armed from the loop's thread only.
        self.hub.call_soon(self._arm_flush_timer)

    def _arm_flush_timer(self) -> None:
        self.hub.call_later(EVENT_FLUSH_SECONDS, self._flush_scheduled_events)

    def _flush_scheduled_events(self) -> None:
        self._flush_scheduled = False
        self._flush_events()

    def shutdown(self) -> None:
        self._flush_events()  # what the timer had not sent yet
        super().shutdown()
