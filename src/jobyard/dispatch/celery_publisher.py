"""Publishing job messages through Celery's producer pool.

One producer is held for a whole batch, and on Redis the batch goes out in pipelined round
trips: kombu's Redis transport otherwise builds a client per message (about 1 ms each).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobyard.config import Settings
from jobyard.domain.priorities import broker_priority
from jobyard.errors import BrokerUnavailable
from jobyard.execution.celery.app import EXECUTE_TASK, make_celery
from jobyard.store.jobs import Dispatch

log = logging.getLogger(__name__)
#: What a send to an unreachable broker raises: kombu's own errors, and redis-py's when a
#: pooled connection finds Redis gone (the custom transport's LPUSH is not wrapped by kombu).
UNREACHABLE = (OperationalError, KombuError, OSError, RedisConnectionError, RedisTimeoutError)
#: Messages per Redis pipeline round trip.
PUBLISH_BATCH = 1000
PERSISTENT = 2


class CeleryPublisher:
    """`Publisher` over the Celery app's own connection and producer pools."""

    def __init__(
        self,
        settings: Settings,
        longest_timeout_s: float,
        batch_sizes: Mapping[str, int] | None = None,
    ) -> None:
        """`batch_sizes`: the batched job types and their `max_size`."""
        self._settings = settings
        self._batch_sizes = dict(batch_sizes or {})
        self._redis = settings.broker_is_redis
        self._grace_s = settings.worker.hard_timeout_grace_s
        self.app = make_celery(settings, longest_timeout_s)
        self._chunk_sizes = {
            settings.queue_for(name): pool.dispatch_chunk for name, pool in settings.pools.items()
        }

    def publish(self, dispatches: Sequence[Dispatch]) -> Mapping[str, int]:
        if not dispatches:
            return {}
        try:
            with self.app.producer_or_acquire() as producer:
                if self._messages(dispatches) == 1:  # one LPUSH: a pipeline only adds overhead
                    self._send(producer, dispatches)
                    length = getattr(producer.channel, "last_length", None)
                    return {} if length is None else {dispatches[0].queue: length}
                with _batched(producer):
                    self._send(producer, dispatches)
                return {}
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"broker {self._redacted()} is unreachable: {exc}") from exc

    def _messages(self, dispatches: Sequence[Dispatch]) -> int:
        """How many messages these jobs make (1 or more; counting stops at 2)."""
        count = 0
        for _ in self._chunks(dispatches):
            count += 1
            if count > 1:
                break
        return count

    def _send(self, producer: Any, dispatches: Sequence[Dispatch]) -> None:
        """What `send_task` does, minus the per-message routing and queue declaration."""
        declared: set[str] = set()
        amqp = self.app.amqp
        for chunk in self._chunks(dispatches):
            first = chunk[0]
            if first.queue not in declared:
                producer.maybe_declare(amqp.queues[first.queue])
                declared.add(first.queue)
            ids = [str(item.id) for item in chunk]
            soft_limit, hard_limit = self._limits(chunk)
            headers, properties, body, _ = amqp.as_task_v2(
                ids[0],
                EXECUTE_TASK,
                args=ids,
                soft_time_limit=soft_limit,
                time_limit=hard_limit,
                ignore_result=True,
                # What `celery inspect` and Flower show as the task's name: the job type.
                shadow=_shadow_name(chunk),
                # Celery would saferepr() the arguments; for uuids that is most of its cost.
                argsrepr=repr(ids),
                kwargsrepr="{}",
            )
            producer.publish(
                body,
                exchange="",
                routing_key=first.queue,
                serializer="json",
                headers=headers,
                priority=broker_priority(first.priority, redis=self._redis),
                delivery_mode=PERSISTENT,
                declare=None,
                retry=False,
                **properties,
            )

    def _limits(self, chunk: Sequence[Dispatch]) -> tuple[float | None, float]:
        """Celery's soft and hard time limits for one message.

        One job: Celery's own limits. Several: each job's limit is the reaper's. A batched
        type: the executor limits each call itself; the message may run the batch call and
        then, if it raised, each of up to `max_size` jobs alone.
        """
        first = chunk[0]
        size = self._batch_sizes.get(first.type)
        if size is not None and len(chunk) == 1:
            return None, first.timeout_s * (size + 1) + self._grace_s
        soft_limit = first.timeout_s if len(chunk) == 1 else None
        return soft_limit, sum(item.timeout_s for item in chunk) + self._grace_s

    def _chunks(self, dispatches: Sequence[Dispatch]) -> Iterator[list[Dispatch]]:
        """Consecutive jobs of one queue and priority, up to the pool's `dispatch_chunk`;
        a batched type's job alone (its worker gathers its batch from the database)."""
        chunk: list[Dispatch] = []
        for item in dispatches:
            size = 1 if item.type in self._batch_sizes else self._chunk_sizes.get(item.queue, 1)
            if chunk and (
                len(chunk) >= size
                or chunk[0].type in self._batch_sizes
                or (chunk[0].queue, chunk[0].priority) != (item.queue, item.priority)
            ):
                yield chunk
                chunk = []
            chunk.append(item)
        if chunk:
            yield chunk

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"broker {self._redacted()} is unreachable: {exc}") from exc

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
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"broker {self._redacted()} is unreachable: {exc}") from exc
        return lengths

    def close(self) -> None:
        self.app.close()

    def _redacted(self) -> str:
        with self.app.connection_for_write() as conn:
            return str(conn.as_uri())


def _shadow_name(chunk: Sequence[Dispatch]) -> str:
    """The job type of a message, or its types joined when a chunk mixes several."""
    types = sorted({item.type for item in chunk})
    return types[0] if len(types) == 1 else ",".join(types)


def _batched(producer: Any) -> AbstractContextManager[object]:
    """kombu ≥ 5.7 pipelines a batch of Redis publishes; older kombu publishes one by one."""
    batch = getattr(producer, "batch", None)
    return batch(max_size=PUBLISH_BATCH) if batch is not None else nullcontext()


def _close_quietly(channel: object) -> None:
    try:
        channel.close()  # type: ignore[attr-defined]
    except Exception:  # a channel the broker already closed (passive declare miss)
        log.debug("channel close failed", exc_info=True)
