"""Events over Redis pub/sub: PUBLISH from every process, one SUBSCRIBE per web process."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from jobyard.events.batching import BatchingPublisher
from jobyard.events.bus import BatchHandler
from jobyard.events.listening import ThreadedListener

log = logging.getLogger(__name__)


def client_for(url: str) -> redis.Redis:
    """A Redis client for `redis://`, `rediss://` or `redis+socket:///path` URLs."""
    if url.startswith("redis+socket://"):
        path = url.removeprefix("redis+socket://").split("?", 1)[0]
        return redis.Redis(unix_socket_path=path, socket_timeout=5, socket_connect_timeout=5)
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class RedisEventPublisher(BatchingPublisher):
    """Publishes each batch as one JSON array on the channel."""

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._client: redis.Redis | None = None
        super().__init__(self._send_batch, name="jobyard-events", disconnect=self._release)

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        if self._client is None:
            self._client = client_for(self._url)
        try:
            self._client.publish(self._channel, json.dumps(batch, separators=(",", ":")))
        except redis.RedisError:
            self._release()
            raise

    def _release(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


class RedisEventListener(ThreadedListener):
    """Subscribes to the channel on a daemon thread and hands each batch to a callback."""

    service = "Redis"

    def __init__(self, url: str, channel: str) -> None:
        super().__init__()
        self._url = url
        self._channel = channel

    def _listen(self, on_batch: BatchHandler) -> None:
        client = client_for(self._url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)
            self.subscribed.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "message" and self._wanted():
                    on_batch(json.loads(message["data"]))
        finally:
            pubsub.close()
            client.close()
