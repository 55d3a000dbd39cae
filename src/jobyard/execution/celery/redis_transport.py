"""kombu's Redis transport, with an ack that gives back its prefetch credit when Redis is down.

kombu 5.7's Redis `QoS.ack` removes the message from the unacked index *before* it releases the
delivery tag; when Redis is down the first step raises and the credit is never returned. A
worker whose every slot was busy during a Redis restart is then left with no credit, so kombu
never issues another BRPOP, and the idle socket Redis closed is dropped without an error:
the worker turns its loop forever without consuming (celery #9054, #10205, #10302; the trace
is in the project's research notes). Here the credit is released whatever the outcome of the
index update. The message whose ack failed stays in Redis's unacked hash and is redelivered
after the visibility timeout; the guarded claim turns that delivery into a no-op.

The transport is registered under its own URL scheme (`jyredis://`, `jyredis+socket://`,
`jyrediss://`) in kombu's alias table, the documented way to name a transport in a URL, so
every Redis URL form reaches it. This leans on kombu internals (`QoS._remove_from_indices`,
`restore_by_tag`): pyproject pins kombu's minor version, and
`tests/reliability/test_redis_restart.py` restarts a private Redis under busy workers.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import base as virtual
from kombu.utils.json import dumps
from redis.exceptions import ConnectionError as RedisConnectionError

ALIASES = {
    "jyredis": f"{__name__}:Transport",
    "jyrediss": f"{__name__}:Transport",
}
SCHEMES = {"redis": "jyredis", "rediss": "jyrediss", "redis+socket": "jyredis+socket"}


class QoS(kombu_redis.QoS):
    """Releases the delivery's credit even when Redis cannot be told about it."""

    def ack(self, delivery_tag: str) -> None:
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)


class Channel(kombu_redis.Channel):
    """kombu's Redis channel with the credit-releasing QoS.

    A channel closed after its connection was already torn down (Celery closes the broken
    connection, then its channels give their unacked messages back) would build a client from
    the detached connection and die of an `AttributeError` that nobody catches: with remote
    control on, that killed threads-pool workers at every Redis restart. It is a connection
    error here, which channel close ignores; the messages stay in Redis's unacked hash.
    """

    QoS = QoS
    _publish_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The client for a publish or a queue-length query: kombu builds a new `redis.Redis`
        for each (redis-py 8 fills a table of ~170 response callbacks per client, ~0.3 ms, a
        seventh of a submit); one per channel over the channel's pool does the same work and is
        thread-safe. A new pool (after a reconnect) gets a new client."""
        if client:
            yield client
            return
        cached = self._publish_client
        if cached is None or cached.connection_pool is not self.pool:
            cached = self._publish_client = self._create_client()
        yield cached

    #: What the last plain LPUSH of this channel answered: its queue's length after the push,
    #: the backlog signal of `dispatch.sender` (None until one was sent).
    last_length: int | None = None

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        """kombu's `_put`, keeping the length the LPUSH answers (batches and queues with an
        expiry go through kombu's own path)."""
        if kwargs.get("_publish_batch") is not None or (self._expires and queue in self._expires):
            super()._put(queue, message, **kwargs)
            return
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        with self.conn_or_acquire() as client:
            self.last_length = int(client.lpush(key, dumps(message)))

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the credit-releasing QoS."""

    Channel = Channel


def register() -> None:
    """Name this transport in kombu's alias table (idempotent)."""
    for alias, target in ALIASES.items():
        TRANSPORT_ALIASES.setdefault(alias, target)


def celery_broker(url: str) -> tuple[str, dict[str, Any] | None]:
    """The broker URL that selects this transport, and the TLS options for `rediss://`.

    Other schemes (amqp) are returned unchanged. For `rediss://` kombu would otherwise turn
    certificate checks off; here they stay on unless the URL says otherwise.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        return url, None
    register()
    use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED} if scheme == "rediss" else None
    return f"{SCHEMES[scheme]}://{rest}", use_ssl
