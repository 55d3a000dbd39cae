"""Events over RabbitMQ: a fanout exchange; each web process binds its own exclusive queue."""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.message import Message
from kombu.messaging import Consumer, Producer

from jobyard.events.batching import BatchingPublisher
from jobyard.events.bus import BatchHandler
from jobyard.events.listening import ThreadedListener

log = logging.getLogger(__name__)
#: Events nobody consumes within this long are dropped by RabbitMQ.
MESSAGE_TTL_S = 60


def _exchange(channel: str) -> Exchange:
    return Exchange(channel, type="fanout", durable=False, auto_delete=False)


class AmqpEventPublisher(BatchingPublisher):
    """Publishes each batch as one transient message to the fanout exchange."""

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._exchange = _exchange(channel)
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        super().__init__(self._send_batch, name="jobyard-events", disconnect=self._release)

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        if self._producer is None:
            self._connection = Connection(self._url, connect_timeout=5)
            self._producer = Producer(self._connection.channel(), exchange=self._exchange)
            self._exchange(self._producer.channel).declare()
        try:
            self._producer.publish(batch, serializer="json", delivery_mode=1)
        except Exception:
            self._release()
            raise

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.release()
        self._connection = self._producer = None


class AmqpEventListener(ThreadedListener):
    """Consumes the fanout on a daemon thread through an exclusive, auto-deleted queue."""

    service = "RabbitMQ"

    def __init__(self, url: str, channel: str) -> None:
        super().__init__()
        self._url = url
        self._exchange = _exchange(channel)
        self._queue_name = f"{channel}.{socket.gethostname()}.{uuid.uuid4().hex[:8]}"

    def _listen(self, on_batch: BatchHandler) -> None:
        queue = Queue(
            self._queue_name,
            exchange=self._exchange,
            exclusive=True,
            auto_delete=True,
            durable=False,
            queue_arguments={"x-message-ttl": MESSAGE_TTL_S * 1000},
        )

        def handle(body: Any, message: Message) -> None:
            message.ack()
            if self._wanted():
                on_batch(body)

        with Connection(self._url, connect_timeout=5) as connection:
            with Consumer(connection, queues=[queue], callbacks=[handle], accept=["json"]):
                self.subscribed.set()
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue
