"""Publishing job messages through Celery's producer pool.

One producer is held for a whole batch, and on Redis the batch goes out in pipelined round
trips: kombu's Redis transport otherwise builds a client per message (about 1 ms each).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kombu.exceptions import KombuError, OperationalError

from jobyard.config import Settings
from jobyard.domain.priorities import broker_priority
from jobyard.errors import ServiceUnavailable
from jobyard.execution.celery.app import EXECUTE_TASK, make_celery
from jobyard.store.jobs import Dispatch

log = logging.getLogger(__name__)
#: Messages per Redis pipeline round trip.
PUBLISH_BATCH = 1000
PERSISTENT = 2


class CeleryPublisher:
    """`Publisher` over the Celery app's own connection and producer pools."""

    def __init__(self, settings: Settings, longest_timeout_s: float) -> None:
        self._settings = settings
        self._redis = settings.broker_is_redis
        self._grace_s = settings.worker.hard_timeout_grace_s
        self.app = make_celery(settings, longest_timeout_s)

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        if not dispatches:
            return
        try:
            with self.app.producer_or_acquire() as producer, _batched(producer):
                self._send(producer, dispatches)
        except (OperationalError, KombuError, OSError) as exc:
            raise ServiceUnavailable(f"broker {self._redacted()} is unreachable: {exc}") from exc

    def _send(self, producer: Any, dispatches: Sequence[Dispatch]) -> None:
        """What `send_task` does, minus the per-message routing and queue declaration."""
        declared: set[str] = set()
        amqp = self.app.amqp
        for item in dispatches:
            if item.queue not in declared:
                producer.maybe_declare(amqp.queues[item.queue])
                declared.add(item.queue)
            job_id = str(item.id)
            headers, properties, body, _ = amqp.as_task_v2(
                job_id,
                EXECUTE_TASK,
                args=[job_id],
                soft_time_limit=item.timeout_s,
                time_limit=item.timeout_s + self._grace_s,
                ignore_result=True,
                # Celery would saferepr() the arguments; for one uuid that is most of its cost.
                argsrepr=f"['{job_id}']",
                kwargsrepr="{}",
            )
            producer.publish(
                body,
                exchange="",
                routing_key=item.queue,
                serializer="json",
                headers=headers,
                priority=broker_priority(item.priority, redis=self._redis),
                delivery_mode=PERSISTENT,
                declare=None,
                retry=False,
                **properties,
            )

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
        except (OperationalError, KombuError, OSError) as exc:
            raise ServiceUnavailable(f"broker {self._redacted()} is unreachable: {exc}") from exc

    def queue_lengths(self, queues: Sequence[str]) -> dict[str, int]:
        lengths: dict[str, int] = {}
        try:
            with self.app.connection_for_read() as conn:
                for name in queues:
                    channel = conn.channel()
                    try:
                        _, count, _ = channel.queue_declare(queue=name, passive=True)
                        lengths[name] = int(count)
                    except conn.channel_errors:
                        lengths[name] = 0  # an undeclared queue holds nothing yet
                    finally:
                        _close_quietly(channel)
        except (OperationalError, KombuError, OSError) as exc:
            raise ServiceUnavailable(f"broker {self._redacted()} is unreachable: {exc}") from exc
        return lengths

    def close(self) -> None:
        self.app.close()

    def _redacted(self) -> str:
        with self.app.connection_for_write() as conn:
            return str(conn.as_uri())


def _batched(producer: Any) -> AbstractContextManager[object]:
    """kombu ≥ 5.7 pipelines a batch of Redis publishes; older kombu publishes one by one."""
    batch = getattr(producer, "batch", None)
    return batch(max_size=PUBLISH_BATCH) if batch is not None else nullcontext()


def _close_quietly(channel: object) -> None:
    try:
        channel.close()  # type: ignore[attr-defined]
    except Exception:  # a channel the broker already closed (passive declare miss)
        log.debug("channel close failed", exc_info=True)
