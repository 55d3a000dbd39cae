"""Events over Redis pub/sub: PUBLISH from every process, one SUBSCRIBE per web process."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import redis

from jobyard.events.batching import BatchingPublisher
from jobyard.events.bus import BatchHandler

log = logging.getLogger(__name__)
RECONNECT_S = 1.0


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


class RedisEventListener:
    """Subscribes to the channel on a daemon thread and hands each batch to a callback."""

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()

    def start(self, on_batch: BatchHandler) -> None:
        """Start listening; reconnects after errors until closed."""
        self._thread = threading.Thread(
            target=self._run, args=(on_batch,), name="jobyard-events-listener", daemon=True
        )
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until subscribed; False if that did not happen within `timeout_s`."""
        return self.subscribed.wait(timeout_s)

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self, on_batch: BatchHandler) -> None:
        while not self._stop.is_set():
            try:
                self._listen(on_batch)
            except Exception:
                self.subscribed.clear()
                log.warning("event listener lost Redis; reconnecting", exc_info=True)
                self._stop.wait(RECONNECT_S)

    def _listen(self, on_batch: BatchHandler) -> None:
        client = client_for(self._url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)
            self.subscribed.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "message":
                    on_batch(json.loads(message["data"]))
        finally:
            pubsub.close()
            client.close()
